//! Helpers shared by the playground's integration tests.

#![allow(dead_code, unused_imports)]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use forcelink_test_support::PlaygroundHandle;
use reqwest::{Client, Response, StatusCode};
use rsa::pkcs8::DecodePrivateKey;
use serde_json::Value;

pub use forcelink_test_support::{fixture, spawn_playground, spawn_playground_with};

pub const DEFAULT_CLIENT: &str = "3MVG9playground.forcelink.default.app";
pub const ROTATING_CLIENT: &str = "3MVG9playground.forcelink.rotating.app";
pub const ROTATING_SECRET: &str = "PLAYGROUNDSECRET0000000000000000000000000000000000000002";
pub const ADMIN_APPROVED_CLIENT: &str = "3MVG9playground.forcelink.adminapproved.app";
pub const NO_RUN_AS_CLIENT: &str = "3MVG9playground.forcelink.norunas.app";
pub const NO_RUN_AS_SECRET: &str = "PLAYGROUNDSECRET0000000000000000000000000000000000000004";
pub const PUBLIC_CLIENT: &str = "3MVG9playground.forcelink.public.app";
pub const ADMIN: &str = "admin@playground.forcelink.dev";
pub const INTEGRATION_USER: &str = "integration@playground.forcelink.dev";
pub const INTEGRATION_PASSWORD: &str = "Integration1!";
pub const STANDARD_USER: &str = "sam.standard@playground.forcelink.dev";
pub const STANDARD_PASSWORD: &str = "Standard1!";
pub const STANDARD_TOKEN: &str = "PLAYGROUNDTOKEN0003";
pub const FROZEN_USER: &str = "fran.frozen@playground.forcelink.dev";
pub const INACTIVE_USER: &str = "ivan.inactive@playground.forcelink.dev";

/// An HTTP client that does not follow redirects (authorize tests read `Location`).
pub fn http() -> Client {
    forcelink_test_support::browser::no_redirect_client()
}

/// Posts a form to `url` and returns (status, JSON body or Null).
pub async fn post_form(url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = http().post(url).form(form).send().await.unwrap();
    status_json(resp).await
}

pub async fn status_json(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, body)
}

/// Asserts a `400 {"error": code, "error_description": description}` answer.
pub fn assert_oauth_error(status: StatusCode, body: &Value, code: &str, description: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(body["error_description"], description, "{body}");
}

/// A client-credentials request of the default app to the token endpoint `url`.
pub async fn client_credentials_grant(pg: &PlaygroundHandle, url: &str) -> (StatusCode, Value) {
    post_form(
        url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &pg.info.client.client_id),
            ("client_secret", &pg.info.client.client_secret),
        ],
    )
    .await
}

