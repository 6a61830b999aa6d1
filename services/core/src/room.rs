//! One room: a yrs document, its awareness states and the connections in it.
//!
//! Handlers are synchronous and never await: they take a decoded message, update the
//! document or awareness, and push frames into the outboxes of the room's peers. Waiting for
//! a backend (writing an update to the shared log) happens in the caller *before*
//! [`Room::apply_update`], so nothing is broadcast that was not written.

use crate::awareness::{
    AwarenessBatch, AwarenessChange, AwarenessLimits, AwarenessRegistry, AwarenessViolation, Owner,
};
use crate::outbox::{Outbox, PushError};
use crate::peer::{CloseReason, ConnId, Frame, PeerControl};
use crate::quarantine;
use crate::rate::{RateLimits, Throttle};
use crate::RoomError;
use crate::{LogPosition, RoomName};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::OnceCell;
use tokio::time::{Duration, Instant};
use yrs::updates::encoder::Encode;
use yrs::{Doc, Options, ReadTxn, StateVector, Transact, Update};
use yws_protocol::{encode, validate, AwarenessUpdate};

/// Per-room settings.
#[derive(Debug, Clone, Copy)]
pub struct RoomSettings {
    /// Garbage-collect deleted content (the reference's `GC`, default on).
    pub gc: bool,
    /// What one connection's awareness updates may do.
    pub awareness: AwarenessLimits,
    /// Messages and bytes per second all the room's connections on this node may send.
    pub rate: RateLimits,
}

impl Default for RoomSettings {
    fn default() -> Self {
        RoomSettings {
            gc: true,
            awareness: AwarenessLimits::default(),
            rate: RateLimits::default(),
        }
    }
}

#[derive(Debug)]
struct Peer {
    outbox: Outbox,
    control: Arc<PeerControl>,
}

#[derive(Debug, Default)]
struct RoomState {
    peers: HashMap<ConnId, Peer>,
    awareness: AwarenessRegistry,
}

/// A room. Shared between its connections (`Arc<Room>`).
#[derive(Debug)]
pub struct Room {
    name: RoomName,
    /// Which creation of a room of this name this is: larger for rooms created later in this
    /// process, so a backend can tell a newer room of the same name from an older one.
    instance: u64,
    doc: Doc,
    settings: RoomSettings,
    state: Mutex<RoomState>,
    loaded: OnceCell<()>,
    retired: AtomicBool,
    /// yrs panicked while integrating into `doc`: never served or applied to again.
    poisoned: AtomicBool,
    /// Bumped (while the write transaction is held) by every change of the document.
    version: AtomicU64,
    /// The whole state as a sync step 2, shared by every joiner with an empty state vector
    /// until the document changes: a join storm on a large document encodes it once.
    full_state: Mutex<Option<(u64, Frame)>>,
    position: Mutex<Option<LogPosition>>,
    /// The backend's deletion generation of the state this room was loaded from.
    generation: AtomicU64,
    /// The room's rate limits on this node (`settings.rate`), when any is set.
    throttle: Option<Mutex<Throttle>>,
    listener: Option<Arc<dyn RoomListener>>,
}

/// Told whenever a room's document changed (local or remote update), e.g. to debounce HTTP
/// callbacks. Called with the room's locks released; must not block.
pub trait RoomListener: Send + Sync + std::fmt::Debug {
    /// The document of the room called `room` changed.
    fn changed(&self, room: &RoomName);
}

impl Room {
    /// A new, empty room.
    pub fn new(name: RoomName, settings: RoomSettings) -> Self {
        Self::with_listener(name, settings, None)
    }

    /// A new, empty room whose changes are reported to `listener`.
    pub fn with_listener(
        name: RoomName,
        settings: RoomSettings,
        listener: Option<Arc<dyn RoomListener>>,
    ) -> Self {
        let options = Options {
            skip_gc: !settings.gc,
            // The server must never invent changes of its own: they would not reach clients.
            cleanup_formatting: false,
            ..Options::default()
        };
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        Room {
            name,
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            doc: Doc::with_options(options),
            settings,
            state: Mutex::new(RoomState::default()),
            loaded: OnceCell::new(),
            retired: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            version: AtomicU64::new(0),
            full_state: Mutex::new(None),
            position: Mutex::new(None),
            generation: AtomicU64::new(0),
            throttle: Throttle::new(settings.rate, tokio::time::Instant::now()).map(Mutex::new),
            listener,
        }
    }

