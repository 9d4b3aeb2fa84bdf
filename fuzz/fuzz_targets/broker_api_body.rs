//! Bodies of the broker's API (connections, API keys, webhooks, connect sessions) sent through
//! its router with an administrator key. Any body is answered, never with a 5xx or a panic;
//! errors are the API's JSON error; and a connection the API accepts never holds an `env:` or
//! `file:` reference in a secret field (a caller must not make the broker read its environment
//! or files into a request).
#![no_main]

use std::sync::{Arc, LazyLock};

use axum::body::Body;
use forcelink_auth::{SystemClock, Transport, UrlPolicy};
use forcelink_broker::fuzzing::connection_body;
use forcelink_broker::{BrokerConfig, BrokerState};
use forcelink_store::connection::SECRET_FIELDS;
use forcelink_store::{ConnectionStore, MemoryConnectionStore, SecretRef};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct Broker {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    admin: String,
}

static BROKER: LazyLock<Broker> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let (router, admin) = runtime.block_on(async {
        let clock = Arc::new(SystemClock);
        let store: Arc<dyn ConnectionStore> = Arc::new(MemoryConnectionStore::new(clock.clone()));
        let (key, record) = forcelink_store::apikey::generate(
            "fuzz",
            vec!["*".to_owned()],
            forcelink_store::Scopes::parse(&["*"]).expect("scopes"),
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
        );
        store.put_api_key(&record).await.expect("a key");
        // Nothing here is sent anywhere: no route below fetches a token.
        let transport =
            Transport::new(forcelink_auth::wire::default_http_client().expect("a client"), clock, UrlPolicy::new());
        let mut config = BrokerConfig::new(store, transport, forcelink_store::SecretResolver::without_env());
        config.background = false;
        config.public_url = url::Url::parse("https://broker.example").ok();
        let state = BrokerState::new(config).expect("a broker");
        (forcelink_broker::router(state), key.secret().to_owned())
    });
    Broker { runtime, router, admin }
});

#[derive(Debug, Arbitrary)]
struct Input {
    route: u8,
    name: String,
    json_content_type: bool,
    body: Vec<u8>,
}

fuzz_target!(|input: Input| {
    if let Ok((_, spec)) = connection_body(&input.body, Some(&input.name)) {
        let json = serde_json::to_value(&spec).expect("a spec is JSON");
        for field in SECRET_FIELDS {
            if let Some(text) = json.get(field).and_then(|v| v.as_str()) {
                assert!(SecretRef::parse(text).is_value(), "accepted a reference in {field}: {text:?}");
            }
        }
    }
    let name: String = form_urlencoded::byte_serialize(input.name.as_bytes()).collect();
    let (method, path) = match input.route % 5 {
        0 => ("POST", "/v1/connections".to_owned()),
        1 => ("PUT", format!("/v1/connections/{name}")),
        2 => ("POST", "/v1/api-keys".to_owned()),
        3 => ("POST", "/v1/webhooks".to_owned()),
        _ => ("POST", "/v1/connect-sessions".to_owned()),
    };
    let broker = &*BROKER;
    let mut request =
        http::Request::builder().method(method).uri(&path).header("authorization", format!("Bearer {}", broker.admin));
    if input.json_content_type {
        request = request.header("content-type", "application/json");
    }
    let Ok(request) = request.body(Body::from(input.body.clone())) else { return };
    let (status, body) = broker.runtime.block_on(async {
        let Ok(response) = broker.router.clone().oneshot(request).await;
        let status = response.status().as_u16();
        (status, axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default())
    });
    assert!(status < 500, "{method} {path}: {status} {}", String::from_utf8_lossy(&body));
    if status >= 400 {
        let error: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error");
        assert!(error["error"]["code"].is_string(), "{error}");
    }
});
