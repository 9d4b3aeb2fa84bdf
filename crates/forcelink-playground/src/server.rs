//! Listening: one accept loop per host, each connection served by hyper (HTTP/1.1, optionally
//! inside TLS). Owning the loop (rather than `axum::serve`) lets the "dropped connection" fault
//! close a socket without answering, and lets `--tls` share the same code.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Uri};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

use crate::faults::{self, ConnectionKill};
use crate::state::Shared;

/// Serves `router` on `listener` until `shutdown` changes or its sender is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    pg: Shared,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let (router, pg, tls, shutdown) = (router.clone(), pg.clone(), tls.clone(), shutdown.clone());
                tokio::spawn(async move {
                    match tls {
                        None => connection(stream, router, pg, shutdown).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                connection(stream, router, pg, shutdown).await;
                            }
                        }
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

async fn connection<IO>(io: IO, router: Router, pg: Shared, mut shutdown: watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let kill_for_requests = kill.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (router, pg, kill) = (router.clone(), pg.clone(), kill_for_requests.clone());
        async move {
            let mut req = req.map(Body::new);
            normalize_path(&mut req);
            req.extensions_mut().insert(ConnectionKill(kill));
            let action = faults::take(&mut pg.rt().faults, req.uri().path());
            let response = faults::apply(action, req, |req| async move {
                match router.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                }
            })
            .await;
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(io), service);
    tokio::select! {
        _ = conn => {}
        _ = kill.notified() => {}
        _ = shutdown.changed() => {}
    }
}

/// Clients send paths with or without a trailing slash; route both the same way.
/// (`/services/data/` is routed as is: it is the documented spelling of the versions URI.)
fn normalize_path(req: &mut Request<Body>) {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') && path != "/services/data/" {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let pq = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(p) = pq.parse() {
            parts.path_and_query = Some(p);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
}
