//! A one-shot HTTP listener on a loopback port that receives the authorization redirect, for
//! CLIs (the redirect URI `http://127.0.0.1:PORT/callback` must be on the connected app).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use crate::error::AuthError;
use crate::flows::web_server::{AuthorizationRequest, code_from_pairs};
use crate::secret::AuthorizationCode;

/// Largest request head read from the browser.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// A bound loopback listener waiting for one authorization redirect.
#[derive(Debug)]
pub struct LoopbackRedirect {
    listener: TcpListener,
    redirect_uri: Url,
}

impl LoopbackRedirect {
    /// Binds `addr` (use port 0 for any free port; Salesforce needs the exact URI registered, so
    /// real apps use a fixed port such as 1717) and serves `path`.
    pub async fn bind(addr: SocketAddr, path: &str) -> Result<Self, AuthError> {
        if !addr.ip().is_loopback() {
            return Err(AuthError::Config(format!("the redirect listener must bind a loopback address, not {addr}")));
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| AuthError::Config(format!("cannot listen on {addr} for the OAuth redirect: {e}")))?;
        let local = listener.local_addr().map_err(|e| AuthError::Internal(e.to_string()))?;
        let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
        let redirect_uri = Url::parse(&format!("http://{local}{path}"))
            .map_err(|e| AuthError::Config(format!("redirect URI: {e}")))?;
        Ok(Self { listener, redirect_uri })
    }

    /// The `http://127.0.0.1:PORT/path` URI to send as `redirect_uri` (with the bound port).
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// Waits for the browser's redirect that belongs to `request` and answers it with a short
    /// page. Requests to other paths get 404 and are ignored; a wrong `state` or an `error`
    /// ends the wait with that error. Wrap in a timeout to bound the wait.
    pub async fn wait_for_code(self, request: &AuthorizationRequest) -> Result<AuthorizationCode, AuthError> {
        loop {
            let (mut stream, _) = self
                .listener
                .accept()
                .await
                .map_err(|e| AuthError::Internal(format!("accepting the redirect: {e}")))?;
            let Some(target) = read_request_target(&mut stream).await else {
                respond(&mut stream, "400 Bad Request", "Bad request.").await;
                continue;
            };
            let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
            if path != self.redirect_uri.path() {
                respond(&mut stream, "404 Not Found", "Not found.").await;
                continue;
            }
            let pairs = form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()));
            let result = code_from_pairs(&request.state, pairs);
            match &result {
                Ok(_) => respond(&mut stream, "200 OK", "Signed in. You can close this window.").await,
                Err(e) => respond(&mut stream, "400 Bad Request", &format!("Sign-in failed: {e}")).await,
            }
            return result;
        }
    }
}

async fn read_request_target(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST_HEAD {
            return None;
        }
    }
    let head = std::str::from_utf8(&buf).ok()?;
    let mut parts = head.lines().next()?.split(' ');
    (parts.next()? == "GET").then_some(())?;
    parts.next().map(str::to_owned)
}

async fn respond(stream: &mut TcpStream, status: &str, message: &str) {
    let escaped = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>forcelink</title></head><body><p>{escaped}</p></body></html>"
    );
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\
         Cache-Control: no-store\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}
