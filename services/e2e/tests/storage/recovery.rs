//! Redis as a cache: after `FLUSHALL` documents come back from storage (once per node however
//! many clients join at once), the document API reads stored rooms, a deleted room's objects
//! go with it, and an unreachable store stops no edits and loses nothing.

use std::time::Duration;
use yws_e2e::docs;
use yws_e2e::http;
use yws_e2e::interop;
use yws_e2e::peer::Peer;
use yws_e2e::process::Service;
use yws_e2e::redis::RedisServer;
use yws_e2e::redis_keys::{now_ms, RedisKeys};
use yws_e2e::unique_room;

use crate::support::{
    compactor, gateway, room_keys, runtime, snap_field, wait_recorded, Store, PREFIX, WAIT,
};

const SYNC_LIMIT: Duration = Duration::from_secs(20);

fn cold_loads(gw: &Service) -> f64 {
    http::metric(gw.addr, "yws_storage_cold_loads_total")
}

#[test]
fn flushall_loses_nothing_compacted_and_rooms_load_cold_once_per_node() {
    let store = Store::s3();
    let redis = RedisServer::start();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let (room, api_room) = (unique_room("flushed"), unique_room("flushed-api"));
    let _compactor = compactor(&redis, &store).spawn();
    let mut gw = gateway(&redis, &store).spawn();
    interop::write_doc(&gw.ws_url(), &room, "first edit; ");
    let text = interop::write_doc(&gw.ws_url(), &room, "second edit");
    let api_text = interop::write_doc(&gw.ws_url(), &api_room, "read through the API");
    let before = wait_recorded(&mut direct, &room, None);
    wait_recorded(&mut direct, &api_room, None);
    gw.kill();

    assert_eq!(
        redis.cli(&["FLUSHALL"]).as_deref().map(str::trim),
        Some("OK")
    );
    assert!(room_keys(&mut direct, &room).is_empty(), "Redis is empty");

    let gw = gateway(&redis, &store).spawn();
    // Eight clients join the cold room at once: one load from storage.
    let rt = runtime();
    let url = format!("{}/{room}", gw.ws_url());
    let texts = rt.block_on(async {
        let joins = (0..8).map(|_| Peer::join(&url, SYNC_LIMIT));
        let peers = futures_util::future::join_all(joins).await;
        let mut texts = Vec::new();
        for (peer, _) in peers {
            texts.push(docs::text(&peer.doc));
            peer.close().await;
        }
        texts
    });
    assert!(
        texts.iter().all(|t| *t == text),
        "every joiner has the document: {texts:?}"
    );
    assert_eq!(
        cold_loads(&gw),
        1.0,
        "concurrent joins on one node load once"
    );
    let epoch: u64 = snap_field(&mut direct, &room, "epoch")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(epoch, before.epoch, "Redis continues from the stored epoch");

    // The document API reads a room that only storage holds.
    let response = http::get(gw.addr, &format!("/api/rooms/{api_room}"));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(docs::text(&docs::doc_from(&response.body)), api_text);
    assert_eq!(cold_loads(&gw), 2.0);

    // Edits go on, and the next compaction writes the next epoch.
    let more = interop::write_doc(&gw.ws_url(), &room, "; after the flush");
    assert_eq!(more, format!("{text}; after the flush"));
    let after = wait_recorded(&mut direct, &room, Some(&before.file_name()));
    assert_eq!(after.epoch, before.epoch + 1);
    interop::check_doc(&gw.ws_url(), &room, &more);
}

#[test]
fn a_deleted_room_loses_its_objects_and_never_comes_back() {
    let store = Store::dir("deleted");
    let redis = RedisServer::start();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let room = unique_room("deleted");
    let _compactor = compactor(&redis, &store).spawn();
    let gw = gateway(&redis, &store).spawn();
    interop::write_doc(&gw.ws_url(), &room, "to be deleted");
    wait_recorded(&mut direct, &room, None);
    assert_eq!(store.snapshots(&room).len(), 1);

    let deleted = http::request(gw.addr, "DELETE", &format!("/api/rooms/{room}"), &[], &[]);
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert!(store.snapshots(&room).is_empty(), "the objects are deleted");
    let response = http::get(gw.addr, &format!("/api/rooms/{room}"));
    assert_eq!(response.status, 404, "{}", response.text());
    interop::check_doc(&gw.ws_url(), &room, "");
    assert_eq!(
        cold_loads(&gw),
        0.0,
        "a deleted room does not load from storage"
    );
}

#[test]
fn an_unreachable_store_stops_no_edits_and_loses_nothing() {
    let mut store = Store::s3();
    let redis = RedisServer::start();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let room = unique_room("unreachable");
    let compactor = compactor(&redis, &store)
        .env("YWS__STORAGE__MAX_RETRIES", 1)
        .env("YWS__STORAGE__RETRY_TIMEOUT_MS", 1000)
        .env("YWS__STORAGE__REQUEST_TIMEOUT_MS", 1000)
        .spawn();
    let gw = gateway(&redis, &store).spawn();
    let ready = |c: &Service| http::get(c.addr, "/readyz").status;
    assert!(yws_e2e::wait_until(WAIT, || ready(&compactor) == 200));

    interop::write_doc(&gw.ws_url(), &room, "stored; ");
    let first = wait_recorded(&mut direct, &room, None);

    let Store::S3(server) = &mut store else {
        unreachable!("an S3 store")
    };
    server.stop();
    assert!(
        yws_e2e::wait_until(WAIT, || ready(&compactor) == 503),
        "the compactor is not ready while the store is unreachable"
    );
    let text = interop::write_doc(&gw.ws_url(), &room, "written while storage is down");
    direct.schedule(&room, now_ms());
    let failed = yws_e2e::wait_until(WAIT, || {
        http::metric(
            compactor.addr,
            "yws_compactor_compactions_total{result=\"failed\"}",
        ) >= 1.0
    });
    assert!(
        failed,
        "compaction fails (and is retried) while the store is down"
    );
    assert_eq!(
        snap_field(&mut direct, &room, "obj"),
        Some(first.file_name()),
        "nothing new recorded"
    );
    interop::check_doc(&gw.ws_url(), &room, &text);

    server.restart();
    assert!(yws_e2e::wait_until(WAIT, || ready(&compactor) == 200));
    let current = wait_recorded(&mut direct, &room, Some(&first.file_name()));
    let object = store.snapshot(&room, &current);
    assert_eq!(docs::text(&docs::doc_from(&object.state)), text);
}
