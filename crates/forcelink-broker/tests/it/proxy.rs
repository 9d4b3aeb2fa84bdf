use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use forcelink_auth::ConnectionId;
use forcelink_store::{ConnectionSpec, Method, PutMode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{call, harness, serve};

/// A stand-in instance that answers with what it received, and counts requests.
async fn echo_upstream() -> (String, Arc<AtomicU64>) {
    let seen = Arc::new(AtomicU64::new(0));
    let count = seen.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            if uri.path() == "/services/big" {
                return Response::new(Body::from(vec![b'x'; 5 * 1024 * 1024]));
            }
            let status = if uri.path() == "/services/unauthorized" { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
            let names: serde_json::Map<String, Value> =
                headers.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or("")))).collect();
            let body = json!({ "path": uri.path(), "query": uri.query(), "headers": names, "body_len": body.len() });
            (
                status,
                [
                    ("connection", "x-hop"),
                    ("x-hop", "1"),
                    ("set-cookie", "sid=upstream"),
                    ("sforce-limit-info", "api-usage=5/15000"),
                    ("x-kept", "yes"),
                ],
                axum::Json(body),
            )
                .into_response()
        }
    });
    let app = app.layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn add_echo_connection(h: &crate::Harness, url: &str) {
    let spec = ConnectionSpec {
        method: Some(Method::AccessToken),
        instance_url: Some(url.to_owned()),
        access_token: Some("00Dstatic!token".to_owned()),
        ..ConnectionSpec::default()
    };
    h.store.put_connection(&ConnectionId::new("echo"), &spec, PutMode::Create).await.unwrap();
}

