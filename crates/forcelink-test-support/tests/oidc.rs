//! Proves the oidc-provider harness with raw HTTP calls: each standard flow a token source will
//! use works against it, and it refuses what a real authorization server refuses.
//! Needs `scripts/oidc-provider-setup` to have run.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use forcelink_test_support::oidc::{
    CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, OidcProviderHandle, OidcProviderOptions, PUBLIC_CLIENT_ID,
    spawn_oidc_provider,
};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

/// A port nothing listens on: the provider redirects there, the harness stops before following.
const CALLBACK: &str = "http://127.0.0.1:43123/callback";

use forcelink_test_support::browser::no_redirect_client as http;

async fn json(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text}"));
    (status, body)
}

/// A token request authenticated with client_secret_post.
async fn token_post(op: &OidcProviderHandle, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = vec![("client_id", CONFIDENTIAL_CLIENT_ID), ("client_secret", CONFIDENTIAL_CLIENT_SECRET)];
    form.extend_from_slice(params);
    json(http().post(op.token_endpoint()).form(&form).send().await.unwrap()).await
}

async fn introspect(op: &OidcProviderHandle, token: &str) -> Value {
    let resp = http()
        .post(op.introspection_endpoint())
        .basic_auth(CONFIDENTIAL_CLIENT_ID, Some(CONFIDENTIAL_CLIENT_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let (status, body) = json(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn revoke(op: &OidcProviderHandle, token: &str) {
    let resp = http()
        .post(op.revocation_endpoint())
        .basic_auth(CONFIDENTIAL_CLIENT_ID, Some(CONFIDENTIAL_CLIENT_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(status, StatusCode::OK, "{}", resp.text().await.unwrap());
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn authorize_url(op: &OidcProviderHandle, client_id: &str, state: &str, pkce_challenge: Option<&str>) -> String {
    let mut url = Url::parse(op.authorization_endpoint()).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", CALLBACK)
            .append_pair("scope", "openid offline_access api")
            .append_pair("prompt", "consent")
            .append_pair("state", state);
        if let Some(c) = pkce_challenge {
            q.append_pair("code_challenge", c).append_pair("code_challenge_method", "S256");
        }
    }
    url.to_string()
}

fn query(url: &Url, key: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

/// Runs the code flow for the confidential client and returns the token response.
async fn code_flow_tokens(op: &OidcProviderHandle, user: &str) -> Value {
    let verifier = "a-verifier-of-enough-length-for-rfc7636-0123456789";
    let redirect = op
        .complete_authorization(&authorize_url(op, CONFIDENTIAL_CLIENT_ID, "s1", Some(&challenge(verifier))), user)
        .await;
    let code = query(&redirect, "code").unwrap_or_else(|| panic!("no code in {redirect}"));
    let (status, body) = token_post(
        op,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn client_credentials_with_client_secret_post() {
    let op = spawn_oidc_provider(OidcProviderOptions::default()).await;
    assert!(op.issuer().starts_with("http://127.0.0.1:"), "{}", op.issuer());

    let (status, body) = token_post(&op, &[("grant_type", "client_credentials"), ("scope", "api")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "api");
    assert!(body.get("refresh_token").is_none(), "no refresh token for client credentials: {body}");

    let resp = http()
        .post(op.token_endpoint())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CONFIDENTIAL_CLIENT_ID),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn client_credentials_with_client_secret_basic_and_custom_ttl() {
    let op = spawn_oidc_provider(OidcProviderOptions { access_token_ttl_secs: Some(120), ..Default::default() }).await;

    let resp = http()
        .post(op.token_endpoint())
        .header(
            reqwest::header::AUTHORIZATION,
            format!("Basic {}", STANDARD.encode(format!("{CONFIDENTIAL_CLIENT_ID}:{CONFIDENTIAL_CLIENT_SECRET}"))),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let (status, body) = json(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 120);
    assert!(body.get("scope").is_none(), "no scope asked, none granted: {body}");

    let info = introspect(&op, body["access_token"].as_str().unwrap()).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], CONFIDENTIAL_CLIENT_ID);
    let (exp, iat) = (info["exp"].as_u64().unwrap(), info["iat"].as_u64().unwrap());
    assert_eq!(exp - iat, 120, "{info}");

    // A scope the provider does not know is dropped, not refused.
    let (status, body) = token_post(&op, &[("grant_type", "client_credentials"), ("scope", "api full")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "api");

    let (status, body) = token_post(&op, &[("grant_type", "password"), ("username", "u"), ("password", "p")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn authorization_code_with_pkce_s256() {
    let op = spawn_oidc_provider(OidcProviderOptions::default()).await;
    let verifier = "correct-horse-battery-staple-correct-horse-battery-staple";
    let url = authorize_url(&op, CONFIDENTIAL_CLIENT_ID, "state-123", Some(&challenge(verifier)));

    let redirect = op.complete_authorization(&url, "alice").await;
    assert_eq!(redirect.origin(), Url::parse(CALLBACK).unwrap().origin(), "{redirect}");
    assert_eq!(redirect.path(), "/callback");
    assert_eq!(query(&redirect, "state").as_deref(), Some("state-123"));
    assert_eq!(query(&redirect, "iss").as_deref(), Some(op.issuer()));
    let code = query(&redirect, "code").unwrap_or_else(|| panic!("no code in {redirect}"));

    let exchange = |code: String, verifier: &'static str| {
        let op = &op;
        async move {
            token_post(
                op,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", CALLBACK),
                    ("code_verifier", verifier),
                ],
            )
            .await
        }
    };
    let (status, body) = exchange(code.clone(), "correct-horse-battery-staple-correct-horse-battery-staple").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    assert!(body["refresh_token"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    assert!(body["id_token"].as_str().is_some_and(|t| t.split('.').count() == 3), "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "openid offline_access api");

    // The access token works at userinfo, for the user who signed in.
    let resp =
        http().get(op.userinfo_endpoint()).bearer_auth(body["access_token"].as_str().unwrap()).send().await.unwrap();
    let (status, me) = json(resp).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["sub"], "alice");

    // A code is single use.
    let (status, again) = exchange(code, "correct-horse-battery-staple-correct-horse-battery-staple").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{again}");
    assert_eq!(again["error"], "invalid_grant");

    // A verifier that does not match the challenge is refused.
    let redirect = op.complete_authorization(&url, "alice").await;
    let (status, wrong) =
        exchange(query(&redirect, "code").unwrap(), "not-the-verifier-not-the-verifier-not-the-verifier").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong}");
    assert_eq!(wrong["error"], "invalid_grant");
}

#[tokio::test]
async fn authorization_without_pkce_is_refused_at_the_redirect_uri() {
    let op = spawn_oidc_provider(OidcProviderOptions::default()).await;
    let redirect = op.complete_authorization(&authorize_url(&op, CONFIDENTIAL_CLIENT_ID, "s", None), "bob").await;
    assert_eq!(redirect.path(), "/callback", "{redirect}");
    assert!(query(&redirect, "code").is_none(), "{redirect}");
    assert_eq!(query(&redirect, "error").as_deref(), Some("invalid_request"), "{redirect}");
    assert_eq!(query(&redirect, "state").as_deref(), Some("s"));
}

#[tokio::test]
async fn public_client_code_flow_without_a_secret() {
    let op = spawn_oidc_provider(OidcProviderOptions::default()).await;
    let verifier = "public-client-verifier-public-client-verifier-0001";
    let redirect = op
        .complete_authorization(&authorize_url(&op, PUBLIC_CLIENT_ID, "p", Some(&challenge(verifier))), "carol")
        .await;
    let code = query(&redirect, "code").unwrap_or_else(|| panic!("no code in {redirect}"));
    let resp = http()
        .post(op.token_endpoint())
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", PUBLIC_CLIENT_ID),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["refresh_token"].is_string(), "{body}");
}

#[tokio::test]
async fn refresh_without_rotation_keeps_the_refresh_token() {
    let op = spawn_oidc_provider(OidcProviderOptions::default()).await;
    let first = code_flow_tokens(&op, "dave").await;
    let rt = first["refresh_token"].as_str().unwrap();

    for _ in 0..2 {
        let (status, body) = token_post(&op, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_ne!(body["access_token"], first["access_token"], "a new access token each time");
        assert_eq!(body["refresh_token"], rt, "the same refresh token is returned: {body}");
        assert_eq!(body["expires_in"], 3600);
        assert_eq!(body["scope"], "openid offline_access api");
    }
}

#[tokio::test]
async fn refresh_with_rotation_rejects_the_old_token_and_revokes_the_grant() {
    let op = spawn_oidc_provider(OidcProviderOptions { rotate_refresh_tokens: true, ..Default::default() }).await;
    let first = code_flow_tokens(&op, "erin").await;
    let rt1 = first["refresh_token"].as_str().unwrap();

    let (status, second) = token_post(&op, &[("grant_type", "refresh_token"), ("refresh_token", rt1)]).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(rt2, rt1, "rotation issues a new refresh token");
    assert_eq!(introspect(&op, second["access_token"].as_str().unwrap()).await["active"], true);

    // Reusing the consumed token fails...
    let (status, body) = token_post(&op, &[("grant_type", "refresh_token"), ("refresh_token", rt1)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "grant request is invalid");
    // ...and, as reuse detection, revokes the grant: the rotated token and its access token die too.
    let (status, body) = token_post(&op, &[("grant_type", "refresh_token"), ("refresh_token", rt2)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(introspect(&op, second["access_token"].as_str().unwrap()).await["active"], false);
}

#[tokio::test]
async fn introspect_and_revoke_access_tokens() {
    let op = spawn_oidc_provider(OidcProviderOptions::default()).await;
    let tokens = code_flow_tokens(&op, "frank").await;
    let at = tokens["access_token"].as_str().unwrap();

    let info = introspect(&op, at).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], CONFIDENTIAL_CLIENT_ID);
    assert_eq!(info["scope"], "openid offline_access api");
    assert_eq!(info["sub"], "frank");
    assert_eq!(info["token_type"], "Bearer");
    assert!(info["exp"].as_u64().unwrap() > info["iat"].as_u64().unwrap(), "{info}");

    revoke(&op, at).await;
    assert_eq!(introspect(&op, at).await, serde_json::json!({"active": false}));
    // This provider revokes every token of the grant with it, the refresh token included.
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(&op, rt).await["active"], false);
    let (status, body) = token_post(&op, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");

    // A client-credentials token has no grant: revoking it touches nothing else.
    let (_, cc1) = token_post(&op, &[("grant_type", "client_credentials")]).await;
    let (_, cc2) = token_post(&op, &[("grant_type", "client_credentials")]).await;
    let cc1 = cc1["access_token"].as_str().unwrap();
    revoke(&op, cc1).await;
    assert_eq!(introspect(&op, cc1).await["active"], false);
    assert_eq!(introspect(&op, cc2["access_token"].as_str().unwrap()).await["active"], true);

    // Revoking an unknown token still answers 200, as RFC 7009 says.
    revoke(&op, "no-such-token").await;
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_grant() {
    let op = spawn_oidc_provider(OidcProviderOptions::default()).await;
    let tokens = code_flow_tokens(&op, "grace").await;
    let (at, rt) = (tokens["access_token"].as_str().unwrap(), tokens["refresh_token"].as_str().unwrap());

    let info = introspect(&op, rt).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], CONFIDENTIAL_CLIENT_ID);
    assert!(info.get("token_type").is_none(), "refresh tokens have no token_type: {info}");

    revoke(&op, rt).await;
    assert_eq!(introspect(&op, rt).await["active"], false);
    assert_eq!(introspect(&op, at).await["active"], false, "the grant's access token goes too");
    let (status, body) = token_post(&op, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn the_server_stops_when_the_handle_drops() {
    let op = spawn_oidc_provider(OidcProviderOptions::default()).await;
    let discovery = op.endpoints.discovery_endpoint.clone();
    let resp = http().get(&discovery).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    drop(op);
    // kill_on_drop sends SIGKILL at once; the listening socket closes when the kernel has torn
    // the process down. Retry until the connection is refused, bounded by a timeout.
    let addr = discovery.trim_start_matches("http://").split('/').next().unwrap().to_owned();
    let gone = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while tokio::net::TcpStream::connect(&addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(gone.is_ok(), "{addr} still accepts connections after the handle dropped");
}

#[tokio::test]
#[should_panic(expected = "the OIDC test provider did not start")]
async fn a_configuration_the_provider_refuses_fails_the_test_with_its_stderr() {
    // oidc-provider validates client metadata at start-up: a redirect URI with a fragment is invalid.
    let opts =
        OidcProviderOptions { extra_redirect_uris: vec!["http://127.0.0.1/cb#frag".to_owned()], ..Default::default() };
    spawn_oidc_provider(opts).await;
}
