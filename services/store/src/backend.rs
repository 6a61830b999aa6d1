//! [`StoreBackend`]: the gateway's [`RoomBackend`] when `YPERSISTENCE` is set.
//!
//! `append` queues the update for the writer and returns: the update is durable within the
//! group-commit window (see the crate docs for what a SIGKILL can lose). `open` commits what is
//! still queued for the room, then loads its snapshot and updates; `close` and
//! [`StoreBackend::shutdown`] commit everything queued.

use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::metrics::StoreMetrics;
use crate::schema::{self, Op};
use crate::snapshotter::Snapshotter;
use crate::tracking::{Thresholds, Tracker};
use crate::writer::{Command, Writer, WriterSettings};
use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use redb::Database;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore, SemaphorePermit};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use yws_core::{BackendError, Room, RoomBackend, RoomName};

/// Most rooms one [`StoreBackend::list_rooms`] call returns.
pub const MAX_LIST_LIMIT: usize = 10_000;

/// Documents stored durably in an embedded redb database (standalone mode).
#[derive(Debug)]
pub struct StoreBackend {
    config: StoreConfig,
    path: PathBuf,
    /// `None` once shut down; readers clone the `Arc` for the duration of one read.
    db: RwLock<Option<Arc<Database>>>,
    commands: mpsc::Sender<Command>,
    /// Bounds updates accepted and not yet committed to `queue_capacity` (see [`Writer`]).
    permits: Arc<Semaphore>,
    compact: mpsc::Sender<Arc<str>>,
    tracker: Arc<Tracker>,
    metrics: StoreMetrics,
    healthy: Arc<AtomicBool>,
    writer_cancel: CancellationToken,
    snapshotter_cancel: CancellationToken,
    tasks: Mutex<Option<Tasks>>,
}

#[derive(Debug)]
struct Tasks {
    writer: JoinHandle<Result<(), StoreError>>,
    snapshotter: JoinHandle<()>,
}

/// Undoes the bookkeeping of an append that never reached the queue (its future was dropped
/// while waiting, or the queue closed): the permit returns to the semaphore on drop.
struct Queued<'a> {
    backend: &'a StoreBackend,
    room: Arc<str>,
    permit: Option<SemaphorePermit<'a>>,
}

impl Queued<'_> {
    /// The update is in the queue: its permit now belongs to the writer.
    fn handed_over(mut self) {
        if let Some(permit) = self.permit.take() {
            permit.forget();
        }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.permit.is_some() {
            self.backend.tracker.dequeued(&self.room);
            self.backend.metrics.pending_updates.dec();
        }
    }
}

/// Room in the command queue beyond `queue_capacity`, for flushes, deletions and snapshots.
const CONTROL_COMMANDS: usize = 64;

