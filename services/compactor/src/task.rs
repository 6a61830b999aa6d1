//! One compaction task: compacting one room, step by step:
//!
//! 1. claim the room's lease (another replica holds it → skip); push the task's due time past
//!    the lease so other replicas leave it alone while this one works;
//! 2. read the snapshot and the log after it in pages, applying everything to a yrs `Doc`
//!    (at most `max_entries_per_run` / `max_bytes_per_run`; the rest waits for the next run);
//! 3. write the merged state with the id of the last entry it covers — fenced: only while the
//!    lease is held and only if no snapshot was written since step 2 (with object storage:
//!    the snapshot object is put first, then Redis records it as current, fenced the same
//!    way — see [`crate::stored`]);
//! 4. trim the log below that id (in steps, one per page read);
//! 5. reschedule (entries remain), schedule a cleanup (log empty), or delete the empty log —
//!    and with object storage evict the room from Redis once it is idle
//!    ([`crate::stored::evict_if_idle`]).
//!
//! A crash anywhere leaves either the old snapshot with the full log, or the new snapshot with
//! an untrimmed log whose covered entries readers skip: nothing is lost, the next run finishes.

use crate::config::Settings;
use crate::fault::{self, Point};
use crate::merge::{Applied, Merger};
use crate::metrics::CompactorMetrics;
use crate::stored::{self, Merged, TaskError};
use std::sync::Arc;
use tokio::time::{Duration, Instant};
use yws_objects::ObjectStorage;
use yws_redis::entry::{now_ms, StreamId};
use yws_redis::fencing::{new_token, Claim, LeasedRoom, WriteOutcome};
use yws_redis::queue::{Queue, Task, When};
use yws_redis::{Error, Redis};

/// What one task did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Another replica holds the room.
    Busy,
    /// A snapshot was written.
    Compacted {
        /// Entries merged.
        entries: u64,
        /// Bytes merged.
        bytes: u64,
        /// Size of the new snapshot.
        snapshot_bytes: usize,
        /// Entries left in the log (arrived meanwhile, or over the per-run limit).
        remaining: u64,
        /// Whether the run stopped at the per-run limit (a backlog remains).
        capped: bool,
    },
    /// Nothing new in the log.
    Nothing {
        /// Whether the empty log was deleted.
        deleted: bool,
    },
    /// The lease was lost before the write: nothing written.
    LeaseLost,
    /// Another snapshot was written meanwhile: nothing written.
    Stale,
}

/// What a task needs.
#[derive(Debug, Clone)]
pub struct Context {
    /// Redis.
    pub redis: Arc<Redis>,
    /// Settings.
    pub settings: Settings,
    /// Metrics.
    pub metrics: CompactorMetrics,
    /// Object storage, when `storage.url` is set: snapshots are written there first.
    pub storage: Option<ObjectStorage>,
    /// With storage: a room idle this long (no entries, no clients) leaves Redis.
    pub evict_after_ms: u64,
}

/// Runs one task end to end (claim → compact → reschedule → release).
pub async fn run_task(ctx: &Context, task: &Task) -> Result<Outcome, TaskError> {
    let s = &ctx.settings;
    let token = new_token();
    let room = LeasedRoom::new(&ctx.redis, &task.room, &token, s.lease_ms);
    let queue = Queue::new(&ctx.redis);
    match room.claim().await? {
        Claim::Busy => return Ok(Outcome::Busy),
        Claim::Acquired { takeover } => {
            if takeover {
                ctx.metrics.lease_takeovers.inc();
                tracing::info!(room = %task.room, "taking over a task whose replica died mid-compaction");
            }
        }
    }
    // The task was read a moment ago; another replica may have finished it since (and
    // rescheduled it): only work on it if it is still due.
    let due = queue.due_of(&task.room).await?;
    if due.is_none_or(|due| due > now_ms()) {
        room.release().await?;
        return Ok(Outcome::Busy);
    }
    queue
        .set(&task.room, now_ms() + s.lease_ms, When::Queued)
        .await?;
    let result = compact(ctx, &room).await;
    let finished = match &result {
        Ok(outcome) => reschedule(ctx, &queue, &task.room, outcome).await,
        Err(_) => {
            queue
                .set(&task.room, now_ms() + s.compact_after_ms, When::Always)
                .await
        }
    };
    let released = room.release().await;
    let outcome = result?;
    finished?;
    released?;
    Ok(outcome)
}

/// Sets when the room is due next ([`next_due`]).
async fn reschedule(
    ctx: &Context,
    queue: &Queue<'_>,
    name: &str,
    outcome: &Outcome,
) -> Result<(), Error> {
    match next_due(&ctx.settings, outcome, now_ms()) {
        Some((due, when)) => queue.set(name, due, when).await,
        None => Ok(()),
    }
}

