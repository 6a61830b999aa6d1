//! The end-of-step check: did every room converge, and did every update reach every client?
//!
//! Replicas are grouped by [`Fingerprint`] (an order-free summary of the updates each holds);
//! one document is built per group. A room converged when every group's document has the same state vector and
//! content. An update is *missing* for a client when its final state does not contain it —
//! whether it arrived live or through a resync after a reconnect does not matter here.

use crate::client::Outcome;
use crate::replica::Fingerprint;
use crate::seed::{CELLS, TEXT};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use yrs::block::ClientID;
use yrs::{GetString, Map, ReadTxn, StateVector, Transact};

/// Most diverged rooms listed in a report.
const MAX_LISTED: usize = 20;

/// The verdict on one room.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RoomVerdict {
    /// The room name.
    pub room: String,
    /// Its clients.
    pub clients: usize,
    /// Clients that never completed a sync.
    pub never_synced: usize,
    /// Distinct final documents among its clients (1 = converged).
    pub distinct_states: usize,
    /// Updates its writers sent.
    pub updates_sent: u64,
    /// (update, client) pairs where the client's final state lacks the update.
    pub missing: u64,
    /// Whether every client holds the same document.
    pub converged: bool,
}

/// The verdict on a step.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Convergence {
    /// Rooms checked.
    pub rooms: usize,
    /// Rooms that converged.
    pub converged_rooms: usize,
    /// (update, receiver) pairs where the receiver's final state lacks the update.
    pub missing: u64,
    /// (update, receiver) pairs expected: each update times the other synced clients.
    pub expected_deliveries: u64,
    /// Documents built for the check (one per distinct fingerprint).
    pub docs_built: usize,
    /// Updates that failed to decode or apply while building documents.
    pub apply_errors: u64,
    /// How long the check took, ms.
    pub check_ms: f64,
    /// Up to 20 rooms that did not converge or miss updates.
    pub failed_rooms: Vec<RoomVerdict>,
}

#[derive(Debug, PartialEq, Eq)]
struct Digest {
    sv: StateVector,
    text: String,
    cells: u32,
}

/// Checks every room of a step.
pub fn check(outcomes: Vec<Outcome>) -> Convergence {
    let started = std::time::Instant::now();
    let mut by_room: BTreeMap<usize, Vec<Outcome>> = BTreeMap::new();
    for o in outcomes {
        by_room.entry(o.room.index).or_default().push(o);
    }
    let mut total = Convergence::default();
    for (_, outcomes) in by_room {
        let verdict = check_room(outcomes, &mut total);
        total.rooms += 1;
        total.missing += verdict.missing;
        if verdict.converged && verdict.missing == 0 {
            total.converged_rooms += 1;
        } else if total.failed_rooms.len() < MAX_LISTED {
            total.failed_rooms.push(verdict);
        }
    }
    total.check_ms = started.elapsed().as_secs_f64() * 1_000.0;
    total
}

