//! `POST /admin/api/room/kick?name=R`: every client of the room, on every node, is closed
//! with 1012 (they reconnect). This node kicks its own clients and forwards the request,
//! with the caller's credential and `local=1`, to every other live node at the address it
//! reports (`server.advertise_address`); `local=1` kicks on the receiving node only. The
//! forwarded requests run concurrently within this request, each bounded by
//! [`FORWARD_TIMEOUT`]; a node that cannot be reached is named in the answer.

use super::{error, json, query_param, Body};
use crate::state::Gateway;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use yws_core::{CloseReason, RoomName};

/// How long a forwarded kick may take.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest answer read from another node.
const MAX_ANSWER_BYTES: usize = 4096;

/// Kicks this node's clients of `room` with 1012; returns how many there were.
fn kick_here(gw: &Gateway, room: &RoomName) -> usize {
    gw.rooms.get(room).map_or(0, |r| {
        let n = r.peer_count();
        r.kick_all(CloseReason::ServiceRestart);
        n
    })
}

/// Handles the request.
pub async fn kick(
    gw: &Arc<Gateway>,
    room: &RoomName,
    head: &http::request::Parts,
) -> Response<Body> {
    let here = kick_here(gw, room);
    let local_only = query_param(head.uri.query(), "local").as_deref() == Some("1");
    let mut nodes = BTreeMap::new();
    if !local_only {
        let me = gw.node_info();
        let others: Vec<(String, String)> = match super::views::reports(gw).await {
            Ok(reports) => reports
                .into_iter()
                .filter_map(|r| r.info.map(|info| (r.id, info)))
                .filter(|(_, i)| !(i.address == me.address && i.started_ms == me.started_ms))
                .map(|(id, i)| (id, i.address))
                .collect(),
            Err(e) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "/admin/api/room/kick",
                    &format!("kicked {here} here; the other nodes are unknown: {e}"),
                )
            }
        };
        let credential = head.headers.get(header::AUTHORIZATION);
        let forwards = others.iter().map(|(id, address)| async move {
            let answer = forward(gw, address, room, credential).await;
            (id.clone(), answer)
        });
        for (id, answer) in futures_util::future::join_all(forwards).await {
            let value = match answer {
                Ok(kicked) => json!(kicked),
                Err(e) => {
                    tracing::warn!(room = %room, node = %id, error = %e, "kick not forwarded");
                    json!({ "error": e })
                }
            };
            nodes.insert(id, value);
        }
    }
    let total = here as u64 + nodes.values().filter_map(Value::as_u64).sum::<u64>();
    tracing::info!(room = %room, here, total, local_only, "clients kicked from the admin console");
    json(
        StatusCode::OK,
        &json!({ "kicked": total, "here": here, "nodes": nodes }),
    )
}

/// Asks the node at `address` to kick its own clients of `room`; its count, or why not.
async fn forward(
    gw: &Gateway,
    address: &str,
    room: &RoomName,
    credential: Option<&http::HeaderValue>,
) -> Result<u64, String> {
    let Some(client) = gw.admin.as_ref().map(|a| &a.client) else {
        return Err("the admin console is off".to_string());
    };
    let name: String = form_urlencoded::byte_serialize(room.as_str().as_bytes()).collect();
    let uri = format!("http://{address}/admin/api/room/kick?name={name}&local=1");
    let mut request = Request::builder().method(Method::POST).uri(&uri);
    if let Some(credential) = credential {
        request = request.header(header::AUTHORIZATION, credential);
    }
    let request = request
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("{uri}: {e}"))?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
        }
        let answer: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        answer["here"]
            .as_u64()
            .ok_or_else(|| format!("unexpected answer {answer}"))
    };
    tokio::time::timeout(FORWARD_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", FORWARD_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{address}: {e}"))
}
