//! The console's JSON views and actions. Cluster-wide facts come from the backend's presence
//! reports ([`RoomBackend::nodes`](yws_core::RoomBackend::nodes)); a backend without other
//! nodes reports none, and this node describes itself.

use super::{error, json, query_param, Body, RoomTarget};
use crate::state::{now_ms, Gateway};
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use yrs::{ReadTxn, Transact};
use yws_core::export::{export, root_spec};
use yws_core::{NodeReport, Room, RoomLease, RoomName};

/// The default page of the rooms list, and its largest.
const PAGE: usize = 50;
const MAX_PAGE: usize = 200;
/// Stored rooms read from the backend's listing for one page of the console (a bound on the
/// work of one request; the listing is by name, so the first ones come first).
const MAX_LISTED: usize = 10_000;
/// The id the console gives this node when the backend reports no nodes (standalone).
pub const THIS_NODE: &str = "this node";

fn node_json(gw: &Gateway, report: &NodeReport, now: u64) -> Value {
    let local = gw.node_info();
    let info = report.info.as_ref();
    let is_local =
        info.is_some_and(|i| i.address == local.address && i.started_ms == local.started_ms);
    json!({
        "id": report.id,
        "address": info.map(|i| i.address.as_str()),
        "version": info.map(|i| i.version.as_str()),
        "uptime_s": info.map(|i| now.saturating_sub(i.started_ms) / 1000),
        "ready": info.map(|i| i.ready),
        "connections": info.map_or_else(|| report.rooms.iter().map(|(_, n)| n).sum(), |i| i.connections),
        "rooms": info.map_or(report.rooms.len() as u64, |i| i.rooms),
        "seen_ms": report.seen_ms,
        "local": is_local,
    })
}

/// This node as a presence report, for backends that keep none.
fn local_report(gw: &Gateway) -> NodeReport {
    NodeReport {
        id: THIS_NODE.to_string(),
        info: Some(gw.node_info()),
        seen_ms: now_ms(),
        rooms: gw
            .rooms
            .list(None, usize::MAX)
            .into_iter()
            .map(|(name, n)| (name.as_str().to_string(), n as u64))
            .collect(),
    }
}

/// Every node's report, or this node's alone for a backend without presence.
pub(crate) async fn reports(gw: &Gateway) -> Result<Vec<NodeReport>, String> {
    let reports = gw
        .rooms
        .backend()
        .nodes()
        .await
        .map_err(|e| e.to_string())?;
    Ok(if reports.is_empty() {
        vec![local_report(gw)]
    } else {
        reports
    })
}

/// `GET /admin/api/cluster`.
pub async fn cluster(gw: &Arc<Gateway>) -> Response<Body> {
    let backend = gw.rooms.backend();
    let now = now_ms();
    let (nodes, nodes_error) = match reports(gw).await {
        Ok(reports) => (reports, None),
        Err(e) => (vec![local_report(gw)], Some(e)),
    };
    let backlog = match backend.backlog().await {
        Ok(backlog) => json!(backlog),
        Err(e) => json!({ "error": e.to_string() }),
    };
    json(
        StatusCode::OK,
        &json!({
            "now_ms": now,
            "nodes": nodes.iter().map(|r| node_json(gw, r, now)).collect::<Vec<_>>(),
            "backend": {
                "shared": backend.availability().is_some(),
                "ready": backend.is_ready(),
                "degraded_rooms": backend.degraded(),
                "error": nodes_error,
            },
            "backlog": backlog,
        }),
    )
}

/// Room → node → connections, from the reports and the backend's listing (stored rooms).
async fn room_index(gw: &Gateway) -> Result<BTreeMap<String, BTreeMap<String, u64>>, String> {
    let mut index: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for report in reports(gw).await? {
        for (room, n) in &report.rooms {
            index
                .entry(room.clone())
                .or_default()
                .insert(report.id.clone(), *n);
        }
    }
    let listed = gw.rooms.backend().list(None, MAX_LISTED).await;
    for (room, _) in listed.map_err(|e| e.to_string())? {
        index.entry(room).or_default();
    }
    Ok(index)
}

/// `GET /admin/api/rooms?q=&after=&limit=`: rooms whose name contains `q` (any case), by
/// name, after `after`, at most `limit` (default 50, at most 200).
pub async fn rooms(gw: &Arc<Gateway>, query: Option<&str>) -> Response<Body> {
    let path = "/admin/api/rooms";
    let limit = match query_param(query, "limit").map(|l| l.parse::<usize>()) {
        None => PAGE,
        Some(Ok(l)) if (1..=MAX_PAGE).contains(&l) => l,
        Some(_) => return error(StatusCode::BAD_REQUEST, path, "limit must be 1..=200"),
    };
    let needle = query_param(query, "q").unwrap_or_default().to_lowercase();
    let after = query_param(query, "after").unwrap_or_default();
    let index = match room_index(gw).await {
        Ok(index) => index,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, path, &e),
    };
    let mut matching = index
        .into_iter()
        .filter(|(name, _)| name.as_str() > after.as_str())
        .filter(|(name, _)| needle.is_empty() || name.to_lowercase().contains(&needle));
    let page: Vec<(String, BTreeMap<String, u64>)> = matching.by_ref().take(limit).collect();
    let next = matching
        .next()
        .and(page.last().map(|(name, _)| name.clone()));
    let mut rooms = Vec::with_capacity(page.len());
    for (name, nodes) in page {
        let room = RoomName::new(&name, usize::MAX).ok();
        let loaded = room.as_ref().and_then(|r| gw.rooms.get(r));
        let stats = match &room {
            Some(room) => gw.rooms.backend().room_stats(room).await.ok().flatten(),
            None => None,
        };
        rooms.push(json!({
            "name": name,
            "connections": nodes.values().sum::<u64>(),
            "nodes": nodes,
            "doc_bytes": loaded.map(|r| r.encode_state().len()),
            "stats": stats,
        }));
    }
    json(StatusCode::OK, &json!({ "rooms": rooms, "next": next }))
}

