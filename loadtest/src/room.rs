//! What the clients of one room share: every update sent into the room, keyed by
//! [`UpdateId`], with its send instant and bytes; and the sync step 2 payloads clients
//! received, keyed by content hash.
//!
//! Observers look an incoming update up here to get its fan-out latency, and keep only its
//! key instead of its bytes, so a 2,000-observer room holds each update once. The bytes are
//! needed again only when a replica is materialized (on reconnect and at the end).

use crate::header::UpdateId;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use tokio::time::Instant;
use yrs::updates::decoder::Decode;
use yrs::Update;

/// One update a writer of this room sent.
#[derive(Debug)]
struct Sent {
    at: Instant,
    bytes: Bytes,
    /// What the server relayed instead, when its bytes differ from what was sent (a server may
    /// re-encode an update); the first observer to see a differing copy stores it here.
    relayed: OnceLock<Bytes>,
}

/// Every update sent into a room: by id, and each writer's clocks in sending order (which is
/// increasing order, so ranges can be searched).
#[derive(Debug, Default)]
struct SentLog {
    by_id: HashMap<UpdateId, Sent>,
    clocks: HashMap<u64, Vec<u32>>,
}

/// How an incoming update relates to what was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Byte-identical to the sent update; `latency` since it was sent.
    Sent {
        /// Microseconds since it was sent.
        latency_us: u64,
    },
    /// The relayed re-encoding stored in the room.
    Relayed {
        /// Microseconds since it was sent.
        latency_us: u64,
    },
    /// Known id, but bytes that match neither copy: the caller must keep them.
    Different {
        /// Microseconds since it was sent.
        latency_us: u64,
    },
    /// Not an update of this run's writers.
    Unknown,
}

/// Shared state of one room.
#[derive(Debug)]
pub struct Room {
    /// Position of the room in the run.
    pub index: usize,
    /// The room name (the URL path).
    pub name: String,
    /// Clients in the room, seeders included.
    pub members: usize,
    sent: RwLock<SentLog>,
    initials: Mutex<HashMap<u64, Bytes>>,
    live_deliveries: AtomicU64,
}

impl Room {
    /// A room with no traffic yet.
    pub fn new(index: usize, name: String, members: usize) -> Room {
        Room {
            index,
            name,
            members,
            sent: RwLock::new(SentLog::default()),
            initials: Mutex::new(HashMap::new()),
            live_deliveries: AtomicU64::new(0),
        }
    }

    /// Records an update just before it is sent.
    pub fn record_sent(&self, id: UpdateId, at: Instant, bytes: Bytes) {
        let sent = Sent {
            at,
            bytes,
            relayed: OnceLock::new(),
        };
        let mut log = self.sent.write();
        log.clocks.entry(id.client).or_default().push(id.clock);
        log.by_id.insert(id, sent);
    }

    /// Classifies an incoming update and counts it as a live delivery.
    pub fn seen(&self, id: UpdateId, payload: &[u8], now: Instant) -> Seen {
        let sent = self.sent.read();
        let Some(entry) = sent.by_id.get(&id) else {
            return Seen::Unknown;
        };
        self.live_deliveries.fetch_add(1, Ordering::Relaxed);
        let latency_us =
            u64::try_from(now.saturating_duration_since(entry.at).as_micros()).unwrap_or(u64::MAX);
        if entry.bytes[..] == *payload {
            return Seen::Sent { latency_us };
        }
        let relayed = entry
            .relayed
            .get_or_init(|| Bytes::copy_from_slice(payload));
        if relayed[..] == *payload {
            Seen::Relayed { latency_us }
        } else {
            Seen::Different { latency_us }
        }
    }

    /// Latencies of every sent update (not written by `own`, other than `counted`) whose first
    /// struct lies inside `update`: a server that merges updates delivers several at once.
    /// This decodes the update, so it is only for bytes that differ from what was sent.
    pub fn merged_deliveries(
        &self,
        update: &[u8],
        own: u64,
        counted: Option<UpdateId>,
        now: Instant,
    ) -> Vec<u64> {
        let Ok(update) = Update::decode_v1(update) else {
            return Vec::new();
        };
        let inserted = update.insertions(true);
        let sent = self.sent.read();
        let mut latencies = Vec::new();
        for (client, ranges) in inserted.iter() {
            let client = client.get();
            let Some(clocks) = sent.clocks.get(&client).filter(|_| client != own) else {
                continue;
            };
            for range in ranges.iter() {
                let from = clocks.partition_point(|c| *c < range.start);
                for clock in clocks[from..].iter().take_while(|c| **c < range.end) {
                    let id = UpdateId {
                        client,
                        clock: *clock,
                    };
                    if Some(id) == counted {
                        continue;
                    }
                    if let Some(entry) = sent.by_id.get(&id) {
                        self.live_deliveries.fetch_add(1, Ordering::Relaxed);
                        latencies.push(
                            u64::try_from(now.saturating_duration_since(entry.at).as_micros())
                                .unwrap_or(u64::MAX),
                        );
                    }
                }
            }
        }
        latencies
    }