#[tokio::test]
async fn queries_go_through_with_the_connections_token_over_real_sockets() {
    let h = harness().await;
    let (base, _server) = serve(h.state.clone()).await;
    let resp = reqwest::Client::new()
        .get(format!("{base}/v1/connections/pg/sf/services/data/v64.0/query?q=SELECT+Id+FROM+User+LIMIT+2"))
        .bearer_auth(&h.proxy_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("sforce-limit-info"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["records"].as_array().unwrap().len(), 2, "{body}");
    // The token scope alone does not open the proxy.
    let refused =
        reqwest::Client::new().get(format!("{base}/v1/connections/pg/sf/services/data/")).bearer_auth(&h.token_key);
    assert_eq!(refused.send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn paths_outside_services_and_traversal_are_refused_before_anything_is_sent() {
    let h = harness().await;
    let (echo, seen) = echo_upstream().await;
    add_echo_connection(&h, &echo).await;
    for path in [
        "secur/frontdoor.jsp",
        "services/../secur/frontdoor.jsp",
        "services/data/%2e%2e/%2E%2E/secur/frontdoor.jsp",
        "services/data/..%2f..%2fsecur",
        "services//data",
        "services/data/%5c..%5csecur",
        "services/./data",
    ] {
        let (s, body) = call(&h.router, "GET", &format!("/v1/connections/echo/sf/{path}"), Some(&h.admin), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("refused path"), "{body}");
    }
    // The same over a real socket, written by hand (HTTP clients clean `..` up before sending).
    let (base, _server) = serve(h.state.clone()).await;
    let addr = base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /v1/connections/echo/sf/services/../../secur HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        h.admin
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(seen.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn hop_by_hop_headers_keys_and_cookies_are_not_forwarded_either_way() {
    let h = harness().await;
    let (echo, _) = echo_upstream().await;
    add_echo_connection(&h, &echo).await;
    let (base, _server) = serve(h.state.clone()).await;
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/connections/echo/sf/services/data/v64.0/sobjects/Account?x=1"))
        .bearer_auth(&h.admin)
        .header("cookie", "forcelink_session=abc")
        .header("proxy-authorization", "Basic eDp5")
        .header("connection", "keep-alive, x-private")
        .header("x-private", "1")
        .header("sforce-call-options", "client=test")
        .header("forwarded", "for=10.9.9.9;host=evil.example")
        .header("x-forwarded-for", "10.9.9.9")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .header("x-real-ip", "10.9.9.9")
        .header("content-type", "application/json")
        .body(r#"{"Name": "Acme"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    assert_eq!(headers["x-kept"], "yes");
    assert!(!headers.contains_key("x-hop") && !headers.contains_key("set-cookie"), "{headers:?}");
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["path"], "/services/data/v64.0/sobjects/Account");
    assert_eq!(seen["query"], "x=1");
    assert_eq!(seen["body_len"], 16);
    let up = &seen["headers"];
    assert_eq!(up["authorization"], "Bearer 00Dstatic!token");
    assert_eq!(up["sforce-call-options"], "client=test");
    for gone in [
        "cookie",
        "proxy-authorization",
        "x-private",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
    ] {
        assert!(up.get(gone).is_none(), "{gone} forwarded: {up}");
    }
    assert!(!up.to_string().contains(&h.admin));
    // The org's usage header shows up in the connection's description.
    let (_, described) = call(&h.router, "GET", "/v1/connections/echo", Some(&h.admin), None).await;
    assert_eq!(described["usage"]["salesforce_limit_info"], "api-usage=5/15000");
}

#[tokio::test]
async fn bodies_stream_both_ways_and_a_streamed_body_is_not_replayed_after_a_401() {
    let h = harness().await;
    let (echo, seen) = echo_upstream().await;
    add_echo_connection(&h, &echo).await;
    let (base, _server) = serve(h.state.clone()).await;
    let http = reqwest::Client::new();
    // 4 MiB up in chunks of unknown total length.
    let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'a'; 64 * 1024])));
    let resp = http
        .post(format!("{base}/v1/connections/echo/sf/services/upload"))
        .bearer_auth(&h.admin)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["body_len"], 4 * 1024 * 1024);
    // 5 MiB down.
    let resp =
        http.get(format!("{base}/v1/connections/echo/sf/services/big")).bearer_auth(&h.admin).send().await.unwrap();
    assert_eq!(resp.bytes().await.unwrap().len(), 5 * 1024 * 1024);
    // A 401 on a body too large to buffer comes back as is, sent once.
    let before = seen.load(Ordering::SeqCst);
    let resp = http
        .post(format!("{base}/v1/connections/echo/sf/services/unauthorized"))
        .bearer_auth(&h.admin)
        .body(vec![b'b'; 200 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(seen.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn an_expired_session_is_renewed_once_and_the_request_sent_again() {
    let h = harness().await;
    let (base, _server) = serve(h.state.clone()).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/v1/connections/pg/sf/services/data/v64.0/sobjects/Account");
    let first = http.post(&url).bearer_auth(&h.admin).json(&json!({"Name": "Before"})).send().await.unwrap();
    assert_eq!(first.status(), 201);
    assert_eq!(h.pg.control.token_requests("client_credentials").await, 1);
    h.pg.control.expire_sessions().await;
    let second = http.post(&url).bearer_auth(&h.admin).json(&json!({"Name": "After"})).send().await.unwrap();
    assert_eq!(second.status(), 201, "{:?}", second.text().await);
    assert_eq!(h.pg.control.token_requests("client_credentials").await, 2);
}

#[tokio::test]
async fn only_the_rest_methods_are_forwarded() {
    let h = harness().await;
    let (echo, seen) = echo_upstream().await;
    add_echo_connection(&h, &echo).await;
    for method in ["TRACE", "CONNECT", "OPTIONS", "PROPFIND"] {
        let (s, body) = call(&h.router, method, "/v1/connections/echo/sf/services/data/", Some(&h.admin), None).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{method}: {body}");
        assert_eq!(body["error"]["code"], "method_not_allowed", "{method}: {body}");
    }
    assert_eq!(seen.load(Ordering::SeqCst), 0, "nothing reached the instance");
    for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] {
        let (s, _) = call(&h.router, method, "/v1/connections/echo/sf/services/data/", Some(&h.admin), None).await;
        assert_eq!(s, StatusCode::OK, "{method}");
    }
    assert_eq!(seen.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn proxied_requests_are_audited_without_query_values_or_bodies() {
    let h = harness().await;
    let (echo, _) = echo_upstream().await;
    add_echo_connection(&h, &echo).await;
    let secret_soql = "SELECT+Id+FROM+User+WHERE+Email='ceo@example.com'";
    let key = h.proxy_key_for("echo").await;
    for _ in 0..3 {
        let uri = format!("/v1/connections/echo/sf/services/data/v64.0/query?q={secret_soql}&batch=7");
        assert_eq!(call(&h.router, "GET", &uri, Some(&key), None).await.0, 200);
    }
    let (s, _) = call(
        &h.router,
        "POST",
        "/v1/connections/echo/sf/services/unauthorized",
        Some(&h.admin),
        Some(r#"{"Secret": "body-never-logged"}"#),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    h.state.flush_audit().await;
    let audit = h.store.audit(Some(&ConnectionId::new("echo")), 50).await.unwrap();
    let proxied: Vec<_> = audit.iter().filter(|e| e.action == "proxy.request").collect();
    assert_eq!(proxied.len(), 2, "{audit:?}");
    let text = format!("{proxied:?}");
    assert!(!text.contains("ceo@example.com") && !text.contains("body-never-logged"), "{text}");
    let query = proxied.iter().find(|e| e.detail.as_deref().unwrap().starts_with("GET")).unwrap();
    assert_eq!(query.detail.as_deref(), Some("GET services/data/v64.0/query?q=…&batch=… → 200 (3 times)"));
    assert!(query.actor.starts_with("api-key:"));
    let refused = proxied.iter().find(|e| e.detail.as_deref().unwrap().starts_with("POST")).unwrap();
    assert_eq!(refused.detail.as_deref(), Some("POST services/unauthorized → 401"));
    let admin_id = forcelink_store::apikey::parse(&h.admin).unwrap().0;
    assert_eq!(refused.actor, format!("api-key:{admin_id}"));
}
