//! The admin console's API under `/admin/api/`, on the gateway port and on the metrics port
//! when one is configured (the page itself, `/admin`, comes from `yws-web`). Off (404) unless
//! an admin credential is configured ([`Gateway::admin`]). Every request carries one:
//! `Authorization: Bearer <admin.token>` (compared in constant time), or a JWT / webhook
//! answer granting `admin: true` (the same check as listing rooms).
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /admin/api/cluster` | nodes (presence reports), the backend's health, the compaction backlog |
//! | `GET /admin/api/rooms?q=&after=&limit=` | rooms across the cluster by name: connections per node, sizes |
//! | `GET /admin/api/room?name=R[&objects=…]` | one room: connections per node, awareness, content, sizes |
//! | `GET /admin/api/room/events?name=R[&objects=…]` | the same as Server-Sent Events, once a second (see [`stream`]) |
//! | `GET /admin/api/room/update?name=R` | the document as one binary Yjs update (a download) |
//! | `POST /admin/api/room/kick?name=R` | the room's clients on every node are closed (1012; see [`kick`]) |
//! | `POST /admin/api/room/compact?name=R` | the room is queued for compaction now |
//! | `DELETE /admin/api/room?name=R` | the room is deleted: every client on every node is closed (4404) |
//!
//! `objects` uses the `CALLBACK_OBJECTS` syntax; without it, every root type of the document
//! is shown. Bad input → 400, no credential → 401, a credential without `admin` → 403, an
//! unknown room → 404, the backend unavailable → 503; each refusal is logged.

pub mod kick;
pub mod stream;
pub mod views;

use crate::authorize::authorize_operation;
use crate::state::Gateway;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::sync::Arc;
use yws_core::export::{parse_spec, ObjectSpec};
use yws_core::RoomName;

/// The API's path prefix.
pub const PREFIX: &str = "/admin/api/";

/// A response body: whole, or streamed (Server-Sent Events).
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Whether `path` belongs to the console's API.
pub fn is_api(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// A JSON response that no cache keeps.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())).boxed_unsync());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error answer, logged with its request.
pub(crate) fn error(status: StatusCode, path: &str, reason: &str) -> Response<Body> {
    tracing::info!(
        status = status.as_u16(),
        path,
        reason,
        "admin request refused"
    );
    json(status, &serde_json::json!({ "error": reason }))
}

/// A query parameter, percent-decoded.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Handles a request under [`PREFIX`].
pub async fn handle(gw: &Arc<Gateway>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let (head, _body) = req.into_parts();
    let path = head.uri.path().to_string();
    if let Err(refusal) = authenticate(gw, &head).await {
        return refusal;
    }
    let query = head.uri.query();
    let route = &path[PREFIX.len()..];
    match (&head.method, route) {
        (&Method::GET, "cluster") => views::cluster(gw).await,
        (&Method::GET, "rooms") => views::rooms(gw, query).await,
        (_, "cluster" | "rooms") => error(StatusCode::METHOD_NOT_ALLOWED, &path, "use GET"),
        (method, "room" | "room/events" | "room/update" | "room/kick" | "room/compact") => {
            let target = match RoomTarget::parse(gw, query) {
                Ok(target) => target,
                Err(reason) => return error(StatusCode::BAD_REQUEST, &path, &reason),
            };
            match (method, route) {
                (&Method::GET, "room") => views::room(gw, &target).await,
                (&Method::DELETE, "room") => views::delete(gw, &target.room).await,
                (&Method::GET, "room/events") => stream::events(gw, target).await,
                (&Method::GET, "room/update") => views::download(gw, &target.room).await,
                (&Method::POST, "room/kick") => kick::kick(gw, &target.room, &head).await,
                (&Method::POST, "room/compact") => views::compact(gw, &target.room).await,
                _ => error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &path,
                    "GET or DELETE room, GET room/events and room/update, POST room/kick and room/compact",
                ),
            }
        }
        _ => error(StatusCode::NOT_FOUND, &path, "no such admin endpoint"),
    }
}

/// The room a request is about, and which of its objects to show.
#[derive(Debug, Clone)]
pub struct RoomTarget {
    /// `name=`.
    pub room: RoomName,
    /// `objects=`, or `None`: every root type.
    pub objects: Option<ObjectSpec>,
}

impl RoomTarget {
    fn parse(gw: &Gateway, query: Option<&str>) -> Result<Self, String> {
        let name = query_param(query, "name").ok_or("name= is required")?;
        let room =
            RoomName::new(&name, gw.server.max_room_name_bytes).map_err(|e| e.to_string())?;
        let objects = match query_param(query, "objects").filter(|o| !o.trim().is_empty()) {
            Some(spec) => Some(parse_spec(&spec).map_err(|e| format!("objects: {e}"))?),
            None => None,
        };
        Ok(RoomTarget { room, objects })
    }
}

/// Lets the request in if it carries the admin token or a credential granting `admin`.
async fn authenticate(gw: &Gateway, head: &http::request::Parts) -> Result<(), Response<Body>> {
    let path = head.uri.path();
    let Some(access) = &gw.admin else {
        return Err(error(
            StatusCode::NOT_FOUND,
            path,
            "the admin console is off: set admin.token (YWS_ADMIN_TOKEN)",
        ));
    };
    let bearer = head
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let (Some(token), Some(given)) = (&access.token, bearer) {
        if same_secret(token.expose(), given) {
            return Ok(());
        }
    }
    if access.claims {
        let operation = yws_auth::Operation::ListRooms;
        return authorize_operation(&gw.authorizer, &gw.metrics, operation, head)
            .await
            .map(|_| ())
            .map_err(|refusal| refusal.map(BodyExt::boxed_unsync));
    }
    let reason = if bearer.is_some() {
        "wrong admin token"
    } else {
        "an admin token is required (Authorization: Bearer …)"
    };
    let mut refusal = error(StatusCode::UNAUTHORIZED, path, reason);
    refusal
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Err(refusal)
}

/// Compares two secrets in time independent of where they differ (their SHA-256 digests,
/// so of their lengths too).
fn same_secret(expected: &str, given: &str) -> bool {
    let (a, b) = (Sha256::digest(expected), Sha256::digest(given));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("0123456789abcdef", "0123456789abcdef"));
        assert!(!same_secret("0123456789abcdef", "0123456789abcdeF"));
        assert!(!same_secret("0123456789abcdef", "0123456789abcde"));
        assert!(!same_secret("0123456789abcdef", ""));
    }

    #[test]
    fn query_params_are_decoded() {
        assert_eq!(query_param(Some("name=a%2Fb&x=1"), "name").unwrap(), "a/b");
        assert_eq!(query_param(Some("name=a+b"), "name").unwrap(), "a b");
        assert!(query_param(Some("x=1"), "name").is_none());
        assert!(query_param(None, "name").is_none());
        assert!(is_api("/admin/api/cluster"));
        assert!(!is_api("/admin"));
        assert!(!is_api("/admin/"));
    }
}
