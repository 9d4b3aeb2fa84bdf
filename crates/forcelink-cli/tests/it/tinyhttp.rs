//! Just enough HTTP/1.1 for the process tests, on 127.0.0.1: a webhook receiver whose answer
//! the test switches, and a round-robin proxy that sends each request to the next broker
//! replica. Both handle one request per connection and answer with `connection: close`, so a
//! client opens a new connection for every request and the proxy picks a replica per request
//! (as a load balancer without sticky sessions would), not per connection.

#![allow(clippy::unwrap_used)] // test helpers: a failed step should fail the test at once

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head or body these servers read. 1 MiB.
const MAX_BYTES: usize = 1024 * 1024;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The request line and headers, with `connection: close` instead of any connection
    /// headers, then the body: what the proxy sends on.
    fn to_bytes_closing(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        for (k, v) in &self.headers {
            if !matches!(k.as_str(), "connection" | "keep-alive" | "proxy-connection") {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        out.push_str("connection: close\r\n\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Reads one request (bodies by `content-length`; the clients in these tests send no chunked
/// bodies). `None` when the peer closed before sending one.
pub async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    let mut seen = line.len();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).await.ok()?;
        seen += n;
        assert!(seen < MAX_BYTES, "a request head over {MAX_BYTES} bytes");
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if n == 0 || trimmed.is_empty() {
            break;
        }
        let (k, v) = trimmed.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let request = Request { method, target, headers, body: Vec::new() };
    assert!(request.header("transfer-encoding").is_none(), "chunked request bodies are not supported here");
    let length: usize = request.header("content-length").map_or(0, |v| v.parse().unwrap());
    assert!(length < MAX_BYTES, "a request body over {MAX_BYTES} bytes");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(Request { body, ..request })
}

/// A delivery as the receiver saw it, and what it answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: String,
    pub answered: u16,
}

/// A webhook receiver: records every request and answers with the status the test sets.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub url: String,
    pub origin: String,
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    /// Listens on a free loopback port, answering `status` until told otherwise.
    pub async fn start(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let receiver = Receiver {
            url: format!("{origin}/hooks/forcelink"),
            origin,
            received: Arc::default(),
            status: Arc::new(AtomicU16::new(status)),
        };
        let r = receiver.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let r = r.clone();
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut stream).await else { return };
                    let answered = r.status.load(Ordering::SeqCst);
                    r.received.lock().unwrap().push(Received {
                        headers: request.headers.into_iter().collect(),
                        body: String::from_utf8_lossy(&request.body).into_owned(),
                        answered,
                    });
                    let head = format!("HTTP/1.1 {answered} Test\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        receiver
    }

    /// Answers `status` from now on.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Which replica answered a request, as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Routed {
    pub backend: usize,
    pub method: String,
    pub target: String,
    pub status: u16,
}

/// A round-robin HTTP proxy on a free loopback port: request n goes to the n-th live backend
/// in turn. A backend marked down is skipped.
#[derive(Debug, Clone)]
pub struct RoundRobin {
    pub url: String,
    backends: Arc<Mutex<Vec<Option<SocketAddr>>>>,
    next: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<Routed>>>,
}

impl RoundRobin {
    /// Binds now (so the replicas can be told the proxy's URL as theirs), with no backend yet.
    pub async fn bind() -> (Self, TcpListener) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = RoundRobin {
            url: format!("http://{}", listener.local_addr().unwrap()),
            backends: Arc::default(),
            next: Arc::default(),
            log: Arc::default(),
        };
        (proxy, listener)
    }

    /// Starts forwarding to `backends`.
    pub fn serve(&self, listener: TcpListener, backends: Vec<SocketAddr>) {
        *self.backends.lock().unwrap() = backends.into_iter().map(Some).collect();
        let proxy = self.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(proxy.clone().forward(client));
            }
        });
    }

    /// Sends no more requests to backend `index` (its replica was killed).
    pub fn mark_down(&self, index: usize) {
        self.backends.lock().unwrap()[index] = None;
    }

    /// Every request forwarded so far.
    pub fn log(&self) -> Vec<Routed> {
        self.log.lock().unwrap().clone()
    }

    fn pick(&self) -> (usize, SocketAddr) {
        let backends = self.backends.lock().unwrap();
        for _ in 0..backends.len() {
            let i = self.next.fetch_add(1, Ordering::SeqCst) % backends.len();
            if let Some(addr) = backends[i] {
                return (i, addr);
            }
        }
        panic!("the proxy has no live backend");
    }

    async fn forward(self, mut client: TcpStream) {
        let Some(request) = read_request(&mut client).await else { return };
        let (backend, addr) = self.pick();
        let mut upstream =
            TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("replica {backend} at {addr}: {e}"));
        upstream.write_all(&request.to_bytes_closing()).await.unwrap();
        // The replica closes after its answer (the request said `connection: close`).
        let mut answer = Vec::new();
        upstream.read_to_end(&mut answer).await.unwrap();
        let status = std::str::from_utf8(&answer[..answer.len().min(12)])
            .ok()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        self.log.lock().unwrap().push(Routed { backend, method: request.method, target: request.target, status });
        let _ = client.write_all(&answer).await;
        let _ = client.shutdown().await;
    }
}
