//! [`Tracker`]: what the store knows about rooms in memory — updates queued but not committed,
//! the size of each log since its snapshot, and which rooms are being compacted.
//!
//! Bounded: a room has an entry only while it is open, has queued updates, or is being
//! compacted. The log counters start from what [`Tracker::opened`] read from disk, so a room
//! that was not open since the process started is compacted on its next open if needed.

use crate::schema::RoomLog;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Compaction thresholds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Thresholds {
    pub(crate) updates: u64,
    pub(crate) bytes: u64,
}

#[derive(Debug, Default)]
struct RoomEntry {
    /// Updates accepted and not yet committed.
    queued: u64,
    /// Open `Room`s of this name (a new one may open while an old one closes).
    opens: u32,
    /// Updates and bytes in the log since the snapshot (as far as this process knows).
    updates: u64,
    bytes: u64,
    /// Queued for or under compaction.
    compacting: bool,
}

impl RoomEntry {
    fn idle(&self) -> bool {
        self.queued == 0 && self.opens == 0 && !self.compacting
    }

    fn due(&self, t: Thresholds) -> bool {
        !self.compacting && (self.updates >= t.updates || self.bytes >= t.bytes)
    }
}

/// Per-room bookkeeping shared by the backend, the writer and the snapshotter.
#[derive(Debug)]
pub(crate) struct Tracker {
    thresholds: Thresholds,
    rooms: Mutex<HashMap<Arc<str>, RoomEntry>>,
}

impl Tracker {
    pub(crate) fn new(thresholds: Thresholds) -> Self {
        Tracker {
            thresholds,
            rooms: Mutex::new(HashMap::new()),
        }
    }

    /// An update of `room` was queued.
    pub(crate) fn enqueued(&self, room: &Arc<str>) {
        self.rooms.lock().entry(room.clone()).or_default().queued += 1;
    }

    /// A queued update of `room` will never be committed (the queue closed before it got in,
    /// or the store gave up at shutdown).
    pub(crate) fn dequeued(&self, room: &str) {
        self.update(room, |e| e.queued = e.queued.saturating_sub(1));
    }

    /// Whether `room` has updates queued but not committed.
    pub(crate) fn has_queued(&self, room: &str) -> bool {
        self.rooms.lock().get(room).is_some_and(|e| e.queued > 0)
    }

    /// An update of `room` of `bytes` was committed. Returns `true` when the room is now due
    /// for compaction (it is then marked as compacting).
    pub(crate) fn committed(&self, room: &str, bytes: u64) -> bool {
        let t = self.thresholds;
        self.update(room, |e| {
            e.queued = e.queued.saturating_sub(1);
            e.updates += 1;
            e.bytes += bytes;
            mark_if_due(e, t)
        })
        .unwrap_or(false)
    }

    /// `room` was loaded and its log read. Returns `true` when it is due for compaction.
    pub(crate) fn opened(&self, room: &Arc<str>, log: &RoomLog) -> bool {
        let t = self.thresholds;
        let mut rooms = self.rooms.lock();
        let e = rooms.entry(room.clone()).or_default();
        e.opens += 1;
        e.updates = e.updates.max(log.updates);
        e.bytes = e.bytes.max(log.update_bytes);
        mark_if_due(e, t)
    }

    /// A `Room` of this name was closed.
    pub(crate) fn closed(&self, room: &str) {
        self.update(room, |e| e.opens = e.opens.saturating_sub(1));
    }

    /// Everything stored for `room` was deleted.
    pub(crate) fn deleted(&self, room: &str) {
        self.update(room, |e| {
            e.updates = 0;
            e.bytes = 0;
        });
    }

    /// A compaction of `room` ended; `merged` is what its snapshot absorbed, if it was written.
    /// Returns `true` when the log is still long enough (updates committed while it ran) for
    /// another compaction (the room is then marked again).
    pub(crate) fn compacted(&self, room: &str, merged: Option<(u64, u64)>) -> bool {
        let t = self.thresholds;
        self.update(room, |e| {
            e.compacting = false;
            match merged {
                Some((updates, bytes)) => {
                    e.updates = e.updates.saturating_sub(updates);
                    e.bytes = e.bytes.saturating_sub(bytes);
                    mark_if_due(e, t)
                }
                None => false,
            }
        })
        .unwrap_or(false)
    }

    /// Number of rooms with an entry (tests check the bound).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.rooms.lock().len()
    }

    /// Applies `f` to the room's entry, if any, and drops the entry once it is idle.
    fn update<R>(&self, room: &str, f: impl FnOnce(&mut RoomEntry) -> R) -> Option<R> {
        let mut rooms = self.rooms.lock();
        let e = rooms.get_mut(room)?;
        let result = f(e);
        if e.idle() {
            rooms.remove(room);
        }
        Some(result)
    }
}

fn mark_if_due(e: &mut RoomEntry, t: Thresholds) -> bool {
    let due = e.due(t);
    if due {
        e.compacting = true;
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_schedule_and_forget_idle_rooms() {
        let t = Tracker::new(Thresholds {
            updates: 3,
            bytes: 1000,
        });
        let a: Arc<str> = Arc::from("a");
        assert!(!t.opened(&a, &RoomLog::default()));
        for _ in 0..3 {
            t.enqueued(&a);
        }
        assert!(t.has_queued("a"));
        assert!(!t.committed("a", 10));
        assert!(!t.committed("a", 10));
        assert!(t.committed("a", 10), "third update reaches the threshold");
        assert!(!t.has_queued("a"));
        t.enqueued(&a);
        assert!(!t.committed("a", 10), "already compacting");
        assert!(!t.compacted("a", Some((3, 30))), "one update left: not due");
        t.closed("a");
        assert_eq!(
            t.len(),
            0,
            "closed, nothing queued, not compacting: forgotten"
        );
        let log = RoomLog {
            updates: 5,
            ..RoomLog::default()
        };
        assert!(t.opened(&a, &log), "a long log is compacted on open");
        t.closed("a");
        assert_eq!(t.len(), 1, "kept while compacting");
        assert!(
            !t.compacted("a", None),
            "a failed compaction is not retried at once"
        );
        assert_eq!(t.len(), 0);
        assert!(t.opened(&a, &log));
        for _ in 0..4 {
            t.enqueued(&a);
            t.committed("a", 1);
        }
        assert!(
            t.compacted("a", Some((5, 0))),
            "4 more came meanwhile: due again"
        );
    }
}
