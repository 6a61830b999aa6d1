//! One compactor and its effects: the log merged into an exact snapshot and trimmed, a late
//! joiner served from the snapshot alone, and empty logs deleted and created again.

use std::time::Duration;
use yrs::updates::decoder::Decode;
use yrs::{Doc, Transact, Update};
use yws_e2e::docs::{same_state, Author};
use yws_e2e::peer::Peer;
use yws_e2e::redis::RedisServer;
use yws_e2e::redis_keys::{now_ms, RedisKeys};
use yws_e2e::unique_room;

use crate::support::{
    compactor, gateway, runtime, send_all, small_edits, wait_fully_compacted, Counts, PREFIX,
    SYNC_LIMIT, WAIT,
};

/// A document holding every update in `updates`.
fn doc_of<'a>(updates: impl IntoIterator<Item = &'a Vec<u8>>) -> Doc {
    let doc = Doc::new();
    {
        let mut txn = doc.transact_mut();
        for u in updates {
            txn.apply_update(Update::decode_v1(u).expect("update decodes"))
                .expect("update applies");
        }
    }
    doc
}

#[test]
fn compaction_merges_the_log_into_an_exact_snapshot_and_trims_it() {
    let redis = RedisServer::start();
    let gw = gateway(&redis).spawn();
    let compactor = compactor(&redis).spawn();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let room = unique_room("merge");
    let author = Author::new(101);
    let updates = small_edits(&author);
    let rt = runtime();
    rt.block_on(async {
        let (mut peer, _) = Peer::join(&format!("{}/{room}", gw.ws_url()), SYNC_LIMIT).await;
        send_all(&mut peer, &updates).await;
        peer.close().await;
    });

    wait_fully_compacted(&mut direct, &room, &author.doc, WAIT);
    let c = Counts::of(&compactor);
    c.assert_clean();
    assert!(c.ok >= 1, "{c:?}");
    assert_eq!(c.takeovers, 0);
    assert_eq!(c.entries_merged, 300, "every entry merged exactly once");
    let bytes: usize = updates.iter().map(Vec::len).sum();
    assert_eq!(c.bytes_merged, bytes as u64);
    assert_eq!(
        direct.meta(&room, "bytes").as_deref(),
        Some("0"),
        "log bytes since the snapshot"
    );
    assert_eq!(direct.meta(&room, "claim"), None, "claim released");
    assert!(!direct.exists(&direct.keys(&room).lease), "lease released");
    let due = direct.queued(&room).expect("still queued, for the cleanup");
    assert!(
        due > now_ms() + 60_000,
        "cleanup is due after cleanup_after_ms"
    );
    println!(
        "300 updates ({bytes} bytes) -> snapshot of {} bytes, {} run(s)",
        direct.snapshot(&room).doc.map_or(0, |d| d.len()),
        c.ok
    );
}

#[test]
fn a_late_joiner_gets_everything_from_the_snapshot_after_every_gateway_restarted() {
    let redis = RedisServer::start();
    let mut g1 = gateway(&redis).spawn();
    let mut g2 = gateway(&redis).spawn();
    let compactor = compactor(&redis).spawn();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let room = unique_room("late");
    let (a1, a2) = (Author::new(201), Author::new(202));
    let (u1, u2) = (small_edits(&a1), small_edits(&a2));
    let rt = runtime();
    rt.block_on(async {
        let (mut p1, _) = Peer::join(&format!("{}/{room}", g1.ws_url()), SYNC_LIMIT).await;
        let (mut p2, _) = Peer::join(&format!("{}/{room}", g2.ws_url()), SYNC_LIMIT).await;
        for (c1, c2) in u1.chunks(30).zip(u2.chunks(30)) {
            send_all(&mut p1, c1).await;
            send_all(&mut p2, c2).await;
        }
        // Each gateway relays the other's updates: both peers end with everything.
        assert!(p1.until(SYNC_LIMIT, |p| p.updates_received >= 600).await);
        p1.close().await;
        p2.close().await;
    });
    let expected = doc_of(u1.iter().chain(&u2));
    wait_fully_compacted(&mut direct, &room, &expected, WAIT);
    Counts::of(&compactor).assert_clean();

    for g in [&mut g1, &mut g2] {
        g.terminate();
        assert!(g
            .wait_exit(Duration::from_secs(15))
            .is_some_and(|s| s.success()));
    }
    assert_eq!(
        direct.log_len(&room),
        0,
        "the state can only come from the snapshot"
    );
    let g3 = gateway(&redis).spawn();
    rt.block_on(async {
        let (peer, took) = Peer::join(&format!("{}/{room}", g3.ws_url()), SYNC_LIMIT).await;
        same_state(&peer.doc, &expected).expect("late joiner holds everything at sync");
        println!("late joiner synced in {took:?} from a snapshot");
        peer.close().await;
    });
}

#[test]
fn empty_logs_are_deleted_after_the_cleanup_delay_and_come_back_with_new_edits() {
    let redis = RedisServer::start();
    let gw = gateway(&redis).spawn();
    let compactor = compactor(&redis)
        .env("YWS__COMPACTOR__CLEANUP_AFTER_MS", 2000)
        .spawn();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let room = unique_room("cleanup");
    let keys = direct.keys(&room);
    let author = Author::new(301);
    let rt = runtime();
    let (mut peer, _) = rt.block_on(Peer::join(&format!("{}/{room}", gw.ws_url()), SYNC_LIMIT));
    rt.block_on(send_all(&mut peer, &author.typing(50)));

    wait_fully_compacted(&mut direct, &room, &author.doc, WAIT);
    let compacted_at = now_ms();
    let epoch = direct.snapshot(&room).epoch;
    if direct.exists(&keys.log) {
        // Compacted but not yet deleted: the cleanup is scheduled, not immediate.
        let due = direct.queued(&room).expect("cleanup queued");
        assert!(
            due + 500 >= compacted_at + 2000,
            "due {due}, compacted at {compacted_at}"
        );
    }
    assert!(
        direct.wait_until(WAIT, |s| !s.exists(&keys.log)),
        "the empty log is deleted"
    );
    assert!(direct.exists(&keys.snap), "the snapshot remains");
    assert_eq!(direct.queued(&room), None, "nothing queued for the room");
    assert_eq!(direct.meta(&room, "last"), None);
    assert!(!direct.exists(&keys.lease));
    assert_eq!(Counts::of(&compactor).logs_deleted, 1);
    let g2 = gateway(&redis).spawn();
    rt.block_on(async {
        let (joiner, _) = Peer::join(&format!("{}/{room}", g2.ws_url()), SYNC_LIMIT).await;
        same_state(&joiner.doc, &author.doc).expect("state from the snapshot alone");
        joiner.close().await;
    });

    // A new edit recreates the log, queues the room, and is compacted in turn.
    rt.block_on(send_all(&mut peer, &author.typing(20)));
    assert!(direct.exists(&keys.log), "the log is back");
    let entries = direct.stored(&room).entries;
    assert_eq!(
        entries.len(),
        20,
        "new entries lie after the snapshot's upto"
    );
    assert!(direct.queued(&room).is_some(), "queued again");
    wait_fully_compacted(&mut direct, &room, &author.doc, WAIT);
    assert!(direct.snapshot(&room).epoch > epoch);
    assert!(
        direct.wait_until(WAIT, |s| !s.exists(&keys.log)),
        "deleted again"
    );
    let c = Counts::of(&compactor);
    c.assert_clean();
    assert_eq!((c.entries_merged, c.logs_deleted), (70, 2), "{c:?}");
    rt.block_on(peer.close());
}
