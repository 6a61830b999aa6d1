//! Awareness coalesced per room.
//!
//! Cursor-heavy rooms change awareness with every keystroke. Instead of one `AWARENESS` script
//! per change, a node gathers each room's changed states for `redis.awareness_window_ms` and
//! publishes them together (the newest state per client) in one call; and it refreshes a
//! client's field in the stored awareness hash (what joining nodes read) at most every
//! `redis.awareness_store_interval_ms`, writing the newest state it has when the interval is
//! over. Removals (a client leaving) go out at once, as before, and drop what was gathered for
//! that client, so a state can never follow its removal. A window of 0 publishes every change
//! at once (no gathering).

use super::RedisBackend;
use crate::awareness;
use crate::entry::{awareness_message, now_ms};
use crate::keys::RoomKeys;
use crate::op::Op;
use crate::scripts;
use futures_util::StreamExt;
use parking_lot::Mutex;
use redis::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use yws_core::BackendError;
use yws_protocol::{AwarenessEntry, AwarenessUpdate};

/// Rooms whose gathered awareness is published at once per flush.
const CONCURRENT_FLUSHES: usize = 64;

/// A client's newest state on this node.
#[derive(Debug)]
struct Latest {
    clock: u64,
    state: String,
    /// Changed since it was last published.
    unpublished: bool,
    /// Changed since it was last stored.
    unstored: bool,
    /// When it was last stored (ms).
    stored_ms: u64,
}

/// One room's awareness on this node.
#[derive(Debug)]
struct RoomAwareness {
    keys: RoomKeys,
    clients: HashMap<u64, Latest>,
}

/// What one flush of one room sends: the payload to publish (if any changed) and the hash
/// fields to write.
#[derive(Debug, PartialEq)]
struct Flush {
    payload: Option<Vec<u8>>,
    fields: Vec<(String, String)>,
}

/// Every room's gathered awareness, by channel.
#[derive(Debug, Default)]
pub(super) struct Gathered {
    rooms: Mutex<HashMap<String, RoomAwareness>>,
}

impl Gathered {
    /// Takes in an update's states (not its removals).
    fn gather(&self, keys: &RoomKeys, update: &AwarenessUpdate<'_>) {
        let mut rooms = self.rooms.lock();
        let room = rooms
            .entry(keys.channel.clone())
            .or_insert_with(|| RoomAwareness {
                keys: keys.clone(),
                clients: HashMap::new(),
            });
        for e in update.entries() {
            if e.is_removal() {
                room.clients.remove(&e.client_id);
                continue;
            }
            let latest = room.clients.entry(e.client_id).or_insert(Latest {
                clock: 0,
                state: String::new(),
                unpublished: false,
                unstored: false,
                stored_ms: 0,
            });
            latest.clock = e.clock;
            latest.state.clear();
            latest.state.push_str(e.state);
            latest.unpublished = true;
            latest.unstored = true;
        }
        if room.clients.is_empty() {
            rooms.remove(&keys.channel);
        }
    }

    /// Forgets a room (closed on this node).
    pub(super) fn forget(&self, channel: &str) {
        self.rooms.lock().remove(channel);
    }

    /// What every room with something to send sends now.
    fn take(&self, node: &str, now: u64, store_interval_ms: u64) -> Vec<(RoomKeys, Flush)> {
        let mut rooms = self.rooms.lock();
        rooms
            .values_mut()
            .filter_map(|room| {
                let flush = flush(&mut room.clients, node, now, store_interval_ms)?;
                Some((room.keys.clone(), flush))
            })
            .collect()
    }
}

/// One room's flush: every unpublished state, and the unstored states whose last store is at
/// least `store_interval_ms` old; `None` when there is nothing to send.
fn flush(
    clients: &mut HashMap<u64, Latest>,
    node: &str,
    now: u64,
    store_interval_ms: u64,
) -> Option<Flush> {
    let mut entries = Vec::new();
    let mut fields = Vec::new();
    for (&client_id, latest) in clients.iter_mut() {
        if latest.unpublished {
            latest.unpublished = false;
            entries.push(AwarenessEntry {
                client_id,
                clock: latest.clock,
                state: &latest.state,
            });
        }
        if latest.unstored && now.saturating_sub(latest.stored_ms) >= store_interval_ms {
            latest.unstored = false;
            latest.stored_ms = now;
            let value = awareness::AwarenessValue {
                clock: latest.clock,
                ms: now,
                node,
                state: &latest.state,
            };
            fields.push((client_id.to_string(), value.encode()));
        }
    }
    let payload = (!entries.is_empty()).then(|| yws_protocol::awareness::encode_entries(entries));
    (payload.is_some() || !fields.is_empty()).then_some(Flush { payload, fields })
}

impl RedisBackend {
    /// Shares a room's awareness change: removals at once, states gathered for the window.
    pub(super) async fn share_awareness(
        &self,
        keys: RoomKeys,
        payload: &[u8],
    ) -> Result<(), BackendError> {
        let update =
            AwarenessUpdate::decode(payload).map_err(|e| BackendError::Corrupt(e.to_string()))?;
        if self.config.awareness_window_ms == 0 {
            let fields = awareness::fields(&update, &self.node, now_ms());
            return self
                .store_and_publish(keys, Some(payload.to_vec()), fields)
                .await;
        }
        self.gathered.gather(&keys, &update);
        let removals: Vec<AwarenessEntry<'_>> = update
            .entries()
            .filter(AwarenessEntry::is_removal)
            .collect();
        if removals.is_empty() {
            return Ok(());
        }
        let fields = removals
            .iter()
            .map(|e| (e.client_id.to_string(), String::new()))
            .collect();
        let payload = yws_protocol::awareness::encode_entries(removals);
        self.store_and_publish(keys, Some(payload), fields).await
    }

