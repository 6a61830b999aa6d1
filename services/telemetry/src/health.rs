//! Liveness and readiness.

use std::sync::atomic::{AtomicBool, Ordering};
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
