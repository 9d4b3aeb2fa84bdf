//! The Pub/Sub client over TLS: a playground under `--tls` (its own CA, ALPN `h2` on the
//! Pub/Sub port) reached from a connection whose instance URL is https, and the refusals —
//! an endpoint whose certificate is not trusted, an endpoint speaking h2c, an endpoint the
//! URL policy does not allow.

use std::sync::Arc;
use std::time::Duration;

use forcelink_auth::flows::client_credentials::ClientCredentials;
use forcelink_auth::secret::ClientSecret;
use forcelink_auth::{
    AppCredentials, AuthError, CacheConfig, ConnectionId, Endpoints, MemoryStore, SystemClock, TokenCache,
    TokenProvider, Transport, UrlPolicy,
};
use forcelink_client::Client;
use forcelink_client::pubsub::{PubSubClient, PubSubClientBuilder, PubSubError, ReplayFrom};
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::AsyncReadExt;
use url::Url;

use forcelink_test_support::spawn_playground_with;

use crate::common::{DEFAULT_CLIENT, DEFAULT_SECRET, PlaygroundHandle, spawn_playground};

const TOPIC: &str = "/data/AccountChangeEvent";

/// The playground's CA certificate (PEM).
fn ca_pem(pg: &PlaygroundHandle) -> Vec<u8> {
    std::fs::read(pg.info.ca_path.as_ref().expect("a TLS playground writes its CA")).unwrap()
}

/// Exactly the playground's origins — its instance and its Pub/Sub endpoint over https — as
/// the CLI would allow them; no blanket loopback allowance.
fn tls_policy(pg: &PlaygroundHandle) -> UrlPolicy {
    UrlPolicy::new()
        .allow_origin(pg.instance_url())
        .unwrap()
        .allow_origin(&format!("https://{}", pg.info.pubsub_endpoint))
        .unwrap()
}

/// An HTTP client (token requests, REST) that trusts the playground's CA.
fn https_client(pg: &PlaygroundHandle) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem(pg)).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Client credentials against the https instance: the tokens' instance URL is https.
fn tls_admin_provider(pg: &PlaygroundHandle) -> Arc<TokenCache> {
    let transport = Transport::new(https_client(pg), Arc::new(SystemClock), tls_policy(pg));
    let endpoints = Endpoints::salesforce(&Url::parse(pg.instance_url()).unwrap());
    let app = AppCredentials::new(DEFAULT_CLIENT, Some(ClientSecret::new(DEFAULT_SECRET)));
    let source = ClientCredentials::new(transport, endpoints, app).unwrap();
    Arc::new(TokenCache::new(
        ConnectionId::new("tls"),
        Arc::new(source),
        Arc::new(MemoryStore::new(Arc::new(SystemClock))),
        Arc::new(SystemClock),
        CacheConfig::default(),
    ))
}

fn builder(provider: Arc<dyn TokenProvider>, policy: UrlPolicy, endpoint: &str) -> PubSubClientBuilder {
    PubSubClient::builder(provider)
        .url_policy(policy)
        .endpoint(endpoint)
        .resubscribe_backoff(Duration::from_millis(1))
        .max_resubscribes(0)
}

/// The transport message of a failed call, whether it came straight or as the last failure
/// before the client gave up resubscribing.
fn transport_message(e: &PubSubError) -> Option<&str> {
    match e {
        PubSubError::Transport { message, .. } => Some(message),
        PubSubError::ResubscribeLimit { last, .. } => transport_message(last),
        _ => None,
    }
}

