//! Gateways while compactions rewrite the rooms they serve: joins racing compactions, and a
//! gateway that missed live updates (possibly trimmed from the log meanwhile) catching up.

use std::time::Duration;
use yws_e2e::docs::{self, same_state, Author};
use yws_e2e::peer::Peer;
use yws_e2e::process::Service;
use yws_e2e::redis::RedisServer;
use yws_e2e::redis_keys::RedisKeys;
use yws_e2e::unique_room;

use crate::support::{
    compactor, gateway, runtime, send_all, wait_fully_compacted, Counts, PREFIX, SYNC_LIMIT, WAIT,
};

#[test]
fn joins_racing_compactions_get_the_complete_state() {
    let redis = RedisServer::start();
    let writer_gw = gateway(&redis)
        .env("YWS__REDIS__COMPACT_AFTER_MS", 100)
        .env("YWS__REDIS__COMPACT_MAX_ENTRIES", 30)
        .spawn();
    // Join gateways unload a room 100 ms after its last client left, so nearly every join
    // loads the room from Redis (snapshot + log, 5 entries a page) while compactions rewrite
    // and trim it.
    let join_gws: Vec<Service> = (0..2)
        .map(|_| {
            gateway(&redis)
                .env("YWS__REDIS__UNLOAD_GRACE_MS", 0)
                .env("YWS__REDIS__LOAD_PAGE_ENTRIES", 5)
                .env("YWS__ROOMS__AWARENESS_TIMEOUT_MS", 1000)
                .env("LOG_LEVEL", "info,yws_redis=debug")
                .spawn()
        })
        .collect();
    let compactor = compactor(&redis)
        .env("YWS__COMPACTOR__POLL_INTERVAL_MS", 50)
        .env("YWS__COMPACTOR__COMPACT_AFTER_MS", 100)
        .env("YWS__COMPACTOR__CLEANUP_AFTER_MS", 1000)
        .env("YWS__COMPACTOR__PAGE_ENTRIES", 10)
        .spawn();
    let room = unique_room("race");
    let chunk = |i: usize| format!("<{i}>");
    let rt = runtime();
    let (joins, min_acked) = rt.block_on(async {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let acked = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        // The writer appends numbered chunks; `acked` counts those the gateway echoed (stored).
        let writer = {
            let (acked, stop) = (acked.clone(), stop.clone());
            let url = format!("{}/{room}", writer_gw.ws_url());
            tokio::spawn(async move {
                let author = Author::new(601);
                let (mut peer, _) = Peer::join(&url, SYNC_LIMIT).await;
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    peer.send_update(&author.append(&chunk(i))).await;
                    i += 1;
                    assert!(
                        peer.until(SYNC_LIMIT, |p| p.updates_received >= i as u64)
                            .await
                    );
                    acked.store(i, Ordering::Relaxed);
                }
                peer.close().await;
            })
        };
        while acked.load(Ordering::Relaxed) < 50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut joins = 0;
        let mut min_acked = usize::MAX;
        for round in 0..40 {
            let mut tasks = Vec::new();
            for gw in &join_gws {
                let url = format!("{}/{room}", gw.ws_url());
                let acked = acked.clone();
                tasks.push(tokio::spawn(async move {
                    let before = acked.load(Ordering::Relaxed);
                    let (peer, _) = Peer::join(&url, SYNC_LIMIT).await;
                    let text = docs::text(&peer.doc);
                    peer.close().await;
                    (before, text)
                }));
            }
            for task in tasks {
                let (before, text) = task.await.expect("joiner");
                let n = text.matches('<').count();
                let whole: String = (0..n).map(chunk).collect();
                assert_eq!(text, whole, "round {round}: a gap in the joined text");
                assert!(
                    n >= before,
                    "round {round}: {n} chunks at sync, {before} were stored before joining"
                );
                joins += 1;
                min_acked = min_acked.min(before);
            }
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        stop.store(true, Ordering::Relaxed);
        writer.await.expect("writer");
        (joins, min_acked)
    });
    let c = Counts::of(&compactor);
    c.assert_clean();
    let reloads: usize = join_gws
        .iter()
        .map(|g| g.logs().matches("snapshot changed during load").count())
        .sum();
    println!(
        "{joins} joins (each after >= {min_acked} stored chunks) during {} compactions; {reloads} loads restarted because a snapshot was written meanwhile",
        c.ok
    );
    assert!(c.ok >= 10, "joins raced many compactions: {c:?}");
}