    /// Takes the room out of service (deleted): every connection is closed with
    /// [`CloseReason::RoomDeleted`] and the registry loads a fresh room for the next client.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        self.kick_all(CloseReason::RoomDeleted);
    }

    /// Whether the room was retired.
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }

    /// Records that the document includes the shared log up to `position`; keeps the highest.
    pub fn advance_position(&self, position: LogPosition) {
        let mut current = self.position.lock();
        if current.is_none_or(|c| c < position) {
            *current = Some(position);
        }
    }

    /// Records the backend's deletion generation of the state the room is loaded from: a
    /// deletion of the room moves the backend to a newer one, and copies loaded before it
    /// are then stale.
    pub fn set_generation(&self, generation: u64) {
        self.generation.store(generation, Ordering::SeqCst);
    }

    /// The deletion generation the room was loaded at (0 when the backend has none).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// How far into the shared log the document is known to reach, if the backend tracks it.
    pub fn position(&self) -> Option<LogPosition> {
        *self.position.lock()
    }

    /// The room's settings.
    pub fn settings(&self) -> &RoomSettings {
        &self.settings
    }

    /// Pays a frame of `messages` and `bytes` into the room's rate limits; how long its sender
    /// should wait before reading more (zero without limits or within them).
    pub fn throttle(&self, messages: usize, bytes: usize) -> Duration {
        self.throttle.as_ref().map_or(Duration::ZERO, |t| {
            t.lock().take(messages, bytes, tokio::time::Instant::now())
        })
    }

    /// Whether the room has rate limits.
    pub fn is_rate_limited(&self) -> bool {
        self.throttle.is_some()
    }

    /// The room's name.
    pub fn name(&self) -> &RoomName {
        &self.name
    }

    /// This room's creation number in the process: a room created later (of any name) has a
    /// larger one. Backends keep the newer of two rooms of the same name.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// The room's document. Backends load state into it; the HTTP API reads it.
    pub fn doc(&self) -> &Doc {
        &self.doc
    }

    /// Runs `load` once per room (concurrent callers wait for the same run; a failed or
    /// cancelled run is retried by the next caller).
    pub async fn ensure_loaded<F, Fut, E>(&self, load: F) -> Result<(), E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), E>>,
    {
        self.loaded.get_or_try_init(load).await.map(|_| ())
    }

    /// Whether the room finished loading.
    pub fn is_loaded(&self) -> bool {
        self.loaded.initialized()
    }

    /// Number of connections in the room on this node.
    pub fn peer_count(&self) -> usize {
        self.state.lock().peers.len()
    }

    /// Adds a connection and queues what the reference server sends on connect: its sync
    /// step 1, then every current awareness state.
    pub fn join(&self, conn: ConnId, outbox: Outbox, control: Arc<PeerControl>) {
        if self.is_poisoned() {
            // Taken out of service after a panic in yrs: the client reconnects to a clean load.
            control.kick(CloseReason::InternalError);
            return;
        }
        let step1 = Bytes::from(encode::sync_step1_encoded(
            &self.doc.transact().state_vector().encode_v1(),
        ));
        let mut state = self.state.lock();
        let awareness = state.awareness.encode_all();
        let peer = Peer { outbox, control };
        let mut ok = push(&peer, step1);
        if let Some(payload) = awareness {
            ok = ok && push(&peer, Bytes::from(encode::awareness_payload(&payload)));
        }
        if ok {
            state.peers.insert(conn, peer);
        }
    }

    /// Sync step 2 for a client whose state vector is `sv`: everything it is missing.
    pub fn sync_step2(&self, sv: &StateVector) -> Frame {
        if self.is_poisoned() {
            // Never show a possibly half-applied document; the connection is being closed.
            return Bytes::from(encode::sync_step2(Update::EMPTY_V1));
        }
        let txn = self.doc.transact();
        if !sv.is_empty() {
            return Bytes::from(encode::sync_step2(&txn.encode_state_as_update_v1(sv)));
        }
        // The version cannot change while we hold the read transaction.
        let version = self.version.load(Ordering::Acquire);
        // Encoded under the cache lock: joiners arriving together (a join storm on a large
        // document) wait for one encoding instead of each repeating it. Only holders of a read
        // transaction take this lock, and none waits for anything else while holding it.
        let mut cache = self.full_state.lock();
        if let Some((cached, frame)) = &*cache {
            if *cached == version {
                return frame.clone();
            }
        }
        let frame = Bytes::from(encode::sync_step2(&txn.encode_state_as_update_v1(sv)));
        *cache = Some((version, frame.clone()));
        frame
    }

    /// Drops the cached full state (memory is released at once; the next empty-state joiner
    /// encodes it again).
    pub fn forget_cached_state(&self) {
        *self.full_state.lock() = None;
    }

    /// The whole document as one v1 update.
    pub fn encode_state(&self) -> Vec<u8> {
        self.doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    /// Applies a validated update (already written to the backend) and sends it to every
    /// connection of the room, the sender included. `raw` is the update as received.
    ///
    /// If yrs panics while integrating it, the document may hold part of the update: the room
    /// is taken out of service ([`Room::is_poisoned`]) and [`RoomError::Poisoned`] returned.
    pub fn apply_update(&self, update: Update, raw: &[u8]) -> Result<(), RoomError> {
        self.integrate(update, raw)?;
        self.broadcast(Bytes::from(encode::update(raw)));
        if let Some(listener) = &self.listener {
            listener.changed(&self.name);
        }
        Ok(())
    }

    /// Applies an update that arrived from another node (or a store): validated here, since
    /// nothing read from outside is trusted.
    pub fn apply_remote_update(&self, raw: &[u8]) -> Result<(), RoomError> {
        let update = validate::update(raw)?;
        if update.is_empty() {
            return Ok(());
        }
        self.apply_update(update, raw)
    }

    /// Loads stored state into the document without broadcasting (used while loading). An
    /// update that made yrs panic before ([`quarantine`]) is skipped without being applied; one
    /// that panics now poisons the room like [`Room::apply_update`] does — the registry then
    /// loads a fresh room, which skips it.
    pub fn load_update(&self, raw: &[u8]) -> Result<(), RoomError> {
        if quarantine::contains(raw) {
            return Err(RoomError::Quarantined);
        }
        let update = validate::update(raw)?;
        self.integrate(update, raw)
    }

    /// Whether yrs panicked while integrating an update into this room: its document may be
    /// half-applied, so the room is out of service (also [`Room::is_retired`]) and never
    /// touched again.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }

    /// Integrates an update into the document. yrs can panic on some malformed updates that
    /// still decode (found by fuzzing), while integrating or while committing the transaction,
    /// and may leave part of the update in the document. Both are caught (the commit never runs
    /// while unwinding, where a second panic would abort the process); the update is
    /// quarantined and the room poisoned: its connections are closed with 1011 so that their
    /// clients reconnect and re-sync from a clean load, and it is never served again.
    fn integrate(&self, update: Update, raw: &[u8]) -> Result<(), RoomError> {
        if self.is_poisoned() {
            return Err(RoomError::Poisoned);
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut txn = self.doc.transact_mut();
            let applied = catch_unwind(AssertUnwindSafe(|| txn.apply_update(update)));
            self.version.fetch_add(1, Ordering::AcqRel);
            // Committed here, outside the inner catch: never while unwinding.
            drop(txn);
            applied
        }));
        match outcome {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(RoomError::Apply(e.to_string())),
            Ok(Err(_)) | Err(_) => {
                quarantine::insert(raw);
                self.poisoned.store(true, Ordering::SeqCst);
                self.retired.store(true, Ordering::SeqCst);
                self.forget_cached_state();
                tracing::error!(
                    room = %self.name,
                    "the CRDT library panicked while integrating an update; update quarantined, \
                     room taken out of service (its clients reconnect and load it afresh)"
                );
                self.kick_all(CloseReason::InternalError);
                Err(RoomError::Poisoned)
            }
        }
    }

    /// Checks an awareness update from a local connection against the room's
    /// [`AwarenessLimits`] and, when it passes, applies it and adds what changed to `batch`.
    /// Nothing is sent: [`Room::flush_awareness`] relays the batch once the frame is handled.
    /// A refused update changes nothing.
    pub fn apply_awareness(
        &self,
        conn: ConnId,
        update: &AwarenessUpdate<'_>,
        batch: &mut AwarenessBatch,
    ) -> Result<(), AwarenessViolation> {
        let mut state = self.state.lock();
        state
            .awareness
            .check(update, conn, &self.settings.awareness)?;
        let change = state
            .awareness
            .apply(update, Owner::Local(conn), Instant::now());
        batch.add(&change);
        Ok(())
    }

    /// Relays the states `conn` changed (its `batch`) to every connection of the room, the
    /// sender included, as one awareness message. Returns that payload for other nodes, or
    /// `None` when there was nothing to relay.
    pub fn flush_awareness(&self, conn: ConnId, batch: &mut AwarenessBatch) -> Option<Vec<u8>> {
        if batch.is_empty() {
            return None;
        }
        let state = self.state.lock();
        // Another node may have taken an id over since; its state is that node's to share.
        let ids: Vec<u64> = batch
            .take()
            .into_iter()
            .filter(|id| state.awareness.is_owned_by(*id, conn))
            .collect();
        if ids.is_empty() {
            return None;
        }
        let payload = state.awareness.encode(ids);
        broadcast_locked(&state, Bytes::from(encode::awareness_payload(&payload)));
        Some(payload)
    }

    /// Applies an awareness payload from another node and relays what changed.
    pub fn apply_remote_awareness(&self, payload: &[u8]) -> Result<AwarenessChange, RoomError> {
        let update = AwarenessUpdate::decode(payload)?;
        let mut state = self.state.lock();
        let change = state
            .awareness
            .apply(&update, Owner::Remote, Instant::now());
        if !change.is_empty() {
            let payload = state.awareness.encode(change.all());
            broadcast_locked(&state, Bytes::from(encode::awareness_payload(&payload)));
        }
        Ok(change)
    }

    /// The answer to a query-awareness message: every current state (an empty update when
    /// there is none, so the client still gets a well-formed answer).
    pub fn awareness_frame(&self) -> Frame {
        let state = self.state.lock();
        match state.awareness.encode_all() {
            Some(payload) => Bytes::from(encode::awareness_payload(&payload)),
            None => Bytes::from(encode::empty_awareness()),
        }
    }

    /// Removes a connection and the awareness states it introduced, broadcasting the removal.
    /// Returns the removal payload for other nodes, if any state was removed.
    pub fn leave(&self, conn: ConnId) -> Option<Vec<u8>> {
        let mut state = self.state.lock();
        state.peers.remove(&conn);
        let removed = state.awareness.remove_conn(conn, Instant::now());
        if removed.is_empty() {
            return None;
        }
        let payload = state.awareness.encode(removed);
        broadcast_locked(&state, Bytes::from(encode::awareness_payload(&payload)));
        Some(payload)
    }

    /// Removes awareness states not renewed within `timeout` and broadcasts their removal.
    /// Returns how many were removed.
    pub fn expire_awareness(&self, timeout: Duration) -> usize {
        let mut state = self.state.lock();
        let removed = state.awareness.expire(Instant::now(), timeout);
        if !removed.is_empty() {
            let payload = state.awareness.encode(removed.iter().copied());
            broadcast_locked(&state, Bytes::from(encode::awareness_payload(&payload)));
        }
        removed.len()
    }

    /// Sends `frame` to every connection of the room. A connection whose outbox is full is
    /// closed as too slow (it re-syncs when it reconnects); nothing is dropped silently.
    pub fn broadcast(&self, frame: Frame) {
        broadcast_locked(&self.state.lock(), frame);
    }

    /// Asks every connection of the room to close with `reason`.
    pub fn kick_all(&self, reason: CloseReason) {
        for peer in self.state.lock().peers.values() {
            peer.control.kick(reason);
        }
    }
}

fn push(peer: &Peer, frame: Frame) -> bool {
    match peer.outbox.push(frame) {
        Ok(()) => true,
        Err(PushError::Full) => {
            peer.control.kick(CloseReason::TooSlow);
            false
        }
        // The connection is ending; its guard removes it from the room.
        Err(PushError::Closed) => false,
    }
}

fn broadcast_locked(state: &RoomState, frame: Frame) {
    for peer in state.peers.values() {
        if !peer.control.is_kicked() {
            push(peer, frame.clone());
        }
    }
}

#[cfg(test)]
mod tests;
