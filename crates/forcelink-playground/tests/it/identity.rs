//! Revoke, introspect, userinfo, identity URL, discovery, keys and the versions list.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use forcelink_test_support::PlaygroundHandle;
use reqwest::StatusCode;
use rsa::signature::Verifier;
use serde_json::{Value, json};

use crate::common::*;

/// Verifies an RS256 JWT against the playground's `/id/keys`.
pub(crate) async fn assert_signed_by_playground(pg: &PlaygroundHandle, token: &str) {
    let keys: Value = http().get(format!("{}/id/keys", pg.login_url())).send().await.unwrap().json().await.unwrap();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    let jwk = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the token's kid is in /id/keys");
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["alg"], "RS256");
    let n = rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap());
    let e = rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap());
    let key = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(rsa::RsaPublicKey::new(n, e).unwrap());
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = rsa::pkcs1v15::Signature::try_from(URL_SAFE_NO_PAD.decode(sig).unwrap().as_slice()).unwrap();
    key.verify(input.as_bytes(), &sig).expect("signature verifies with the published key");
}

async fn introspect(pg: &PlaygroundHandle, token: &str, hint: Option<&str>) -> (StatusCode, Value) {
    let mut form = vec![
        ("token", token),
        ("client_id", pg.info.client.client_id.as_str()),
        ("client_secret", pg.info.client.client_secret.as_str()),
    ];
    if let Some(h) = hint {
        form.push(("token_type_hint", h));
    }
    post_form(&format!("{}/services/oauth2/introspect", pg.login_url()), &form).await
}

