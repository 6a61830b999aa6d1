//! Where a room's updates go and where remote changes come from.
//!
//! A [`RoomBackend`] is the room's *update source*: the gateway calls it, never a concrete
//! store. [`MemoryBackend`] keeps documents in process memory only (the reference server's
//! behaviour); `yws-redis` shares rooms between nodes through Redis Streams; an embedded store
//! gives a single node durability (`YPERSISTENCE`).

use crate::cluster::{Backlog, NodeInfo, NodeReport, RoomStats};
use crate::room::Room;
use crate::{LogPosition, RoomName};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Errors of a backend. Bounded: each maps to one close code and one metric label.
#[derive(Debug, Clone, Error)]
pub enum BackendError {
    /// The store or shared log cannot be reached.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// A call took longer than its timeout.
    #[error("backend timed out: {0}")]
    Timeout(&'static str),
    /// Too many writes in flight on this node.
    #[error("backend overloaded")]
    Overloaded,
    /// Stored data could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The room was deleted after this copy of it was loaded: nothing was written, and the
    /// copy must not be served any longer.
    #[error("the room was deleted")]
    Deleted,
}

impl BackendError {
    /// A short, bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            BackendError::Unavailable(_) => "unavailable",
            BackendError::Timeout(_) => "timeout",
            BackendError::Overloaded => "overloaded",
            BackendError::Corrupt(_) => "corrupt",
            BackendError::Deleted => "deleted",
        }
    }
}

/// The source and sink of a room's updates.
///
/// Contract:
/// - [`open`](RoomBackend::open) loads the room's stored state into [`Room::doc`] (with
///   [`Room::load_update`]) and, for shared backends, starts applying other nodes' changes with
///   [`Room::apply_remote_update`] / [`Room::apply_remote_awareness`] — with no gap between
///   the loaded state and the first delivered change. A shared backend records how far into
///   its log the document reaches with [`Room::advance_position`], as it loads and applies.
/// - [`append`](RoomBackend::append) returns once the update is shared (Redis) or accepted
///   for the backend's documented durability window (the embedded store's group commit);
///   the caller applies and broadcasts it afterwards.
/// - [`close`](RoomBackend::close) stops deliveries for that `Arc<Room>` only: a newer `Room`
///   of the same name may already be open.
#[async_trait]
pub trait RoomBackend: Send + Sync + std::fmt::Debug + 'static {
    /// Loads the room's state and starts delivering remote changes into it.
    async fn open(&self, room: &Arc<Room>) -> Result<(), BackendError>;

    /// Durably records a validated update of `room`.
    async fn append(&self, room: &Room, update: &[u8]) -> Result<(), BackendError>;

    /// Shares an awareness payload (changed states of local clients) with other nodes.
    async fn publish_awareness(&self, room: &Room, payload: &[u8]) -> Result<(), BackendError>;

    /// The room is no longer served by this node.
    async fn close(&self, room: &Arc<Room>);

    /// How long an empty room stays loaded; `None` keeps it for the life of the process
    /// (when the process memory is the only copy).
    fn unload_grace(&self) -> Option<Duration>;

    /// Whether the backend can take traffic (feeds `/readyz`).
    fn is_ready(&self) -> bool {
        true
    }

    /// Whether the room has stored state (the document API answers 404 otherwise).
    async fn exists(&self, _room: &RoomName) -> Result<bool, BackendError> {
        Ok(false)
    }

    /// Removes the room's stored state and, for shared backends, makes every other node close
    /// its connections (4404) and drop its copy.
    async fn delete(&self, _room: &RoomName) -> Result<(), BackendError> {
        Ok(())
    }

    /// Rooms known beyond this node — stored rooms, or rooms served by other nodes — with
    /// their connection counts where known, sorted by name, after `after`, at most `limit`.
    async fn list(
        &self,
        _after: Option<&str>,
        _limit: usize,
    ) -> Result<Vec<(String, Option<u64>)>, BackendError> {
        Ok(Vec::new())
    }

    /// This node's rooms and their local connection counts, for cluster-wide listings.
    async fn report_presence(&self, _rooms: &[(RoomName, usize)]) -> Result<(), BackendError> {
        Ok(())
    }

    /// Shares this node's description with the others (beside [`report_presence`]'s rooms),
    /// for the admin console's cluster view.
    ///
    /// [`report_presence`]: RoomBackend::report_presence
    async fn report_node(&self, _info: &NodeInfo) -> Result<(), BackendError> {
        Ok(())
    }

    /// Every live node of the cluster with its description and rooms; empty for a backend
    /// without other nodes.
    async fn nodes(&self) -> Result<Vec<NodeReport>, BackendError> {
        Ok(Vec::new())
    }

    /// The size of a room's stored state; `None` when the backend keeps no separate log.
    async fn room_stats(&self, _room: &RoomName) -> Result<Option<RoomStats>, BackendError> {
        Ok(None)
    }

    /// The compaction queue; `None` when the backend compacts nothing.
    async fn backlog(&self) -> Result<Option<Backlog>, BackendError> {
        Ok(None)
    }

    /// Queues the room for compaction now; `false` when the backend compacts nothing.
    async fn compact_now(&self, _room: &RoomName) -> Result<bool, BackendError> {
        Ok(false)
    }

    /// For HTTP callbacks in a cluster: claims the right to send `room`'s callback for the
    /// state up to `position` ([`Room::position`]; `None` when the backend tracks none) within
    /// `window`, so that one node, not every node serving the room, sends it. The answer is a
    /// [`Claimed`]: send now, already covered by another node's callback, or try again later.
    /// Backends without other nodes always answer [`Claimed::Send`].
    async fn claim_callback(
        &self,
        _room: &RoomName,
        _position: Option<LogPosition>,
        _window: Duration,
    ) -> Result<Claimed, BackendError> {
        Ok(Claimed::Send)
    }

    /// Rooms served without live delivery of other nodes' changes (they are caught up by
    /// polling instead): 0 when everything is live, or for a backend without other nodes.
    fn degraded(&self) -> usize {
        0
    }

    /// Availability changes of a shared backend: when it turns `false`, the node stops being
    /// ready and closes the clients of every room (their in-memory state can no longer be
    /// kept in step with other nodes); `None` for backends that are always available.
    fn availability(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        None
    }
}

/// Whether this node should send a room's HTTP callback now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// Send it.
    Send,
    /// Another node already sent a callback covering this state.
    Covered,
    /// Another node sent an older state within the window: try again after this long.
    Later(Duration),
}

/// Documents in process memory only, for the life of the process, like the reference server
/// without persistence.
#[derive(Debug, Default)]
pub struct MemoryBackend;

#[async_trait]
impl RoomBackend for MemoryBackend {
    async fn open(&self, _room: &Arc<Room>) -> Result<(), BackendError> {
        Ok(())
    }

    async fn append(&self, _room: &Room, _update: &[u8]) -> Result<(), BackendError> {
        Ok(())
    }

    async fn publish_awareness(&self, _room: &Room, _payload: &[u8]) -> Result<(), BackendError> {
        Ok(())
    }

    async fn close(&self, _room: &Arc<Room>) {}

    fn unload_grace(&self) -> Option<Duration> {
        None
    }
}
