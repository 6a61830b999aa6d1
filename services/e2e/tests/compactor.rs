//! `yws-compactor` against a real `redis-server`, real gateways and real clients: merged
//! snapshots are exact and logs are trimmed, late joiners get everything from a snapshot,
//! replicas never hold a room at once, a crash at any step loses nothing and is finished by
//! another replica, joins racing compactions get the complete state, empty logs disappear and
//! come back, and a 20 MiB document is compacted in bounded memory.
//!
//! Rooms are written either through a gateway by [`Peer`]s or straight into the stream
//! ([`Store::append`]) when a test needs exact control; the source of truth is always a yrs
//! document ([`Author`]) compared with what Redis or a joining client holds.
// Real processes and Redis are polled from plain threads here: `std::thread::sleep` is fine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods
)]

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};
use yrs::updates::decoder::Decode;
use yrs::{Doc, Transact, Update};
use yws_e2e::docs::{self, same_state, Author};
use yws_e2e::metrics::{peak_rss_bytes, sample};
use yws_e2e::monitor::Monitor;
use yws_e2e::peer::Peer;
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::redis::RedisServer;
use yws_e2e::store::{now_ms, Store};
use yws_e2e::{http, interop, leases, unique_room};

const PREFIX: &str = "yws";
const SYNC_LIMIT: Duration = Duration::from_secs(20);
const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A gateway on `redis` that queues a new log for compaction 500 ms after creating it.
fn gateway(redis: &RedisServer) -> ServiceBuilder {
    ServiceBuilder::gateway()
        .env("REDIS_URL", redis.url())
        .env("YWS__REDIS__COMPACT_AFTER_MS", 500)
}

/// A compactor on `redis`: polls every 100 ms, 7 s leases, no cleanup within a test's time
/// unless a test asks for it.
fn compactor(redis: &RedisServer) -> ServiceBuilder {
    ServiceBuilder::compactor()
        .env("REDIS_URL", redis.url())
        .env("YWS__COMPACTOR__POLL_INTERVAL_MS", 100)
        .env("YWS__COMPACTOR__COMPACT_AFTER_MS", 500)
        .env("YWS__COMPACTOR__CLEANUP_AFTER_MS", 600_000)
        .env("YWS__COMPACTOR__LEASE_MS", 7000)
        .env("YWS__REDIS__COMMAND_TIMEOUT_MS", 2000)
}

/// The compactor's counters, from one scrape.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    ok: u64,
    nothing: u64,
    failed: u64,
    stale: u64,
    lease_lost: u64,
    takeovers: u64,
    entries_merged: u64,
    bytes_merged: u64,
    logs_deleted: u64,
}

impl Counts {
    fn of(service: &Service) -> Counts {
        let text = http::get(service.addr, "/metrics").text();
        let get = |series: &str| sample(&text, series).unwrap_or(0.0) as u64;
        let result = |r: &str| {
            get(&format!(
                "yws_compactor_compactions_total{{result=\"{r}\"}}"
            ))
        };
        Counts {
            ok: result("ok"),
            nothing: result("nothing"),
            failed: result("failed"),
            stale: result("stale"),
            lease_lost: result("lease_lost"),
            takeovers: get("yws_compactor_lease_takeovers_total"),
            entries_merged: get("yws_compactor_entries_merged_total"),
            bytes_merged: get("yws_compactor_log_bytes_merged_total"),
            logs_deleted: get("yws_compactor_logs_deleted_total"),
        }
    }

    fn sum(all: &[Counts]) -> Counts {
        all.iter().fold(Counts::default(), |a, c| Counts {
            ok: a.ok + c.ok,
            nothing: a.nothing + c.nothing,
            failed: a.failed + c.failed,
            stale: a.stale + c.stale,
            lease_lost: a.lease_lost + c.lease_lost,
            takeovers: a.takeovers + c.takeovers,
            entries_merged: a.entries_merged + c.entries_merged,
            bytes_merged: a.bytes_merged + c.bytes_merged,
            logs_deleted: a.logs_deleted + c.logs_deleted,
        })
    }

    /// No task failed, was refused as stale, or lost its lease.
    fn assert_clean(&self) {
        assert_eq!(
            (self.failed, self.stale, self.lease_lost),
            (0, 0, 0),
            "failed / stale / lease_lost: {self:?}"
        );
    }
}

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

