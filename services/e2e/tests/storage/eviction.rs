//! Eviction: an idle room (no entries for `storage.evict_after_ms`, no client anywhere) leaves
//! Redis entirely once its snapshot is stored, and loads cold when it is wanted again — also
//! while evictions race with joins and appends on two gateways.

use std::time::Duration;
use yws_e2e::http;
use yws_e2e::interop;
use yws_e2e::process::ServiceBuilder;
use yws_e2e::redis::RedisServer;
use yws_e2e::redis_keys::RedisKeys;
use yws_e2e::unique_room;

use crate::support::{compactor, gateway, room_keys, Store, PREFIX, WAIT};

/// A compactor that evicts a room one second after its last entry: empty logs are deleted
/// 300 ms after a run.
fn evicting(redis: &RedisServer, store: &Store) -> ServiceBuilder {
    compactor(redis, store)
        .env("YWS__COMPACTOR__CLEANUP_AFTER_MS", 300)
        .env("YWS__COMPACTOR__COMPACT_AFTER_MS", 300)
        .env("YWS__STORAGE__EVICT_AFTER_MS", 1000)
}

fn evictions(service: &yws_e2e::process::Service) -> f64 {
    http::metric(service.addr, "yws_compactor_rooms_evicted_total")
}

#[test]
fn an_idle_room_leaves_redis_entirely_and_loads_cold() {
    let store = Store::s3();
    let redis = RedisServer::start();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let room = unique_room("evicted");
    let compactor = evicting(&redis, &store).spawn();
    let gw = gateway(&redis, &store).spawn();
    let text = interop::write_doc(&gw.ws_url(), &room, "evict me");
    let gone = direct.wait_until(WAIT, |s| room_keys(s, &room).is_empty());
    assert!(gone, "keys left: {:?}", room_keys(&mut direct, &room));
    assert_eq!(evictions(&compactor), 1.0);
    assert_eq!(store.snapshots(&room).len(), 1, "the room is in storage");

    // Every gateway restarted: a new one loads it from storage.
    drop(gw);
    let gw = gateway(&redis, &store).spawn();
    interop::check_doc(&gw.ws_url(), &room, &text);
    assert_eq!(http::metric(gw.addr, "yws_storage_cold_loads_total"), 1.0);
    let more = interop::write_doc(&gw.ws_url(), &room, "; and back");
    assert_eq!(more, format!("{text}; and back"));
}

/// Evictions loop against joins and appends on two gateways: each round writes through one
/// gateway after a pause that lands before, around or after the room's eviction, and every
/// write must find every earlier one (a join that missed an update would write onto a stale
/// document and answer a different text).
#[test]
fn evictions_racing_joins_and_appends_on_two_gateways_lose_nothing() {
    let store = Store::dir("evict-race");
    let redis = RedisServer::start();
    let room = unique_room("evict-race");
    let compactor = evicting(&redis, &store).spawn();
    let short_grace = |b: ServiceBuilder| b.env("YWS__REDIS__UNLOAD_GRACE_MS", 200);
    let gateways = [
        short_grace(gateway(&redis, &store)).spawn(),
        short_grace(gateway(&redis, &store)).spawn(),
    ];
    let mut expected = String::new();
    for round in 0..16u64 {
        let gw = &gateways[(round % 2) as usize];
        std::thread::sleep(Duration::from_millis(round * 150 % 1700));
        let piece = format!("r{round};");
        let text = interop::write_doc(&gw.ws_url(), &room, &piece);
        expected.push_str(&piece);
        assert_eq!(text, expected, "round {round} on {}", gw.name());
    }
    let evicted = evictions(&compactor);
    println!("evictions during 16 rounds: {evicted}");
    assert!(evicted >= 2.0, "the rounds raced evictions: {evicted}");
    for gw in &gateways {
        interop::check_doc(&gw.ws_url(), &room, &expected);
    }
    let fresh = gateway(&redis, &store).spawn();
    interop::check_doc(&fresh.ws_url(), &room, &expected);
}

/// A compactor killed just before it evicts (fault point `before_evict`) leaves the room
/// whole in Redis and queued; another replica evicts it, and it loads cold intact.
#[test]
fn a_crash_before_the_eviction_loses_nothing_and_another_replica_evicts() {
    use std::os::unix::process::ExitStatusExt;
    let store = Store::dir("evict-crash");
    let redis = RedisServer::start();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let room = unique_room("evict-crash");
    let gw = gateway(&redis, &store).spawn();
    let text = interop::write_doc(&gw.ws_url(), &room, "crash before evicting");
    let mut doomed = evicting(&redis, &store)
        .env("YWS_COMPACTOR_FAULT", "before_evict")
        .spawn();
    let status = doomed.wait_exit(WAIT).expect("dies at before_evict");
    assert_eq!(status.signal(), Some(6), "abort(): {status:?}");
    assert!(
        !room_keys(&mut direct, &room).is_empty(),
        "the room is still in Redis"
    );
    assert!(direct.queued(&room).is_some(), "and still queued");
    interop::check_doc(&gw.ws_url(), &room, &text);

    let rescuer = evicting(&redis, &store).spawn();
    let gone = direct.wait_until(WAIT, |s| room_keys(s, &room).is_empty());
    assert!(gone, "keys left: {:?}", room_keys(&mut direct, &room));
    assert_eq!(evictions(&rescuer), 1.0);
    let fresh = gateway(&redis, &store).spawn();
    interop::check_doc(&fresh.ws_url(), &room, &text);
}
