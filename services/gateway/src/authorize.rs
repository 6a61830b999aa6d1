//! Who may use a room, for a WebSocket upgrade and for the document API alike, and how a
//! refused request is answered: counted by reason, logged, with its HTTP status.

use crate::metrics::Metrics;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use yws_auth::{Authorizer, Grant, Operation};
use yws_core::RoomName;
use yws_telemetry::admin::text;

/// Checks the credentials in `head` for `room`; a refusal is counted and answered with its
/// status.
pub async fn authorize(
    authorizer: &Authorizer,
    metrics: &Metrics,
    room: &RoomName,
    head: &http::request::Parts,
) -> Result<Grant, Response<Full<Bytes>>> {
    authorize_operation(authorizer, metrics, Operation::Room(room.as_str()), head).await
}

/// Checks the credentials in `head` for `operation` (a room's, or a deployment-wide one such
/// as listing rooms, which needs `admin`); a refusal is counted and answered with its status.
pub async fn authorize_operation(
    authorizer: &Authorizer,
    metrics: &Metrics,
    operation: Operation<'_>,
    head: &http::request::Parts,
) -> Result<Grant, Response<Full<Bytes>>> {
    if !authorizer.enabled() {
        return Ok(Grant::anonymous());
    }
    authorizer
        .authorize_operation(operation, head)
        .await
        .map_err(|refusal| {
            metrics
                .auth_refusals
                .with_label_values(&[refusal.reason.as_str()])
                .inc();
            let label = match refusal.status.as_u16() {
                401 => "unauthorized",
                403 => "forbidden",
                _ => "auth_unavailable",
            };
            refuse(metrics, refusal.status, label, &refusal.message)
        })
}

/// The answer to a refused request: counted in `yws_gateway_upgrades_rejected_total` by
/// `reason` (a bounded label), logged with its `detail`, which is also the body.
pub fn refuse(
    metrics: &Metrics,
    status: StatusCode,
    reason: &'static str,
    detail: &str,
) -> Response<Full<Bytes>> {
    metrics.upgrades_rejected.with_label_values(&[reason]).inc();
    tracing::info!(status = status.as_u16(), reason, detail, "upgrade refused");
    text(status, &format!("{detail}\n"))
}
