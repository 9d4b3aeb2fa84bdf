//! PostgreSQL over TLS: each `sslmode` against the local server, and against stand-in servers on
//! 127.0.0.1 that answer PostgreSQL's TLS request themselves (one without TLS, one with a
//! certificate from a CA made here), so the certificate checks are tried for real. Passwords in
//! store URLs never appear in errors.

use std::sync::Arc;
use std::time::Duration;

use forcelink_auth::ManualClock;
use forcelink_store::pgconnect::{PgTarget, SslMode};
use forcelink_store::{KeySource, MasterKey, OpenError, StoreLocation, open_store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::backends::{PgSchema, postgres_url};

/// How long a test waits for the stand-in server to report. Generous: it is a bound, not a delay.
const REPORT_WAIT: Duration = Duration::from_secs(20);

const PASSWORD: &str = "pw-tls-secret-0470";

/// What the stand-in server says to PostgreSQL's TLS request.
enum Answer {
    /// `N`: no TLS here.
    NoTls,
    /// `S`, then a TLS handshake with this configuration.
    Tls(Arc<rustls::ServerConfig>),
}

/// What the stand-in server saw on a connection.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// After `N`, the client went on without TLS: a startup message in the clear.
    PlainStartup,
    /// After `S`, the handshake completed.
    Handshake,
    /// After `S`, the handshake failed (the client refused the certificate).
    HandshakeFailed,
    /// The client closed the connection.
    Closed,
}

/// A stand-in server on 127.0.0.1; reports what it saw on each connection.
async fn stand_in(answer: Answer) -> (u16, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (tx, answer) = (tx.clone(), answer.clone());
            tokio::spawn(async move {
                let mut request = [0u8; 8];
                if stream.read_exact(&mut request).await.is_err() {
                    let _ = tx.send(Seen::Closed);
                    return;
                }
                // Length 8, then the TLS request code 80877103 (PostgreSQL protocol, SSLRequest).
                assert_eq!(request, [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f], "a TLS request first");
                let seen = match &*answer {
                    Answer::NoTls => {
                        stream.write_all(b"N").await.unwrap();
                        let mut startup = [0u8; 8];
                        match stream.read_exact(&mut startup).await {
                            // Protocol 3.0 after the length.
                            Ok(_) if startup[4..] == [0, 3, 0, 0] => Seen::PlainStartup,
                            _ => Seen::Closed,
                        }
                    }
                    Answer::Tls(config) => {
                        stream.write_all(b"S").await.unwrap();
                        match tokio_rustls::TlsAcceptor::from(config.clone()).accept(stream).await {
                            Ok(_) => Seen::Handshake,
                            Err(_) => Seen::HandshakeFailed,
                        }
                    }
                };
                let _ = tx.send(seen);
            });
        }
    });
    (port, rx)
}

async fn next_seen(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(REPORT_WAIT, rx.recv()).await.expect("the stand-in server reports").unwrap()
}

/// A CA (its PEM) and a server configuration whose certificate, signed by it, names only
/// `localhost`.
fn tls_server() -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "forcelink test CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    (ca_cert.pem(), Arc::new(config))
}

