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
//! newer snapshot was written meanwhile). Entries that cannot be read — or that make yrs panic,
//! after which the merge starts over without them — are skipped, counted, and moved to the
//! `quarantine` table with the same commit, never silently destroyed.

use crate::error::StoreError;
use crate::metrics::StoreMetrics;
use crate::schema::{self, Install, Kind, Op, RoomLog};
use crate::tracking::Tracker;
use crate::writer::Command;
use redb::Database;
use std::panic::{catch_unwind, AssertUnwindSafe};
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

/// How many times one merge starts over after an entry made yrs panic (one more entry is
/// quarantined each time); beyond that the compaction fails and is tried again later.
const MAX_PASSES: usize = 16;

/// Merges the room's snapshot and updates into one snapshot. `None` when there is nothing to
/// merge (no updates since the snapshot).
///
/// yrs can panic on some malformed updates that decode, and may leave part of such an update in
/// the document. The merge then throws its document away and starts over from a fresh read,
/// skipping that entry: the snapshot never holds a piece of it, and the entry goes to
/// quarantine with the others that could not be read.
pub(crate) fn merge(
    db: &Database,
    room: Arc<str>,
    gc: bool,
) -> Result<Option<Install>, StoreError> {
    let mut panicked: Vec<(Kind, u64)> = Vec::new();
    for _ in 0..MAX_PASSES {
        let Pass {
            doc,
            log,
            skipped,
            poisoned,
        } = merge_pass(db, &room, gc, &panicked)?;
        if let Some((kind, seq)) = poisoned {
            tracing::error!(room = %room, ?kind, seq, "a stored entry made the CRDT library panic; merging again without it (it goes to quarantine)");
            panicked.push((kind, seq));
            continue;
        }
        if log.updates == 0 {
            return Ok(None);
        }
        let snapshot = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        return Ok(Some(Install {
            room,
            upto: log.last_seq,
            snapshot,
            skipped,
            merged_updates: log.updates,
            merged_bytes: log.update_bytes,
        }));
    }
    Err(StoreError::Task(format!(
        "compaction of {room:?} gave up: over {MAX_PASSES} entries made the CRDT library panic"
    )))
}

/// One read of a room merged into a fresh document.
struct Pass {
    doc: Doc,
    log: RoomLog,
    /// Entries skipped: unreadable, or known to make yrs panic.
    skipped: Vec<(Kind, u64)>,
    /// The first entry that made yrs panic in this pass, if any: the document is then suspect
    /// and nothing after it was applied.
    poisoned: Option<(Kind, u64)>,
}

/// One read of the room merged into a fresh document, skipping the entries in `panicked`.
fn merge_pass(
    db: &Database,
    room: &str,
    gc: bool,
    panicked: &[(Kind, u64)],
) -> Result<Pass, StoreError> {
    let doc = Doc::with_options(Options {
        skip_gc: !gc,
        // Never invent changes of our own: clients would not get them.
        cleanup_formatting: false,
        ..Options::default()
    });
    let mut skipped = Vec::new();
    let mut poisoned = None;
    let log = schema::read_room(db, room, |entry| {
        if poisoned.is_some() {
            return;
        }
        let id = (entry.kind, entry.seq);
        if panicked.contains(&id) {
            skipped.push(id);
            return;
        }
        let applied = match yws_protocol::validate::update(entry.bytes) {
            Ok(update) => integrate(&doc, update),
            Err(_) => Some(false),
        };
        match applied {
            Some(true) => {}
            Some(false) => skipped.push(id),
            None => poisoned = Some(id),
        }
    })?;
    Ok(Pass {
        doc,
        log,
        skipped,
        poisoned,
    })
}

/// Integrates `update` into `doc`: `Some(applied)`, or `None` when yrs panicked (the document
/// may then hold part of it). The transaction is committed inside the outer catch, never while
/// unwinding (a panic there would abort the process).
fn integrate(doc: &Doc, update: yrs::Update) -> Option<bool> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut txn = doc.transact_mut();
        let applied = catch_unwind(AssertUnwindSafe(|| txn.apply_update(update).is_ok()));
        drop(txn);
        applied
    }));
    match outcome {
        Ok(Ok(applied)) => Some(applied),
        Ok(Err(_)) | Err(_) => None,
    }
}