/// Leases `room` to look at it: loaded here already, stored, or served by another node.
/// Never creates a room nobody has.
pub async fn open(gw: &Gateway, room: &RoomName) -> Result<RoomLease, (StatusCode, String)> {
    let known = gw.rooms.get(room).is_some() || {
        let stored = gw.rooms.backend().exists(room).await;
        let stored = stored.map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        stored || {
            let index = room_index(gw).await;
            let index = index.map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))?;
            index.contains_key(room.as_str())
        }
    };
    if !known {
        return Err((StatusCode::NOT_FOUND, "no such room".to_string()));
    }
    gw.rooms
        .lease(room)
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
}

/// The sum of the document's state vector: it grows by one per inserted element, so its
/// change over time is the document's edit rate.
pub fn clock(room: &Room) -> u64 {
    let txn = room.doc().transact();
    txn.state_vector().iter().map(|(_, c)| u64::from(*c)).sum()
}

/// The awareness states of `room` as `[{client, clock, state}]`.
pub fn awareness(room: &Room) -> Value {
    let frame = room.awareness_frame();
    let mut states = Vec::new();
    for message in yws_protocol::decode(&frame).flatten() {
        if let yws_protocol::Message::Awareness(update) = message {
            for entry in update.entries().filter(|e| !e.is_removal()) {
                let state: Value = serde_json::from_str(entry.state).unwrap_or(Value::Null);
                states.push(
                    json!({ "client": entry.client_id, "clock": entry.clock, "state": state }),
                );
            }
        }
    }
    Value::Array(states)
}

/// One room as the console shows it.
pub async fn snapshot(gw: &Gateway, target: &RoomTarget, room: &Room) -> Value {
    let state = room.encode_state();
    let spec = match &target.objects {
        Some(spec) => spec.clone(),
        None => root_spec(&state).unwrap_or_default(),
    };
    let content = export(&state, &spec).unwrap_or_else(|e| json!({ "error": e }));
    let nodes: BTreeMap<String, u64> = match reports(gw).await {
        Ok(reports) => reports
            .iter()
            .filter_map(|r| {
                let n = r
                    .rooms
                    .iter()
                    .find(|(name, _)| name == room.name().as_str());
                n.map(|(_, n)| (r.id.clone(), *n))
            })
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    let stats = gw
        .rooms
        .backend()
        .room_stats(room.name())
        .await
        .ok()
        .flatten();
    json!({
        "name": room.name().as_str(),
        "now_ms": now_ms(),
        "connections_here": room.peer_count(),
        "nodes": nodes,
        "doc_bytes": state.len(),
        "clock": clock(room),
        "awareness": awareness(room),
        "content": content,
        "stats": stats,
    })
}

/// `GET /admin/api/room?name=`.
pub async fn room(gw: &Arc<Gateway>, target: &RoomTarget) -> Response<Body> {
    match open(gw, &target.room).await {
        Ok(lease) => json(StatusCode::OK, &snapshot(gw, target, lease.room()).await),
        Err((status, e)) => error(status, "/admin/api/room", &e),
    }
}

/// `GET /admin/api/room/update?name=`: the document as one binary update, as a download.
pub async fn download(gw: &Arc<Gateway>, room: &RoomName) -> Response<Body> {
    let lease = match open(gw, room).await {
        Ok(lease) => lease,
        Err((status, e)) => return error(status, "/admin/api/room/update", &e),
    };
    let mut response =
        Response::new(Full::new(Bytes::from(lease.room().encode_state())).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let file: String = room
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}.ydoc\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `DELETE /admin/api/room?name=`: as `DELETE /api/rooms/{room}`.
pub async fn delete(gw: &Arc<Gateway>, room: &RoomName) -> Response<Body> {
    if let Err(e) = gw.rooms.backend().delete(room).await {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "/admin/api/room",
            &e.to_string(),
        );
    }
    let was_loaded = gw.rooms.retire(room).await;
    tracing::info!(room = %room, was_loaded, "room deleted from the admin console");
    json(StatusCode::OK, &json!({ "deleted": room.as_str() }))
}

/// `POST /admin/api/room/compact?name=`: queued for compaction now.
pub async fn compact(gw: &Arc<Gateway>, room: &RoomName) -> Response<Body> {
    match gw.rooms.backend().compact_now(room).await {
        Ok(true) => {
            tracing::info!(room = %room, "compaction queued from the admin console");
            json(StatusCode::ACCEPTED, &json!({ "queued": true }))
        }
        Ok(false) => error(
            StatusCode::CONFLICT,
            "/admin/api/room/compact",
            "this backend has no compaction (only Redis has)",
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "/admin/api/room/compact",
            &e.to_string(),
        ),
    }
}