/// A client-credentials token from the My Domain host.
pub async fn client_credentials(pg: &PlaygroundHandle) -> Value {
    let (status, body) = client_credentials_grant(pg, &pg.instance_token_url()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A password grant through the default app; `password` includes the security token.
pub async fn password_grant(pg: &PlaygroundHandle, username: &str, password: &str) -> (StatusCode, Value) {
    post_form(
        &pg.login_token_url(),
        &[
            ("grant_type", "password"),
            ("client_id", &pg.info.client.client_id),
            ("client_secret", &pg.info.client.client_secret),
            ("username", username),
            ("password", password),
        ],
    )
    .await
}

/// A password-grant token for the default user.
pub async fn password_token(pg: &PlaygroundHandle) -> Value {
    let password = format!("{}{}", pg.info.user.password, pg.info.user.security_token);
    let (status, body) = password_grant(pg, &pg.info.user.username, &password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Seconds since the epoch on the test machine's clock (for JWT `exp`).
#[allow(clippy::disallowed_methods)] // building assertions needs a real timestamp
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Signs `claims` with RS256 using a PKCS#8 PEM key, as a JWT-bearer client does.
pub fn sign_jwt(private_key_pem: &str, claims: &Value) -> String {
    use rsa::pkcs1v15::SigningKey;
    use rsa::signature::{SignatureEncoding, Signer};
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(private_key_pem).unwrap();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let sig = SigningKey::<sha2::Sha256>::new(key).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

/// Decodes a JWT's claims without verifying it.
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// `GET /services/data/` on `base` with a bearer token; returns the status.
pub async fn api_status(base: &str, access_token: &str) -> StatusCode {
    http().get(format!("{base}/services/data/")).bearer_auth(access_token).send().await.unwrap().status()
}

use forcelink_test_support::browser::Decision;
pub use forcelink_test_support::browser::hidden_input;

/// Query (or fragment) parameters of a redirect `Location`.
pub fn location_params(location: &str) -> std::collections::HashMap<String, String> {
    let tail = location.split_once(['?', '#']).map(|(_, t)| t).unwrap_or("");
    url::form_urlencoded::parse(tail.as_bytes()).into_owned().collect()
}

/// PKCE pair (verifier, S256 challenge).
pub fn pkce_pair() -> (String, String) {
    use sha2::Digest;
    let verifier = format!("verifier-{}-0123456789abcdefghijklmnopqrstuvwxyz", unix_now());
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Runs the web-server flow through the real login (and, if shown, consent) pages and
/// exchanges the code. Returns the token response.
pub async fn web_server_token(
    pg: &PlaygroundHandle,
    client_id: &str,
    client_secret: Option<&str>,
    username: &str,
    password: &str,
    scope: &str,
) -> Value {
    let redirect_uri = "http://127.0.0.1:9/callback";
    let (verifier, challenge) = pkce_pair();
    let url = url::Url::parse_with_params(
        &format!("{}/services/oauth2/authorize", pg.login_url()),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", scope),
            ("state", "xyz"),
            ("code_challenge", &challenge),
        ],
    )
    .unwrap();
    let location =
        forcelink_test_support::browser::sign_in(pg, url.as_str(), username, password, Decision::Allow).await;
    let params = location_params(&location);
    let code = params.get("code").unwrap_or_else(|| panic!("no code in {location}"));
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier.as_str()),
    ];
    if let Some(s) = client_secret {
        form.push(("client_secret", s));
    }
    let (status, body) = post_form(&pg.login_token_url(), &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Refresh-token grant; returns (status, body).
pub async fn refresh(pg: &PlaygroundHandle, client_id: &str, secret: &str, refresh_token: &str) -> (StatusCode, Value) {
    post_form(
        &pg.login_token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// A REST client for `/services/data/vXX.X` with a bearer token.
#[derive(Debug, Clone)]
pub struct Api {
    pub http: Client,
    pub instance: String,
    pub version: String,
    pub token: String,
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("/services/") {
            format!("{}{path}", self.instance)
        } else {
            format!("{}/services/data/v{}/{}", self.instance, self.version, path.trim_start_matches('/'))
        }
    }
    pub fn at_version(&self, v: &str) -> Self {
        Self { version: v.to_owned(), ..self.clone() }
    }
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        status_json(req.send().await.unwrap()).await
    }
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }
    /// `GET query?q=…`; panics unless 200.
    pub async fn query(&self, soql: &str) -> Value {
        let (s, b) = self.query_status(soql).await;
        assert_eq!(s, StatusCode::OK, "{soql}: {b}");
        b
    }
    pub async fn query_status(&self, soql: &str) -> (StatusCode, Value) {
        let url = reqwest::Url::parse_with_params(&self.url("query"), &[("q", soql)]).unwrap();
        status_json(self.http.get(url).bearer_auth(&self.token).send().await.unwrap()).await
    }
    /// Creates a record; panics unless 201. Returns the id.
    pub async fn create(&self, object: &str, body: Value) -> String {
        let (s, b) = self.post(&format!("sobjects/{object}"), &body).await;
        assert_eq!(s, StatusCode::CREATED, "create {object}: {b}");
        b["id"].as_str().unwrap().to_owned()
    }
}

/// An API client acting as the admin (client credentials run as the admin user).
pub async fn admin_api(pg: &PlaygroundHandle) -> Api {
    let token = client_credentials(pg).await;
    Api {
        http: http(),
        instance: token["instance_url"].as_str().unwrap().to_owned(),
        version: "66.0".into(),
        token: token["access_token"].as_str().unwrap().to_owned(),
    }
}

/// An API client acting as `username` (password grant; `password` includes no token).
pub async fn user_api(pg: &PlaygroundHandle, username: &str, password: &str, security_token: &str) -> Api {
    let (status, token) = password_grant(pg, username, &format!("{password}{security_token}")).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    Api {
        http: http(),
        instance: token["instance_url"].as_str().unwrap().to_owned(),
        version: "66.0".into(),
        token: token["access_token"].as_str().unwrap().to_owned(),
    }
}
