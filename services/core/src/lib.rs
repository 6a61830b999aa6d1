//! # yws-core
//!
//! The room model of the yws gateway, free of sockets, HTTP and Redis: what a room is, what
//! happens when a message arrives, and the trait through which a room's updates reach the
//! outside world (a local store or a shared log).
//!
//! ## Layout
//!
//! - [`name`]: [`RoomName`], validated from the URL path.
//! - [`awareness`]: [`AwarenessRegistry`], the awareness states of a room and who owns them,
//!   with the semantics of `y-protocols/awareness`, and the [`AwarenessLimits`] a connection's
//!   updates are checked against before anything is applied.
//! - [`peer`]: a connection as a room sees it: its bounded [`Outbox`] and the [`CloseReason`]
//!   with which a room can end it (too slow, room deleted, …); its [`Access`] (enforced by the
//!   session that applies its edits).
//! - [`outbox`]: [`Outbox`], a connection's frame queue, bounded in frames and bytes and
//!   allocation-free when idle.
//! - [`room`]: [`Room`], one document plus its peers and awareness. Its handlers take a decoded
//!   message and push frames into outboxes; they never await.
//! - [`replies`]: [`FrameReplies`], which of one frame's sync step 1 and query-awareness
//!   messages need an answer (repeats of one frame are answered once).
//! - [`backend`]: [`RoomBackend`], where updates go and come from: [`MemoryBackend`] for a
//!   standalone node; Redis Streams (crate `yws-redis`) for a cluster.
//! - [`position`]: [`LogPosition`], how far into a shared log a room's document reaches.
//! - [`rate`]: token buckets for per-connection and per-room rate limits.
//! - [`quarantine`]: updates that made yrs panic, skipped when a room is loaded again.
//! - [`export`]: a document as JSON of named shared objects (`CALLBACK_OBJECTS` syntax).
//! - [`rooms`]: [`Rooms`], the registry of loaded rooms: load once, share, unload after a grace
//!   period, sweep stale awareness.
//!
//! Dependencies point one way: `yws-protocol` ← `yws-core` ← backends ← binaries.

pub mod awareness;
pub mod backend;
pub mod cluster;
pub mod export;
pub mod name;
pub mod outbox;
pub mod peer;
pub mod position;
pub mod quarantine;
pub mod rate;
pub mod replies;
pub mod room;
pub mod rooms;

mod error;

pub use awareness::{AwarenessBatch, AwarenessLimits, AwarenessRegistry, AwarenessViolation};
pub use backend::{BackendError, Claimed, MemoryBackend, RoomBackend};
pub use cluster::{Backlog, NodeInfo, NodeReport, RoomStats};
pub use error::RoomError;
pub use name::{NameError, RoomName};
pub use outbox::{Outbox, PushError};
pub use peer::{Access, CloseReason, ConnId, PeerControl};
pub use position::LogPosition;
pub use rate::{Rate, RateLimits, Throttle};
pub use replies::FrameReplies;
pub use room::{Room, RoomListener, RoomSettings};
pub use rooms::{LeaseError, RoomLease, Rooms, RoomsSettings};
