//! Appends coalesced per room.
//!
//! While a room's append is in flight, the room's further appends queue up; when it returns,
//! the first of them leads the next write, which carries every queued update (up to
//! [`MAX_BATCH_UPDATES`] / [`MAX_BATCH_BYTES`]) in one `APPEND` call: one log entry and one
//! published message per update, in queue order, so each keeps its own id (gap detection)
//! and its own echo. Each caller returns once its own update is written — or fails with the
//! whole call, which writes all of its updates or none — so a client is never shown an update
//! that was not written. The queue is bounded by `redis.max_inflight_writes`: every queued
//! update holds a permit of the node's in-flight semaphore.
//!
//! Whoever leads a write hands the room on when it is done, also when its future is dropped
//! mid-way (the guard's `Drop`), so a cancelled caller never stalls the room.

use super::RedisBackend;
use crate::entry::{now_ms, StreamId};
use crate::feed::Command;
use crate::op::Op;
use crate::queue::{self, When};
use crate::scripts;
use parking_lot::Mutex;
use std::collections::HashMap;
use tokio::sync::oneshot;
use yws_core::{BackendError, Room};

/// Updates one coalesced `APPEND` carries at most.
pub(super) const MAX_BATCH_UPDATES: usize = 64;
/// Bytes one coalesced `APPEND` carries at most (a single larger update goes alone).
pub(super) const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// An update waiting for its room's write in flight.
#[derive(Debug)]
struct Queued {
    update: Vec<u8>,
    /// Where its outcome goes; `None` for the update of the caller leading the write.
    reply: Option<oneshot::Sender<Turn>>,
}

/// What a queued caller is told.
#[derive(Debug)]
enum Turn {
    /// Its update was written (or not).
    Done(Result<(), BackendError>),
    /// It leads the next write of its room: these updates, its own first.
    Lead(Vec<Queued>),
}

/// Rooms with an append in flight (by log key), and the updates queued behind it.
#[derive(Debug, Default)]
pub(super) struct Coalescer {
    rooms: Mutex<HashMap<String, Vec<Queued>>>,
}

impl Coalescer {
    /// Joins the room's queue; `Ok(batch)` when the caller leads a write, `Err(outcome)` when
    /// another caller's write carried its update.
    async fn join(
        &self,
        key: &str,
        update: Vec<u8>,
    ) -> Result<Vec<Queued>, Result<(), BackendError>> {
        let rx = {
            let mut rooms = self.rooms.lock();
            match rooms.get_mut(key) {
                Some(queue) => {
                    let (tx, rx) = oneshot::channel();
                    queue.push(Queued {
                        update,
                        reply: Some(tx),
                    });
                    rx
                }
                None => {
                    rooms.insert(key.to_string(), Vec::new());
                    return Ok(vec![Queued {
                        update,
                        reply: None,
                    }]);
                }
            }
        };
        match rx.await {
            Ok(Turn::Lead(batch)) => Ok(batch),
            Ok(Turn::Done(outcome)) => Err(outcome),
            // Unreachable by construction (a leader always answers, also when dropped).
            Err(_) => Err(Err(BackendError::Unavailable(
                "append abandoned".to_string(),
            ))),
        }
    }

    /// Passes the room on: the first queued caller still waiting leads the next write (with
    /// the updates queued behind it), or the room has no write in flight any more.
    fn hand_on(&self, key: &str) {
        let mut rooms = self.rooms.lock();
        loop {
            let Some(queue) = rooms.get_mut(key) else {
                return;
            };
            if queue.is_empty() {
                rooms.remove(key);
                return;
            }
            let mut batch = take_batch(queue);
            let Some(reply) = batch[0].reply.take() else {
                continue; // not possible: only leaders have no reply, and they never queue
            };
            match reply.send(Turn::Lead(batch)) {
                Ok(()) => return,
                Err(Turn::Lead(mut batch)) => {
                    // That caller is gone (its update is not written): the next one leads.
                    batch.remove(0);
                    if let Some(queue) = rooms.get_mut(key) {
                        batch.append(queue);
                        *queue = batch;
                    }
                }
                Err(Turn::Done(_)) => return,
            }
        }
    }
}

