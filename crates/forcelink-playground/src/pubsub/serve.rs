//! The Pub/Sub port's accept loop: HTTP/2 only, in clear (h2c) or inside TLS with ALPN `h2`.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::PubSubService;
use super::proto::pub_sub_server::PubSubServer;

/// Serves the Pub/Sub API on `listener` until `shutdown` changes or its sender is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    service: PubSubService,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let router = tonic::service::Routes::new(PubSubServer::new(service)).prepare().into_axum_router();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let (router, tls, shutdown) = (router.clone(), tls.clone(), shutdown.clone());
                tokio::spawn(async move {
                    match tls {
                        None => connection(stream, router, shutdown).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                connection(stream, router, shutdown).await;
                            }
                        }
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

async fn connection<IO>(io: IO, router: axum::Router, mut shutdown: watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(router));
    tokio::select! {
        _ = conn => {}
        _ = shutdown.changed() => {}
    }
}