    /// One `AWARENESS` call: writes `fields` to the room's hash and publishes `payload`.
    async fn store_and_publish(
        &self,
        keys: RoomKeys,
        payload: Option<Vec<u8>>,
        fields: Vec<(String, String)>,
    ) -> Result<(), BackendError> {
        let now = now_ms();
        let message = payload
            .map(|p| awareness_message(&self.node, now, &p))
            .unwrap_or_default();
        let ttl = (self.awareness_timeout.as_millis() as u64).saturating_mul(2);
        let stale_before = now.saturating_sub(self.awareness_timeout.as_millis() as u64);
        let (key, channel, publish) = (keys.awareness, keys.channel, self.redis.publish_command());
        self.redis
            .call(Op::Awareness, |mut c| async move {
                let mut invocation = scripts::AWARENESS.key(&key);
                invocation
                    .arg(&channel)
                    .arg(publish)
                    .arg(message)
                    .arg(ttl)
                    .arg(stale_before);
                for (client, value) in &fields {
                    invocation.arg(client).arg(value);
                }
                invocation.invoke_async::<Value>(&mut c).await.map(|_| ())
            })
            .await?;
        Ok(())
    }

    /// Publishes what was gathered, every window, until `cancel` fires.
    pub(super) async fn flush_awareness(self: Arc<Self>, cancel: CancellationToken) {
        let window = Duration::from_millis(self.config.awareness_window_ms.max(1));
        let mut tick = tokio::time::interval(window);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let due = self.gathered.take(
                &self.node,
                now_ms(),
                self.config.awareness_store_interval_ms,
            );
            futures_util::stream::iter(due)
                .for_each_concurrent(CONCURRENT_FLUSHES, |(keys, flush)| {
                    let backend = &self;
                    async move {
                        let room = keys.channel.clone();
                        if let Err(e) = backend
                            .store_and_publish(keys, flush.payload, flush.fields)
                            .await
                        {
                            tracing::warn!(room, error = %e, "awareness not shared with other nodes");
                        }
                    }
                })
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(entries: &[(u64, u64, &str)]) -> Vec<u8> {
        yws_protocol::awareness::encode_entries(entries.iter().map(|&(client_id, clock, state)| {
            AwarenessEntry {
                client_id,
                clock,
                state,
            }
        }))
    }

    fn gather(g: &Gathered, keys: &RoomKeys, entries: &[(u64, u64, &str)]) {
        let payload = update(entries);
        g.gather(keys, &AwarenessUpdate::decode(&payload).unwrap());
    }

    fn published(flush: &Flush) -> Vec<(u64, u64, String)> {
        let payload = flush.payload.as_deref().unwrap_or_default();
        let mut out: Vec<_> = AwarenessUpdate::decode(payload)
            .map(|u| {
                u.entries()
                    .map(|e| (e.client_id, e.clock, e.state.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    #[test]
    fn a_window_publishes_the_newest_state_per_client_once() {
        let g = Gathered::default();
        let keys = RoomKeys::new("p", "r");
        gather(&g, &keys, &[(1, 1, r#"{"x":1}"#)]);
        gather(&g, &keys, &[(1, 2, r#"{"x":2}"#), (2, 1, "{}")]);
        gather(&g, &keys, &[(1, 3, r#"{"x":3}"#)]);
        let due = g.take("n", 10_000, 5000);
        assert_eq!(due.len(), 1);
        assert_eq!(
            published(&due[0].1),
            [(1, 3, r#"{"x":3}"#.to_string()), (2, 1, "{}".to_string())]
        );
        assert_eq!(due[0].1.fields.len(), 2, "first states are stored at once");
        assert!(g.take("n", 10_010, 5000).is_empty(), "nothing new");
    }

    #[test]
    fn the_stored_hash_is_refreshed_at_most_every_interval_with_the_newest_state() {
        let g = Gathered::default();
        let keys = RoomKeys::new("p", "r");
        gather(&g, &keys, &[(1, 1, "{}")]);
        assert_eq!(g.take("n", 10_000, 5000)[0].1.fields.len(), 1);
        gather(&g, &keys, &[(1, 2, r#"{"a":1}"#)]);
        let due = g.take("n", 11_000, 5000);
        assert_eq!(published(&due[0].1).len(), 1, "published within the window");
        assert!(
            due[0].1.fields.is_empty(),
            "not stored again within the interval"
        );
        // The interval is over: the newest state is stored, without a new change.
        let due = g.take("n", 15_000, 5000);
        assert_eq!(due.len(), 1);
        assert!(due[0].1.payload.is_none(), "nothing new to publish");
        let value = &due[0].1.fields[0].1;
        assert_eq!(
            awareness::AwarenessValue::parse(value).map(|v| (v.clock, v.ms, v.state)),
            Some((2, 15_000, r#"{"a":1}"#))
        );
        assert!(g.take("n", 30_000, 5000).is_empty());
    }

    #[test]
    fn a_removal_drops_what_was_gathered_for_the_client() {
        let g = Gathered::default();
        let keys = RoomKeys::new("p", "r");
        gather(&g, &keys, &[(1, 1, "{}"), (2, 1, "{}")]);
        gather(&g, &keys, &[(1, 2, "null")]);
        let due = g.take("n", 10_000, 5000);
        assert_eq!(published(&due[0].1), [(2, 1, "{}".to_string())]);
        gather(&g, &keys, &[(2, 2, "null")]);
        assert!(
            g.rooms.lock().is_empty(),
            "a room without clients is forgotten"
        );
    }
}