#[tokio::test]
async fn revoke_access_token_by_post_and_get() {
    let pg = spawn_playground().await;
    for method in ["POST", "GET"] {
        let token = client_credentials(&pg).await["access_token"].as_str().unwrap().to_owned();
        let url = format!("{}/services/oauth2/revoke", pg.login_url());
        let resp = if method == "POST" {
            http().post(&url).form(&[("token", token.as_str())]).send().await.unwrap()
        } else {
            http().get(&url).query(&[("token", token.as_str())]).send().await.unwrap()
        };
        assert_eq!(resp.status(), StatusCode::OK, "{method}");
        assert_eq!(resp.text().await.unwrap(), "", "revoke answers with an empty body");
        assert_eq!(api_status(pg.instance_url(), &token).await, StatusCode::UNAUTHORIZED, "{method}");
    }
    let (s, b) = post_form(&format!("{}/services/oauth2/revoke", pg.login_url()), &[("token", "unknown")]).await;
    assert_oauth_error(s, &b, "invalid_token", "invalid token");
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_access_tokens() {
    let pg = spawn_playground().await;
    let secret = pg.info.client.client_secret.clone();
    let t = web_server_token(&pg, DEFAULT_CLIENT, Some(&secret), ADMIN, "Playground1!", "api refresh_token").await;
    let access = t["access_token"].as_str().unwrap();
    let refresh_token = t["refresh_token"].as_str().unwrap();
    let (s, renewed) = refresh(&pg, DEFAULT_CLIENT, &secret, refresh_token).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = post_form(&format!("{}/services/oauth2/revoke", pg.login_url()), &[("token", refresh_token)]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(api_status(pg.instance_url(), access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api_status(pg.instance_url(), renewed["access_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
    let (s, b) = refresh(&pg, DEFAULT_CLIENT, &secret, refresh_token).await;
    assert_oauth_error(s, &b, "invalid_grant", "expired access/refresh token");
}

#[tokio::test]
async fn introspect_reports_expiry_and_kind() {
    let pg = spawn_playground().await;
    let token = client_credentials(&pg).await["access_token"].as_str().unwrap().to_owned();
    let (s, b) = introspect(&pg, &token, Some("access_token")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["active"], true);
    assert_eq!(b["token_type"], "access_token");
    assert_eq!(b["client_id"], pg.info.client.client_id);
    assert_eq!(b["username"], ADMIN);
    assert!(b["sub"].as_str().unwrap().contains("/id/00D"), "{b}");
    let (exp, iat) = (b["exp"].as_i64().unwrap(), b["iat"].as_i64().unwrap());
    assert_eq!(exp - iat, 7200, "the app's session timeout");
    assert!(b["scope"].as_str().unwrap().contains("api"));

    // HTTP Basic client authentication works as well.
    let resp = http()
        .post(format!("{}/services/oauth2/introspect", pg.instance_url()))
        .basic_auth(&pg.info.client.client_id, Some(&pg.info.client.client_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["active"], true);

    pg.control.advance_clock(7200).await;
    let (_, b) = introspect(&pg, &token, None).await;
    assert_eq!(b, json!({"active": false}));
    let (_, b) = introspect(&pg, "garbage", None).await;
    assert_eq!(b, json!({"active": false}));

    let (s, b) = post_form(
        &format!("{}/services/oauth2/introspect", pg.login_url()),
        &[("token", token.as_str()), ("client_id", DEFAULT_CLIENT), ("client_secret", "wrong")],
    )
    .await;
    assert_oauth_error(s, &b, "invalid_client", "invalid client credentials");
}

#[tokio::test]
async fn introspect_refresh_token() {
    let pg = spawn_playground().await;
    let secret = pg.info.client.client_secret.clone();
    let t = web_server_token(&pg, DEFAULT_CLIENT, Some(&secret), ADMIN, "Playground1!", "api refresh_token").await;
    let (_, b) = introspect(&pg, t["refresh_token"].as_str().unwrap(), Some("refresh_token")).await;
    assert_eq!(b["active"], true, "{b}");
    assert_eq!(b["token_type"], "refresh_token");
}

#[tokio::test]
async fn userinfo_and_identity_url_describe_the_token_user() {
    let pg = spawn_playground().await;
    let t = password_token(&pg).await;
    let token = t["access_token"].as_str().unwrap();
    let resp =
        http().get(format!("{}/services/oauth2/userinfo", pg.login_url())).bearer_auth(token).send().await.unwrap();
    let (s, info) = status_json(resp).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(info["preferred_username"], ADMIN);
    assert_eq!(info["sub"], t["id"]);
    let user_id = info["user_id"].as_str().unwrap();
    assert!(t["id"].as_str().unwrap().ends_with(user_id));

    let id_url = t["id"].as_str().unwrap();
    let resp = http().get(id_url).bearer_auth(token).send().await.unwrap();
    let (s, id) = status_json(resp).await;
    assert_eq!(s, StatusCode::OK, "{id}");
    assert_eq!(id["id"], id_url);
    assert_eq!(id["username"], ADMIN);
    assert_eq!(id["user_id"], user_id);
    assert_eq!(id["organization_id"].as_str().unwrap().len(), 18);
    assert!(id["urls"]["rest"].as_str().unwrap().contains("{version}"));

    // ?version=latest fills the placeholder; ?oauth_token= works without the header.
    let resp = http().get(id_url).query(&[("version", "latest"), ("oauth_token", token)]).send().await.unwrap();
    let id: Value = resp.json().await.unwrap();
    assert_eq!(
        id["urls"]["rest"],
        format!("{}/services/data/v{}/", pg.instance_url(), forcelink_playground::LATEST_API_VERSION)
    );

    for url in [format!("{}/services/oauth2/userinfo", pg.login_url()), id_url.to_owned()] {
        let resp = http().get(&url).bearer_auth("00D000000000000!bogus").send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{url}");
        assert_eq!(resp.text().await.unwrap(), "Bad_OAuth_Token");
    }
}

#[tokio::test]
async fn discovery_documents_name_this_host_and_keys_verify_id_tokens() {
    let pg = spawn_playground().await;
    for base in [pg.login_url(), pg.instance_url()] {
        let d: Value =
            http().get(format!("{base}/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
        assert_eq!(d["issuer"], base);
        assert_eq!(d["token_endpoint"], format!("{base}/services/oauth2/token"));
        assert_eq!(d["jwks_uri"], format!("{base}/id/keys"));
        assert_eq!(d["introspection_endpoint"], format!("{base}/services/oauth2/introspect"));
    }
    let secret = pg.info.client.client_secret.clone();
    let t = web_server_token(&pg, DEFAULT_CLIENT, Some(&secret), ADMIN, "Playground1!", "api openid").await;
    let id_token = t["id_token"].as_str().expect("openid scope brings an id_token");
    assert_signed_by_playground(&pg, id_token).await;
    let claims = jwt_claims(id_token);
    assert_eq!(claims["aud"], DEFAULT_CLIENT);
    assert_eq!(claims["iss"], pg.info.login_url);
}

#[tokio::test]
async fn versions_list_needs_no_token_but_checks_a_presented_one() {
    let pg = spawn_playground().await;
    let resp = http().get(format!("{}/services/data/", pg.instance_url())).send().await.unwrap();
    let (s, list) = status_json(resp).await;
    assert_eq!(s, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert!(list.iter().any(|v| v["version"] == forcelink_playground::LATEST_API_VERSION));
    assert!(
        list.iter().any(|v| v["version"] == "58.0" && v["label"] == "Summer '23" && v["url"] == "/services/data/v58.0")
    );
    // Without a trailing slash as well.
    let resp = http().get(format!("{}/services/data", pg.instance_url())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(api_status(pg.instance_url(), "00D000000000000!bogus").await, StatusCode::UNAUTHORIZED);
    // Unknown data resources are NOT_FOUND, but only after the session check.
    let token = client_credentials(&pg).await["access_token"].as_str().unwrap().to_owned();
    let resp = http()
        .get(format!("{}/services/data/v66.0/no-such-resource", pg.instance_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (s, b) = status_json(resp).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b[0]["errorCode"], "NOT_FOUND");
    let resp = http().get(format!("{}/services/data/v66.0/no-such-resource", pg.instance_url())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn identity_url_with_a_hostile_user_id_is_not_found_not_a_crash() {
    let pg = spawn_playground().await;
    let t = password_token(&pg).await;
    let token = t["access_token"].as_str().unwrap();
    let org = t["id"].as_str().unwrap().rsplit('/').nth(1).unwrap().to_owned();
    for user in ["00000000000000%C3%A9%C3%A9", "005", "0058d0000000099AAA"] {
        let resp = http().get(format!("{}/id/{org}/{user}", pg.login_url())).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{user}");
    }
}

#[tokio::test]
async fn discovery_names_every_recorded_scope_and_the_logout_endpoint() {
    let pg = spawn_playground().await;
    let recorded = fixture("oauth/openid_configuration_login")["response"]["body"].clone();
    let doc: Value = http()
        .get(format!("{}/.well-known/openid-configuration", pg.instance_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for key in recorded.as_object().unwrap().keys() {
        assert!(doc.get(key).is_some(), "{key} missing");
    }
    assert_eq!(doc["scopes_supported"], recorded["scopes_supported"]);
    assert_eq!(doc["issuer"], pg.instance_url());
    assert_eq!(doc["end_session_endpoint"], format!("{}/services/auth/idp/oidc/logout", pg.instance_url()));
    assert_eq!(doc["frontchannel_logout_supported"], true);
}

#[tokio::test]
async fn logout_ends_the_browser_session_and_returns_to_a_known_callback() {
    let pg = spawn_playground().await;
    let authorize = format!(
        "{}/services/oauth2/authorize?response_type=code&client_id={}&redirect_uri=http://127.0.0.1:9/callback",
        pg.login_url(),
        pg.info.client.client_id
    );
    // Sign in on the login page; the browser session cookie skips the next login page.
    let page = http().get(&authorize).send().await.unwrap().text().await.unwrap();
    let pending = hidden_input(&page, "pending").unwrap();
    let resp = http()
        .post(format!("{}/services/oauth2/authorize/login", pg.login_url()))
        .form(&[("pending", pending.as_str()), ("username", ADMIN), ("password", "Playground1!")])
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let again = http().get(&authorize).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::FOUND, "signed in: no login page");

    let logout = format!(
        "{}/services/auth/idp/oidc/logout?post_logout_redirect_uri=http://127.0.0.1:9/callback&state=s1",
        pg.login_url()
    );
    let resp = http().get(&logout).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(resp.headers()["location"], "http://127.0.0.1:9/callback?state=s1");
    assert!(resp.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let after = http().get(&authorize).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::OK, "the login page again");
    assert!(hidden_input(&after.text().await.unwrap(), "pending").is_some());
    // A redirect that is no app's callback is not followed.
    let resp = http()
        .get(format!("{}/services/auth/idp/oidc/logout?post_logout_redirect_uri=https://evil.example/", pg.login_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("Logged out"));
}