/// Waits until the room's log is empty (or gone) and its snapshot alone equals `expected`.
fn wait_fully_compacted(store: &mut Store, room: &str, expected: &Doc, timeout: Duration) {
    let mut last = String::new();
    let done = store.wait_until(timeout, |s| {
        let stored = s.stored(room);
        let Some(doc) = &stored.snapshot.doc else {
            last = "no snapshot yet".into();
            return false;
        };
        if s.log_len(room) != 0 {
            last = format!("{} log entries left", s.log_len(room));
            return false;
        }
        match same_state(&docs::doc_from(doc), expected) {
            Ok(()) => true,
            Err(e) => {
                last = format!("snapshot: {e}");
                false
            }
        }
    });
    assert!(
        done,
        "{room} not fully compacted within {timeout:?}: {last}"
    );
}

/// Sends `updates` through `peer` and waits until the gateway echoed all of them (so they
/// are in the log).
async fn send_all(peer: &mut Peer, updates: &[Vec<u8>]) {
    let before = peer.updates_received;
    for u in updates {
        peer.send_update(u).await;
    }
    let n = before + updates.len() as u64;
    assert!(
        peer.until(SYNC_LIMIT, |p| p.updates_received >= n).await,
        "gateway echoed {} of {} updates",
        peer.updates_received - before,
        updates.len()
    );
}

/// 300 small edits: typing with backspaces, and a map entry every tenth edit.
fn small_edits(author: &Author) -> Vec<Vec<u8>> {
    let mut updates = Vec::new();
    for (i, u) in author.typing(270).into_iter().enumerate() {
        updates.push(u);
        if i % 9 == 8 {
            updates.push(author.set(&format!("k{}", i % 7), &format!("v{i}")));
        }
    }
    assert_eq!(updates.len(), 300);
    updates
}

#[test]
fn compaction_merges_the_log_into_an_exact_snapshot_and_trims_it() {
    let redis = RedisServer::start();
    let gw = gateway(&redis).spawn();
    let compactor = compactor(&redis).spawn();
    let mut store = Store::connect(redis.port, PREFIX);
    let room = unique_room("merge");
    let author = Author::new(101);
    let updates = small_edits(&author);
    let rt = runtime();
    rt.block_on(async {
        let (mut peer, _) = Peer::join(&format!("{}/{room}", gw.ws_url()), SYNC_LIMIT).await;
        send_all(&mut peer, &updates).await;
        peer.close().await;
    });

    wait_fully_compacted(&mut store, &room, &author.doc, WAIT);
    let c = Counts::of(&compactor);
    c.assert_clean();
    assert!(c.ok >= 1, "{c:?}");
    assert_eq!(c.takeovers, 0);
    assert_eq!(c.entries_merged, 300, "every entry merged exactly once");
    let bytes: usize = updates.iter().map(Vec::len).sum();
    assert_eq!(c.bytes_merged, bytes as u64);
    assert_eq!(
        store.meta(&room, "bytes").as_deref(),
        Some("0"),
        "log bytes since the snapshot"
    );
    assert_eq!(store.meta(&room, "claim"), None, "claim released");
    assert!(!store.exists(&store.keys(&room).lease), "lease released");
    let due = store.queued(&room).expect("still queued, for the cleanup");
    assert!(
        due > now_ms() + 60_000,
        "cleanup is due after cleanup_after_ms"
    );
    println!(
        "300 updates ({bytes} bytes) -> snapshot of {} bytes, {} run(s)",
        store.snapshot(&room).doc.map_or(0, |d| d.len()),
        c.ok
    );
}

