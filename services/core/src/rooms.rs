//! The registry of rooms loaded on this node.
//!
//! A connection takes a [`RoomLease`]; the first lease of a room creates and loads it (once,
//! however many connections arrive together). When the last lease is gone the room becomes
//! idle; [`Rooms::maintain`] unloads rooms idle longer than the backend's grace period and
//! expires awareness states that were not renewed.

use crate::backend::{BackendError, RoomBackend};
use crate::room::{Room, RoomListener, RoomSettings};
use crate::RoomName;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Settings of the registry.
#[derive(Debug, Clone, Copy)]
pub struct RoomsSettings {
    /// Settings every room gets.
    pub room: RoomSettings,
    /// Awareness states not renewed within this time are removed (y-protocols: 30 s).
    pub awareness_timeout: Duration,
    /// How often maintenance runs.
    pub maintenance_interval: Duration,
    /// Rooms this node holds at most (loaded, idle or being retired); a lease that would
    /// create one more fails with [`LeaseError::Full`]. `None`: no limit.
    pub max_rooms: Option<usize>,
}

/// Why [`Rooms::lease`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The room is not loaded and the node already holds `max` rooms.
    #[error("this node holds its maximum of {max} rooms")]
    Full {
        /// The configured limit.
        max: usize,
    },
    /// The room could not be loaded.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl Default for RoomsSettings {
    fn default() -> Self {
        RoomsSettings {
            room: RoomSettings::default(),
            awareness_timeout: Duration::from_secs(30),
            maintenance_interval: Duration::from_secs(3),
            max_rooms: None,
        }
    }
}

/// How often [`Rooms::lease`] tries again when the room it loaded was dropped meanwhile.
const MAX_LOAD_ATTEMPTS: usize = 3;

#[derive(Debug)]
struct Slot {
    room: Arc<Room>,
    leases: usize,
    idle_since: Option<Instant>,
}

/// The rooms loaded on this node.
#[derive(Debug)]
pub struct Rooms {
    backend: Arc<dyn RoomBackend>,
    settings: RoomsSettings,
    slots: Mutex<HashMap<RoomName, Slot>>,
    listener: Mutex<Option<Arc<dyn RoomListener>>>,
}

/// A connection's hold on a loaded room. Dropping it releases the hold.
#[derive(Debug)]
pub struct RoomLease {
    rooms: Arc<Rooms>,
    room: Arc<Room>,
}

impl RoomLease {
    /// The leased room.
    pub fn room(&self) -> &Arc<Room> {
        &self.room
    }

    /// Whether the room is still the registry's room of its name and not retired. A session
    /// checks this after joining: a room dropped in between (every room is dropped when the
    /// backend becomes unavailable, kicking the peers it had) would leave it editing alone.
    pub fn is_current(&self) -> bool {
        self.rooms.holds(&self.room) && !self.room.is_retired()
    }
}

impl Drop for RoomLease {
    fn drop(&mut self) {
        self.rooms.release(&self.room);
    }
}

impl Rooms {
    /// An empty registry over `backend`.
    pub fn new(backend: Arc<dyn RoomBackend>, settings: RoomsSettings) -> Arc<Self> {
        Arc::new(Rooms {
            backend,
            settings,
            slots: Mutex::new(HashMap::new()),
            listener: Mutex::new(None),
        })
    }

    /// Reports document changes of rooms created from now on to `listener`.
    pub fn set_listener(&self, listener: Arc<dyn RoomListener>) {
        *self.listener.lock() = Some(listener);
    }

    /// The backend rooms are loaded from.
    pub fn backend(&self) -> &Arc<dyn RoomBackend> {
        &self.backend
    }

