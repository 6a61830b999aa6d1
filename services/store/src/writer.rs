//! The single writer: group commit of everything that changes the store.
//!
//! Appends, deletions and compacted snapshots reach the writer through one bounded queue
//! (FIFO, so a room's updates are stored in the order they were accepted). The writer collects
//! a batch until the oldest command in it is `commit_interval` old — or the batch reaches
//! `max_batch_bytes`, or a command needs an answer now (a flush or a deletion) — and commits
//! it as one redb write transaction with immediate durability (fsync). While a commit runs, the
//! next batch waits in the queue; whatever is already overdue when the writer comes back is
//! committed at once, so an update is durable at most `commit_interval` plus about one
//! commit's duration after it was accepted.
//!
//! A failed commit is retried with backoff, keeping the same batch (nothing is dropped): the
//! queue fills and appends wait, and the store reports not ready until a commit succeeds. On
//! shutdown the writer takes everything still queued and commits it; only if that keeps
//! failing (a few attempts) does it give up, and then says how many updates it lost.

use crate::error::StoreError;
use crate::metrics::StoreMetrics;
use crate::schema::{self, Op};
use crate::tracking::Tracker;
use redb::Database;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Attempts of the final commit at shutdown before the writer gives up.
const SHUTDOWN_ATTEMPTS: u32 = 3;
/// Longest wait between retries of a failed commit.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the writer is asked to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// A change to commit; `accepted` starts its group-commit window.
    Op { op: Op, accepted: Instant },
    /// Commit everything queued before this command now, then answer. A deletion is sent as
    /// an [`Op::Delete`] followed by a `Flush`.
    Flush(oneshot::Sender<()>),
}

/// Settings of the writer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriterSettings {
    pub(crate) interval: Duration,
    pub(crate) max_batch_bytes: usize,
}

/// The writer task's state.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) db: Arc<Database>,
    pub(crate) rx: mpsc::Receiver<Command>,
    pub(crate) next_seq: u64,
    pub(crate) settings: WriterSettings,
    pub(crate) tracker: Arc<Tracker>,
    pub(crate) metrics: StoreMetrics,
    pub(crate) healthy: Arc<AtomicBool>,
    /// One permit per update that may be accepted and not yet committed; an append takes
    /// one, the writer gives it back once the update is committed (or given up).
    pub(crate) permits: Arc<Semaphore>,
    /// Rooms due for compaction.
    pub(crate) compact: mpsc::Sender<Arc<str>>,
    pub(crate) cancel: CancellationToken,
}

#[derive(Debug, Default)]
struct Batch {
    ops: Vec<Op>,
    replies: Vec<oneshot::Sender<()>>,
    oldest: Option<Instant>,
    bytes: usize,
    urgent: bool,
}

impl Batch {
    fn push(&mut self, cmd: Command) {
        match cmd {
            Command::Op { op, accepted } => {
                self.bytes += match &op {
                    Op::Append { update, .. } => update.len(),
                    Op::Install(install) => install.snapshot.len(),
                    Op::Delete { .. } => 0,
                };
                self.oldest = Some(self.oldest.map_or(accepted, |o| o.min(accepted)));
                self.ops.push(op);
            }
            Command::Flush(reply) => {
                self.replies.push(reply);
                self.urgent = true;
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.replies.is_empty()
    }

    fn appends(&self) -> usize {
        self.ops
            .iter()
            .filter(|op| matches!(op, Op::Append { .. }))
            .count()
    }
}

impl Writer {
    /// Runs until cancelled (or every sender is gone), then commits what is still queued.
    /// Returns an error only if that final commit failed (after logging what was lost).
    pub(crate) async fn run(mut self) -> Result<(), StoreError> {
        let result = self.serve().await;
        if result.is_err() {
            self.rx.close();
            let mut lost = 0usize;
            while let Ok(cmd) = self.rx.try_recv() {
                if let Command::Op {
                    op: Op::Append { room, .. },
                    ..
                } = cmd
                {
                    self.tracker.dequeued(&room);
                    lost += 1;
                }
            }
            if lost > 0 {
                self.metrics.pending_updates.sub(lost as i64);
                tracing::error!(lost_updates = lost, "updates still queued were not saved");
            }
        }
        result
    }

    async fn serve(&mut self) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        loop {
            if batch.is_empty() {
                tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => break,
                    cmd = self.rx.recv() => match cmd {
                        Some(cmd) => batch.push(cmd),
                        None => break,
                    },
                }
            }
            self.fill(&mut batch).await;
            self.commit(std::mem::take(&mut batch)).await?;
        }
        // Shutdown: no new commands; commit what is queued (all of it, batch by batch).
        self.rx.close();
        while let Some(cmd) = self.rx.recv().await {
            batch.push(cmd);
            if batch.bytes >= self.settings.max_batch_bytes {
                self.commit(std::mem::take(&mut batch)).await?;
            }
        }
        self.commit(batch).await
    }

