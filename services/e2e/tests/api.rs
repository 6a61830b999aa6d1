//! The document HTTP API against real gateways (standalone, persisted and clustered) and the
//! npm client on the other side.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use serde_json::Value;
use std::time::Duration;
use yrs::updates::decoder::Decode;
use yrs::{GetString, ReadTxn, StateVector, Text, Transact, Update};
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::redis::RedisServer;
use yws_e2e::ws::{self, Follower};
use yws_e2e::{http, interop, unique_room};

fn text_of(update: &[u8]) -> String {
    let doc = yrs::Doc::new();
    doc.transact_mut()
        .apply_update(Update::decode_v1(update).unwrap())
        .unwrap();
    let text = doc.get_or_insert_text("text");
    let s = text.get_string(&doc.transact());
    s
}

/// An update that appends `s` to the `text` of a document whose state is `state`.
fn append_update(state: &[u8], s: &str) -> Vec<u8> {
    let doc = yrs::Doc::new();
    doc.transact_mut()
        .apply_update(Update::decode_v1(state).unwrap())
        .unwrap();
    let text = doc.get_or_insert_text("text");
    let sv = doc.transact().state_vector();
    let len = text.len(&doc.transact());
    text.insert(&mut doc.transact_mut(), len, s);
    let update = doc.transact().encode_state_as_update_v1(&sv);
    update
}

fn get_state(gw: &Service, room: &str) -> http::Response {
    http::get(gw.addr, &format!("/api/rooms/{room}"))
}

#[test]
fn read_write_delete_and_list_on_a_standalone_node() {
    let gw = ServiceBuilder::gateway()
        .env("YWS__SERVER__MAX_MESSAGE_BYTES", 4096)
        .spawn();
    let room = unique_room("api");
    assert_eq!(get_state(&gw, &room).status, 404);

    let text = interop::write_doc(&gw.ws_url(), &room, "hello from a client");
    let response = get_state(&gw, &room);
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(text_of(&response.body), text);

    let json = http::get(
        gw.addr,
        &format!("/api/rooms/{room}?objects=%7B%22text%22%3A%22Text%22%7D"),
    );
    assert_eq!(json.status, 200, "{}", json.text());
    let body: Value = serde_json::from_slice(&json.body).unwrap();
    assert_eq!(body["data"]["text"]["content"], Value::String(text.clone()));
    assert_eq!(body["data"]["text"]["type"], "Text");

    // A posted update reaches a connected client, and a later client's sync.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut follower = rt
        .block_on(Follower::connect(&format!("{}/{room}", gw.ws_url())))
        .unwrap();
    let update = append_update(&response.body, " + posted");
    let posted = http::request(
        gw.addr,
        "POST",
        &format!("/api/rooms/{room}/update"),
        &[],
        &update,
    );
    assert_eq!(posted.status, 200, "{}", posted.text());
    let expected = format!("{text} + posted");
    assert!(
        rt.block_on(follower.wait_text(Duration::from_secs(10), |t| t == expected)),
        "got {:?}",
        follower.text()
    );
    interop::expect_pass(
        "check-doc",
        &[gw.ws_url()],
        &["--room", &room, "--expect-text", &expected],
    );

    // Bad input is refused with a reason; too large is 413.
    let bad = http::request(
        gw.addr,
        "POST",
        &format!("/api/rooms/{room}/update"),
        &[],
        &[1, 2, 3],
    );
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("error"));
    let big = http::request(
        gw.addr,
        "POST",
        &format!("/api/rooms/{room}/update"),
        &[],
        &vec![0u8; 8192],
    );
    assert_eq!(big.status, 413);
    assert_eq!(http::get(gw.addr, "/api/rooms/a%0Ab").status, 400);
    assert_eq!(
        http::get(gw.addr, &format!("/api/rooms/{room}?objects=nope")).status,
        400
    );

    // Listing shows the room and its connection.
    let list: Value =
        serde_json::from_slice(&http::get(gw.addr, "/api/rooms?limit=1000").body).unwrap();
    let entry = list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == room.as_str())
        .cloned()
        .unwrap();
    assert_eq!(entry["connections"], 1);
    assert_eq!(http::get(gw.addr, "/api/rooms?limit=0").status, 400);

    // Deleting closes the connected client with 4404 and removes the state.
    let deleted = http::request(gw.addr, "DELETE", &format!("/api/rooms/{room}"), &[], &[]);
    assert_eq!(deleted.status, 204);
    assert_eq!(
        rt.block_on(ws::close_code(&mut follower.socket)),
        Some(4404)
    );
    assert_eq!(get_state(&gw, &room).status, 404);
}

