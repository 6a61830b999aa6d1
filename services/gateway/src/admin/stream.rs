//! `GET /admin/api/room/events?name=R`: a room live, as Server-Sent Events. Once a second the
//! stream sends `event: room` with the room's snapshot ([`views::snapshot`]) and its edit
//! rate; when the room is deleted it sends `event: deleted` and ends.
//!
//! The stream is computed as it is read — no task, no queue: a client that reads slowly
//! only delays its own next snapshot. It holds a lease on the room (so the room stays loaded
//! here and its document and awareness stay current) and ends after [`MAX_STREAM`] (the
//! page reconnects), when the room goes away, or when the node shuts down (the
//! connections' cancellation token, cancelled before the server waits for HTTP requests).

use super::views::{self, clock};
use super::{error, Body, RoomTarget};
use crate::state::Gateway;
use bytes::Bytes;
use futures_util::stream;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use yws_core::RoomLease;

/// How often a snapshot is sent (the console polls nothing faster).
pub const PERIOD: Duration = Duration::from_secs(1);
/// How long one stream lasts; the page opens a new one.
pub const MAX_STREAM: Duration = Duration::from_secs(300);

struct Live {
    gw: Arc<Gateway>,
    target: RoomTarget,
    lease: Option<RoomLease>,
    tick: Interval,
    cancel: CancellationToken,
    deadline: Instant,
    last: Option<(Instant, u64)>,
}

impl Live {
    /// The next event, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Bytes> {
        let lease = self.lease.take()?;
        tokio::select! {
            _ = self.cancel.cancelled() => return None,
            _ = tokio::time::sleep_until(self.deadline) => return None,
            _ = self.tick.tick() => {}
        }
        if !lease.is_current() {
            let name = serde_json::json!({ "name": lease.room().name().as_str() });
            return Some(event("deleted", &name));
        }
        let room = lease.room();
        let mut snapshot = views::snapshot(&self.gw, &self.target, room).await;
        let now = (Instant::now(), clock(room));
        let rate = self.last.map(|(at, before)| {
            let secs = now.0.saturating_duration_since(at).as_secs_f64().max(0.001);
            now.1.saturating_sub(before) as f64 / secs
        });
        self.last = Some(now);
        snapshot["clock_per_s"] = serde_json::json!(rate);
        self.lease = Some(lease);
        Some(event("room", &snapshot))
    }
}

/// One Server-Sent Event.
fn event(name: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// Answers with the stream, or with why there is none.
pub async fn events(gw: &Arc<Gateway>, target: RoomTarget) -> Response<Body> {
    let lease = match views::open(gw, &target.room).await {
        Ok(lease) => lease,
        Err((status, e)) => return error(status, "/admin/api/room/events", &e),
    };
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let live = Live {
        gw: gw.clone(),
        target,
        lease: Some(lease),
        tick,
        cancel: gw.connections.cancel.clone(),
        deadline: Instant::now() + MAX_STREAM,
        last: None,
    };
    let frames = stream::unfold(live, |mut live| async move {
        let bytes = live.next().await?;
        Some((Ok::<_, Infallible>(Frame::data(bytes)), live))
    });
    let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
