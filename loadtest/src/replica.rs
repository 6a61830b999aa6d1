//! A client's view of its room's document, applied lazily.
//!
//! On the hot path an observer does not decode updates: it records which update arrived (a
//! key into the [`Room`]) or, when the server sent bytes the room does not know, the bytes
//! themselves (bounded by `retain_bytes`, past which they are applied to a yrs `Doc`). The
//! document is built only when it is needed: to answer the server's sync step 1 after a
//! reconnect, and to check convergence at the end.
//!
//! A [`Fingerprint`] summarises the *set* of updates a replica holds, independent of order.
//! Two replicas with equal fingerprints hold the same updates and therefore, Yjs being a
//! CRDT, the same state, so the convergence check builds one document per distinct
//! fingerprint instead of one per client.

use crate::header::UpdateId;
use crate::room::Room;
use bytes::Bytes;
use std::hash::{DefaultHasher, Hash, Hasher};
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

/// Order-independent summary of the updates a replica holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    sum: u64,
    xor: u64,
    count: u64,
}

impl Fingerprint {
    fn add(&mut self, h: u64) {
        self.sum = self.sum.wrapping_add(h);
        self.xor ^= h.rotate_left(17);
        self.count += 1;
    }
}

/// A stable 64-bit hash of bytes.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

fn hash_key(id: UpdateId, relayed: bool) -> u64 {
    let mut h = DefaultHasher::new();
    (id.client, id.clock, relayed).hash(&mut h);
    h.finish()
}

#[derive(Debug, Clone, Copy)]
struct Key {
    client: u64,
    clock: u32,
    relayed: bool,
}

/// The bytes of an update that never decodes: yrs' encoding of "no change".
pub const EMPTY_UPDATE: [u8; 2] = [0, 0];

/// A client's lazily applied replica of the room document.
#[derive(Debug)]
pub struct Replica {
    client_id: u64,
    doc: Option<Doc>,
    keys: Vec<Key>,
    initials: Vec<u64>,
    owned: Vec<Bytes>,
    owned_bytes: usize,
    retain_bytes: usize,
    fingerprint: Fingerprint,
    /// Updates that failed to decode or apply.
    pub apply_errors: u64,
}

impl Replica {
    /// An empty replica for the client `client_id`.
    pub fn new(client_id: u64, retain_bytes: usize) -> Replica {
        Replica {
            client_id,
            doc: None,
            keys: Vec::new(),
            initials: Vec::new(),
            owned: Vec::new(),
            owned_bytes: 0,
            retain_bytes,
            fingerprint: Fingerprint::default(),
            apply_errors: 0,
        }
    }

    /// The client's own document, created on first use; writers edit it directly.
    pub fn doc(&mut self) -> &Doc {
        let id = self.client_id;
        self.doc.get_or_insert_with(|| Doc::with_client_id(id))
    }

    /// Whether nothing was ever received or written.
    pub fn is_empty(&self) -> bool {
        self.fingerprint.count == 0
    }

    /// The order-independent summary of what this replica holds.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// An update this client wrote (already in its doc) and sent as `id`.
    pub fn note_own(&mut self, id: UpdateId) {
        self.fingerprint.add(hash_key(id, false));
    }

    /// A received update that the room holds (`relayed`: the server's re-encoding).
    pub fn push_key(&mut self, id: UpdateId, relayed: bool) {
        self.fingerprint.add(hash_key(id, relayed));
        self.keys.push(Key {
            client: id.client,
            clock: id.clock,
            relayed,
        });
    }

    /// A received sync step 2 payload stored in the room under `hash`.
    pub fn push_initial(&mut self, hash: u64) {
        self.fingerprint.add(hash);
        self.initials.push(hash);
    }

    /// Received bytes the room does not hold; applied once `retain_bytes` is exceeded.
    pub fn push_owned(&mut self, bytes: Bytes, room: &Room) {
        self.fingerprint.add(hash_bytes(&bytes));
        self.owned_bytes += bytes.len();
        self.owned.push(bytes);
        if self.owned_bytes > self.retain_bytes {
            self.materialize(room);
        }
    }

