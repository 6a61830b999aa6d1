//! A 30 MiB update across nodes. Redis closes a pub/sub client whose output buffer passes its
//! limit; an update published whole would pass it on every subscriber at once. Large entries
//! are published by reference (the receivers read them from the log), so here — on a Redis
//! whose pub/sub buffer limit is far below the update — the update reaches the clients of both
//! gateways and no subscription drops.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use std::time::Duration;
use yrs::{ReadTxn, StateVector, Text, Transact};
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::redis::RedisServer;
use yws_e2e::ws::Follower;
use yws_e2e::{http, unique_room};

const BIG: usize = 30 * 1024 * 1024;

fn gateway(redis: &RedisServer) -> Service {
    ServiceBuilder::gateway()
        .env("REDIS_URL", redis.url())
        .spawn()
}

#[test]
fn a_30_mib_update_reaches_every_node_without_dropping_a_subscription() {
    // Hard limit 4 MiB: a subscriber that is sent the update whole is disconnected at once.
    let redis = RedisServer::start_with(&["--client-output-buffer-limit", "pubsub 4mb 2mb 60"]);
    let (a, b) = (gateway(&redis), gateway(&redis));
    let room = unique_room("large");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut followers: Vec<Follower> = [&a, &b]
        .iter()
        .map(|gw| {
            rt.block_on(Follower::connect(&format!("{}/{room}", gw.ws_url())))
                .unwrap()
        })
        .collect();
    for f in &mut followers {
        assert!(rt.block_on(f.wait_text(Duration::from_secs(10), |t| t.is_empty())));
    }

    let doc = yrs::Doc::new();
    let text = doc.get_or_insert_text("text");
    text.insert(&mut doc.transact_mut(), 0, &"x".repeat(BIG));
    let update = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let path = format!("/api/rooms/{room}/update");
    let posted = http::request(a.addr, "POST", &path, &[], &update);
    assert_eq!(posted.status, 200, "{}", posted.text());

    for f in &mut followers {
        let arrived = rt.block_on(f.wait_text(Duration::from_secs(60), |t| t.len() == BIG));
        assert!(arrived, "{} bytes delivered", f.text().len());
    }
    for gw in [&a, &b] {
        let logs = gw.logs();
        assert!(
            !logs.contains("pub/sub connection lost"),
            "{}: the subscription dropped:\n{logs}",
            gw.addr
        );
    }
    // Live delivery still works afterwards on both nodes.
    let small = {
        let sv = doc.transact().state_vector();
        text.insert(&mut doc.transact_mut(), 0, "after;");
        doc.transact().encode_state_as_update_v1(&sv)
    };
    assert_eq!(
        http::request(b.addr, "POST", &path, &[], &small).status,
        200
    );
    for f in &mut followers {
        let arrived =
            rt.block_on(f.wait_text(Duration::from_secs(10), |t| t.starts_with("after;")));
        assert!(arrived, "the small update after the large one");
    }
}
