//! Token endpoint answers as every sign-in flow decodes them (and introspection answers). Any
//! body gives a token set or a typed error, never a panic; a token set has a non-empty access token and an instance URL
//! the default URL policy allows (https Salesforce hosts); and no error's text shows the access
//! token the body carried.
#![no_main]

use std::sync::LazyLock;

use forcelink_auth::fuzzing::{TOKEN_ENDPOINT, token_response, transport};
use forcelink_auth::identity::Introspection;
use forcelink_auth::{Transport, UrlPolicy};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

static TRANSPORT: LazyLock<Transport> = LazyLock::new(|| transport().expect("a transport"));

#[derive(Debug, Arbitrary)]
struct Input {
    status: u8,
    content_type: u8,
    body: Vec<u8>,
    secret: Option<String>,
}

fuzz_target!(|input: Input| {
    let status = [200, 201, 302, 400, 401, 403, 500, 503][usize::from(input.status) % 8];
    let content_type = [None, Some("application/json"), Some("text/html"), Some("application/x-www-form-urlencoded")]
        [usize::from(input.content_type) % 4];
    if let Ok(introspection) = serde_json::from_slice::<Introspection>(&input.body) {
        let _ = introspection.expires_at();
    }
    let result = token_response(&TRANSPORT, status, content_type, &input.body, input.secret.as_deref());
    match result {
        Ok(set) => {
            assert!((200..300).contains(&status), "a token set from HTTP {status}");
            assert!(!set.access_token.secret().is_empty());
            UrlPolicy::new().check("instance_url", &set.instance_url).expect("an allowed instance URL");
        }
        Err(e) => {
            // The access token of the body, when it has one that appears nowhere else.
            let token = serde_json::from_slice::<serde_json::Value>(&input.body)
                .ok()
                .and_then(|v| v.get("access_token").and_then(|t| t.as_str()).map(str::to_owned))
                .filter(|t| t.len() >= 8 && !TOKEN_ENDPOINT.contains(t.as_str()))
                .filter(|t| String::from_utf8_lossy(&input.body).matches(t.as_str()).count() == 1);
            if let Some(token) = token {
                let shown = format!("{e} {e:?}");
                assert!(!shown.contains(&token), "the error shows the access token: {shown}");
            }
        }
    }
});