    /// Applies everything pending to the document and returns it.
    pub fn materialize(&mut self, room: &Room) -> &Doc {
        let mut updates: Vec<Bytes> = Vec::new();
        for hash in self.initials.drain(..) {
            match room.initial(hash) {
                Some(b) => updates.push(b),
                None => self.apply_errors += 1,
            }
        }
        updates.append(&mut self.owned);
        self.owned_bytes = 0;
        for key in self.keys.drain(..) {
            let id = UpdateId {
                client: key.client,
                clock: key.clock,
            };
            match room.bytes_of(id, key.relayed) {
                Some(b) => updates.push(b),
                None => self.apply_errors += 1,
            }
        }
        let id = self.client_id;
        let doc = self.doc.get_or_insert_with(|| Doc::with_client_id(id));
        if !updates.is_empty() {
            let mut txn = doc.transact_mut();
            for bytes in updates {
                let applied = Update::decode_v1(&bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|u| txn.apply_update(u).map_err(|e| e.to_string()));
                if applied.is_err() {
                    self.apply_errors += 1;
                }
            }
        }
        doc
    }

    /// The state vector to open a sync with: empty for a replica that holds nothing (no doc
    /// is built), otherwise the materialized document's.
    pub fn state_vector(&mut self, room: &Room) -> StateVector {
        if self.is_empty() && self.doc.is_none() {
            return StateVector::default();
        }
        self.materialize(room).transact().state_vector()
    }

    /// The answer to a peer's sync step 1: what this replica has beyond `sv`.
    pub fn diff(&mut self, room: &Room, sv: &StateVector) -> Vec<u8> {
        if self.is_empty() && self.doc.is_none() {
            return EMPTY_UPDATE.to_vec();
        }
        self.materialize(room)
            .transact()
            .encode_state_as_update_v1(sv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;
    use yrs::{GetString, Text};

    fn write(doc: &Doc, s: &str) -> Vec<u8> {
        let text = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        let len = text.len(&txn);
        text.insert(&mut txn, len, s);
        txn.encode_update_v1()
    }

    #[test]
    fn replicas_built_from_keys_owned_bytes_and_initials_agree() {
        let room = Room::new(0, "r".into(), 3);
        let mut writer = Replica::new(1, 1 << 20);
        let mut keyed = Replica::new(2, 1 << 20);
        let mut owned = Replica::new(3, 4); // tiny budget: applies as it goes
        for word in ["alpha ", "beta ", "gamma"] {
            let bytes = write(writer.doc(), word);
            let id = crate::header::update_id(&bytes).unwrap();
            writer.note_own(id);
            room.record_sent(id, Instant::now(), Bytes::from(bytes.clone()));
            keyed.push_key(id, false);
            owned.push_owned(Bytes::from(bytes), &room);
        }
        assert_eq!(writer.fingerprint(), keyed.fingerprint());
        assert_ne!(writer.fingerprint(), owned.fingerprint());
        let full = writer
            .materialize(&room)
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let mut joiner = Replica::new(4, 1 << 20);
        let hash = hash_bytes(&full);
        room.store_initial(hash, &Bytes::from(full));
        joiner.push_initial(hash);
        for r in [&mut keyed, &mut owned, &mut joiner] {
            let doc = r.materialize(&room);
            let s = doc.get_or_insert_text("t").get_string(&doc.transact());
            assert_eq!(s, "alpha beta gamma");
            assert_eq!(r.apply_errors, 0);
        }
    }

    #[test]
    fn an_empty_replica_answers_without_building_a_doc() {
        let room = Room::new(0, "r".into(), 1);
        let mut r = Replica::new(9, 1024);
        assert_eq!(r.state_vector(&room), StateVector::default());
        assert_eq!(
            r.diff(&room, &StateVector::default()),
            EMPTY_UPDATE.to_vec()
        );
        assert!(r.doc.is_none());
        let empty = Doc::new()
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        assert_eq!(empty, EMPTY_UPDATE.to_vec());
    }
}
