//! Connection-level limits over real sockets, written by hand: keys are checked before a body
//! is read, slow request heads are cut off, and the connection cap holds.

use std::time::Duration;

use forcelink_broker::{BrokerConfig, BrokerState, Limits};
use forcelink_store::SecretResolver;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{harness, serve, transport};

/// Generous bound for answers that should come at once (never reached when all is well).
const PROMPT: Duration = Duration::from_secs(5);

async fn read_until(tcp: &mut TcpStream, needle: &str) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&buf).contains(needle) {
        let n = tokio::time::timeout(PROMPT, tcp.read(&mut chunk)).await.expect("an answer").unwrap();
        assert!(n > 0, "closed before {needle:?}: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn limited(h: &crate::Harness, limits: Limits) -> BrokerState {
    let mut config = BrokerConfig::new(h.store.clone(), transport(), SecretResolver::without_env());
    config.limits = limits;
    BrokerState::new(config).unwrap()
}

#[tokio::test]
async fn an_unauthenticated_request_is_refused_before_its_body_is_sent() {
    let h = harness().await;
    let (base, _server) = serve(h.state.clone()).await;
    let addr = base.trim_start_matches("http://");
    for (method, path) in [
        ("POST", "/v1/connections"),
        ("PUT", "/v1/connections/pg"),
        ("POST", "/v1/connections/pg/actions/freeze-user"),
        ("PUT", "/v1/connections/pg/sf/services/data/v64.0/sobjects/Account/001"),
        ("POST", "/v1/api-keys"),
    ] {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        // Not one byte of the announced MiB is written: the answer must come anyway.
        let answer = read_until(&mut tcp, "\"unauthorized\"").await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{method} {path}: {answer}");
    }
}

#[tokio::test]
async fn a_client_sending_its_head_slowly_is_disconnected_after_the_header_timeout() {
    let h = harness().await;
    let limits = Limits { header_read_timeout: Duration::from_millis(200), ..Limits::default() };
    let (base, _server) = serve(limited(&h, limits)).await;
    let addr = base.trim_start_matches("http://");
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = tokio::time::Instant::now();
    let mut rest = Vec::new();
    // The broker closes the connection (possibly after a 408); it never answers the request.
    let closed = tokio::time::timeout(PROMPT, tcp.read_to_end(&mut rest)).await.expect("closed within the bound");
    assert!(closed.is_err() || !String::from_utf8_lossy(&rest).contains("200 OK"), "{rest:?}");
    assert!(started.elapsed() >= Duration::from_millis(150), "closed too early: {:?}", started.elapsed());
    // A prompt client on a new connection is served; left idle, its keep-alive connection is
    // closed after the same timeout (an idle client cannot hold a connection slot either).
    let mut ok = TcpStream::connect(addr).await.unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(read_until(&mut ok, "\"ok\"}").await.starts_with("HTTP/1.1 200"));
    let mut rest = Vec::new();
    let idle = tokio::time::timeout(PROMPT, ok.read_to_end(&mut rest)).await.expect("idle connection closed");
    assert!(idle.is_err() || rest.is_empty(), "{rest:?}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let h = harness().await;
    let limits = Limits { max_connections: 2, ..Limits::default() };
    let (base, _server) = serve(limited(&h, limits)).await;
    let addr = base.trim_start_matches("http://");
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(request).await.unwrap();
        read_until(&mut tcp, "\"ok\"}").await;
        open.push(tcp);
    }
    // The third connects (the kernel's backlog) but is not served while two are open.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(request).await.unwrap();
    let mut byte = [0u8; 1];
    let waited = tokio::time::timeout(Duration::from_millis(300), third.read(&mut byte)).await;
    assert!(waited.is_err(), "served beyond the cap: {waited:?}");
    drop(open.pop());
    assert!(read_until(&mut third, "\"ok\"}").await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish_and_writes_its_audit_entry() {
    use std::sync::Arc;
    use tokio::sync::Notify;
    let h = harness().await;
    // An instance that holds its answer until the test releases it.
    let (arrived, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (a, r) = (arrived.clone(), release.clone());
    let upstream = axum::Router::new().fallback(move || {
        let (a, r) = (a.clone(), r.clone());
        async move {
            a.notify_one();
            r.notified().await;
            "done"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, upstream).await.unwrap() });
    let spec = forcelink_store::ConnectionSpec {
        method: Some(forcelink_store::Method::AccessToken),
        instance_url: Some(upstream_url),
        access_token: Some("00Dstatic!token".to_owned()),
        ..Default::default()
    };
    let id = forcelink_auth::ConnectionId::new("slow");
    h.store.put_connection(&id, &spec, forcelink_store::PutMode::Create).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(forcelink_broker::serve(listener, h.state.clone(), async move {
        let _ = stop_rx.await;
    }));
    let key = h.admin.clone();
    let request = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .get(format!("{base}/v1/connections/slow/sf/services/wait"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    });
    tokio::time::timeout(PROMPT, arrived.notified()).await.expect("the request reached the instance");
    stop_tx.send(()).unwrap();
    release.notify_one();
    let (status, body) = tokio::time::timeout(PROMPT, request).await.unwrap().unwrap();
    assert_eq!((status.as_u16(), body.as_str()), (200, "done"));
    tokio::time::timeout(PROMPT, server).await.expect("serve returns after shutdown").unwrap().unwrap();
    // The pending (batched) audit entry was written on the way out.
    let audit = h.store.audit(Some(&id), 10).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "proxy.request"), "{audit:?}");
}
