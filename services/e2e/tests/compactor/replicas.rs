//! Several compactor replicas on one queue: never two on a room at once (checked on a trace
//! of every Redis command), every entry merged exactly once, and cleanup delays kept.

use std::time::{Duration, Instant};
use yws_e2e::docs::Author;
use yws_e2e::leases;
use yws_e2e::monitor::Monitor;
use yws_e2e::process::Service;
use yws_e2e::redis::RedisServer;
use yws_e2e::redis_keys::{now_ms, RedisKeys};
use yws_e2e::unique_room;

use crate::support::{compactor, wait_fully_compacted, Counts, PREFIX, WAIT};

/// `n` rooms of `updates` typing edits each, written straight into their logs and all due now.
fn fill_rooms(
    direct: &mut RedisKeys,
    n: usize,
    updates: usize,
    tag: &str,
) -> Vec<(String, Author)> {
    (0..n)
        .map(|i| {
            let room = unique_room(tag);
            let author = Author::new(1000 + i as u64);
            for u in author.typing(updates) {
                direct.append(&room, &u);
            }
            direct.schedule(&room, now_ms());
            (room, author)
        })
        .collect()
}

/// Waits until no task is due and no lease is held (twice, 300 ms apart): every replica is
/// idle, and stays so (nothing becomes due within a test's time).
fn settle(direct: &mut RedisKeys) {
    let idle = |s: &mut RedisKeys| {
        let leases = s.conn.cmd_str(&["KEYS", &format!("{PREFIX}:*:lease")]);
        let queue = s.keys("-").queue;
        let due = s
            .conn
            .cmd_str(&["ZCOUNT", &queue, "-inf", &now_ms().to_string()]);
        leases.items().is_empty() && due.int() == Some(0)
    };
    let settled = direct.wait_until(WAIT, |s| {
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
    direct: &mut RedisKeys,
    monitor: Monitor,
    mut compactors: Vec<Service>,
    rooms: &[(String, Author)],
    entries: u64,
) -> Counts {
    settle(direct);
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
    let epochs: u64 = rooms.iter().map(|(r, _)| direct.snapshot(r).epoch).sum();
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
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let rooms = fill_rooms(&mut direct, 30, 100, "two");
    let monitor = Monitor::start(redis.port);
    let compactors = vec![compactor(&redis).spawn(), compactor(&redis).spawn()];
    for (room, author) in &rooms {
        wait_fully_compacted(&mut direct, room, &author.doc, WAIT);
    }
    check_exclusive(&mut direct, monitor, compactors, &rooms, 3000);
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
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
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
        let mut direct = RedisKeys::connect(port, PREFIX);
        let rooms: Vec<(String, Author)> = (0..40)
            .map(|i| (unique_room("five"), Author::new(2000 + i)))
            .collect();
        let end = Instant::now() + Duration::from_secs(6);
        let mut written = 0u64;
        let mut i = 0usize;
        while Instant::now() < end {
            let (room, author) = &rooms[(i * 7) % rooms.len()];
            i += 1;
            let keys = direct.keys(room);
            for u in author.typing(3) {
                let t = now_ms().to_string();
                let reply = direct.conn.cmd(&[
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
                    direct
                        .conn
                        .cmd_str(&["ZADD", &keys.queue, "NX", &due, room]);
                }
                if len == Some(25) {
                    let now = now_ms().to_string();
                    direct
                        .conn
                        .cmd_str(&["ZADD", &keys.queue, "LT", &now, room]);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (rooms, written)
    });
    let (rooms, written) = writer.join().expect("writer");
    for (room, author) in &rooms {
        wait_fully_compacted(&mut direct, room, &author.doc, WAIT);
    }
    // Every empty log is deleted in the end, and nothing stays queued.
    let queue = direct.keys("-").queue;
    let drained = direct.wait_until(WAIT, |s| {
        s.conn.cmd_str(&["ZCARD", &queue]).int() == Some(0)
    });
    let left: Vec<&String> = rooms
        .iter()
        .map(|(r, _)| r)
        .filter(|r| direct.exists(&direct.keys(r).log))
        .collect();
    assert!(drained && left.is_empty(), "logs left behind: {left:?}");
    let all = check_exclusive(&mut direct, monitor, compactors, &rooms, written);
    assert!(
        all.logs_deleted >= 40,
        "every room's log was deleted at least once: {all:?}"
    );
    println!("{written} entries in 40 rooms, {} snapshot writes", all.ok);
}

#[test]
fn with_several_replicas_an_empty_log_still_waits_for_the_cleanup_delay() {
    let redis = RedisServer::start();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let rooms = fill_rooms(&mut direct, 64, 20, "early");
    let compactors = [compactor(&redis).spawn(), compactor(&redis).spawn()];
    for (room, author) in &rooms {
        wait_fully_compacted(&mut direct, room, &author.doc, WAIT);
    }
    settle(&mut direct);
    let all = Counts::sum(&compactors.iter().map(Counts::of).collect::<Vec<_>>());
    let deleted: Vec<&String> = rooms
        .iter()
        .map(|(r, _)| r)
        .filter(|r| !direct.exists(&direct.keys(r).log))
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