#[test]
fn a_late_joiner_gets_everything_from_the_snapshot_after_every_gateway_restarted() {
    let redis = RedisServer::start();
    let mut g1 = gateway(&redis).spawn();
    let mut g2 = gateway(&redis).spawn();
    let compactor = compactor(&redis).spawn();
    let mut store = Store::connect(redis.port, PREFIX);
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
    wait_fully_compacted(&mut store, &room, &expected, WAIT);
    Counts::of(&compactor).assert_clean();

    for g in [&mut g1, &mut g2] {
        g.terminate();
        assert!(g
            .wait_exit(Duration::from_secs(15))
            .is_some_and(|s| s.success()));
    }
    assert_eq!(
        store.log_len(&room),
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
    let mut store = Store::connect(redis.port, PREFIX);
    let room = unique_room("cleanup");
    let keys = store.keys(&room);
    let author = Author::new(301);
    let rt = runtime();
    let (mut peer, _) = rt.block_on(Peer::join(&format!("{}/{room}", gw.ws_url()), SYNC_LIMIT));
    rt.block_on(send_all(&mut peer, &author.typing(50)));

    wait_fully_compacted(&mut store, &room, &author.doc, WAIT);
    let compacted_at = now_ms();
    let epoch = store.snapshot(&room).epoch;
    if store.exists(&keys.log) {
        // Compacted but not yet deleted: the cleanup is scheduled, not immediate.
        let due = store.queued(&room).expect("cleanup queued");
        assert!(
            due + 500 >= compacted_at + 2000,
            "due {due}, compacted at {compacted_at}"
        );
    }
    assert!(
        store.wait_until(WAIT, |s| !s.exists(&keys.log)),
        "the empty log is deleted"
    );
    assert!(store.exists(&keys.snap), "the snapshot remains");
    assert_eq!(store.queued(&room), None, "nothing queued for the room");
    assert_eq!(store.meta(&room, "last"), None);
    assert!(!store.exists(&keys.lease));
    assert_eq!(Counts::of(&compactor).logs_deleted, 1);
    let g2 = gateway(&redis).spawn();
    rt.block_on(async {
        let (joiner, _) = Peer::join(&format!("{}/{room}", g2.ws_url()), SYNC_LIMIT).await;
        same_state(&joiner.doc, &author.doc).expect("state from the snapshot alone");
        joiner.close().await;
    });

    // A new edit recreates the log, queues the room, and is compacted in turn.
    rt.block_on(send_all(&mut peer, &author.typing(20)));
    assert!(store.exists(&keys.log), "the log is back");
    let entries = store.stored(&room).entries;
    assert_eq!(
        entries.len(),
        20,
        "new entries lie after the snapshot's upto"
    );
    assert!(store.queued(&room).is_some(), "queued again");
    wait_fully_compacted(&mut store, &room, &author.doc, WAIT);
    assert!(store.snapshot(&room).epoch > epoch);
    assert!(
        store.wait_until(WAIT, |s| !s.exists(&keys.log)),
        "deleted again"
    );
    let c = Counts::of(&compactor);
    c.assert_clean();
    assert_eq!((c.entries_merged, c.logs_deleted), (70, 2), "{c:?}");
    rt.block_on(peer.close());
}

/// Kills a compactor at `point` (via `YWS_COMPACTOR_FAULT`, which aborts the process) in a
/// room of 300 entries read in pages of 50, checks nothing was lost, and lets a second
/// compactor take over and finish.
fn crash_at(point: &str) {
    let redis = RedisServer::start();
    let mut store = Store::connect(redis.port, PREFIX);
    let room = unique_room(point);
    let keys = store.keys(&room);
    let author = Author::new(401);
    let updates = small_edits(&author);
    let mut last_id = String::new();
    for u in &updates {
        last_id = store.append(&room, u);
    }
    store.schedule(&room, now_ms());
    let paged = |b: ServiceBuilder| b.env("YWS__COMPACTOR__PAGE_ENTRIES", 50);

    let mut doomed = paged(compactor(&redis))
        .env("YWS_COMPACTOR_FAULT", point)
        .spawn();
    let status = doomed
        .wait_exit(WAIT)
        .expect("the compactor dies at the fault point");
    assert_eq!(status.signal(), Some(6), "abort(): {status:?}");
    assert!(doomed.logs().contains("aborting at fault point"));

    // Nothing lost: snapshot + remaining log hold every update.
    let stored = store.stored(&room);
    same_state(&stored.doc(), &author.doc).expect("snapshot + log after the crash");
    let snap = &stored.snapshot;
    let (expect_upto, expect_len) = match point {
        "before_write" => (None, 300),
        "after_write" => (Some(last_id.as_str()), 300),
        "during_trim" => (Some(last_id.as_str()), 250),
        "after_trim" => (Some(last_id.as_str()), 0),
        other => panic!("unknown point {other}"),
    };
    assert_eq!(snap.upto.as_deref(), expect_upto, "snapshot coverage");
    assert_eq!(store.log_len(&room), expect_len, "log after the crash");
    assert!(
        store.meta(&room, "claim").is_some(),
        "the dead replica's claim remains"
    );
    assert!(store.exists(&keys.lease), "its lease has not expired yet");
    let rt = runtime();
    let gw = gateway(&redis).spawn();
    rt.block_on(async {
        let (joiner, _) = Peer::join(&format!("{}/{room}", gw.ws_url()), SYNC_LIMIT).await;
        same_state(&joiner.doc, &author.doc).expect("a joiner right after the crash");
        joiner.close().await;
    });

    let rescuer = paged(compactor(&redis)).spawn();
    let mut counts = Counts::default();
    let finished = store.wait_until(WAIT, |s| {
        counts = Counts::of(&rescuer);
        counts.ok + counts.nothing >= 1 && s.log_len(&room) == 0 && s.meta(&room, "claim").is_none()
    });
    assert!(finished, "the rescuer finished the task: {counts:?}");
    wait_fully_compacted(&mut store, &room, &author.doc, Duration::from_secs(1));
    counts.assert_clean();
    assert_eq!(
        counts.takeovers, 1,
        "the dead replica held a lease: {counts:?}"
    );
    if point == "before_write" {
        assert_eq!((counts.ok, counts.entries_merged), (1, 300), "{counts:?}");
    } else {
        // The snapshot was already written: only the trim is left, and the empty log goes.
        assert_eq!(
            (counts.nothing, counts.entries_merged),
            (1, 0),
            "{counts:?}"
        );
    }
    assert_eq!(
        store.snapshot(&room).upto.as_deref(),
        Some(last_id.as_str())
    );
    rt.block_on(async {
        let (joiner, _) = Peer::join(&format!("{}/{room}", gw.ws_url()), SYNC_LIMIT).await;
        same_state(&joiner.doc, &author.doc).expect("a joiner after the takeover");
        joiner.close().await;
    });
}

#[test]
fn crash_before_write_loses_nothing_and_is_taken_over() {
    crash_at("before_write");
}

#[test]
fn crash_after_write_loses_nothing_and_is_taken_over() {
    crash_at("after_write");
}

#[test]
fn crash_during_trim_loses_nothing_and_is_taken_over() {
    crash_at("during_trim");
}

#[test]
fn crash_after_trim_loses_nothing_and_is_taken_over() {
    crash_at("after_trim");
}

/// `n` rooms of `updates` typing edits each, written straight into their logs and all due now.
fn fill_rooms(store: &mut Store, n: usize, updates: usize, tag: &str) -> Vec<(String, Author)> {
    (0..n)
        .map(|i| {
            let room = unique_room(tag);
            let author = Author::new(1000 + i as u64);
            for u in author.typing(updates) {
                store.append(&room, &u);
            }
            store.schedule(&room, now_ms());
            (room, author)
        })
        .collect()
}

/// Waits until no task is due and no lease is held (twice, 300 ms apart): every replica is
/// idle, and stays so (nothing becomes due within a test's time).
fn settle(store: &mut Store) {
    let idle = |s: &mut Store| {
        let leases = s.conn.cmd_str(&["KEYS", &format!("{PREFIX}:*:lease")]);
        let queue = s.keys("-").queue;
        let due = s
            .conn
            .cmd_str(&["ZCOUNT", &queue, "-inf", &now_ms().to_string()]);
        leases.items().is_empty() && due.int() == Some(0)
    };
    let settled = store.wait_until(WAIT, |s| {
        idle(s) && {
            std::thread::sleep(Duration::from_millis(300));
            idle(s)
        }
    });
    assert!(settled, "compactors still busy");
}

/// Stops the compactors (SIGTERM: each finishes its task) and the trace, then checks what
/// the trace shows against the compactors' counters and the snapshots' epochs.
fn check_exclusive(
    store: &mut Store,
    monitor: Monitor,
    mut compactors: Vec<Service>,
    rooms: &[(String, Author)],
    entries: u64,
) -> Counts {
    settle(store);
    let each: Vec<Counts> = compactors.iter().map(Counts::of).collect();
    for c in &mut compactors {
        c.terminate();
        assert!(c.wait_exit(Duration::from_secs(15)).is_some());
    }
    let trace = monitor.stop();
    let report = leases::check(&trace, PREFIX);
    let all = Counts::sum(&each);
    println!(
        "{} commands traced; {} claims, {} snapshot writes; per replica (ok, nothing): {:?}; logs deleted: {}",
        trace.len(),
        report.claims,
        report.total_writes(),
        each.iter().map(|c| (c.ok, c.nothing)).collect::<Vec<_>>(),
        all.logs_deleted
    );
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert_eq!(report.claims, report.releases);
    all.assert_clean();
    assert_eq!(all.takeovers, 0, "nobody died");
    assert_eq!(
        all.entries_merged, entries,
        "every entry merged exactly once"
    );
    let epochs: u64 = rooms.iter().map(|(r, _)| store.snapshot(r).epoch).sum();
    assert_eq!(
        report.total_writes() as u64,
        all.ok,
        "one write per successful task"
    );
    assert_eq!(epochs, all.ok, "every write advanced its room's epoch once");
    all
}

#[test]
fn two_compactors_share_the_queue_without_ever_holding_a_room_at_once() {
    let redis = RedisServer::start();
    let mut store = Store::connect(redis.port, PREFIX);
    let rooms = fill_rooms(&mut store, 30, 100, "two");
    let monitor = Monitor::start(redis.port);
    let compactors = vec![compactor(&redis).spawn(), compactor(&redis).spawn()];
    for (room, author) in &rooms {
        wait_fully_compacted(&mut store, room, &author.doc, WAIT);
    }
    check_exclusive(&mut store, monitor, compactors, &rooms, 3000);
}

/// Appends like the gateway's script: atomically tells whether the log was created, and its
/// length. KEYS: log. ARGV: update, ms.
const APPEND: &str = r#"
local created = redis.call('EXISTS', KEYS[1]) == 0 and 1 or 0
redis.call('XADD', KEYS[1], '*', 'u', ARGV[1], 'n', 'e2e', 't', ARGV[2])
return {created, redis.call('XLEN', KEYS[1])}
"#;

#[test]
fn five_replicas_compact_many_rooms_while_entries_keep_arriving() {
    let redis = RedisServer::start();
    let mut store = Store::connect(redis.port, PREFIX);
    let monitor = Monitor::start(redis.port);
    let compactors: Vec<Service> = (0..5)
        .map(|_| {
            compactor(&redis)
                .env("YWS__COMPACTOR__COMPACT_AFTER_MS", 200)
                .env("YWS__COMPACTOR__CLEANUP_AFTER_MS", 1000)
                .env("YWS__COMPACTOR__PAGE_ENTRIES", 20)
                .spawn()
        })
        .collect();
    // A writer appends to 40 rooms for 6 s and queues them as a gateway does: when a log is
    // created (due 200 ms later), and at once when a log reaches 25 entries. Logs are also
    // deleted (1 s after they were compacted empty) and created again meanwhile.
    let port = redis.port;
    let writer = std::thread::spawn(move || {
        let mut store = Store::connect(port, PREFIX);
        let rooms: Vec<(String, Author)> = (0..40)
            .map(|i| (unique_room("five"), Author::new(2000 + i)))
            .collect();
        let end = Instant::now() + Duration::from_secs(6);
        let mut written = 0u64;
        let mut i = 0usize;
        while Instant::now() < end {
            let (room, author) = &rooms[(i * 7) % rooms.len()];
            i += 1;
            let keys = store.keys(room);
            for u in author.typing(3) {
                let t = now_ms().to_string();
                let reply = store.conn.cmd(&[
                    b"EVAL",
                    APPEND.as_bytes(),
                    b"1",
                    keys.log.as_bytes(),
                    &u,
                    t.as_bytes(),
                ]);
                written += 1;
                let (created, len) = (reply.items()[0].int(), reply.items()[1].int());
                if created == Some(1) {
                    let due = (now_ms() + 200).to_string();
                    store.conn.cmd_str(&["ZADD", &keys.queue, "NX", &due, room]);
                }
                if len == Some(25) {
                    let now = now_ms().to_string();
                    store.conn.cmd_str(&["ZADD", &keys.queue, "LT", &now, room]);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (rooms, written)
    });
    let (rooms, written) = writer.join().expect("writer");
    for (room, author) in &rooms {
        wait_fully_compacted(&mut store, room, &author.doc, WAIT);
    }
    // Every empty log is deleted in the end, and nothing stays queued.
    let queue = store.keys("-").queue;
    let drained = store.wait_until(WAIT, |s| {
        s.conn.cmd_str(&["ZCARD", &queue]).int() == Some(0)
    });
    let left: Vec<&String> = rooms
        .iter()
        .map(|(r, _)| r)
        .filter(|r| store.exists(&store.keys(r).log))
        .collect();
    assert!(drained && left.is_empty(), "logs left behind: {left:?}");
    let all = check_exclusive(&mut store, monitor, compactors, &rooms, written);
    assert!(
        all.logs_deleted >= 40,
        "every room's log was deleted at least once: {all:?}"
    );
    println!("{written} entries in 40 rooms, {} snapshot writes", all.ok);
}

#[test]
fn with_several_replicas_an_empty_log_still_waits_for_the_cleanup_delay() {
    let redis = RedisServer::start();
    let mut store = Store::connect(redis.port, PREFIX);
    let rooms = fill_rooms(&mut store, 64, 20, "early");
    let compactors = [compactor(&redis).spawn(), compactor(&redis).spawn()];
    for (room, author) in &rooms {
        wait_fully_compacted(&mut store, room, &author.doc, WAIT);
    }
    settle(&mut store);
    let all = Counts::sum(&compactors.iter().map(Counts::of).collect::<Vec<_>>());
    let deleted: Vec<&String> = rooms
        .iter()
        .map(|(r, _)| r)
        .filter(|r| !store.exists(&store.keys(r).log))
        .collect();
    println!(
        "{all:?}; logs deleted right after their compaction: {}",
        deleted.len()
    );
    // Each room was compacted once; its empty log is due for cleanup in 600 s, not before.
    assert_eq!(
        (all.ok, all.nothing, all.logs_deleted),
        (64, 0, 0),
        "{deleted:?}"
    );
}

/// JSON with every number as f64 (yrs and Yjs may encode the same integer differently).
fn normalized(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) => serde_json::json!(n.as_f64()),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), normalized(v))).collect())
        }
        other => other.clone(),
    }
}