    /// Adds commands to `batch` until it is due: its oldest command's window is over, it is
    /// full, or a command waits for an answer.
    async fn fill(&mut self, batch: &mut Batch) {
        let Some(oldest) = batch.oldest else {
            return; // only flushes: answer at once
        };
        let deadline = oldest + self.settings.interval;
        while !batch.urgent && batch.bytes < self.settings.max_batch_bytes {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep_until(deadline) => {
                    // Overdue: take what is already queued, without waiting for more.
                    while !batch.urgent && batch.bytes < self.settings.max_batch_bytes {
                        match self.rx.try_recv() {
                            Ok(cmd) => batch.push(cmd),
                            Err(_) => break,
                        }
                    }
                    return;
                }
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => batch.push(cmd),
                    None => return,
                },
            }
        }
    }

    /// Commits `batch`, retrying with backoff until it succeeds — or, once shutdown has begun,
    /// until [`SHUTDOWN_ATTEMPTS`] attempts failed.
    async fn commit(&mut self, batch: Batch) -> Result<(), StoreError> {
        let appends = batch.appends();
        let Batch {
            mut ops, replies, ..
        } = batch;
        if ops.is_empty() {
            // Every earlier batch is committed: a flush alone is already satisfied.
            for reply in replies {
                let _ = reply.send(());
            }
            return Ok(());
        }
        let mut attempt = 0u32;
        let mut backoff = Duration::from_millis(50);
        let committed = loop {
            attempt += 1;
            let db = self.db.clone();
            let next_seq = self.next_seq;
            let started = Instant::now();
            let (back, result) = tokio::task::spawn_blocking(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    schema::commit(&db, next_seq, &ops)
                }))
                .unwrap_or_else(|_| Err(StoreError::Task("commit panicked".into())));
                (ops, result)
            })
            .await?;
            ops = back;
            match result {
                Ok(committed) => {
                    self.metrics
                        .commit_seconds
                        .observe(started.elapsed().as_secs_f64());
                    break committed;
                }
                Err(e) => {
                    self.metrics.commit_errors.inc();
                    self.healthy.store(false, Ordering::Relaxed);
                    if self.cancel.is_cancelled() && attempt >= SHUTDOWN_ATTEMPTS {
                        let lost = ops.iter().filter(|op| matches!(op, Op::Append { .. }));
                        let mut n = 0;
                        for op in lost {
                            if let Op::Append { room, .. } = op {
                                self.tracker.dequeued(room);
                                n += 1;
                            }
                        }
                        self.metrics.pending_updates.sub(n);
                        self.permits.add_permits(n as usize);
                        tracing::error!(error = %e, lost_updates = n, "final commit failed; giving up");
                        return Err(e);
                    }
                    tracing::warn!(error = %e, attempt, "commit failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = self.cancel.cancelled() => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        self.healthy.store(true, Ordering::Relaxed);
        if appends > 0 {
            self.metrics.batch_updates.observe(appends as f64);
        }
        self.settle(ops, &committed.installed);
        self.next_seq = committed.next_seq;
        for reply in replies {
            // The asker may have stopped waiting; that is fine.
            let _ = reply.send(());
        }
        Ok(())
    }

    /// Bookkeeping after a successful commit: counters, metrics, compaction scheduling.
    fn settle(&self, ops: Vec<Op>, installed: &[bool]) {
        let mut installed = installed.iter().copied();
        let mut appended = 0i64;
        for op in ops {
            match op {
                Op::Append { room, update } => {
                    appended += 1;
                    if self.tracker.committed(&room, update.len() as u64) {
                        self.schedule(room);
                    }
                }
                Op::Delete { room } => self.tracker.deleted(&room),
                Op::Install(install) => {
                    let written = installed.next().unwrap_or(false);
                    if written {
                        self.metrics.compactions.inc();
                    } else {
                        tracing::debug!(room = %install.room, "stale snapshot dropped");
                    }
                    let merged = written.then_some((install.merged_updates, install.merged_bytes));
                    if self.tracker.compacted(&install.room, merged) {
                        self.schedule(install.room);
                    }
                }
            }
        }
        self.metrics.pending_updates.sub(appended);
        self.permits.add_permits(appended as usize);
    }

    /// Queues `room` for compaction; if the queue is full it is queued on a later append.
    fn schedule(&self, room: Arc<str>) {
        if let Err(e) = self.compact.try_send(room) {
            let room = match e {
                mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
            };
            self.tracker.compacted(&room, None);
        }
    }
}
