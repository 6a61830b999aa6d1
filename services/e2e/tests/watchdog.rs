//! The convergence watchdog end to end: an entry that reached a room's log without its live
//! message ever arriving (a pub/sub message lost with no gap to notice, as when a subscription
//! silently stops) reaches the clients of every node within a few watchdog rounds, and the
//! repair is counted. A node with the watchdog off shows what happens without it: nothing ever
//! brings the entry.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use std::time::Duration;
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::redis::RedisServer;
use yws_e2e::redis_keys::RedisKeys;
use yws_e2e::ws::Follower;
use yws_e2e::{http, interop, unique_room};

const REPAIRS: &str = "yws_redis_watchdog_repairs_total";

fn gateway(redis: &RedisServer, watchdog_ms: u64) -> Service {
    ServiceBuilder::gateway()
        .env("REDIS_URL", redis.url())
        .env("YWS__REDIS__WATCHDOG_INTERVAL_MS", watchdog_ms)
        .spawn()
}

#[test]
fn an_entry_whose_live_message_was_lost_reaches_every_node() {
    let redis = RedisServer::start();
    let watched = [gateway(&redis, 300), gateway(&redis, 300)];
    let unwatched = gateway(&redis, 0);
    let room = unique_room("watchdog");
    interop::write_doc(&watched[0].ws_url(), &room, "before; ");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut followers: Vec<Follower> = [&watched[0], &watched[1], &unwatched]
        .iter()
        .map(|gw| {
            rt.block_on(Follower::connect(&format!("{}/{room}", gw.ws_url())))
                .expect("connect a follower")
        })
        .collect();
    for f in &mut followers {
        let ok = rt.block_on(f.wait_text(Duration::from_secs(10), |t| t == "before; "));
        assert!(ok, "the node delivered {:?}", f.text());
    }
    // A healthy room: rounds pass (300 ms each) and nothing needs repairing.
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(1)).await });
    for gw in &watched {
        assert_eq!(http::metric(gw.addr, REPAIRS), 0.0, "{}", gw.addr);
    }

    // The entry lands in the log as a gateway writes it (entry + `meta.last`), unpublished.
    let update = followers[0].append_update("lost");
    let mut keys = RedisKeys::connect(redis.port, "yws");
    let id = keys.append(&room, &update);
    let meta = keys.keys(&room).meta;
    keys.conn.cmd_str(&["HSET", &meta, "last", &id]);

    for f in &mut followers[..2] {
        let ok = rt.block_on(f.wait_text(Duration::from_secs(10), |t| t == "before; lost"));
        assert!(ok, "the watched node delivered {:?}", f.text());
    }
    for gw in &watched {
        assert_eq!(http::metric(gw.addr, REPAIRS), 1.0, "{}", gw.addr);
        assert!(
            gw.logs().contains("watchdog: the room was behind its log"),
            "{}: no log line",
            gw.addr
        );
    }
    // Without the watchdog the node never learns of the entry (no later message shows a gap).
    let unwatched_follower = &mut followers[2];
    let ok = rt.block_on(unwatched_follower.wait_text(Duration::from_secs(3), |t| t != "before; "));
    assert!(
        !ok,
        "delivered without a watchdog: {:?}",
        unwatched_follower.text()
    );
    assert_eq!(http::metric(unwatched.addr, REPAIRS), 0.0);
}