/// The id of the one client subscribed to a channel (a gateway's pub/sub connection).
fn pubsub_client(direct: &mut RedisKeys) -> String {
    let list = direct
        .conn
        .cmd_str(&["CLIENT", "LIST"])
        .text()
        .expect("CLIENT LIST");
    let subscribed: Vec<&str> = list
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .any(|f| f.starts_with("sub=") && f != "sub=0")
        })
        .collect();
    assert_eq!(subscribed.len(), 1, "{list}");
    let id = subscribed[0].split_whitespace().next().expect("id field");
    id.strip_prefix("id=").expect("id=").to_string()
}

/// A gateway (B) whose pub/sub connection drops while another gateway's client edits; with
/// `compact`, a compaction folds those edits into a snapshot and trims them from the log
/// before B is back. B must then catch up and relay everything to its client.
fn missed_live_updates(compact: bool) {
    let redis = RedisServer::start();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let _compactor = compact.then(|| {
        compactor(&redis)
            .env("YWS__COMPACTOR__POLL_INTERVAL_MS", 50)
            .env("YWS__COMPACTOR__COMPACT_AFTER_MS", 200)
            .spawn()
    });
    let a = gateway(&redis)
        .env("YWS__REDIS__COMPACT_AFTER_MS", 200)
        .spawn();
    let b = gateway(&redis)
        .env("YWS__REDIS__COMPACT_AFTER_MS", 200)
        .spawn();
    let room = unique_room("gap");
    let author = Author::new(901);
    let rt = runtime();
    let (mut pb, _) = rt.block_on(Peer::join(&format!("{}/{room}", b.ws_url()), SYNC_LIMIT));
    let b_pubsub = pubsub_client(&mut direct);
    let (mut pa, _) = rt.block_on(Peer::join(&format!("{}/{room}", a.ws_url()), SYNC_LIMIT));
    rt.block_on(async {
        send_all(&mut pa, &[author.append("live ")]).await;
        assert!(
            pb.until(SYNC_LIMIT, |p| p.updates_received >= 1).await,
            "B relays live"
        );
    });

    // B's pub/sub connection drops while B is frozen; meanwhile A's client edits.
    yws_e2e::process::signal(b.pid(), "STOP");
    direct.conn.cmd_str(&["CLIENT", "KILL", "ID", &b_pubsub]);
    rt.block_on(send_all(&mut pa, &author.typing(20)));
    if compact {
        wait_fully_compacted(&mut direct, &room, &author.doc, WAIT);
    } else {
        assert_eq!(direct.log_len(&room), 21);
    }
    yws_e2e::process::signal(b.pid(), "CONT");
    assert!(
        b.wait_for_log("pub/sub connection lost", Duration::from_secs(10)),
        "B noticed the dropped connection"
    );
    // One more edit after B is back: B sees a gap and catches up.
    rt.block_on(async {
        send_all(&mut pa, &[author.append(" after")]).await;
        let complete = pb
            .until(Duration::from_secs(10), |p| same_state(&p.doc, &author.doc).is_ok())
            .await;
        assert!(
            complete,
            "B's client lacks the edits made while B's pub/sub was down: it has {:?} ({} updates received), expected {:?}; {:?}",
            docs::text(&pb.doc),
            pb.updates_received,
            docs::text(&author.doc),
            same_state(&pb.doc, &author.doc)
        );
    });
}

#[test]
fn a_gateway_that_missed_live_updates_catches_up_from_the_log() {
    missed_live_updates(false);
}

#[test]
fn a_gateway_that_missed_live_updates_catches_up_after_a_compaction_trimmed_them() {
    missed_live_updates(true);
}