impl StoreBackend {
    /// Opens (or creates) the store in `config.dir` and starts its writer and snapshotter.
    /// Must be called within a tokio runtime. Fails if `dir` is unset, the configuration is
    /// invalid, or the database cannot be opened (another process holds it, wrong format, …).
    pub async fn start(config: StoreConfig, metrics: StoreMetrics) -> Result<Self, StoreError> {
        config.validate()?;
        let dir = config
            .dir
            .clone()
            .ok_or_else(|| StoreError::InvalidConfig("persistence.dir is not set".into()))?;
        let path = schema::path(&dir);
        let (db, next_seq) = tokio::task::spawn_blocking(move || schema::open(&dir)).await??;
        let db = Arc::new(db);
        let tracker = Arc::new(Tracker::new(Thresholds {
            updates: config.compact_after_updates,
            bytes: config.compact_after_bytes,
        }));
        let healthy = Arc::new(AtomicBool::new(true));
        let permits = Arc::new(Semaphore::new(config.queue_capacity));
        let (commands, commands_rx) = mpsc::channel(config.queue_capacity + CONTROL_COMMANDS);
        let (compact, compact_rx) = mpsc::channel(config.compaction_queue);
        let writer_cancel = CancellationToken::new();
        let snapshotter_cancel = CancellationToken::new();
        let writer = Writer {
            db: db.clone(),
            rx: commands_rx,
            next_seq,
            settings: WriterSettings {
                interval: config.commit_interval(),
                max_batch_bytes: config.max_batch_bytes,
            },
            tracker: tracker.clone(),
            metrics: metrics.clone(),
            healthy: healthy.clone(),
            permits: permits.clone(),
            compact: compact.clone(),
            cancel: writer_cancel.clone(),
        };
        let snapshotter = Snapshotter {
            db: db.clone(),
            rx: compact_rx,
            writer: commands.clone(),
            tracker: tracker.clone(),
            metrics: metrics.clone(),
            gc: config.gc,
            cancel: snapshotter_cancel.clone(),
        };
        #[expect(
            clippy::disallowed_methods,
            reason = "the backend owns its writer and snapshotter: `Tasks` holds the handles and `shutdown` awaits them"
        )]
        let tasks = Tasks {
            writer: tokio::spawn(writer.run()),
            snapshotter: tokio::spawn(snapshotter.run()),
        };
        tracing::info!(path = %path.display(), commit_interval_ms = config.commit_interval_ms, "document store opened");
        Ok(StoreBackend {
            config,
            path,
            db: RwLock::new(Some(db)),
            commands,
            permits,
            compact,
            tracker,
            metrics,
            healthy,
            writer_cancel,
            snapshotter_cancel,
            tasks: Mutex::new(Some(tasks)),
        })
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Commits everything accepted so far and waits for the commit.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Flush(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)
    }

    /// Removes everything stored for `room` (snapshot, updates, quarantined entries), after
    /// the updates accepted before this call; returns once that is committed. A loaded room
    /// keeps its in-memory document: the caller closes its connections.
    pub async fn delete_room(&self, room: &str) -> Result<(), StoreError> {
        let op = Op::Delete {
            room: Arc::from(room),
        };
        self.commands
            .send(Command::Op {
                op,
                accepted: Instant::now(),
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        self.flush().await
    }

    /// Up to `limit` (at most [`MAX_LIST_LIMIT`]) names of rooms with committed state, sorted
    /// by their UTF-8 bytes, starting after `after` (pagination: pass the last name returned).
    pub async fn list_rooms(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let db = self.db()?;
        let after = after.map(str::to_string);
        let limit = limit.min(MAX_LIST_LIMIT);
        tokio::task::spawn_blocking(move || schema::list_rooms(&db, after.as_deref(), limit))
            .await?
    }

    /// Stops compaction, commits everything still queued, stops the writer and closes the
    /// database. Call it after `Rooms::close_all`; appends after it fail. Idempotent.
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        let Some(tasks) = self.tasks.lock().take() else {
            return Ok(());
        };
        self.snapshotter_cancel.cancel();
        // Appends still waiting for a permit fail now rather than after the writer stopped.
        self.permits.close();
        if let Err(e) = tasks.snapshotter.await {
            tracing::warn!(error = %e, "snapshotter ended abnormally");
        }
        self.writer_cancel.cancel();
        let result = match tasks.writer.await {
            Ok(result) => result,
            Err(e) => Err(e.into()),
        };
        self.db.write().take();
        match &result {
            Ok(()) => tracing::info!("document store flushed and closed"),
            Err(e) => tracing::error!(error = %e, "document store closed with unsaved updates"),
        }
        result
    }

    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.db.read().clone().ok_or(StoreError::Closed)
    }

    fn schedule(&self, room: Arc<str>) {
        if let Err(e) = self.compact.try_send(room) {
            let room = match e {
                mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
            };
            self.tracker.compacted(&room, None);
        }
    }

    async fn load(&self, room: &Arc<Room>) -> Result<(), StoreError> {
        let started = Instant::now();
        let name: Arc<str> = Arc::from(room.name().as_str());
        if self.tracker.has_queued(&name) {
            self.flush().await?;
        }
        let db = self.db()?;
        let target = room.clone();
        let (log, skipped) = tokio::task::spawn_blocking(move || {
            let mut skipped = 0u64;
            let name = target.name().as_str();
            let log = schema::read_room(&db, name, |entry| {
                if let Err(e) = target.load_update(entry.bytes) {
                    skipped += 1;
                    tracing::warn!(room = %name, seq = entry.seq, kind = ?entry.kind, error = %e, "skipped an unreadable stored entry");
                }
            })?;
            Ok::<_, StoreError>((log, skipped))
        })
        .await??;
        self.metrics.entries_skipped.inc_by(skipped);
        self.metrics
            .load_seconds
            .observe(started.elapsed().as_secs_f64());
        if self.tracker.opened(&name, &log) {
            self.schedule(name);
        }
        Ok(())
    }

    /// Stops the tasks abruptly, without committing what is queued — as a SIGKILL would — and
    /// waits until nothing holds the database file any more.
    #[cfg(test)]
    pub(crate) async fn crash(&self) {
        let tasks = self.tasks.lock().take();
        if let Some(tasks) = tasks {
            tasks.writer.abort();
            tasks.snapshotter.abort();
            let _ = tasks.writer.await;
            let _ = tasks.snapshotter.await;
        }
        let db = self.db.write().take();
        if let Some(db) = db {
            // A commit already running on a blocking thread completes (or not) on its own.
            while Arc::strong_count(&db) > 1 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }

    /// Queues a raw operation for the writer (tests drive compaction steps with it).
    #[cfg(test)]
    pub(crate) async fn submit(&self, op: Op) -> Result<(), StoreError> {
        let accepted = Instant::now();
        self.commands
            .send(Command::Op { op, accepted })
            .await
            .map_err(|_| StoreError::Closed)
    }

    #[cfg(test)]
    pub(crate) fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    #[cfg(test)]
    pub(crate) fn database(&self) -> Option<Arc<Database>> {
        self.db.read().clone()
    }

    #[cfg(test)]
    pub(crate) fn tracker(&self) -> &Tracker {
        &self.tracker
    }
}

