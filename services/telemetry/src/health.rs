//! Liveness and readiness.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Shared health state. Alive from start to exit; ready once started, until shutdown begins
/// or a dependency (Redis) is down.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    started: AtomicBool,
    draining: AtomicBool,
    dependency_down: AtomicBool,
    /// Rooms served without live delivery from the shared backend (their logs are polled).
    degraded_rooms: AtomicUsize,
}

impl Health {
    /// A new state: alive, not ready yet.
    pub fn new() -> Self {
        Health::default()
    }

    /// Startup finished.
    pub fn set_started(&self) {
        self.inner.started.store(true, Ordering::SeqCst);
    }

    /// Shutdown began: stop being ready so load balancers move traffic away.
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// A dependency became unreachable (`true`) or came back (`false`).
    pub fn set_dependency_down(&self, down: bool) {
        self.inner.dependency_down.store(down, Ordering::SeqCst);
    }

    /// How many rooms are served without live delivery (0: none), for the `/readyz` body.
    pub fn set_degraded_rooms(&self, rooms: usize) {
        self.inner.degraded_rooms.store(rooms, Ordering::SeqCst);
    }

    /// The `/readyz` body of a ready process: `ready`, with what is degraded if anything.
    pub fn ready_text(&self) -> String {
        match self.inner.degraded_rooms.load(Ordering::SeqCst) {
            0 => "ready\n".to_string(),
            n => format!(
                "ready; degraded: {n} rooms without live delivery from Redis (their logs are polled until it is back)\n"
            ),
        }
    }

    /// Whether the process should receive new clients.
    pub fn is_ready(&self) -> bool {
        self.inner.started.load(Ordering::SeqCst)
            && !self.inner.draining.load(Ordering::SeqCst)
            && !self.inner.dependency_down.load(Ordering::SeqCst)
    }

    /// Why the process is not ready, for the `/readyz` body.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if !self.inner.started.load(Ordering::SeqCst) {
            Some("starting")
        } else if self.inner.draining.load(Ordering::SeqCst) {
            Some("draining")
        } else if self.inner.dependency_down.load(Ordering::SeqCst) {
            Some("redis unavailable")
        } else {
            None
        }
    }
}