/// The next batch from the front of a room's queue.
fn take_batch(queue: &mut Vec<Queued>) -> Vec<Queued> {
    let mut bytes = 0;
    let mut count = 0;
    for q in queue.iter() {
        if count > 0 && (count == MAX_BATCH_UPDATES || bytes + q.update.len() > MAX_BATCH_BYTES) {
            break;
        }
        bytes += q.update.len();
        count += 1;
    }
    queue.drain(..count).collect()
}

/// Hands the room on when the leader is done or dropped.
struct Leading<'a> {
    coalescer: &'a Coalescer,
    key: &'a str,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.coalescer.hand_on(self.key);
    }
}

/// The reply of [`scripts::APPEND`].
type Appended = Option<(u8, u64, u64, Vec<String>)>;

impl RedisBackend {
    /// Appends `update` to the room's log, coalesced with the room's other appends.
    pub(super) async fn append_coalesced(
        &self,
        room: &Room,
        update: &[u8],
    ) -> Result<(), BackendError> {
        let keys = self.keys(room);
        let mut batch = match self.coalescer.join(&keys.log, update.to_vec()).await {
            Ok(batch) => batch,
            Err(outcome) => return outcome,
        };
        let _leading = Leading {
            coalescer: &self.coalescer,
            key: &keys.log,
        };
        // Callers that left before their update went out: not written, nobody waits for it.
        batch.retain(|q| q.reply.as_ref().is_none_or(|r| !r.is_closed()));
        let updates: Vec<Vec<u8>> = batch
            .iter_mut()
            .map(|q| std::mem::take(&mut q.update))
            .collect();
        let since = room.position().map_or(StreamId::ZERO, StreamId::from);
        let outcome = self.write(room, updates, Op::Append).await;
        let mut abandoned = false;
        for q in batch {
            if let Some(reply) = q.reply {
                abandoned |= reply.send(Turn::Done(outcome.clone())).is_err();
            }
        }
        if abandoned && outcome.is_ok() {
            // Written for a caller that is gone, so never applied here: apply this node's
            // own entries from the log for this room from now on, and read back those after
            // `since` (the entry may have been seen and skipped already).
            let _ = self
                .commands
                .send(Command::ApplyOwn {
                    channel: keys.channel.clone(),
                    since,
                })
                .await;
        }
        outcome
    }

