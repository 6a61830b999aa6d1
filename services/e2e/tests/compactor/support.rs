//! What every group of tests shares: timings, the gateway and compactor set-ups, the
//! compactor's counters, and helpers that write rooms and wait for their compaction.

use std::time::Duration;
use yrs::Doc;
use yws_e2e::docs::{self, same_state, Author};
use yws_e2e::http;
use yws_e2e::metrics::sample;
use yws_e2e::peer::Peer;
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::redis::RedisServer;
use yws_e2e::redis_keys::RedisKeys;

pub(crate) const PREFIX: &str = "yws";
pub(crate) const SYNC_LIMIT: Duration = Duration::from_secs(20);
pub(crate) const WAIT: Duration = Duration::from_secs(30);

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A gateway on `redis` that queues a new log for compaction 500 ms after creating it.
pub(crate) fn gateway(redis: &RedisServer) -> ServiceBuilder {
    ServiceBuilder::gateway()
        .env("REDIS_URL", redis.url())
        .env("YWS__REDIS__COMPACT_AFTER_MS", 500)
}

/// A compactor on `redis`: polls every 100 ms, 7 s leases, no cleanup within a test's time
/// unless a test asks for it.
pub(crate) fn compactor(redis: &RedisServer) -> ServiceBuilder {
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
pub(crate) struct Counts {
    pub(crate) ok: u64,
    pub(crate) nothing: u64,
    pub(crate) failed: u64,
    pub(crate) stale: u64,
    pub(crate) lease_lost: u64,
    pub(crate) takeovers: u64,
    pub(crate) entries_merged: u64,
    pub(crate) bytes_merged: u64,
    pub(crate) logs_deleted: u64,
}

impl Counts {
    pub(crate) fn of(service: &Service) -> Counts {
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

    pub(crate) fn sum(all: &[Counts]) -> Counts {
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
    pub(crate) fn assert_clean(&self) {
        assert_eq!(
            (self.failed, self.stale, self.lease_lost),
            (0, 0, 0),
            "failed / stale / lease_lost: {self:?}"
        );
    }
}

/// Waits until the room's log is empty (or gone) and its snapshot alone equals `expected`.
pub(crate) fn wait_fully_compacted(
    direct: &mut RedisKeys,
    room: &str,
    expected: &Doc,
    timeout: Duration,
) {
    let mut last = String::new();
    let done = direct.wait_until(timeout, |s| {
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
pub(crate) async fn send_all(peer: &mut Peer, updates: &[Vec<u8>]) {
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
pub(crate) fn small_edits(author: &Author) -> Vec<Vec<u8>> {
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