#[tokio::test]
async fn change_events_arrive_decoded_over_tls_when_the_instance_is_https() {
    let pg = spawn_playground_with(|c| c.tls = true).await;
    assert!(pg.instance_url().starts_with("https://"));
    let provider = tls_admin_provider(&pg);
    assert_eq!(provider.token().await.unwrap().instance_url.scheme(), "https");
    let rest =
        Client::builder(provider.clone()).url_policy(tls_policy(&pg)).http_client(https_client(&pg)).build().unwrap();
    let ps = builder(provider.clone(), tls_policy(&pg), &pg.info.pubsub_endpoint)
        .add_root_certificate_pem(ca_pem(&pg))
        .build()
        .unwrap();

    let info = ps.get_topic(TOPIC).await.unwrap();
    assert!(info.can_subscribe);
    // From EARLIEST: the playground is new, so the first event is the write below.
    let mut sub = ps.subscribe(TOPIC, ReplayFrom::Earliest);
    let id = rest
        .sobject("Account")
        .unwrap()
        .create(&json!({"Name": "Over TLS", "BillingCity": "Nantes"}))
        .send()
        .await
        .unwrap()
        .id
        .to_string();
    let event = tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("an event within 20 s")
        .expect("the stream is open")
        .expect("no error");
    let header = event.header.expect("a change event has a header");
    assert_eq!(header.entity_name, "Account");
    assert_eq!(header.change_type, "CREATE");
    assert_eq!(header.record_ids, vec![id]);
    assert_eq!(event.payload["Name"], "Over TLS");
    assert_eq!(event.payload["BillingAddress"]["City"], "Nantes");
    assert_eq!(sub.stats().subscribes, 1, "one subscribe, no retry");
    let stats = pubsub_stats(&pg).await;
    assert_eq!(stats["subscribe_calls"], 1, "{stats}");
    assert!(stats["events_delivered"].as_u64().unwrap_or(0) >= 1, "{stats}");
    pg.shutdown().await;
}

/// The playground's Pub/Sub counters, over https with its CA.
async fn pubsub_stats(pg: &PlaygroundHandle) -> serde_json::Value {
    https_client(pg)
        .get(format!("{}/pubsub/stats", pg.info.control_url))
        .bearer_auth(&pg.info.control_key)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_endpoint_whose_certificate_is_not_trusted_is_a_transport_error_naming_tls() {
    let pg = spawn_playground_with(|c| c.tls = true).await;
    let provider = tls_admin_provider(&pg);
    // No add_root_certificate_pem: only the public roots, which never signed the playground's CA.
    let ps = builder(provider.clone(), tls_policy(&pg), &pg.info.pubsub_endpoint).build().unwrap();
    let err = ps.get_topic(TOPIC).await.unwrap_err();
    let message = transport_message(&err).unwrap_or_else(|| panic!("a transport error, got {err:?}"));
    // rustls's verdict, e.g. "invalid peer certificate: UnknownIssuer".
    assert!(message.contains("invalid peer certificate"), "names the TLS failure: {message}");
    assert!(err.to_string().contains(&pg.info.pubsub_endpoint), "names the endpoint: {err}");

    let mut sub = ps.subscribe(TOPIC, ReplayFrom::Latest);
    let err = tokio::time::timeout(Duration::from_secs(20), sub.next()).await.unwrap().unwrap().unwrap_err();
    let message = transport_message(&err).unwrap_or_else(|| panic!("a transport error, got {err:?}"));
    assert!(message.contains("invalid peer certificate"), "names the TLS failure: {message}");

    let stats = pubsub_stats(&pg).await;
    assert_eq!(stats["subscribe_calls"], 0, "no call reached the service: {stats}");
    pg.shutdown().await;
}

#[tokio::test]
async fn a_subscription_reports_an_untrusted_certificate_at_once_instead_of_resubscribing() {
    let pg = spawn_playground_with(|c| c.tls = true).await;
    let provider = tls_admin_provider(&pg);
    // The default resubscription settings (10 tries, backoff from 1 s): a certificate that is not
    // trusted must not wait through them.
    let ps =
        PubSubClient::builder(provider).url_policy(tls_policy(&pg)).endpoint(&pg.info.pubsub_endpoint).build().unwrap();
    let mut sub = ps.subscribe(TOPIC, ReplayFrom::Latest);
    let err = tokio::time::timeout(Duration::from_secs(20), sub.next()).await.unwrap().unwrap().unwrap_err();
    match &err {
        PubSubError::Transport { message, .. } => assert!(message.contains("not trusted"), "{message}"),
        other => panic!("the TLS failure itself, not after resubscribing: {other:?}"),
    }
    pg.shutdown().await;
}

/// A TCP server on loopback that records the first bytes of each connection it accepts, in
/// the order the connections arrived, then hangs up on it.
struct Recorder {
    addr: String,
    connections: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    _task: tokio::task::JoinHandle<()>,
}

async fn recorder() -> Recorder {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, connections) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        // One connection at a time, in arrival order (the kernel queues the others).
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut seen = vec![0u8; 64 * 1024];
            let mut n = 0;
            // A TLS record header is 5 bytes; an h2c preface 24. Read at least that much.
            while n < 24 {
                match socket.read(&mut seen[n..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => n += k,
                }
            }
            seen.truncate(n);
            if tx.send(seen).is_err() {
                return;
            }
        }
    });
    Recorder { addr, connections, _task: task }
}