    /// Takes a lease on `name`, creating and loading the room if needed. A room that is not
    /// held yet is refused ([`LeaseError::Full`]) when the node holds `max_rooms` already.
    ///
    /// A room can leave the registry while it loads (every room is dropped when the backend
    /// becomes unavailable; a deleted room is replaced), or be deleted meanwhile. Its load then
    /// finishes for a room nobody else will ever see: its connections would edit alone,
    /// receiving nothing from other nodes, or serve a deleted document. Such a room is closed
    /// and the lease is taken again on the current room.
    pub async fn lease(self: &Arc<Self>, name: &RoomName) -> Result<RoomLease, LeaseError> {
        for _ in 0..MAX_LOAD_ATTEMPTS {
            if let Some(lease) = self.lease_once(name).await? {
                return Ok(lease);
            }
        }
        Err(LeaseError::Backend(BackendError::Unavailable(format!(
            "room {name} kept being dropped while it loaded"
        ))))
    }

    /// One attempt of [`Rooms::lease`]: `None` when the room left the registry while loading.
    async fn lease_once(
        self: &Arc<Self>,
        name: &RoomName,
    ) -> Result<Option<RoomLease>, LeaseError> {
        let (room, replaced) = {
            let listener = self.listener.lock().clone();
            let fresh = || Slot {
                room: Arc::new(Room::with_listener(
                    name.clone(),
                    self.settings.room,
                    listener.clone(),
                )),
                leases: 0,
                idle_since: None,
            };
            let mut slots = self.slots.lock();
            if let Some(max) = self.settings.max_rooms {
                if slots.len() >= max && !slots.contains_key(name) {
                    return Err(LeaseError::Full { max });
                }
            }
            let slot = slots.entry(name.clone()).or_insert_with(fresh);
            // A retired (deleted) room is replaced; its sessions are closing on their own.
            let replaced = slot
                .room
                .is_retired()
                .then(|| std::mem::replace(slot, fresh()).room);
            slot.leases += 1;
            slot.idle_since = None;
            (slot.room.clone(), replaced)
        };
        if let Some(old) = replaced {
            if old.is_loaded() {
                self.backend.close(&old).await;
            }
        }
        let lease = RoomLease {
            rooms: self.clone(),
            room,
        };
        let backend = self.backend.clone();
        let room = lease.room.clone();
        lease
            .room
            .ensure_loaded(|| async move { backend.open(&room).await })
            .await?;
        if lease.is_current() {
            return Ok(Some(lease));
        }
        tracing::debug!(room = %name, "room left the registry or was deleted while it loaded; taking a fresh one");
        // Every lease on the dropped room comes here; closing twice is harmless (the backend
        // only forgets what still belongs to this room, never a newer one of the same name).
        self.backend.close(&lease.room).await;
        Ok(None)
    }

    /// Whether `room` (this very instance) is the registry's room of its name.
    fn holds(&self, room: &Arc<Room>) -> bool {
        self.slots
            .lock()
            .get(room.name())
            .is_some_and(|s| Arc::ptr_eq(&s.room, room))
    }

    fn release(&self, room: &Arc<Room>) {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get_mut(room.name()) {
            if Arc::ptr_eq(&slot.room, room) {
                slot.leases = slot.leases.saturating_sub(1);
                if slot.leases == 0 {
                    slot.idle_since = Some(Instant::now());
                }
            }
        }
    }

    /// The loaded room called `name`, if any (for remote deliveries and the HTTP API).
    pub fn get(&self, name: &RoomName) -> Option<Arc<Room>> {
        self.slots
            .lock()
            .get(name)
            .filter(|s| s.room.is_loaded() && !s.room.is_retired())
            .map(|s| s.room.clone())
    }

    /// Every loaded room.
    pub fn all(&self) -> Vec<Arc<Room>> {
        self.slots.lock().values().map(|s| s.room.clone()).collect()
    }

    /// Number of rooms in the registry.
    pub fn len(&self) -> usize {
        self.slots.lock().len()
    }

