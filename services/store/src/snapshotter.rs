//! The snapshotter: background compaction of the store, a room's snapshot and updates merged
//! into one snapshot.
//!
//! The writer queues a room when its log since the snapshot reaches `compact_after_updates`
//! updates or `compact_after_bytes` bytes (and a room opened with a long log is queued at
//! once). The snapshotter takes one room at a time — so memory holds at most one document being
//! merged — and:
//!
//! 1. reads the snapshot and the updates in one MVCC read transaction, on a blocking thread,
//!    applying them to a fresh yrs `Doc` (with the configured GC) — appends go on meanwhile:
//!    readers never block the writer;
//! 2. encodes the whole state as one v1 update, noting the last merged seq `upto`;
//! 3. hands the snapshot to the writer, which, in its next group commit, writes it and deletes
//!    the room's updates `≤ upto` in the same transaction.
//!
//! An update appended during the merge got a seq `> upto` and is neither merged nor deleted, so
//! no concurrent append is lost. The writer drops a stale snapshot (the room was deleted, or a
//! newer snapshot was written meanwhile). Entries that cannot be read are skipped, counted, and
//! moved to the `quarantine` table with the same commit, never silently destroyed.

use crate::error::StoreError;
use crate::metrics::StoreMetrics;
use crate::schema::{self, Install, Op};
use crate::tracking::Tracker;
use crate::writer::Command;
use redb::Database;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use yrs::{Doc, Options, ReadTxn, StateVector, Transact};

/// The snapshotter task's state.
#[derive(Debug)]
pub(crate) struct Snapshotter {
    pub(crate) db: Arc<Database>,
    pub(crate) rx: mpsc::Receiver<Arc<str>>,
    pub(crate) writer: mpsc::Sender<Command>,
    pub(crate) tracker: Arc<Tracker>,
    pub(crate) metrics: StoreMetrics,
    pub(crate) gc: bool,
    pub(crate) cancel: CancellationToken,
}

impl Snapshotter {
    /// Compacts queued rooms until cancelled. A compaction cut short loses nothing: the room's
    /// updates stay, and it is queued again on a later append or open.
    pub(crate) async fn run(mut self) {
        loop {
            let room = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return,
                room = self.rx.recv() => match room {
                    Some(room) => room,
                    None => return,
                },
            };
            let install = {
                let (db, name, gc) = (self.db.clone(), room.clone(), self.gc);
                tokio::task::spawn_blocking(move || merge(&db, name, gc)).await
            };
            let install = match install {
                Ok(Ok(Some(install))) => install,
                Ok(Ok(None)) => {
                    self.tracker.compacted(&room, None);
                    continue;
                }
                Ok(Err(e)) => {
                    tracing::warn!(room = %room, error = %e, "compaction failed");
                    self.tracker.compacted(&room, None);
                    continue;
                }
                Err(e) => {
                    tracing::error!(room = %room, error = %e, "compaction task failed");
                    self.tracker.compacted(&room, None);
                    continue;
                }
            };
            if !install.skipped.is_empty() {
                self.metrics
                    .entries_skipped
                    .inc_by(install.skipped.len() as u64);
                tracing::warn!(room = %room, skipped = install.skipped.len(), "compaction skipped unreadable entries; they go to quarantine");
            }
            let cmd = Command::Op {
                op: Op::Install(install),
                accepted: Instant::now(),
            };
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => {
                    self.tracker.compacted(&room, None);
                    return;
                }
                sent = self.writer.send(cmd) => if sent.is_err() {
                    self.tracker.compacted(&room, None);
                    return;
                },
            }
        }
    }
}

/// Merges the room's snapshot and updates into one snapshot. `None` when there is nothing to
/// merge (no updates since the snapshot).
pub(crate) fn merge(
    db: &Database,
    room: Arc<str>,
    gc: bool,
) -> Result<Option<Install>, StoreError> {
    let doc = Doc::with_options(Options {
        skip_gc: !gc,
        // Never invent changes of our own: clients would not get them.
        cleanup_formatting: false,
        ..Options::default()
    });
    let mut skipped = Vec::new();
    let log = schema::read_room(db, &room, |entry| {
        let applied = match yws_protocol::validate::update(entry.bytes) {
            // yrs can panic on some malformed updates that decode: count it as unreadable.
            Ok(update) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                doc.transact_mut().apply_update(update).is_ok()
            }))
            .unwrap_or(false),
            Err(_) => false,
        };
        if !applied {
            skipped.push((entry.kind, entry.seq));
        }
    })?;
    if log.updates == 0 {
        return Ok(None);
    }
    let snapshot = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    Ok(Some(Install {
        room,
        upto: log.last_seq,
        snapshot,
        skipped,
        merged_updates: log.updates,
        merged_bytes: log.update_bytes,
    }))
}
