//! Redis Sentinel (a primary, a replica, three Sentinels): gateways given only
//! `REDIS_SENTINELS` find the primary, and follow a failover — the primary SIGKILLed, or
//! demoted by `SENTINEL FAILOVER` — for writes and live delivery, with npm `y-websocket`
//! writers on two gateways.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use std::time::{Duration, Instant};
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::redis::RedisSentinel;
use yws_e2e::ws::Follower;
use yws_e2e::{http, interop, unique_room, wait_until};

fn gateway(sentinel: &RedisSentinel) -> Service {
    ServiceBuilder::gateway()
        .env("REDIS_SENTINELS", sentinel.sentinels())
        .spawn()
}

/// Both gateways serve the same text, holding every one of `parts`.
fn converged(rt: &tokio::runtime::Runtime, gateways: [&Service; 2], room: &str, parts: &[&str]) {
    let mut texts = Vec::new();
    for gw in gateways {
        let mut f = rt
            .block_on(Follower::connect(&format!("{}/{room}", gw.ws_url())))
            .unwrap();
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let ok = rt.block_on(f.wait_text(Duration::from_secs(20), |t| {
            t.len() == len && parts.iter().all(|p| t.contains(p))
        }));
        assert!(ok, "{}: {:?}", gw.addr, f.text());
        texts.push(f.text());
    }
    assert_eq!(texts[0], texts[1]);
}

/// Returns how long after the fault the Sentinel switched, and both gateways served both edits.
fn failover_then_both_nodes_write(
    sentinel: &mut RedisSentinel,
    fail: impl FnOnce(&mut RedisSentinel),
) -> (f64, f64) {
    let (a, b) = (gateway(sentinel), gateway(sentinel));
    let room = unique_room("sentinel");
    interop::write_doc(&a.ws_url(), &room, "before; ");
    let rt = tokio::runtime::Runtime::new().unwrap();
    converged(&rt, [&a, &b], &room, &["before; "]);

    let old = sentinel.primary.port;
    let started = Instant::now();
    fail(sentinel);
    assert!(
        wait_until(Duration::from_secs(30), || sentinel
            .primary_port()
            .is_some_and(|p| p != old)),
        "the sentinel did not fail over"
    );
    let switched = started.elapsed().as_secs_f64();
    interop::write_doc_when_possible(&a.ws_url(), &room, "after a; ", Duration::from_secs(40));
    interop::write_doc_when_possible(&b.ws_url(), &room, "after b; ", Duration::from_secs(40));
    converged(
        &rt,
        [&a, &b],
        &room,
        &["before; ", "after a; ", "after b; "],
    );
    let served = started.elapsed().as_secs_f64();
    for gw in [&a, &b] {
        assert!(wait_until(Duration::from_secs(10), || http::get(
            gw.addr, "/readyz"
        )
        .status
            == 200));
    }
    (switched, served)
}

#[test]
fn gateways_follow_a_sentinel_failover_after_the_primary_dies() {
    let mut sentinel = RedisSentinel::start();
    let (switched, served) = failover_then_both_nodes_write(&mut sentinel, |s| s.primary.stop());
    println!("primary SIGKILLed: sentinel switched after {switched:.1} s, both gateways served both edits after {served:.1} s");
}

#[test]
fn gateways_follow_a_sentinel_failover_that_demotes_the_primary() {
    let mut sentinel = RedisSentinel::start();
    let (switched, served) = failover_then_both_nodes_write(&mut sentinel, |s| {
        let reply = s
            .cli(&["SENTINEL", "FAILOVER", "mymaster"])
            .unwrap_or_default();
        assert!(reply.contains("OK"), "SENTINEL FAILOVER: {reply}");
    });
    println!("SENTINEL FAILOVER: switched after {switched:.1} s, both gateways served both edits after {served:.1} s");
}
