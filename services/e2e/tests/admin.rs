//! The admin console's API end to end (`/admin/api/…`): a real gateway standalone and two
//! sharing a real `redis-server`, raw WebSocket clients, the token over plain HTTP. The
//! browser side is in `browser.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use serde_json::Value;
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use yrs::updates::decoder::Decode;
use yrs::{GetString, Transact, Update};
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::redis::RedisServer;
use yws_e2e::ws::{self, Follower};
use yws_e2e::{http, unique_room, wait_until};

const TOKEN: &str = "e2e-admin-token-0123456789";

fn admin(gw: &Service, method: &str, path: &str) -> http::Response {
    let bearer = format!("Bearer {TOKEN}");
    http::request(gw.addr, method, path, &[("authorization", &bearer)], b"")
}

fn json(r: &http::Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn get_json(gw: &Service, path: &str) -> Value {
    let r = admin(gw, "GET", path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    json(&r)
}

fn post_update(gw: &Service, room: &str, update: &[u8]) {
    let path = format!("/api/rooms/{room}/update");
    let r = http::request(gw.addr, "POST", &path, &[], update);
    assert_eq!(r.status, 200, "{}", r.text());
}

/// An update of a new client typing `text` into the `Y.Text` `text`.
fn text_update(text: &str) -> Vec<u8> {
    use yrs::{ReadTxn, StateVector, Text};
    let doc = yrs::Doc::new();
    let shared = doc.get_or_insert_text("text");
    let mut txn = doc.transact_mut();
    shared.insert(&mut txn, 0, text);
    txn.encode_state_as_update_v1(&StateVector::default())
}

/// Reads a Server-Sent Events response until `needle` shows, for at most `timeout`.
fn read_events_until(gw: &Service, path: &str, needle: &str, timeout: Duration) -> String {
    let mut stream = std::net::TcpStream::connect(gw.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n",
        gw.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    let (deadline, mut seen, mut buf) = (Instant::now() + timeout, Vec::new(), [0u8; 4096]);
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if String::from_utf8_lossy(&seen).contains(needle) {
            break;
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn a_standalone_node_shows_itself_and_acts_on_its_rooms() {
    let gw = ServiceBuilder::gateway()
        .env("YWS_ADMIN_TOKEN", TOKEN)
        .spawn();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let room = unique_room("Admin-Api");
    let mut follower = rt
        .block_on(Follower::connect(&format!("{}/{room}", gw.ws_url())))
        .unwrap();
    post_update(&gw, &room, &follower.append_update("hello"));
    assert!(rt.block_on(follower.wait_text(Duration::from_secs(10), |t| t == "hello")));

    // Refusals and bad input.
    let bare = http::get(gw.addr, "/admin/api/cluster");
    assert_eq!(bare.status, 401, "{}", bare.text());
    assert_eq!(admin(&gw, "POST", "/admin/api/cluster").status, 405);
    assert_eq!(admin(&gw, "GET", "/admin/api/nope").status, 404);
    assert_eq!(admin(&gw, "GET", "/admin/api/room").status, 400);
    assert_eq!(admin(&gw, "GET", "/admin/api/rooms?limit=0").status, 400);
    assert_eq!(admin(&gw, "GET", "/admin/api/room?name=absent").status, 404);
    let bad = admin(
        &gw,
        "GET",
        &format!("/admin/api/room?name={room}&objects=nope"),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());

    // Cluster: the node describes itself.
    let cluster = get_json(&gw, "/admin/api/cluster");
    let nodes = cluster["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{cluster}");
    assert_eq!(nodes[0]["local"], true);
    assert_eq!(nodes[0]["connections"], 1);
    assert_eq!(nodes[0]["address"], gw.addr.to_string());
    assert_eq!(nodes[0]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(cluster["backend"]["shared"], false);
    assert!(cluster["backlog"].is_null(), "{cluster}");

    // Rooms: searched without regard to case, paginated.
    let other = unique_room("admin-other");
    post_update(&gw, &other, &follower.append_update("x"));
    let found = get_json(&gw, "/admin/api/rooms?q=ADMIN-API");
    let rooms = found["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 1, "{found}");
    assert_eq!(rooms[0]["name"], room.as_str());
    assert_eq!(rooms[0]["connections"], 1);
    assert!(rooms[0]["doc_bytes"].as_u64().unwrap() > 0, "{found}");
    let first = get_json(&gw, "/admin/api/rooms?limit=1");
    let next = first["next"].as_str().expect("a next page").to_string();
    let second = get_json(&gw, &format!("/admin/api/rooms?limit=1&after={next}"));
    assert_ne!(first["rooms"][0]["name"], second["rooms"][0]["name"]);

    // Room: every root type by default, or the objects asked for.
    let shown = get_json(&gw, &format!("/admin/api/room?name={room}"));
    assert_eq!(shown["content"]["text"]["content"], "hello", "{shown}");
    assert_eq!(shown["connections_here"], 1);
    let objects = "%7B%22text%22%3A%22Text%22%2C%22meta%22%3A%22Map%22%7D";
    let asked = get_json(
        &gw,
        &format!("/admin/api/room?name={room}&objects={objects}"),
    );
    assert_eq!(asked["content"]["meta"]["content"], serde_json::json!({}));

    // Live: Server-Sent Events carry the room's snapshot.
    let events = read_events_until(
        &gw,
        &format!("/admin/api/room/events?name={room}"),
        "\"hello\"",
        Duration::from_secs(10),
    );
    assert!(events.contains("text/event-stream"), "{events}");
    assert!(events.contains("event: room"), "{events}");

    // Download: one binary update holding the document.
    let download = admin(&gw, "GET", &format!("/admin/api/room/update?name={room}"));
    assert_eq!(download.status, 200);
    assert!(download
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment")));
    let doc = yrs::Doc::new();
    let text = doc.get_or_insert_text("text");
    doc.transact_mut()
        .apply_update(Update::decode_v1(&download.body).unwrap())
        .unwrap();
    assert_eq!(text.get_string(&doc.transact()), "hello");

    // Compaction needs Redis.
    assert_eq!(
        admin(&gw, "POST", &format!("/admin/api/room/compact?name={room}")).status,
        409
    );

    // Kick: this node's clients are closed with 1012.
    let kicked = admin(&gw, "POST", &format!("/admin/api/room/kick?name={room}"));
    assert_eq!(json(&kicked)["kicked"], 1, "{}", kicked.text());
    assert_eq!(
        rt.block_on(ws::close_code(&mut follower.socket)),
        Some(1012)
    );

    // Delete: gone.
    let deleted = admin(&gw, "DELETE", &format!("/admin/api/room?name={room}"));
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(
        admin(&gw, "GET", &format!("/admin/api/room?name={room}")).status,
        404
    );
    assert!(gw.wait_for_log(
        "room deleted from the admin console",
        Duration::from_secs(5)
    ));
}

#[test]
fn an_open_event_stream_ends_when_the_node_shuts_down() {
    let mut gw = ServiceBuilder::gateway()
        .env("YWS_ADMIN_TOKEN", TOKEN)
        .env("YWS__SERVER__SHUTDOWN_TIMEOUT_MS", 20_000)
        .spawn();
    let room = unique_room("admin-shutdown");
    post_update(&gw, &room, &text_update("x"));
    let mut stream = std::net::TcpStream::connect(gw.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "GET /admin/api/room/events?name={room} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n",
        gw.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut first = [0u8; 1024];
    let n = stream.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).contains("200 OK"));

    // SIGTERM: the stream ends (the response is finished, the connection closed) and the
    // node exits well within its 20 s deadline, no shutdown step timing out.
    let started = Instant::now();
    gw.terminate();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(
        String::from_utf8_lossy(&rest).ends_with("0\r\n\r\n"),
        "the stream was not finished: {}",
        String::from_utf8_lossy(&rest)
    );
    let status = gw
        .wait_exit(Duration::from_secs(20))
        .expect("the node exits");
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(!gw.logs().contains("timed out"), "{}", gw.logs());
}

#[test]
fn a_cluster_node_shows_every_node_and_acts_on_all_of_them() {
    let redis = RedisServer::start();
    let node = || {
        ServiceBuilder::gateway()
            .env("REDIS_URL", redis.url())
            .env("YWS_ADMIN_TOKEN", TOKEN)
            .spawn()
    };
    let (a, b) = (node(), node());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let room = unique_room("admin-cluster");
    let mut on_b = rt
        .block_on(Follower::connect(&format!("{}/{room}", b.ws_url())))
        .unwrap();
    post_update(&b, &room, &on_b.append_update("shared"));
    assert!(rt.block_on(on_b.wait_text(Duration::from_secs(10), |t| t == "shared")));

    // Both nodes, from either node, once they have reported (every 5 s).
    let both = || {
        let cluster = get_json(&a, "/admin/api/cluster");
        let addrs: Vec<String> = cluster["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["address"].as_str().unwrap_or_default().to_string())
            .collect();
        addrs.contains(&a.addr.to_string()) && addrs.contains(&b.addr.to_string())
    };
    assert!(wait_until(Duration::from_secs(15), both));
    let cluster = get_json(&a, "/admin/api/cluster");
    assert_eq!(cluster["backend"]["shared"], true);
    assert_eq!(cluster["backend"]["ready"], true);
    assert!(cluster["backlog"]["queued"].is_u64(), "{cluster}");

    // The room B serves, listed by A with its node, log and last update.
    let listed = || {
        let rooms = get_json(&a, &format!("/admin/api/rooms?q={room}"));
        let row = rooms["rooms"][0].clone();
        (row["connections"] == 1).then_some(row)
    };
    assert!(wait_until(Duration::from_secs(15), || listed().is_some()));
    let row = listed().unwrap();
    assert_eq!(row["nodes"].as_object().unwrap().len(), 1, "{row}");
    assert!(row["stats"]["log_entries"].as_u64().unwrap() >= 1, "{row}");
    assert!(row["stats"]["log_bytes"].as_u64().unwrap() > 0, "{row}");
    assert!(
        row["stats"]["last_update_ms"].as_u64().unwrap() > 0,
        "{row}"
    );

    // A shows the room B serves, content and all.
    let shown = get_json(&a, &format!("/admin/api/room?name={room}"));
    assert_eq!(shown["content"]["text"]["content"], "shared", "{shown}");

    // Compact now: the room is due in the compaction queue at once.
    let queued = admin(&a, "POST", &format!("/admin/api/room/compact?name={room}"));
    assert_eq!(queued.status, 202, "{}", queued.text());
    let due = redis.cli(&["ZSCORE", "yws:compact", &room]).unwrap();
    assert!(due.trim().parse::<u64>().is_ok(), "{due}");

    // Kick through A: the request reaches B, whose client is closed with 1012.
    let kicked = admin(&a, "POST", &format!("/admin/api/room/kick?name={room}"));
    assert_eq!(kicked.status, 200, "{}", kicked.text());
    let kicked = json(&kicked);
    assert_eq!(kicked["kicked"], 1, "{kicked}");
    assert_eq!(kicked["here"], 0, "{kicked}");
    assert_eq!(rt.block_on(ws::close_code(&mut on_b.socket)), Some(1012));
    let mut on_b = rt
        .block_on(Follower::connect(&format!("{}/{room}", b.ws_url())))
        .unwrap();
    assert!(rt.block_on(on_b.wait_text(Duration::from_secs(10), |t| t == "shared")));

    // Delete through A closes B's client with 4404.
    let deleted = admin(&a, "DELETE", &format!("/admin/api/room?name={room}"));
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(rt.block_on(ws::close_code(&mut on_b.socket)), Some(4404));
}