    /// Whether no room is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One maintenance pass: expires stale awareness states and unloads rooms idle past the
    /// backend's grace period (rooms whose load failed are dropped at once). Returns the
    /// number of rooms unloaded.
    pub async fn maintain_once(&self) -> usize {
        let timeout = self.settings.awareness_timeout;
        for room in self.all() {
            room.expire_awareness(timeout);
        }
        let grace = self.backend.unload_grace();
        let now = Instant::now();
        let unloaded: Vec<Arc<Room>> = {
            let mut slots = self.slots.lock();
            let expired: Vec<RoomName> = slots
                .iter()
                .filter(|(_, s)| match (s.idle_since, grace) {
                    (Some(_), _) if !s.room.is_loaded() || s.room.is_retired() => true,
                    (Some(since), Some(grace)) => now.saturating_duration_since(since) >= grace,
                    _ => false,
                })
                .map(|(name, _)| name.clone())
                .collect();
            expired
                .iter()
                .filter_map(|name| slots.remove(name))
                .map(|slot| slot.room)
                .collect()
        };
        for room in &unloaded {
            if room.is_loaded() {
                self.backend.close(room).await;
            }
        }
        unloaded.len()
    }

    /// Runs maintenance every `maintenance_interval` until `cancel` fires.
    pub async fn maintain(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.maintenance_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {
                    let unloaded = self.maintain_once().await;
                    if unloaded > 0 {
                        tracing::debug!(unloaded, "unloaded idle rooms");
                    }
                }
            }
        }
    }

    /// Deletes a room on this node: its connections are closed (4404), the room leaves the
    /// registry (the next client gets a fresh one) and the backend stops serving it. Returns
    /// whether it was loaded here.
    pub async fn retire(&self, name: &RoomName) -> bool {
        let slot = self.slots.lock().remove(name);
        match slot {
            Some(slot) => {
                slot.room.retire();
                if slot.room.is_loaded() {
                    self.backend.close(&slot.room).await;
                }
                true
            }
            None => false,
        }
    }

    /// Connection counts of the loaded rooms, sorted by name: those after `after`, at most
    /// `limit`.
    pub fn list(&self, after: Option<&str>, limit: usize) -> Vec<(RoomName, usize)> {
        let mut rooms: Vec<(RoomName, usize)> = self
            .slots
            .lock()
            .values()
            .filter(|s| !s.room.is_retired())
            .filter(|s| after.is_none_or(|a| s.room.name().as_str() > a))
            .map(|s| (s.room.name().clone(), s.room.peer_count()))
            .collect();
        rooms.sort_by(|a, b| a.0.cmp(&b.0));
        rooms.truncate(limit);
        rooms
    }

    /// Drops every room at once, asking their connections to close with `reason`: used when
    /// the shared backend became unavailable and in-memory state may fall behind other nodes.
    /// Rooms load afresh when clients come back.
    pub async fn evict_all(&self, reason: crate::CloseReason) -> usize {
        let rooms: Vec<Arc<Room>> = self.slots.lock().drain().map(|(_, s)| s.room).collect();
        // Every client is asked to leave first; closing rooms may wait on a backend that is down.
        for room in &rooms {
            room.kick_all(reason);
        }
        let closes = rooms
            .iter()
            .filter(|room| room.is_loaded())
            .map(|room| self.backend.close(room));
        futures_util::future::join_all(closes).await;
        rooms.len()
    }

    /// Closes every room on this node (shutdown): unsubscribes from the backend.
    pub async fn close_all(&self) {
        let rooms: Vec<Arc<Room>> = self.slots.lock().drain().map(|(_, s)| s.room).collect();
        for room in rooms {
            if room.is_loaded() {
                self.backend.close(&room).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct CountingBackend {
        opens: AtomicUsize,
        closes: AtomicUsize,
    }

    #[async_trait]
    impl RoomBackend for CountingBackend {
        async fn open(&self, _room: &Arc<Room>) -> Result<(), BackendError> {
            self.opens.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(())
        }
        async fn append(&self, _: &Room, _: &[u8]) -> Result<(), BackendError> {
            Ok(())
        }
        async fn publish_awareness(&self, _: &Room, _: &[u8]) -> Result<(), BackendError> {
            Ok(())
        }
        async fn close(&self, _room: &Arc<Room>) {
            self.closes.fetch_add(1, Ordering::SeqCst);
        }
        fn unload_grace(&self) -> Option<Duration> {
            Some(Duration::from_secs(5))
        }
    }

    fn name(s: &str) -> RoomName {
        RoomName::new(s, 64).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_leases_load_once_and_unload_after_grace() {
        let backend = Arc::new(CountingBackend::default());
        let rooms = Rooms::new(backend.clone(), RoomsSettings::default());
        let x = name("x");
        let (a, b) = tokio::join!(rooms.lease(&x), rooms.lease(&x));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(Arc::ptr_eq(a.room(), b.room()));
        assert_eq!(backend.opens.load(Ordering::SeqCst), 1);
        drop(a);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(rooms.maintain_once().await, 0, "still leased");
        drop(b);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(rooms.maintain_once().await, 0, "within grace");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(rooms.maintain_once().await, 1);
        assert_eq!(backend.closes.load(Ordering::SeqCst), 1);
        assert!(rooms.is_empty());
        // A new lease loads a fresh room.
        let c = rooms.lease(&name("x")).await.unwrap();
        assert_eq!(backend.opens.load(Ordering::SeqCst), 2);
        drop(c);
    }

    /// Its first open waits until `gate` is opened.
    #[derive(Debug, Default)]
    struct GatedBackend {
        counts: CountingBackend,
        gate: tokio::sync::Notify,
    }

    #[async_trait]
    impl RoomBackend for GatedBackend {
        async fn open(&self, room: &Arc<Room>) -> Result<(), BackendError> {
            if self.counts.opens.load(Ordering::SeqCst) == 0 {
                self.gate.notified().await;
            }
            self.counts.open(room).await
        }
        async fn append(&self, _: &Room, _: &[u8]) -> Result<(), BackendError> {
            Ok(())
        }
        async fn publish_awareness(&self, _: &Room, _: &[u8]) -> Result<(), BackendError> {
            Ok(())
        }
        async fn close(&self, room: &Arc<Room>) {
            self.counts.close(room).await
        }
        fn unload_grace(&self) -> Option<Duration> {
            self.counts.unload_grace()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_room_dropped_while_it_loads_is_closed_and_the_lease_gets_the_current_one() {
        let backend = Arc::new(GatedBackend::default());
        let rooms = Rooms::new(backend.clone(), RoomsSettings::default());
        let x = name("x");
        let dropping = async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            // The backend went away while the room loaded: every room is dropped.
            let dropped = rooms
                .evict_all(crate::CloseReason::BackendUnavailable)
                .await;
            backend.gate.notify_one();
            dropped
        };
        let (lease, dropped) = tokio::join!(rooms.lease(&x), dropping);
        assert_eq!(dropped, 1);
        let lease = lease.unwrap();
        let current = rooms.get(&x).expect("the lease's room is the registry's");
        assert!(Arc::ptr_eq(lease.room(), &current));
        assert_eq!(backend.counts.opens.load(Ordering::SeqCst), 2);
        assert_eq!(
            backend.counts.closes.load(Ordering::SeqCst),
            1,
            "the dropped room is closed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn memory_rooms_live_forever() {
        let rooms = Rooms::new(Arc::new(MemoryBackend), RoomsSettings::default());
        drop(rooms.lease(&name("y")).await.unwrap());
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(rooms.maintain_once().await, 0);
        assert!(rooms.get(&name("y")).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn new_rooms_beyond_max_rooms_are_refused() {
        let settings = RoomsSettings {
            max_rooms: Some(2),
            ..RoomsSettings::default()
        };
        let rooms = Rooms::new(Arc::new(MemoryBackend), settings);
        let a = rooms.lease(&name("a")).await.unwrap();
        drop(rooms.lease(&name("b")).await.unwrap());
        assert!(matches!(
            rooms.lease(&name("c")).await,
            Err(LeaseError::Full { max: 2 })
        ));
        assert_eq!(rooms.len(), 2, "the refused room is not created");
        // Rooms already held are leased again, idle or not.
        let again = rooms.lease(&name("a")).await.unwrap();
        assert!(Arc::ptr_eq(a.room(), again.room()));
        drop(rooms.lease(&name("b")).await.unwrap());
    }
}