fn check_room(mut outcomes: Vec<Outcome>, total: &mut Convergence) -> RoomVerdict {
    let room = match outcomes.first() {
        Some(o) => std::sync::Arc::clone(&o.room),
        None => {
            return RoomVerdict {
                room: String::new(),
                clients: 0,
                never_synced: 0,
                distinct_states: 0,
                updates_sent: 0,
                missing: 0,
                converged: true,
            }
        }
    };
    let clients = outcomes.len();
    outcomes.retain(|o| o.ever_synced);
    let never_synced = clients - outcomes.len();
    let sent = room.sent_ids();
    let synced = outcomes.len() as u64;
    total.expected_deliveries += sent.len() as u64 * synced.saturating_sub(1);

    let mut groups: HashMap<Fingerprint, Vec<usize>> = HashMap::new();
    for (i, o) in outcomes.iter().enumerate() {
        groups.entry(o.replica.fingerprint()).or_default().push(i);
    }
    tracing::debug!(
        room = %room.name,
        groups = ?groups.values().map(|m| m.iter().map(|i| (outcomes[*i].id, outcomes[*i].role, outcomes[*i].replica.fingerprint())).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "replica groups"
    );
    let mut digests: Vec<Digest> = Vec::with_capacity(groups.len());
    let mut missing = 0u64;
    for members in groups.values() {
        let rep = &mut outcomes[members[0]];
        let doc = rep.replica.materialize(&room);
        total.docs_built += 1;
        let txn = doc.transact();
        let sv = txn.state_vector();
        let text = txn
            .get_text(TEXT)
            .map(|t| t.get_string(&txn))
            .unwrap_or_default();
        let cells = txn.get_map(CELLS).map(|m| m.len(&txn)).unwrap_or(0);
        drop(txn);
        total.apply_errors += rep.replica.apply_errors;
        let lacking = sent
            .iter()
            .filter(|id| sv.get(&ClientID::new(id.client)) <= id.clock)
            .count() as u64;
        missing += lacking * members.len() as u64;
        let digest = Digest { sv, text, cells };
        if !digests.contains(&digest) {
            digests.push(digest);
        }
    }
    RoomVerdict {
        room: room.name.clone(),
        clients,
        never_synced,
        distinct_states: digests.len(),
        updates_sent: sent.len() as u64,
        missing,
        converged: digests.len() <= 1 && never_synced == 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Role;
    use crate::header::update_id;
    use crate::replica::Replica;
    use crate::room::Room;
    use bytes::Bytes;
    use std::sync::Arc;
    use tokio::time::Instant;
    use yrs::Text;

    fn outcome(room: &Arc<Room>, replica: Replica, id: u64) -> Outcome {
        Outcome {
            id,
            role: Role::Observer,
            room: Arc::clone(room),
            replica,
            ever_synced: true,
        }
    }

    fn write(replica: &mut Replica, room: &Room, s: &str) -> crate::header::UpdateId {
        let doc = replica.doc();
        let text = doc.get_or_insert_text(TEXT);
        let bytes = {
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 0, s);
            txn.encode_update_v1()
        };
        let id = update_id(&bytes).unwrap();
        replica.note_own(id);
        room.record_sent(id, Instant::now(), Bytes::from(bytes));
        id
    }

    #[test]
    fn detects_convergence_missing_updates_and_divergence() {
        let room = Arc::new(Room::new(0, "r".into(), 3));
        let mut writer = Replica::new(1, 1 << 20);
        let a = write(&mut writer, &room, "a");
        let b = write(&mut writer, &room, "b");
        let mut full = Replica::new(2, 1 << 20);
        full.push_key(a, false);
        full.push_key(b, false);
        let mut also_full = Replica::new(3, 1 << 20);
        also_full.push_key(b, false);
        also_full.push_key(a, false);
        let ok = check(vec![
            outcome(&room, writer, 1),
            outcome(&room, full, 2),
            outcome(&room, also_full, 3),
        ]);
        assert_eq!(ok.rooms, 1);
        assert_eq!(ok.converged_rooms, 1);
        assert_eq!(ok.missing, 0);
        assert_eq!(ok.expected_deliveries, 4);
        assert_eq!(ok.docs_built, 1, "identical update sets share one document");
        assert!(ok.failed_rooms.is_empty());

        let room = Arc::new(Room::new(1, "s".into(), 2));
        let mut writer = Replica::new(1, 1 << 20);
        let a = write(&mut writer, &room, "a");
        write(&mut writer, &room, "b");
        let mut partial = Replica::new(2, 1 << 20);
        partial.push_key(a, false);
        let bad = check(vec![outcome(&room, writer, 1), outcome(&room, partial, 2)]);
        assert_eq!(bad.converged_rooms, 0);
        assert_eq!(bad.missing, 1);
        assert_eq!(bad.failed_rooms[0].distinct_states, 2);
        assert!(!bad.failed_rooms[0].converged);
    }
}