    /// One `APPEND` call carrying `updates`, and what follows it (the room's position, the
    /// compaction queue).
    pub(super) async fn write(
        &self,
        room: &Room,
        updates: Vec<Vec<u8>>,
        op: Op,
    ) -> Result<(), BackendError> {
        let keys = self.keys(room);
        let channel = keys.channel.clone();
        let (log, meta, snap, generation) = (keys.log, keys.meta, keys.snap, keys.generation);
        let loaded_at = room.generation();
        let inline_limit = self.config.inline_publish_bytes;
        let (node, publish) = (self.node.clone(), self.redis.publish_command());
        let appended_bytes: u64 = updates.iter().map(|u| u.len() as u64).sum();
        let appended_entries = updates.len() as u64;
        let since = room.position().map_or(StreamId::ZERO, StreamId::from);
        self.redis.metrics.inflight_writes.inc();
        let result = self
            .redis
            .call(op, |mut c| async move {
                let mut invocation = scripts::APPEND.key(&log);
                invocation
                    .key(&meta)
                    .key(&snap)
                    .key(&generation)
                    .arg(&node)
                    .arg(now_ms())
                    .arg(&channel)
                    .arg(publish)
                    .arg(loaded_at)
                    .arg(inline_limit);
                for update in &updates {
                    invocation.arg(update);
                }
                invocation.invoke_async::<Appended>(&mut c).await
            })
            .await;
        self.redis.metrics.inflight_writes.dec();
        let result = match result {
            Ok(Some(_)) if crate::fault::append_reply_lost().await => {
                Err(crate::error::Error::Timeout(op))
            }
            result => result,
        };
        match result {
            Ok(None) => {
                tracing::info!(room = %room.name(), generation = loaded_at, "append refused: the room was deleted since it loaded here");
                Err(BackendError::Deleted)
            }
            Ok(Some((created, entries, bytes, ids))) => {
                if let Some(id) = ids.last().and_then(|id| id.parse::<StreamId>().ok()) {
                    room.advance_position(id.into());
                }
                let thresholds = self.thresholds();
                let next = queue::after_append(
                    thresholds,
                    created == 1,
                    entries,
                    bytes,
                    appended_bytes,
                    appended_entries,
                );
                if next.queue_new_log {
                    let due = now_ms() + thresholds.after_ms;
                    self.schedule(room, due, When::NotQueued).await;
                }
                if next.compact_now {
                    self.schedule(room, now_ms(), When::Earlier).await;
                }
                Ok(())
            }
            Err(e) => {
                // The write may still have happened: apply this node's own entries from the
                // log for this room from now on, so the local state cannot miss it. Its entry
                // (if any) comes after `since`, and may have been seen and skipped already:
                // the dispatcher reads this node's entries back from there.
                let own = Command::ApplyOwn {
                    channel: self.keys(room).channel,
                    since,
                };
                let _ = self.commands.send(own).await;
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn queued(len: usize) -> Queued {
        Queued {
            update: vec![0; len],
            reply: None,
        }
    }

    #[test]
    fn batches_are_bounded_in_updates_and_bytes_and_keep_queue_order() {
        let mut queue: Vec<Queued> = (1..=100).map(queued).collect();
        let batch = take_batch(&mut queue);
        assert_eq!(batch.len(), MAX_BATCH_UPDATES);
        assert_eq!(batch[0].update.len(), 1);
        assert_eq!(queue[0].update.len(), MAX_BATCH_UPDATES + 1);
        let mut queue = vec![queued(MAX_BATCH_BYTES + 1), queued(1)];
        assert_eq!(take_batch(&mut queue).len(), 1, "a large update goes alone");
        let mut queue = vec![queued(MAX_BATCH_BYTES - 10), queued(20), queued(1)];
        assert_eq!(take_batch(&mut queue).len(), 1);
        assert_eq!(queue.len(), 2);
    }

    /// Waits until the room's queue holds `len` updates.
    async fn queued_behind(c: &Coalescer, len: usize) {
        while c.rooms.lock().get("log").map_or(0, Vec::len) < len {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn the_room_passes_to_the_next_waiting_caller_and_skips_the_gone() {
        let c = Arc::new(Coalescer::default());
        // The first caller leads at once, with its own update alone.
        let lead = c.join("log", b"a".to_vec()).await.unwrap();
        assert_eq!(lead.len(), 1);
        assert!(lead[0].reply.is_none());
        // Behind it: "b", whose caller gave up while queued, then "c" and "d".
        let (tx, rx) = oneshot::channel();
        drop(rx);
        c.rooms.lock().get_mut("log").unwrap().push(Queued {
            update: b"b".to_vec(),
            reply: Some(tx),
        });
        let mut waiting = tokio::task::JoinSet::new();
        for (i, u) in [b'c', b'd'].into_iter().enumerate() {
            let joining = c.clone();
            waiting.spawn(async move { (u, joining.join("log", vec![u]).await) });
            queued_behind(&c, 2 + i).await;
        }
        // The leader is done (or dropped): "c" leads the next write, carrying "d" behind its
        // own update; "b" is not written.
        drop(Leading {
            coalescer: &c,
            key: "log",
        });
        let (who, turn) = waiting.join_next().await.unwrap().unwrap();
        let batch = turn.expect("c leads");
        assert_eq!(who, b'c');
        let updates: Vec<u8> = batch.iter().map(|q| q.update[0]).collect();
        assert_eq!(updates, b"cd");
        assert!(batch[0].reply.is_none(), "the leader's own update");
        for q in batch {
            if let Some(reply) = q.reply {
                reply.send(Turn::Done(Ok(()))).unwrap();
            }
        }
        let (who, turn) = waiting.join_next().await.unwrap().unwrap();
        assert_eq!(who, b'd');
        assert!(matches!(turn, Err(Ok(()))), "d was written by c's call");
        c.hand_on("log");
        assert!(c.rooms.lock().is_empty(), "no write in flight any more");
        // The next append leads at once.
        assert_eq!(c.join("log", b"e".to_vec()).await.unwrap().len(), 1);
    }
}