#[test]
fn the_api_spans_the_cluster() {
    let redis = RedisServer::start();
    let a = ServiceBuilder::gateway()
        .env("REDIS_URL", redis.url())
        .spawn();
    let b = ServiceBuilder::gateway()
        .env("REDIS_URL", redis.url())
        .spawn();
    let room = unique_room("api-cluster");
    let text = interop::write_doc(&a.ws_url(), &room, "written on a");
    // Node b has never served the room: it loads it from Redis to answer.
    assert_eq!(text_of(&get_state(&b, &room).body), text);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut on_b = rt
        .block_on(Follower::connect(&format!("{}/{room}", b.ws_url())))
        .unwrap();
    let update = append_update(&get_state(&a, &room).body, "; posted on a");
    assert_eq!(
        http::request(
            a.addr,
            "POST",
            &format!("/api/rooms/{room}/update"),
            &[],
            &update
        )
        .status,
        200
    );
    let expected = format!("{text}; posted on a");
    assert!(
        rt.block_on(on_b.wait_text(Duration::from_secs(10), |t| t == expected)),
        "got {:?}",
        on_b.text()
    );

    // The cluster-wide listing counts b's connection (presence is reported every 5 s).
    assert!(yws_e2e::wait_until(Duration::from_secs(15), || {
        let list: Value =
            serde_json::from_slice(&http::get(a.addr, "/api/rooms").body).unwrap_or_default();
        list["rooms"].as_array().is_some_and(|rooms| {
            rooms
                .iter()
                .any(|r| r["name"] == room.as_str() && r["connections"] == 1)
        })
    }));

    // Deleting on a closes b's client with 4404 and removes the room's state from Redis.
    assert_eq!(
        http::request(a.addr, "DELETE", &format!("/api/rooms/{room}"), &[], &[]).status,
        204
    );
    assert_eq!(rt.block_on(ws::close_code(&mut on_b.socket)), Some(4404));
    assert_eq!(get_state(&b, &room).status, 404);
    let keys = redis
        .cli(&["--scan", "--pattern", &format!("yws:{{{room}}}:*")])
        .unwrap();
    // Only the tombstone is left: the room's deletion generation.
    assert_eq!(
        keys.trim(),
        format!("yws:{{{room}}}:gen"),
        "keys left: {keys}"
    );
    // A fresh client on b starts from an empty room.
    interop::expect_pass(
        "check-doc",
        &[b.ws_url()],
        &["--room", &room, "--expect-text", ""],
    );
}

#[test]
fn the_api_uses_the_websocket_authentication() {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let secret = "api-test-secret";
    let gw = ServiceBuilder::gateway()
        .env("AUTH_JWT_SECRET", secret)
        .spawn();
    let mint_claims = |mut claims: Value| {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 300;
        claims["exp"] = exp.into();
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let mint = |rooms: &[&str], access: &str| {
        mint_claims(serde_json::json!({ "rooms": rooms, "access": access }))
    };
    let room = unique_room("api-auth");
    let reader = format!("Bearer {}", mint(&[&room], "read"));
    let writer = format!("Bearer {}", mint(&[&room], "rw"));
    let update = append_update(
        &yrs::Doc::new()
            .transact()
            .encode_state_as_update_v1(&StateVector::default()),
        "x",
    );
    let path = format!("/api/rooms/{room}/update");
    assert_eq!(
        http::request(gw.addr, "POST", &path, &[], &update).status,
        401
    );
    assert_eq!(
        http::request(
            gw.addr,
            "POST",
            &path,
            &[("Authorization", &reader)],
            &update
        )
        .status,
        403
    );
    assert_eq!(
        http::request(
            gw.addr,
            "POST",
            &path,
            &[("Authorization", &writer)],
            &update
        )
        .status,
        200
    );
    let read = http::request(
        gw.addr,
        "GET",
        &format!("/api/rooms/{room}"),
        &[("Authorization", &reader)],
        &[],
    );
    assert_eq!(text_of(&read.body), "x");
    // Listing needs the admin claim: not even access to every room is enough.
    for token in [&writer, &format!("Bearer {}", mint(&["*"], "rw"))] {
        assert_eq!(
            http::request(
                gw.addr,
                "GET",
                "/api/rooms",
                &[("Authorization", token)],
                &[]
            )
            .status,
            403
        );
    }
    let admin = format!(
        "Bearer {}",
        mint_claims(serde_json::json!({ "admin": true }))
    );
    assert_eq!(
        http::request(
            gw.addr,
            "GET",
            "/api/rooms",
            &[("Authorization", &admin)],
            &[]
        )
        .status,
        200
    );
}

#[test]
fn deleting_a_persisted_room_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("yws-api-persist-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let room = unique_room("api-persist");
    let mut gw = ServiceBuilder::gateway()
        .env("YPERSISTENCE", dir.display())
        .spawn();
    interop::write_doc(&gw.ws_url(), &room, "to be deleted");
    let other = unique_room("api-keep");
    let kept = interop::write_doc(&gw.ws_url(), &other, "to be kept");
    let list: Value = serde_json::from_slice(&http::get(gw.addr, "/api/rooms").body).unwrap();
    assert!(list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == other.as_str()));
    assert_eq!(
        http::request(gw.addr, "DELETE", &format!("/api/rooms/{room}"), &[], &[]).status,
        204
    );
    gw.terminate();
    assert!(gw.wait_exit(Duration::from_secs(15)).unwrap().success());
    let gw = ServiceBuilder::gateway()
        .env("YPERSISTENCE", dir.display())
        .spawn();
    assert_eq!(get_state(&gw, &room).status, 404);
    assert_eq!(text_of(&get_state(&gw, &other).body), kept);
}
