//! Rate limits (`[rate_limit]`) on a real gateway: a connection over its rate is paced — the
//! gateway stops reading from it, nothing it sent is lost — a connection that stays over it is
//! closed with 1008, and a room's limit paces all its connections together.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use std::time::{Duration, Instant};
use yrs::{ReadTxn, Text, Transact};
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::ws::{self, Follower};
use yws_e2e::{http, unique_room};
use yws_protocol::encode;

fn gateway(limits: &[(&str, u64)]) -> Service {
    let mut builder = ServiceBuilder::gateway();
    for (key, value) in limits {
        builder = builder.env(&format!("YWS__RATE_LIMIT__{key}"), value);
    }
    builder.spawn()
}

/// `n` update frames, each typing one more `x` (one y-websocket message per frame).
fn typing(n: usize) -> Vec<Vec<u8>> {
    let doc = yrs::Doc::new();
    let text = doc.get_or_insert_text("text");
    (0..n)
        .map(|i| {
            let sv = doc.transact().state_vector();
            text.insert(&mut doc.transact_mut(), i as u32, "x");
            encode::update(&doc.transact().encode_state_as_update_v1(&sv))
        })
        .collect()
}

fn throttled(gw: &Service, scope: &str) -> f64 {
    http::metric(
        gw.addr,
        &format!("yws_gateway_throttled_frames_total{{scope=\"{scope}\"}}"),
    )
}

#[test]
fn a_connection_over_its_rate_is_paced_and_loses_nothing() {
    // 20 messages/s with a 1 s burst: 60 messages take at least 2 s to be read.
    let gw = gateway(&[
        ("CONN_MESSAGES_PER_SEC", 20),
        ("BURST_MS", 1000),
        ("MAX_THROTTLED_MS", 10_000),
    ]);
    let room = unique_room("paced");
    let url = format!("{}/{room}", gw.ws_url());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut follower = rt.block_on(Follower::connect(&url)).unwrap();
    let started = Instant::now();
    let mut writer = rt.block_on(ws::connect(&url)).unwrap();
    for frame in typing(60) {
        rt.block_on(ws::send(&mut writer, frame));
    }
    let all = "x".repeat(60);
    assert!(rt.block_on(follower.wait_text(Duration::from_secs(20), |t| t == all)));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "read faster than the limit: {took:?}"
    );
    assert!(throttled(&gw, "connection") > 0.0);
    // Paced, not closed.
    assert_eq!(
        http::metric(
            gw.addr,
            "yws_gateway_connections_closed_total{reason=\"policy_violation\"}"
        ),
        0.0
    );
}

#[test]
fn a_connection_that_stays_over_its_rate_is_closed_with_1008() {
    let gw = gateway(&[
        ("CONN_MESSAGES_PER_SEC", 20),
        ("BURST_MS", 1000),
        ("MAX_THROTTLED_MS", 1500),
    ]);
    let room = unique_room("flood");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut writer = rt
        .block_on(ws::connect(&format!("{}/{room}", gw.ws_url())))
        .unwrap();
    // Far more than 1.5 s of the rate, sent at once.
    for frame in typing(200) {
        rt.block_on(ws::send(&mut writer, frame));
    }
    assert_eq!(rt.block_on(ws::close_code(&mut writer)), Some(1008));
    assert!(gw.wait_for_log("over the rate limits for too long", Duration::from_secs(5)));
    // Other rooms carry on.
    let other = format!("{}/{}", gw.ws_url(), unique_room("other"));
    let mut bystander = rt.block_on(Follower::connect(&other)).unwrap();
    let mut typist = rt.block_on(ws::connect(&other)).unwrap();
    for frame in typing(3) {
        rt.block_on(ws::send(&mut typist, frame));
    }
    assert!(rt.block_on(bystander.wait_text(Duration::from_secs(10), |t| t == "xxx")));
}

#[test]
fn a_rooms_limit_paces_its_connections_together() {
    // No limit per connection; the room allows 20 messages/s on this node.
    let gw = gateway(&[("ROOM_MESSAGES_PER_SEC", 20), ("BURST_MS", 1000)]);
    let room = unique_room("room-paced");
    let url = format!("{}/{room}", gw.ws_url());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut follower = rt.block_on(Follower::connect(&url)).unwrap();
    // Two writers of 30 edits each, different clients (each its own document).
    let mut writers: Vec<_> = (0..2)
        .map(|_| rt.block_on(ws::connect(&url)).unwrap())
        .collect();
    let batches = [typing(30), typing(30)];
    for (writer, batch) in writers.iter_mut().zip(batches) {
        for frame in batch {
            rt.block_on(ws::send(writer, frame));
        }
    }
    assert!(rt.block_on(follower.wait_text(Duration::from_secs(20), |t| t.len() == 60)));
    assert!(throttled(&gw, "room") > 0.0);
    assert_eq!(throttled(&gw, "connection"), 0.0);
}
