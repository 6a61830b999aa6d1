//! The bounded queue of frames waiting to be written to one connection.
//!
//! Allocation-free while empty (an idle connection costs a few words, not a channel block),
//! bounded in frames and in bytes: a push to a full outbox fails and the room (or the session,
//! for its own replies) closes that connection as too slow — frames are never dropped from a
//! connection that stays open. A frame is accepted while the queue holds less than its byte
//! limit, so one frame larger than the limit (a big document's sync step 2) still goes out,
//! and a queue never holds more than the limit plus one frame.

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::Notify;

/// Capacity kept after a burst is drained; more is released.
const KEEP_CAPACITY: usize = 16;

/// Why a push failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The connection has as many frames or bytes queued as it may.
    Full,
    /// The connection is gone.
    Closed,
}

#[derive(Debug)]
struct Inner {
    queue: Mutex<Queue>,
    notify: Notify,
    capacity: usize,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Bytes>,
    /// Bytes of `frames`.
    bytes: usize,
    closed: bool,
}

/// A connection's outbox. Cloning shares the same queue.
#[derive(Debug, Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` frames, and accepting frames while it holds
    /// fewer than `max_bytes` bytes.
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Outbox {
            inner: Arc::new(Inner {
                queue: Mutex::new(Queue::default()),
                notify: Notify::new(),
                capacity: capacity.max(1),
                max_bytes: max_bytes.max(1),
            }),
        }
    }

    /// Queues a frame.
    pub fn push(&self, frame: Bytes) -> Result<(), PushError> {
        {
            let mut queue = self.inner.queue.lock();
            if queue.closed {
                return Err(PushError::Closed);
            }
            if queue.frames.len() >= self.inner.capacity || queue.bytes >= self.inner.max_bytes {
                return Err(PushError::Full);
            }
            queue.bytes += frame.len();
            queue.frames.push_back(frame);
        }
        self.inner.notify.notify_one();
        Ok(())
    }

    /// Waits for the next frame (cancel-safe: a frame is only taken when returned).
    pub async fn next(&self) -> Bytes {
        loop {
            if let Some(frame) = self.try_next() {
                return frame;
            }
            // `notify_one` stores a permit when nobody waits, so no wakeup is lost between
            // the check above and this wait.
            self.inner.notify.notified().await;
        }
    }

    /// The next frame, if one is queued.
    pub fn try_next(&self) -> Option<Bytes> {
        let mut queue = self.inner.queue.lock();
        let frame = queue.frames.pop_front();
        if let Some(frame) = &frame {
            queue.bytes -= frame.len();
        }
        if queue.frames.is_empty() && queue.frames.capacity() > KEEP_CAPACITY {
            queue.frames.shrink_to(KEEP_CAPACITY);
        }
        frame
    }

    /// Frames queued now.
    pub fn len(&self) -> usize {
        self.inner.queue.lock().frames.len()
    }

    /// Bytes queued now.
    pub fn bytes(&self) -> usize {
        self.inner.queue.lock().bytes
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses further pushes and drops what is queued (the connection ended).
    pub fn close(&self) {
        let mut queue = self.inner.queue.lock();
        queue.closed = true;
        queue.frames = VecDeque::new();
        queue.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::disallowed_methods,
        reason = "tests may spawn: each test owns and awaits what it starts, and the runtime ends with it"
    )]
    use super::*;

    #[tokio::test]
    async fn bounded_ordered_and_wakes_the_reader() {
        let outbox = Outbox::new(2, 1 << 20);
        assert_eq!(outbox.push(Bytes::from_static(b"a")), Ok(()));
        assert_eq!(outbox.push(Bytes::from_static(b"b")), Ok(()));
        assert_eq!(outbox.push(Bytes::from_static(b"c")), Err(PushError::Full));
        assert_eq!(outbox.next().await, Bytes::from_static(b"a"));
        assert_eq!(outbox.try_next(), Some(Bytes::from_static(b"b")));
        assert_eq!(outbox.try_next(), None);
        let reader = outbox.clone();
        let waiting = tokio::spawn(async move { reader.next().await });
        tokio::task::yield_now().await;
        outbox.push(Bytes::from_static(b"d")).unwrap();
        assert_eq!(waiting.await.unwrap(), Bytes::from_static(b"d"));
        outbox.close();
        assert_eq!(
            outbox.push(Bytes::from_static(b"e")),
            Err(PushError::Closed)
        );
    }

    #[test]
    fn bounded_in_bytes_too() {
        let outbox = Outbox::new(100, 10);
        // A frame larger than the limit goes into a queue under it...
        assert_eq!(outbox.push(Bytes::from(vec![0u8; 25])), Ok(()));
        // ... and nothing more until it is taken.
        assert_eq!(outbox.push(Bytes::from_static(b"x")), Err(PushError::Full));
        assert_eq!(outbox.bytes(), 25);
        assert_eq!(outbox.try_next().map(|f| f.len()), Some(25));
        assert_eq!(outbox.bytes(), 0);
        for _ in 0..3 {
            outbox.push(Bytes::from_static(b"abcd")).unwrap();
        }
        assert_eq!(outbox.bytes(), 12);
        assert_eq!(outbox.push(Bytes::from_static(b"y")), Err(PushError::Full));
        outbox.close();
        assert_eq!(outbox.bytes(), 0);
    }

    #[test]
    fn capacity_is_released_after_a_burst() {
        let outbox = Outbox::new(10_000, 1 << 20);
        for _ in 0..1000 {
            outbox.push(Bytes::from_static(b"x")).unwrap();
        }
        while outbox.try_next().is_some() {}
        assert!(outbox.inner.queue.lock().frames.capacity() <= KEEP_CAPACITY);
    }
}