impl Drop for StoreBackend {
    fn drop(&mut self) {
        // Without `shutdown`, the writer still commits what is queued, unawaited.
        self.permits.close();
        self.snapshotter_cancel.cancel();
        self.writer_cancel.cancel();
    }
}

#[async_trait]
impl RoomBackend for StoreBackend {
    async fn open(&self, room: &Arc<Room>) -> Result<(), BackendError> {
        self.load(room).await.map_err(|e| {
            tracing::error!(room = %room.name(), error = %e, "could not load a room");
            e.into()
        })
    }

    async fn append(&self, room: &Room, update: &[u8]) -> Result<(), BackendError> {
        // Waits while `queue_capacity` updates are uncommitted (backpressure); never drops.
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| BackendError::from(StoreError::Closed))?;
        let name: Arc<str> = Arc::from(room.name().as_str());
        self.tracker.enqueued(&name);
        self.metrics.pending_updates.inc();
        let guard = Queued {
            backend: self,
            room: name.clone(),
            permit: Some(permit),
        };
        let cmd = Command::Op {
            op: Op::Append {
                room: name,
                update: update.to_vec(),
            },
            accepted: Instant::now(),
        };
        self.commands
            .send(cmd)
            .await
            .map_err(|_| BackendError::from(StoreError::Closed))?;
        guard.handed_over();
        Ok(())
    }

    async fn publish_awareness(&self, _room: &Room, _payload: &[u8]) -> Result<(), BackendError> {
        Ok(())
    }

    async fn close(&self, room: &Arc<Room>) {
        let name = room.name().as_str();
        if self.tracker.has_queued(name) {
            if let Err(e) = self.flush().await {
                tracing::warn!(room = %name, error = %e, "could not flush a closing room");
            }
        }
        self.tracker.closed(name);
    }

    async fn exists(&self, room: &RoomName) -> Result<bool, BackendError> {
        // Queued updates count too: commit them first.
        self.flush().await?;
        let db = self.db()?;
        let room = room.as_str().to_string();
        let found = tokio::task::spawn_blocking(move || schema::has_room(&db, &room))
            .await
            .map_err(StoreError::from)??;
        Ok(found)
    }

    async fn delete(&self, room: &RoomName) -> Result<(), BackendError> {
        self.delete_room(room.as_str())
            .await
            .map_err(BackendError::from)
    }

    async fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Option<u64>)>, BackendError> {
        Ok(self
            .list_rooms(after, limit)
            .await?
            .into_iter()
            .map(|room| (room, None))
            .collect())
    }

    fn unload_grace(&self) -> Option<Duration> {
        Some(self.config.unload_grace())
    }

    fn is_ready(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
            && !self.writer_cancel.is_cancelled()
            && !self.commands.is_closed()
    }
}