    /// Whether `payload` is exactly the update this room's writer sent as `id`.
    pub fn is_sent_copy(&self, id: UpdateId, payload: &[u8]) -> bool {
        self.sent
            .read()
            .by_id
            .get(&id)
            .is_some_and(|s| s.bytes[..] == *payload)
    }

    /// The bytes of a sent update, or of its relayed copy.
    pub fn bytes_of(&self, id: UpdateId, relayed: bool) -> Option<Bytes> {
        let sent = self.sent.read();
        let entry = sent.by_id.get(&id)?;
        if relayed {
            entry.relayed.get().cloned()
        } else {
            Some(entry.bytes.clone())
        }
    }

    /// Every update sent into the room.
    pub fn sent_ids(&self) -> Vec<UpdateId> {
        let mut ids: Vec<UpdateId> = self.sent.read().by_id.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// When an update was sent, if it was.
    pub fn sent_at(&self, id: &UpdateId) -> Option<Instant> {
        self.sent.read().by_id.get(id).map(|s| s.at)
    }

    /// How many updates were sent into the room.
    pub fn sent_count(&self) -> u64 {
        self.sent.read().by_id.len() as u64
    }

    /// Updates received live, over all clients of the room.
    pub fn live_deliveries(&self) -> u64 {
        self.live_deliveries.load(Ordering::Relaxed)
    }

    /// Keeps one copy of a sync step 2 payload per distinct content.
    pub fn store_initial(&self, hash: u64, bytes: &Bytes) {
        self.initials
            .lock()
            .entry(hash)
            .or_insert_with(|| bytes.clone());
    }

    /// A stored sync step 2 payload.
    pub fn initial(&self, hash: u64) -> Option<Bytes> {
        self.initials.lock().get(&hash).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn classifies_copies_and_measures_latency() {
        let room = Room::new(0, "r".into(), 3);
        let id = UpdateId {
            client: 1,
            clock: 0,
        };
        let t0 = Instant::now();
        room.record_sent(id, t0, Bytes::from_static(b"abc"));
        tokio::time::advance(Duration::from_millis(3)).await;
        let now = Instant::now();
        assert_eq!(room.seen(id, b"abc", now), Seen::Sent { latency_us: 3_000 });
        assert_eq!(
            room.seen(id, b"abd", now),
            Seen::Relayed { latency_us: 3_000 }
        );
        assert_eq!(
            room.seen(id, b"abd", now),
            Seen::Relayed { latency_us: 3_000 }
        );
        assert_eq!(
            room.seen(id, b"xyz", now),
            Seen::Different { latency_us: 3_000 }
        );
        let other = UpdateId {
            client: 2,
            clock: 0,
        };
        assert_eq!(room.seen(other, b"abc", now), Seen::Unknown);
        assert_eq!(room.live_deliveries(), 4);
        assert_eq!(room.bytes_of(id, true).unwrap(), Bytes::from_static(b"abd"));
        assert!(room.is_sent_copy(id, b"abc"));
        assert_eq!(room.sent_ids(), vec![id]);
    }

    #[tokio::test(start_paused = true)]
    async fn merged_updates_count_every_update_they_carry() {
        use yrs::{Doc, Text, Transact};
        let room = Room::new(0, "r".into(), 2);
        let writer = Doc::with_client_id(5);
        let text = writer.get_or_insert_text("t");
        let mut updates = Vec::new();
        for word in ["one", "two", "three"] {
            let mut txn = writer.transact_mut();
            text.insert(&mut txn, 0, word);
            let bytes = txn.encode_update_v1();
            drop(txn);
            let id = crate::header::update_id(&bytes).unwrap();
            room.record_sent(id, Instant::now(), Bytes::from(bytes.clone()));
            updates.push((id, bytes));
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        let merged = yrs::merge_updates_v1(updates.iter().map(|(_, b)| b.as_slice())).unwrap();
        let first = crate::header::update_id(&merged).unwrap();
        assert_eq!(first, updates[0].0);
        // The server's merge differs from every sent copy.
        assert!(matches!(
            room.seen(first, &merged, Instant::now()),
            Seen::Relayed { latency_us: 3_000 }
        ));
        let rest = room.merged_deliveries(&merged, 99, Some(first), Instant::now());
        assert_eq!(rest, vec![2_000, 1_000]);
        assert_eq!(room.live_deliveries(), 3);
        // The author's own updates are not deliveries to it.
        assert!(room
            .merged_deliveries(&merged, 5, None, Instant::now())
            .is_empty());
        assert!(room
            .merged_deliveries(b"junk", 99, None, Instant::now())
            .is_empty());
    }
}