/// When the room is due next, after a run that ended with `outcome` at `now`: at once for a
/// backlog, after `compact_after_ms` when entries arrived during the run (or the run wrote
/// nothing: lease lost, stale — only ever earlier than another replica set it), after
/// `cleanup_after_ms` (to delete the empty log) otherwise. `None`: leave the queue alone
/// (`Nothing` handled its cleanup itself; `Busy` is not ours).
pub fn next_due(s: &Settings, outcome: &Outcome, now: u64) -> Option<(u64, When)> {
    match outcome {
        Outcome::Compacted { capped: true, .. } => Some((now, When::Always)),
        Outcome::Compacted { remaining, .. } if *remaining > 0 => {
            Some((now + s.compact_after_ms, When::Always))
        }
        Outcome::Compacted { .. } => Some((now + s.cleanup_after_ms, When::Always)),
        Outcome::LeaseLost | Outcome::Stale => Some((now + s.compact_after_ms, When::Earlier)),
        Outcome::Nothing { .. } | Outcome::Busy => None,
    }
}

async fn compact(ctx: &Context, room: &LeasedRoom<'_>) -> Result<Outcome, TaskError> {
    let s = &ctx.settings;
    let started = Instant::now();
    let mut snapshot = room.snapshot().await?;
    // Redis lost the room's snapshot (flushed, or replaced by an empty Redis): start from the
    // newest stored one, and name the next object above every stored epoch.
    let cold = match &ctx.storage {
        Some(storage) if snapshot.epoch == 0 && snapshot.doc.is_none() => {
            stored::cold_base(storage, room.room(), snapshot.generation).await?
        }
        _ => None,
    };
    let (base_doc, base_upto, epoch_floor) = match &cold {
        Some(c) => (
            c.doc.as_deref(),
            c.upto.max(snapshot.upto),
            c.epoch.max(snapshot.epoch),
        ),
        None => (snapshot.doc.as_deref(), snapshot.upto, snapshot.epoch),
    };
    let mut merger = Merger::new(s.gc);
    if let Some(doc) = base_doc {
        if merger.apply(doc) != Applied::Merged {
            // Never replace a snapshot we cannot read with one that lacks its content.
            return Err(Error::Corrupt(format!(
                "snapshot of {:?} does not decode",
                room.keys.snap
            ))
            .into());
        }
    }
    let mut upto = base_upto;
    let mut checkpoints: Vec<StreamId> = Vec::new();
    let (mut entries, mut bytes) = (0u64, 0u64);
    let mut capped = false;
    let mut last_renewal = Instant::now();
    let renew_every = Duration::from_millis(s.lease_ms / 3);
    loop {
        let (good, bad) = room.read(upto, s.page_entries).await?;
        if good.is_empty() && bad.is_empty() {
            break;
        }
        for b in &bad {
            ctx.redis
                .metrics
                .entries_skipped
                .with_label_values(&[b.reason])
                .inc();
            tracing::warn!(log = %room.keys.log, id = ?b.id, reason = b.reason, "unreadable log entry skipped");
            if let Some(id) = b.id {
                upto = upto.max(id);
            }
        }
        for entry in &good {
            match merger.apply(&entry.update) {
                Applied::Merged => {}
                Applied::Unreadable => {
                    ctx.redis
                        .metrics
                        .entries_skipped
                        .with_label_values(&["bad_update"])
                        .inc();
                    tracing::warn!(log = %room.keys.log, id = %entry.id, "log entry could not be applied; skipped");
                }
                Applied::Quarantined => {
                    // The snapshot covers its id, so the trim removes it: skipped for good.
                    ctx.metrics.entries_quarantined.inc();
                    tracing::error!(log = %room.keys.log, id = %entry.id, "log entry made the CRDT library panic; quarantined (left out of the snapshot)");
                }
            }
            upto = upto.max(entry.id);
            entries += 1;
            bytes += entry.update.len() as u64;
        }
        checkpoints.push(upto);
        if entries as usize >= s.max_entries_per_run || bytes >= s.max_bytes_per_run {
            capped = true;
            break;
        }
        if last_renewal.elapsed() >= renew_every {
            if !room.renew().await? {
                return Ok(Outcome::LeaseLost);
            }
            last_renewal = Instant::now();
        }
    }

    if upto == base_upto {
        // Nothing new. A snapshot only Redis holds (written before storage was turned on) is
        // stored now: the migration to storage.
        if let (Some(storage), None, Some(doc), None) =
            (&ctx.storage, &snapshot.object, &snapshot.doc, &cold)
        {
            let merged = Merged {
                state: doc.clone(),
                upto: snapshot.upto,
                epoch_read: snapshot.epoch,
                epoch_floor: snapshot.epoch,
                merged_bytes: 0,
                merged_entries: 0,
                previous: None,
            };
            match stored::write(storage, room, merged).await? {
                WriteOutcome::Written => ctx.metrics.snapshots_migrated.inc(),
                WriteOutcome::LeaseLost => return Ok(Outcome::LeaseLost),
                WriteOutcome::Stale => return Ok(Outcome::Stale),
            }
            snapshot = room.snapshot().await?;
        }
        // Nothing new. A stored snapshot Redis lost is recorded again first when the log
        // holds entries it covers (they are about to be trimmed); with an empty log the room
        // stays as it is (evicted).
        if let Some(base @ stored::ColdBase { doc: Some(doc), .. }) = &cold {
            if room.log_len().await? > 0 {
                match stored::adopt(room, base, doc, snapshot.epoch).await? {
                    WriteOutcome::Written => {}
                    WriteOutcome::LeaseLost => return Ok(Outcome::LeaseLost),
                    WriteOutcome::Stale => return Ok(Outcome::Stale),
                }
            }
        }
        // Entries the snapshot already covers may linger after a crash between write and
        // trim: trim them. An empty log that stayed empty is deleted.
        room.trim_below(base_upto.next()).await?;
        let deleted = if room.log_len().await? == 0 {
            let queue = Queue::new(&ctx.redis);
            // Dequeue first, then delete if still empty: an append racing with this either
            // finds the log deleted (and queues the room itself) or keeps it non-empty (and
            // the room is queued again here).
            queue.remove(room.room()).await?;
            let deleted = room.delete_if_empty().await?;
            if deleted {
                ctx.metrics.logs_deleted.inc();
                if ctx.storage.is_some() && cold.is_none() {
                    stored::evict_if_idle(ctx, room, &snapshot).await?;
                }
            } else {
                queue
                    .set(room.room(), now_ms() + s.compact_after_ms, When::NotQueued)
                    .await?;
            }
            deleted
        } else {
            false
        };
        return Ok(Outcome::Nothing { deleted });
    }

    let state = merger.encode();
    drop(merger);
    let snapshot_bytes = state.len();
    if !room.renew().await? {
        return Ok(Outcome::LeaseLost);
    }
    fault::hit(Point::BeforeWrite);
    let written = match &ctx.storage {
        None => {
            room.write(state, upto, snapshot.epoch, bytes, entries)
                .await?
        }
        Some(storage) => {
            let merged = Merged {
                state,
                upto,
                epoch_read: snapshot.epoch,
                epoch_floor,
                merged_bytes: bytes,
                merged_entries: entries,
                previous: snapshot.object.clone(),
            };
            stored::write(storage, room, merged).await?
        }
    };
    match written {
        WriteOutcome::Written => {}
        WriteOutcome::LeaseLost => return Ok(Outcome::LeaseLost),
        WriteOutcome::Stale => return Ok(Outcome::Stale),
    }
    fault::hit(Point::AfterWrite);
    for (i, checkpoint) in checkpoints.iter().enumerate() {
        room.trim_below(checkpoint.next()).await?;
        if i == 0 && checkpoints.len() > 1 {
            fault::hit(Point::DuringTrim);
        }
    }
    fault::hit(Point::AfterTrim);
    let remaining = room.log_len().await?;
    ctx.metrics.entries_merged.inc_by(entries);
    ctx.metrics.log_bytes_merged.inc_by(bytes);
    ctx.metrics.snapshot_bytes.observe(snapshot_bytes as f64);
    ctx.metrics
        .duration_seconds
        .observe(started.elapsed().as_secs_f64());
    tracing::debug!(log = %room.keys.log, entries, bytes, snapshot_bytes, remaining, "compacted");
    Ok(Outcome::Compacted {
        entries,
        bytes,
        snapshot_bytes,
        remaining,
        capped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compacted(remaining: u64, capped: bool) -> Outcome {
        Outcome::Compacted {
            entries: 10,
            bytes: 100,
            snapshot_bytes: 50,
            remaining,
            capped,
        }
    }

    #[test]
    fn rescheduling_after_each_outcome() {
        let s = Settings {
            compact_after_ms: 10,
            cleanup_after_ms: 20,
            ..Settings::default()
        };
        let now = 1000;
        assert_eq!(
            next_due(&s, &compacted(5, true), now),
            Some((now, When::Always)),
            "a backlog is due again at once"
        );
        assert_eq!(
            next_due(&s, &compacted(5, false), now),
            Some((now + 10, When::Always)),
            "entries arrived during the run"
        );
        assert_eq!(
            next_due(&s, &compacted(0, false), now),
            Some((now + 20, When::Always)),
            "an empty log is deleted later"
        );
        for outcome in [Outcome::LeaseLost, Outcome::Stale] {
            assert_eq!(
                next_due(&s, &outcome, now),
                Some((now + 10, When::Earlier)),
                "{outcome:?}: another replica may have set an earlier time"
            );
        }
        assert_eq!(next_due(&s, &Outcome::Nothing { deleted: true }, now), None);
        assert_eq!(next_due(&s, &Outcome::Busy, now), None);
    }
}
