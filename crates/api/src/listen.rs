//! Serving the router over HTTP/1.1 with hyper directly rather than `axum::serve`, for two
//! things axum's server does not offer: the connection's address in every request (for the
//! per-address limit on failed credentials) and hyper's parser limits raised above the API's own
//! ([`crate::edge`]), so an over-long URL or header section is answered by the API in the JSON
//! error shape. What exceeds hyper's hard ceilings (a request target of 64 KiB or more, a
//! header section over [`MAX_HEAD_BYTES`], more than [`MAX_HEAD_FIELDS`] fields, malformed
//! HTTP) hyper answers itself before any service runs; [`crate::head_errors`] rewrites those
//! bodiless answers into the JSON shape on the way out.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::head_errors::JsonHeadErrors;

/// hyper's limit on a request head (request line and headers), well above the API's own.
pub const MAX_HEAD_BYTES: usize = 1024 * 1024;
/// hyper's limit on the number of header fields, well above the API's own.
pub const MAX_HEAD_FIELDS: usize = 1000;
/// How long a client may take to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and waits for
/// the requests in flight to finish (idle keep-alive connections are closed at once).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        );
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_HEAD_BYTES)
            .max_headers(MAX_HEAD_FIELDS);
        let connection = builder.serve_connection(
            TokioIo::new(JsonHeadErrors::new(stream)),
            TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// An `accept` error: a client that went away is nothing; running out of file descriptors or
/// memory is logged and retried after a pause, so the loop does not spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(error = %e, "accepting a connection failed; retrying");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