impl Recorder {
    /// The next connection's first bytes.
    async fn next(&mut self) -> Vec<u8> {
        tokio::time::timeout(Duration::from_secs(20), self.connections.recv())
            .await
            .expect("a connection within 20 s")
            .expect("the recorder runs")
    }

    /// Connects itself with a marker: when the marker is the first connection recorded, nobody
    /// connected before (any earlier connect was queued by the kernel before this one).
    async fn assert_nobody_connected(&mut self) {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        s.write_all(b"marker: nobody before me..").await.unwrap();
        let first = self.next().await;
        assert!(first.starts_with(b"marker"), "something connected before the marker: {first:02x?}");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn an_https_connection_never_speaks_h2c_to_its_endpoint() {
    let pg = spawn_playground_with(|c| c.tls = true).await;
    let provider = tls_admin_provider(&pg);
    let token = provider.token().await.unwrap().access_token;
    let mut rec = recorder().await;
    // The policy even allows that endpoint in clear: an https connection still never uses it so.
    let policy = tls_policy(&pg)
        .allow_origin(&format!("http://{}", rec.addr))
        .unwrap()
        .allow_origin(&format!("https://{}", rec.addr))
        .unwrap();
    let ps = builder(provider.clone(), policy, &rec.addr).add_root_certificate_pem(ca_pem(&pg)).build().unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), ps.get_topic(TOPIC)).await.unwrap().unwrap_err();
    assert!(transport_message(&err).is_some(), "a transport error, got {err:?}");
    let bytes = rec.next().await;
    // 0x16: a TLS handshake record (the ClientHello); h2c would start "PRI * HTTP/2.0".
    assert_eq!(bytes.first(), Some(&0x16), "a TLS handshake first: {bytes:02x?}");
    assert!(!bytes.starts_with(b"PRI * HTTP/2.0"), "no h2c preface");
    assert!(!contains(&bytes, token.secret().as_bytes()), "the token never crosses in clear");
    assert!(!contains(&bytes, b"accesstoken"), "no auth metadata in clear");

    // Against a real h2c service (a plain playground's Pub/Sub port) the call fails the same
    // way, and the service never saw a request.
    let plain = spawn_playground().await;
    let policy = tls_policy(&pg)
        .allow_origin(&format!("https://{}", plain.info.pubsub_endpoint))
        .unwrap()
        .allow_origin(&format!("http://{}", plain.info.pubsub_endpoint))
        .unwrap();
    let ps = builder(provider.clone(), policy, &plain.info.pubsub_endpoint)
        .add_root_certificate_pem(ca_pem(&pg))
        .build()
        .unwrap();
    let mut sub = ps.subscribe(TOPIC, ReplayFrom::Latest);
    let err = tokio::time::timeout(Duration::from_secs(20), sub.next()).await.unwrap().unwrap().unwrap_err();
    assert!(transport_message(&err).is_some(), "a transport error, got {err:?}");
    let stats: serde_json::Value =
        forcelink_test_support::get_json(&format!("{}/pubsub/stats", plain.info.control_url), &plain.info.control_key)
            .await;
    assert_eq!(stats["subscribe_calls"], 0, "the h2c service saw no subscribe: {stats}");
    plain.shutdown().await;
    pg.shutdown().await;
}

#[tokio::test]
async fn an_https_connection_sends_no_token_to_an_endpoint_the_policy_does_not_allow() {
    let pg = spawn_playground_with(|c| c.tls = true).await;
    let provider = tls_admin_provider(&pg);
    let mut rec = recorder().await;
    // The instance is allowed; the endpoint (another loopback port) is not.
    let ps =
        builder(provider.clone(), tls_policy(&pg), &rec.addr).add_root_certificate_pem(ca_pem(&pg)).build().unwrap();
    let err = ps.get_topic(TOPIC).await.unwrap_err();
    match &err {
        PubSubError::Auth(AuthError::InsecureUrl { what, url, .. }) => {
            assert_eq!(what, "Pub/Sub endpoint");
            assert!(url.contains(&rec.addr), "{url}");
        }
        other => panic!("expected InsecureUrl, got {other:?}"),
    }
    let mut sub = ps.subscribe(TOPIC, ReplayFrom::Latest);
    assert!(matches!(sub.next().await, Some(Err(PubSubError::Auth(AuthError::InsecureUrl { .. })))));
    // Refused before connecting: not even a TLS handshake was attempted.
    rec.assert_nobody_connected().await;
    pg.shutdown().await;
}
