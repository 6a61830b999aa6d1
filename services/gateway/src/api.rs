//! The document HTTP API, on the gateway port, behind the same authentication as WebSockets:
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /api/rooms/{room}` | the document as one binary Yjs update (`application/octet-stream`) |
//! | `GET /api/rooms/{room}?objects={"name":"Text",…}` | JSON of named shared objects (`CALLBACK_OBJECTS` syntax) |
//! | `POST /api/rooms/{room}/update` | body: a binary Yjs update → applied and sent to every client on every node |
//! | `DELETE /api/rooms/{room}` | every client of the room is closed (4404) and its stored state removed |
//! | `GET /api/rooms?limit=N&after=ROOM` | rooms with their connection counts, by name, paginated (with auth: needs `admin`) |
//!
//! `{room}` is percent-decoded and may contain `/`. Bad input → 400 with a reason, a body
//! larger than `server.max_message_bytes` → 413, a body not received within
//! `server.body_timeout_ms` → 408 (and the connection is closed), no stored state → 404,
//! read-only access for a write → 403, an update that raced a deletion of the room → 409.

use crate::authorize::{authorize, authorize_operation};
use crate::state::Gateway;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use std::sync::Arc;
use std::time::Duration;
use yws_core::export::{export, parse_spec};
use yws_core::{BackendError, LeaseError, RoomName, Rooms};

/// The API's path prefix.
pub const PREFIX: &str = "/api/rooms";
const MAX_LIMIT: usize = 1000;

/// Whether `path` belongs to the API.
pub fn is_api(path: &str) -> bool {
    path == PREFIX || path.starts_with("/api/rooms/")
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    json(status, serde_json::json!({ "error": reason }))
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Handles an API request.
pub async fn handle(gw: &Gateway, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if path == PREFIX || path == "/api/rooms/" {
        return match *req.method() {
            Method::GET => list(gw, req).await,
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "use GET"),
        };
    }
    let rest = &path[PREFIX.len() + 1..];
    let (raw_room, update) = match (req.method(), rest.strip_suffix("/update")) {
        (&Method::POST, Some(room)) => (room, true),
        _ => (rest, false),
    };
    let max = gw.server.max_room_name_bytes;
    let room = match percent_decode_str(raw_room).decode_utf8() {
        Ok(name) => match RoomName::new(&name, max) {
            Ok(room) => room,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        },
        Err(_) => return error(StatusCode::BAD_REQUEST, "room name is not valid UTF-8"),
    };
    let (head, body) = req.into_parts();
    let grant = match authorize(&gw.authorizer, &gw.metrics, &room, &head).await {
        Ok(grant) => grant,
        Err(refusal) => return refusal,
    };
    let writes = matches!(head.method, Method::POST | Method::DELETE);
    if writes && grant.access == yws_auth::Access::ReadOnly {
        return error(StatusCode::FORBIDDEN, "read-only access");
    }
    match (&head.method, update) {
        (&Method::GET, false) => get(&gw.rooms, &room, head.uri.query()).await,
        (&Method::POST, true) => {
            let limits = BodyLimits {
                max_bytes: gw.server.max_message_bytes,
                timeout: Duration::from_millis(gw.server.body_timeout_ms),
            };
            let bytes = match read_body(gw, body, limits).await {
                Ok(bytes) => bytes,
                Err(response) => return response,
            };
            post(&gw.rooms, &room, bytes).await
        }
        (&Method::DELETE, false) => delete(&gw.rooms, &room).await,
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET or DELETE /api/rooms/{room}, POST /api/rooms/{room}/update",
        ),
    }
}

async fn get(rooms: &Arc<Rooms>, room: &RoomName, query: Option<&str>) -> Response<Full<Bytes>> {
    let spec = match query_param(query, "objects").map(|o| parse_spec(&o)) {
        Some(Ok(spec)) => Some(spec),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, &format!("objects: {e}")),
        None => None,
    };
    let state = match rooms.get(room) {
        Some(loaded) => loaded.encode_state(),
        None => {
            match rooms.backend().exists(room).await {
                Ok(true) => {}
                Ok(false) => return error(StatusCode::NOT_FOUND, "no such room"),
                Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
            }
            match rooms.lease(room).await {
                Ok(lease) => lease.room().encode_state(),
                Err(e) => return lease_error(room, &e),
            }
        }
    };
    match spec {
        None => {
            let mut response = Response::new(Full::new(Bytes::from(state)));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/octet-stream"),
            );
            response
        }
        Some(spec) => match export(&state, &spec) {
            Ok(data) => json(
                StatusCode::OK,
                serde_json::json!({ "room": room.as_str(), "data": data }),
            ),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        },
    }
}

/// How much of a request body is read, and for how long.
#[derive(Debug, Clone, Copy)]
struct BodyLimits {
    /// `server.max_message_bytes`: beyond, 413.
    max_bytes: usize,
    /// `server.body_timeout_ms`: the whole body must arrive within this; beyond, 408.
    timeout: Duration,
}

/// Reads a whole request body within its limits.
async fn read_body(
    gw: &Gateway,
    body: Incoming,
    limits: BodyLimits,
) -> Result<Bytes, Response<Full<Bytes>>> {
    let max = limits.max_bytes;
    let collected = tokio::time::timeout(limits.timeout, Limited::new(body, max).collect()).await;
    match collected {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("update larger than {max} bytes"),
            ))
        }
        Ok(Err(e)) => Err(error(StatusCode::BAD_REQUEST, &format!("body: {e}"))),
        Err(_) => {
            gw.metrics
                .http_cutoffs
                .with_label_values(&["body_timeout"])
                .inc();
            tracing::debug!("request body not received within server.body_timeout_ms");
            let mut response = error(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time",
            );
            response.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            Err(response)
        }
    }
}

async fn post(rooms: &Arc<Rooms>, room: &RoomName, bytes: Bytes) -> Response<Full<Bytes>> {
    let update = match yws_protocol::validate::update(&bytes) {
        Ok(update) => update,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if update.is_empty() {
        return json(StatusCode::OK, serde_json::json!({ "applied": false }));
    }
    let lease = match rooms.lease(room).await {
        Ok(lease) => lease,
        Err(e) => return lease_error(room, &e),
    };
    match rooms.backend().append(lease.room(), &bytes).await {
        Ok(()) => {}
        Err(BackendError::Deleted) => {
            lease.room().retire();
            return error(
                StatusCode::CONFLICT,
                "the room was deleted meanwhile; not applied",
            );
        }
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
    if let Err(e) = lease.room().apply_update(update, &bytes) {
        return error(StatusCode::BAD_REQUEST, &e.to_string());
    }
    json(StatusCode::OK, serde_json::json!({ "applied": true }))
}

/// A room that could not be leased: 503 either way; the room limit is logged.
fn lease_error(room: &RoomName, e: &LeaseError) -> Response<Full<Bytes>> {
    if let LeaseError::Full { max } = e {
        tracing::warn!(room = %room, max_rooms = max, "room refused: node at rooms.max_rooms");
    }
    error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
}

async fn delete(rooms: &Rooms, room: &RoomName) -> Response<Full<Bytes>> {
    // Stored state first, then the loaded copy: retired first, a join in between would load
    // the old state again and serve it.
    if let Err(e) = rooms.backend().delete(room).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    }
    let was_loaded = rooms.retire(room).await;
    tracing::info!(room = %room, was_loaded, "room deleted through the API");
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

async fn list(gw: &Gateway, req: Request<Incoming>) -> Response<Full<Bytes>> {
    // Listing is deployment-wide: it needs `admin`, which no room pattern implies.
    let (head, _) = req.into_parts();
    let operation = yws_auth::Operation::ListRooms;
    if let Err(refusal) = authorize_operation(&gw.authorizer, &gw.metrics, operation, &head).await {
        return refusal;
    }
    let query = head.uri.query();
    let limit = match query_param(query, "limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(l)) if (1..=MAX_LIMIT).contains(&l) => l,
        Some(_) => return error(StatusCode::BAD_REQUEST, "limit must be 1..=1000"),
    };
    let after = query_param(query, "after");
    let mut rooms: std::collections::BTreeMap<String, u64> = gw
        .rooms
        .list(after.as_deref(), limit)
        .into_iter()
        .map(|(name, n)| (name.as_str().to_string(), n as u64))
        .collect();
    match gw.rooms.backend().list(after.as_deref(), limit).await {
        Ok(more) => {
            for (name, n) in more {
                // A cluster-wide count already includes this node's connections.
                let entry = rooms.entry(name).or_default();
                if let Some(n) = n {
                    *entry = n.max(*entry);
                }
            }
        }
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
    let page: Vec<(String, u64)> = rooms.into_iter().take(limit).collect();
    let next = (page.len() == limit)
        .then(|| page.last().map(|(n, _)| n.clone()))
        .flatten();
    let rooms: Vec<serde_json::Value> = page
        .into_iter()
        .map(|(name, connections)| serde_json::json!({ "name": name, "connections": connections }))
        .collect();
    json(
        StatusCode::OK,
        serde_json::json!({ "rooms": rooms, "next": next }),
    )
}