/// A compactor that works in small steps with short leases, so kills land mid-task and
/// tasks are taken over within 2 s.
fn brisk_compactor(redis: &RedisServer) -> ServiceBuilder {
    compactor(redis)
        .env("YWS__COMPACTOR__POLL_INTERVAL_MS", 50)
        .env("YWS__COMPACTOR__COMPACT_AFTER_MS", 300)
        .env("YWS__COMPACTOR__CLEANUP_AFTER_MS", 1000)
        .env("YWS__COMPACTOR__PAGE_ENTRIES", 20)
        .env("YWS__COMPACTOR__LEASE_MS", 2000)
        .env("YWS__REDIS__COMMAND_TIMEOUT_MS", 500)
}

#[test]
fn compactors_killed_in_a_loop_while_clients_edit_lose_nothing() {
    let redis = RedisServer::start();
    let gateways: Vec<Service> = (0..2)
        .map(|_| {
            gateway(&redis)
                .env("YWS__REDIS__COMPACT_AFTER_MS", 300)
                .env("YWS__REDIS__COMPACT_MAX_ENTRIES", 100)
                .spawn()
        })
        .collect();
    let urls: Vec<String> = gateways.iter().map(Service::ws_url).collect();
    let room = unique_room("killloop");
    let scenario = {
        let (urls, room) = (urls.clone(), room.clone());
        std::thread::spawn(move || {
            interop::run(
                "edit-loop",
                &urls,
                &[
                    "--room",
                    &room,
                    "--duration-ms",
                    "15000",
                    "--timeout-ms",
                    "60000",
                ],
            )
        })
    };
    // One compactor at a time; every other one dies at a fault point, the rest are SIGKILLed
    // after 0.8–2 s.
    let faults = [
        None,
        Some("before_write"),
        None,
        Some("after_write"),
        None,
        Some("during_trim"),
        None,
        Some("after_trim"),
    ];
    let mut seed = now_ms();
    let (mut lives, mut aborted, mut killed, mut takeovers) = (0usize, 0, 0, 0);
    while !scenario.is_finished() {
        let mut builder = brisk_compactor(&redis);
        if let Some(point) = faults[lives % faults.len()] {
            builder = builder.env("YWS_COMPACTOR_FAULT", point);
        }
        let mut c = builder.spawn();
        lives += 1;
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let life = Duration::from_millis(800 + (seed >> 33) % 1200);
        match c.wait_exit(life) {
            Some(status) => {
                assert_eq!(
                    status.signal(),
                    Some(6),
                    "only fault points end a compactor"
                );
                aborted += 1;
            }
            None => {
                c.kill();
                killed += 1;
            }
        }
        takeovers += c.logs().matches("taking over a task").count();
    }
    let verdict = scenario.join().expect("scenario thread");
    assert!(
        verdict.ok(),
        "edit-loop failed: {}\n{}",
        verdict.json,
        verdict.stderr
    );
    let expected = normalized(&verdict.json["final"]);

    // A clean compactor finishes whatever the dead ones left.
    let clean = brisk_compactor(&redis).spawn();
    let mut store = Store::connect(redis.port, PREFIX);
    let mut last = String::new();
    let done = store.wait_until(WAIT, |s| {
        let stored = s.stored(&room);
        let Some(doc) = &stored.snapshot.doc else {
            return false;
        };
        let got = normalized(&docs::content(&docs::doc_from(doc)));
        last = format!(
            "{} log entries, {} of {} markers in the snapshot",
            stored.entries.len(),
            got["markers"].as_array().map_or(0, Vec::len),
            expected["markers"].as_array().map_or(0, Vec::len)
        );
        stored.entries.is_empty() && got == expected
    });
    assert!(
        done,
        "the snapshot never matched the converged document: {last}"
    );
    takeovers += clean.logs().matches("taking over a task").count();
    Counts::of(&clean).assert_clean();
    let snapshot = docs::doc_from(&store.snapshot(&room).doc.expect("snapshot"));
    let g3 = gateway(&redis).spawn();
    runtime().block_on(async {
        let (joiner, _) = Peer::join(&format!("{}/{room}", g3.ws_url()), SYNC_LIMIT).await;
        same_state(&joiner.doc, &snapshot).expect("a joiner holds exactly the snapshot");
        joiner.close().await;
    });
    println!(
        "edits {} ({} markers); {lives} compactors: {aborted} aborted at fault points, {killed} SIGKILLed; {takeovers} takeovers",
        verdict.json["edits"], verdict.json["markers"]
    );
    assert!(aborted >= 1, "at least one compactor died mid-task");
    assert!(takeovers >= 1, "a task of a dead compactor was taken over");
}

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

