//! The WebSocket upgrade: request checks, room name, capacity, room load — everything that
//! can refuse a client happens here, *before* the 101 response.

use crate::authorize::{authorize, refuse};
use crate::per_ip::IpSlot;
use crate::session::{self, conn_event, End, Session};
use crate::state::{Connections, Gateway};
use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;
use yws_core::{Access, LeaseError, NameError, PeerControl, RoomName};

/// Whether `req` asks for a WebSocket upgrade.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    header_has_token(headers, UPGRADE, "websocket")
}

fn header_has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// The room named by `path`: strip the configured prefix and the leading `/`, percent-decode,
/// validate. `None` when the path is outside the prefix.
pub fn room_from_path(
    path: &str,
    prefix: &str,
    max_bytes: usize,
) -> Option<Result<RoomName, NameError>> {
    let rest = path.strip_prefix(prefix)?;
    let rest = rest.strip_prefix('/')?;
    let decoded = match percent_decode_str(rest).decode_utf8() {
        Ok(name) => name,
        Err(_) => return Some(Err(NameError::NotUtf8)),
    };
    Some(RoomName::new(&decoded, max_bytes))
}

/// Handles an upgrade request end to end: answers 101 and spawns the session, or refuses.
pub async fn handle(gw: &Gateway, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let settings = &gw.server;
    let room = match room_from_path(
        req.uri().path(),
        &settings.path_prefix,
        settings.max_room_name_bytes,
    ) {
        None => {
            return refuse(
                &gw.metrics,
                StatusCode::NOT_FOUND,
                "not_found",
                "no room at this path",
            )
        }
        Some(Err(e)) => {
            return refuse(
                &gw.metrics,
                StatusCode::BAD_REQUEST,
                "bad_room_name",
                &e.to_string(),
            )
        }
        Some(Ok(room)) => room,
    };
    if req.method() != http::Method::GET || !header_has_token(req.headers(), CONNECTION, "upgrade")
    {
        return refuse(
            &gw.metrics,
            StatusCode::BAD_REQUEST,
            "bad_request",
            "not a WebSocket upgrade request",
        );
    }
    if req
        .headers()
        .get(SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        let mut response = refuse(
            &gw.metrics,
            StatusCode::UPGRADE_REQUIRED,
            "bad_request",
            "WebSocket version 13 required",
        );
        response
            .headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return response;
    }
    let Some(key) = req
        .headers()
        .get(SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()))
    else {
        return refuse(
            &gw.metrics,
            StatusCode::BAD_REQUEST,
            "bad_request",
            "missing Sec-WebSocket-Key",
        );
    };
    if !gw.health.is_ready() {
        let reason = gw.health.not_ready_reason().unwrap_or("not ready");
        return refuse(
            &gw.metrics,
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            reason,
        );
    }
    let (head, body) = req.into_parts();
    let grant = match authorize(&gw.authorizer, &gw.metrics, &room, &head).await {
        Ok(grant) => grant,
        Err(refusal) => return refusal,
    };
    let mut req = Request::from_parts(head, body);
    let connections = &gw.connections;
    let Ok(permit) = connections.slots.clone().try_acquire_owned() else {
        return refuse(
            &gw.metrics,
            StatusCode::SERVICE_UNAVAILABLE,
            "over_capacity",
            "node at its connection limit",
        );
    };
    let access = match grant.access {
        yws_auth::Access::ReadWrite => Access::ReadWrite,
        yws_auth::Access::ReadOnly => Access::ReadOnly,
    };
    let expires_at = grant.expires_at.map(|at| {
        let left = at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        Instant::now() + left
    });

    let started = Instant::now();
    let lease = match gw.rooms.lease(&room).await {
        Ok(lease) => lease,
        Err(LeaseError::Full { max }) => {
            tracing::warn!(room = %room, max_rooms = max, "room refused: node at rooms.max_rooms");
            return refuse(
                &gw.metrics,
                StatusCode::SERVICE_UNAVAILABLE,
                "rooms_full",
                "node at its room limit",
            );
        }
        Err(LeaseError::Backend(e)) => {
            tracing::warn!(room = %room, error = %e, "room could not be loaded");
            return refuse(
                &gw.metrics,
                StatusCode::SERVICE_UNAVAILABLE,
                "backend_unavailable",
                "room storage unavailable",
            );
        }
    };
    gw.metrics
        .room_load_seconds
        .observe(started.elapsed().as_secs_f64());

    let protocol = req
        .headers()
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());

    let conn = connections.next_id();
    let control = PeerControl::child_of(&connections.cancel);
    // `debug`: an enabled span costs every idle connection ~450 bytes; connection events
    // carry room and connection id themselves (`session::conn_event!`).
    let span = tracing::debug_span!("conn", room = %room, conn_id = conn.0, subject = grant.subject.as_deref().unwrap_or(""));
    let connection = Connection {
        connections: connections.clone(),
        upgrade: hyper::upgrade::on(&mut req),
        _slots: match req.extensions_mut().remove::<Arc<IpSlot>>() {
            None => Slots::Node { _permit: permit },
            Some(ip) => Slots::NodeAndIp {
                _both: Box::new((permit, ip)),
            },
        },
        session: Session {
            conn,
            lease,
            control,
            access,
            expires_at,
        },
    };
    connections.tracker.spawn(connection.run().instrument(span));
    gw.metrics.rooms.set(gw.rooms.len() as i64);

    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&key) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(protocol) = protocol.and_then(|p| HeaderValue::from_str(&p).ok()) {
        headers.insert(SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response
}

/// An accepted upgrade: what its task owns until the session ends.
///
/// Its future lives as long as the connection, so it holds only what the session needs
/// (metrics and settings are reached through `connections`, not copied) — this is most of
/// the memory of an idle connection.
struct Connection {
    connections: Arc<Connections>,
    upgrade: OnUpgrade,
    /// The connection's slots, held until the task ends.
    _slots: Slots,
    session: Session,
}

/// What a connection holds until it ends: one of `server.max_connections`, and with the per-IP
/// limit on, one of its address's `server.max_connections_per_ip`.
#[derive(Debug)]
enum Slots {
    /// The node's slot only.
    Node { _permit: OwnedSemaphorePermit },
    /// Boxed, so connections pay for the per-IP slot only when that limit is on.
    NodeAndIp {
        _both: Box<(OwnedSemaphorePermit, Arc<IpSlot>)>,
    },
}

impl Connection {
    /// Fields are used in place rather than destructured: destructuring `self` would store
    /// them twice in this future, which lives as long as the connection.
    async fn run(self) {
        let (shared, conn) = (&self.connections, self.session.conn);
        let room = self.session.lease.room().clone();
        // Boxed: the deadline's timer is needed only until the upgrade, not in this
        // future for the life of the connection.
        let handshake = Box::pin(tokio::time::timeout(shared.handshake_timeout, self.upgrade));
        let upgraded = match handshake.await {
            Ok(Ok(upgraded)) => upgraded,
            Ok(Err(e)) => {
                conn_event!(info, room, conn, error = %e, "upgrade did not complete");
                return;
            }
            Err(_) => {
                shared
                    .session
                    .metrics
                    .http_cutoffs
                    .with_label_values(&["handshake_timeout"])
                    .inc();
                conn_event!(
                    info,
                    room,
                    conn,
                    "upgrade not completed within server.handshake_timeout_ms; disconnected"
                );
                return;
            }
        };
        // `from_raw_socket` is an `async fn` that never waits; polling it once here keeps its
        // ~370-byte state out of this future.
        let Some(ws) = WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(shared.ws_config),
        )
        .now_or_never() else {
            conn_event!(
                error,
                room,
                conn,
                "WebSocket setup did not complete at once; dropped"
            );
            return;
        };
        let metrics = &shared.session.metrics;
        metrics.connections_opened.inc();
        metrics.connections.inc();
        tracing::debug!("connected");
        // Boxed: the session's state is allocated at its exact size instead of adding to this
        // task's future.
        let session = Box::pin(session::run(ws, self.session, &shared.session));
        let outcome = AssertUnwindSafe(session).catch_unwind().await;
        metrics.connections.dec();
        match outcome {
            Ok(end) => {
                metrics.closed(end.label());
                tracing::debug!(end = end.label(), "disconnected");
                if end == End::Server(yws_core::CloseReason::TooSlow) {
                    conn_event!(info, room, conn, "client too slow; closed with 1013");
                }
            }
            Err(_) => {
                metrics.panics.inc();
                metrics.closed("panic");
                conn_event!(
                    error,
                    room,
                    conn,
                    "connection task panicked; connection dropped, node carries on"
                );
            }
        }
        metrics.rooms.set(shared.rooms.len() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_from_paths() {
        let ok = |p: &str, prefix: &str| room_from_path(p, prefix, 64).unwrap().unwrap();
        assert_eq!(ok("/my-room", "").as_str(), "my-room");
        assert_eq!(ok("/a/b%20c", "").as_str(), "a/b c");
        assert_eq!(ok("/collab/doc", "/collab").as_str(), "doc");
        assert!(room_from_path("/other/doc", "/collab", 64).is_none());
        assert!(room_from_path("/collabdoc", "/collab", 64).is_none());
        assert_eq!(room_from_path("/", "", 64), Some(Err(NameError::Empty)));
        assert_eq!(
            room_from_path("/%0A", "", 64),
            Some(Err(NameError::ControlCharacter))
        );
        assert_eq!(
            room_from_path("/%FF", "", 64),
            Some(Err(NameError::NotUtf8))
        );
        assert!(matches!(
            room_from_path(&format!("/{}", "x".repeat(65)), "", 64),
            Some(Err(NameError::TooLong { .. }))
        ));
    }

    /// The size of what `f` returns, without calling it (so no socket is needed to name the
    /// production types).
    fn size_of_output<A, R>(_: &impl FnOnce(A) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Bytes of the connection task's future as spawned: tracked, instrumented.
    const TASK_FUTURE_MAX_BYTES: usize = 272;
    /// Bytes of the boxed session state over the production socket type (808 until the rate
    /// limits' pacer: its boxed pointer and `select!` branch, 24 bytes).
    const SESSION_STATE_MAX_BYTES: usize = 832;

    /// docs/scaling.md ("Idle memory is 3.7 KB per connection") counts, per idle connection, a
    /// 384-byte task (this future plus tokio's task header, cache-line aligned) and 832 bytes of
    /// boxed session state. Both are paid by every connection, idle or not.
    #[test]
    fn idle_connection_state_stays_small() {
        type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;
        let task = size_of_output(&|c: Connection| {
            tokio_util::task::TaskTracker::new()
                .track_future(c.run().instrument(tracing::Span::none()))
        });
        let session = size_of_output(&|(ws, s, ctx): (
            Socket,
            Session,
            &'static session::SessionContext,
        )| { session::run(ws, s, ctx) });
        let advice = "every connection pays for this. Find what grew (`cargo +nightly rustc -p \
                      yws-gateway --lib -- -Zprint-type-sizes`) and box or drop it; if the growth \
                      is worth it, re-run the `idle` load scenario, update the idle figure in \
                      docs/scaling.md and raise the bound in this test";
        assert!(
            task <= TASK_FUTURE_MAX_BYTES,
            "the connection task's future is {task} bytes, over {TASK_FUTURE_MAX_BYTES}: {advice}"
        );
        assert!(
            session <= SESSION_STATE_MAX_BYTES,
            "the session state is {session} bytes, over {SESSION_STATE_MAX_BYTES}: {advice}"
        );
    }
}
