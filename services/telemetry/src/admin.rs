//! A minimal HTTP server for `/healthz`, `/readyz` and `/metrics` on its own port (the
//! compactor's only endpoint, and the gateway's optional separate metrics port).

use crate::{metrics, Health};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::Registry;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Answers the probe and metrics routes; `None` for any other path.
pub fn probe_response(
    req: &Request<Incoming>,
    health: &Health,
    registry: &Registry,
) -> Option<Response<Full<Bytes>>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return None;
    }
    let response = match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match health.not_ready_reason() {
            None => text(StatusCode::OK, &health.ready_text()),
            Some(reason) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("{reason}\n")),
        },
        "/metrics" => Response::builder()
            .header(hyper::header::CONTENT_TYPE, metrics::CONTENT_TYPE)
            .body(Full::new(Bytes::from(metrics::encode(registry))))
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n")),
        _ => return None,
    };
    Some(response)
}

/// A plain-text response.
pub fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Serves the admin routes on `listener` until `cancel` fires. Connections are tracked by
/// `tracker` so shutdown can wait for them.
pub async fn serve(
    listener: TcpListener,
    health: Health,
    registry: Registry,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (stream, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    continue;
                }
            },
        };
        let health = health.clone();
        let registry = registry.clone();
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = probe_response(&req, &health, &registry)
                    .unwrap_or_else(|| text(StatusCode::NOT_FOUND, "not found\n"));
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = cancel.cancelled() => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
}

/// Binds the admin listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