const MIB: usize = 1024 * 1024;

/// `len` bytes of pseudo-random lowercase text (deterministic per `seed`).
fn filler(len: usize, seed: u64) -> String {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

#[test]
fn a_20_mib_document_is_compacted_in_bounded_memory() {
    let redis = RedisServer::start();
    let gw = gateway(&redis).spawn();
    let mut store = Store::connect(redis.port, PREFIX);
    let room = unique_room("big");
    let author = Author::new(801);
    let rt = runtime();
    rt.block_on(async {
        let (mut peer, _) = Peer::join(&format!("{}/{room}", gw.ws_url()), SYNC_LIMIT).await;
        for i in 0..10 {
            let update = author.append(&filler(2 * MIB, i + 1));
            send_all(&mut peer, &[update]).await;
        }
        peer.close().await;
    });
    let log_bytes: u64 = store
        .stored(&room)
        .entries
        .iter()
        .map(|e| e.1.len() as u64)
        .sum();
    assert_eq!(store.log_len(&room), 10);

    // Started only now, the compactor merges the whole 20 MiB log in one run.
    let compactor = compactor(&redis).spawn();
    let idle_peak = peak_rss_bytes(compactor.pid()).expect("VmHWM");
    wait_fully_compacted(&mut store, &room, &author.doc, Duration::from_secs(120));
    let c = Counts::of(&compactor);
    c.assert_clean();
    assert_eq!(
        (c.ok, c.entries_merged, c.bytes_merged),
        (1, 10, log_bytes),
        "{c:?}"
    );
    let peak = peak_rss_bytes(compactor.pid()).expect("VmHWM");
    let snapshot_len = store.snapshot(&room).doc.map_or(0, |d| d.len());
    println!(
        "20 MiB document: log {:.1} MiB in 10 entries -> snapshot {:.1} MiB; compactor peak RSS {:.1} MiB ({:.1}x the document; {:.1} MiB before the task)",
        log_bytes as f64 / MIB as f64,
        snapshot_len as f64 / MIB as f64,
        peak as f64 / MIB as f64,
        peak as f64 / (20 * MIB) as f64,
        idle_peak as f64 / MIB as f64
    );
    assert!(peak < 10 * 20 * MIB as u64, "peak RSS {peak} bytes");

    let g2 = gateway(&redis).spawn();
    rt.block_on(async {
        let (joiner, took) = Peer::join(&format!("{}/{room}", g2.ws_url()), SYNC_LIMIT).await;
        same_state(&joiner.doc, &author.doc).expect("a joiner gets all 20 MiB at sync");
        println!("a joiner synced the compacted 20 MiB document in {took:?}");
        joiner.close().await;
    });
}

/// The id of the one client subscribed to a channel (a gateway's pub/sub connection).
fn pubsub_client(store: &mut Store) -> String {
    let list = store
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
    let mut store = Store::connect(redis.port, PREFIX);
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
    let b_pubsub = pubsub_client(&mut store);
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
    store.conn.cmd_str(&["CLIENT", "KILL", "ID", &b_pubsub]);
    rt.block_on(send_all(&mut pa, &author.typing(20)));
    if compact {
        wait_fully_compacted(&mut store, &room, &author.doc, WAIT);
    } else {
        assert_eq!(store.log_len(&room), 21);
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

/// Median of a few durations.
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[test]
#[ignore = "measurement, not a check: run with `--release -- --ignored --nocapture` (after \
            `cargo build --release --bins`) and read the figures"]
fn measure_join_time_of_a_20_mib_document_compacted_vs_uncompacted() {
    let redis = RedisServer::start();
    let mut store = Store::connect(redis.port, PREFIX);
    let rt = runtime();
    for (chunk, label) in [
        (2 * MIB, "10 x 2 MiB"),
        (4096, "5120 x 4 KiB"),
        (200, "104858 x 200 B"),
    ] {
        // The same entries in two rooms; only one is compacted.
        let (raw, compacted) = (unique_room("raw"), unique_room("compacted"));
        let author = Author::new(1001);
        for i in 0..(20 * MIB).div_ceil(chunk) {
            // Prepended: finding the end of a long text is slow in a debug build.
            let update = author.insert(0, &filler(chunk, i as u64 + 1));
            store.append(&raw, &update);
            store.append(&compacted, &update);
        }
        store.schedule(&compacted, now_ms());
        let mut c = compactor(&redis)
            .env("YWS__COMPACTOR__SWEEP_INTERVAL_MS", 0)
            .spawn();
        wait_fully_compacted(
            &mut store,
            &compacted,
            &author.doc,
            Duration::from_secs(300),
        );
        c.terminate();
        c.wait_exit(Duration::from_secs(15));
        assert_eq!(store.log_len(&raw) as usize, (20 * MIB).div_ceil(chunk));

        // Each join loads the room into a fresh gateway.
        let join = |room: &str| {
            let gw = gateway(&redis).spawn();
            let url = format!("{}/{room}", gw.ws_url());
            let (peer, took) = rt.block_on(Peer::join(&url, Duration::from_secs(120)));
            same_state(&peer.doc, &author.doc).expect("complete at sync");
            rt.block_on(peer.close());
            took
        };
        let (mut t_raw, mut t_compacted) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            t_raw.push(join(&raw));
            t_compacted.push(join(&compacted));
        }
        let (r, k) = (median(t_raw.clone()), median(t_compacted.clone()));
        println!(
            "join of a 20 MiB document written as {label}: uncompacted {r:?} (runs {t_raw:?}), compacted {k:?} (runs {t_compacted:?}); ratio uncompacted/compacted {:.2}",
            r.as_secs_f64() / k.as_secs_f64()
        );
    }
}
