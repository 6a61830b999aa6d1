//! Updates that made yrs panic while being integrated, remembered for the life of the process
//! so that a room loaded again (after one was poisoned by such an update) skips them instead of
//! panicking — and half-applying them — again.
//!
//! Keyed by a hash of the update's bytes under a per-process random key (nobody can craft a
//! good update that collides with a quarantined one), bounded to [`CAPACITY`] entries (the
//! oldest is forgotten first). Checking costs nothing while the quarantine is empty.

use parking_lot::Mutex;
use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;

/// How many quarantined updates are remembered.
pub const CAPACITY: usize = 4096;

struct Quarantine {
    key: RandomState,
    any: AtomicBool,
    set: Mutex<(HashSet<u64>, VecDeque<u64>)>,
}

impl Quarantine {
    fn new() -> Self {
        Quarantine {
            key: RandomState::new(),
            any: AtomicBool::new(false),
            set: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    fn insert(&self, update: &[u8]) {
        let hash = self.key.hash_one(update);
        let mut set = self.set.lock();
        let (members, order) = &mut *set;
        if members.insert(hash) {
            order.push_back(hash);
            if order.len() > CAPACITY {
                if let Some(oldest) = order.pop_front() {
                    members.remove(&oldest);
                }
            }
        }
        self.any.store(true, Ordering::Release);
    }

    fn contains(&self, update: &[u8]) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let hash = self.key.hash_one(update);
        self.set.lock().0.contains(&hash)
    }
}

static QUARANTINE: LazyLock<Quarantine> = LazyLock::new(Quarantine::new);

/// Remembers `update` as one that makes yrs panic.
pub fn insert(update: &[u8]) {
    QUARANTINE.insert(update);
}

/// Whether `update` made yrs panic before.
pub fn contains(update: &[u8]) -> bool {
    QUARANTINE.contains(update)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_what_was_inserted_and_forgets_the_oldest_beyond_capacity() {
        let q = Quarantine::new();
        assert!(!q.contains(b"first"));
        q.insert(b"first");
        assert!(q.contains(b"first"));
        assert!(!q.contains(b"never"));
        for i in 0..CAPACITY {
            q.insert(format!("{i}").as_bytes());
        }
        assert!(!q.contains(b"first"), "the oldest is forgotten");
        assert!(q.contains(format!("{}", CAPACITY - 1).as_bytes()));
    }
}