fn assert_no_password(err: &OpenError) {
    let (shown, debug) = (err.to_string(), format!("{err:?}"));
    assert!(!shown.contains(PASSWORD) && !debug.contains(PASSWORD), "{shown} / {debug}");
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, OpenError> {
    PgTarget::parse(url)?.connect().await
}

#[tokio::test]
async fn tls_modes_against_a_server_without_tls() {
    let (port, mut seen) = stand_in(Answer::NoTls).await;
    for mode in ["require", "verify-ca", "verify-full"] {
        let url = format!("postgres://forcelink:{PASSWORD}@127.0.0.1:{port}/app?sslmode={mode}");
        let err = connect(&url).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("the server does not offer TLS"), "{mode}: {text}");
        assert!(text.contains(&format!("sslmode={mode} requires it")), "{mode}: {text}");
        assert!(text.contains("sslmode=prefer") && text.contains("ssl = on"), "says what to set: {text}");
        assert!(text.contains("forcelink:redacted@127.0.0.1"), "{text}");
        assert_no_password(&err);
        assert_eq!(next_seen(&mut seen).await, Seen::Closed, "{mode}: nothing sent in the clear");
    }
    // Through open_store too: the same error, and nothing written anywhere.
    let location = StoreLocation::parse(&format!("postgres://u:{PASSWORD}@127.0.0.1:{port}/app?sslmode=require"));
    let err = open_store(&location, &KeySource::Base64(MasterKey::generate().to_base64()), Arc::new(clock()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not offer TLS"), "{err}");
    assert_no_password(&err);
    assert_eq!(next_seen(&mut seen).await, Seen::Closed);

    // prefer (and no sslmode at all) goes on in the clear; disable never asks.
    for query in ["?sslmode=prefer", ""] {
        let _ = connect(&format!("postgres://u@127.0.0.1:{port}/app{query}")).await;
        assert_eq!(next_seen(&mut seen).await, Seen::PlainStartup, "{query:?}");
    }
}

#[tokio::test]
async fn certificate_checks_follow_the_mode() {
    let (ca_pem, config) = tls_server();
    let (other_ca_pem, _) = tls_server();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    std::fs::write(&other_ca, other_ca_pem).unwrap();
    let (port, mut seen) = stand_in(Answer::Tls(config)).await;
    let root = |path: &std::path::Path| format!("&sslrootcert={}", path.display());

    // (host, sslmode and root, whether the client accepts the certificate)
    let cases = [
        ("localhost", format!("verify-full{}", root(&ca)), true),
        ("127.0.0.1", format!("verify-full{}", root(&ca)), false), // the certificate names localhost only
        ("127.0.0.1", format!("verify-ca{}", root(&ca)), true),    // the name is not checked
        ("localhost", format!("verify-ca{}", root(&other_ca)), false),
        ("localhost", "verify-full".to_owned(), false), // public roots: this CA is not one
        ("127.0.0.1", "require".to_owned(), true),      // no check, as libpq
        ("127.0.0.1", format!("require{}", root(&other_ca)), false), // with a CA file: as verify-ca
        ("127.0.0.1", "prefer".to_owned(), true),
    ];
    for (host, mode, accepted) in cases {
        // hostaddr: the TLS name is `host`, the address always 127.0.0.1 (not ::1 first).
        let url = format!("postgres://forcelink:{PASSWORD}@{host}:{port}/app?hostaddr=127.0.0.1&sslmode={mode}");
        let err = connect(&url).await.expect_err("the stand-in server never completes a login");
        assert_no_password(&err);
        let text = err.to_string();
        if accepted {
            assert_eq!(next_seen(&mut seen).await, Seen::Handshake, "{host} {mode}: {text}");
            assert!(!text.contains("certificate"), "{host} {mode}: {text}");
        } else {
            // A refused certificate may leave the server a failed handshake or a closed socket.
            let s = next_seen(&mut seen).await;
            assert!(matches!(s, Seen::HandshakeFailed | Seen::Closed), "{host} {mode}: {s:?}");
            assert!(text.contains("certificate") && text.contains("sslrootcert"), "{host} {mode}: {text}");
        }
    }

    let missing = dir.path().join("missing.pem");
    let err = connect(&format!(
        "postgres://u:{PASSWORD}@localhost:{port}/app?hostaddr=127.0.0.1&sslmode=verify-full{}",
        root(&missing)
    ))
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("missing.pem") && text.contains("PEM file"), "{text}");
    assert_no_password(&err);
}

fn clock() -> ManualClock {
    ManualClock::starting_now()
}

/// `url` with `sslmode=mode` added.
fn with_mode(url: &str, mode: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode={mode}")
}

/// Whether the session of `client` runs over TLS, as the server sees it.
async fn session_uses_tls(client: &tokio_postgres::Client) -> bool {
    client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn the_local_server_in_every_mode_it_supports() {
    let base = postgres_url();
    let plain = connect(&with_mode(&base, "disable")).await.unwrap();
    assert!(!session_uses_tls(&plain).await, "disable: no TLS");
    let server_has_tls = plain.query_one("SHOW ssl", &[]).await.unwrap().get::<_, String>(0) == "on";
    let prefer = connect(&with_mode(&base, "prefer")).await.unwrap();
    assert_eq!(session_uses_tls(&prefer).await, server_has_tls, "prefer: TLS when offered");
    let default = connect(&base).await.unwrap();
    assert_eq!(session_uses_tls(&default).await, server_has_tls, "no sslmode means prefer");
    match connect(&with_mode(&base, "require")).await {
        Ok(client) => {
            assert!(server_has_tls);
            assert!(session_uses_tls(&client).await, "require: TLS");
        }
        Err(e) => {
            assert!(!server_has_tls, "{e}");
            assert!(e.to_string().contains("does not offer TLS"), "{e}");
        }
    }
    assert_eq!(PgTarget::parse(&base).unwrap().ssl_mode, SslMode::Prefer);

    // A whole store over each of disable and prefer.
    let schema = PgSchema::new().await;
    let key = KeySource::Base64(MasterKey::generate().to_base64());
    for mode in ["disable", "prefer"] {
        let location = StoreLocation::parse(&with_mode(&schema.url, mode));
        let store = open_store(&location, &key, Arc::new(clock())).await.unwrap();
        assert!(store.connections().await.unwrap().is_empty(), "{mode}");
    }
}

#[tokio::test]
async fn a_password_in_the_url_stays_out_of_errors_and_output() {
    // A port nobody listens on, and a database that does not exist on the local server.
    let unreachable = format!("postgres://forcelink:{PASSWORD}@127.0.0.1:1/nowhere?sslmode=disable");
    let base = url::Url::parse(&postgres_url()).unwrap();
    let host = base.host_str().unwrap();
    let port = base.port().unwrap_or(5432);
    let user = if base.username().is_empty() { "postgres" } else { base.username() };
    let no_db = format!("postgres://{user}:{PASSWORD}@{host}:{port}/no_such_db_0471?sslmode=prefer");
    let in_query = format!("postgres://{user}@{host}:{port}/no_such_db_0471?password={PASSWORD}");
    for url in [unreachable, no_db, in_query] {
        let location = StoreLocation::parse(&url);
        let shown = format!("{location} {location:?}");
        assert!(!shown.contains(PASSWORD) && shown.contains("redacted"), "{shown}");
        let err = open_store(&location, &KeySource::Base64(MasterKey::generate().to_base64()), Arc::new(clock()))
            .await
            .unwrap_err();
        assert!(matches!(err, OpenError::Postgres(_)), "{err:?}");
        assert_no_password(&err);
    }
}
