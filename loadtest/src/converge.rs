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
#[derive(Debug, Clone, Serialize, PartialEq)]
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
    /// For a room that failed: its clients grouped by final document, and what each group
    /// lacks (empty for a room that passed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupReport>,
}

/// Clients of a failed room that ended with the same document, and what that document lacks.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupReport {
    /// The clients, with their last connection.
    pub clients: Vec<ClientReport>,
    /// Sent updates the group's document lacks.
    pub lacking: u64,
    /// The lacking updates by the client that wrote them.
    pub lacking_by_writer: BTreeMap<u64, u64>,
    /// How long before the check the first and the last lacking update were sent, seconds.
    pub lacking_sent_s_ago: Option<(f64, f64)>,
}

/// One client of a failed room at the end of the step.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClientReport {
    /// The client's number.
    pub id: u64,
    /// Index of the URL of its last connection attempt.
    pub url_index: usize,
    /// Whether its last connection was open and synced at the end.
    pub synced_at_end: bool,
    /// Seconds before the check it last completed a sync.
    pub synced_s_ago: Option<f64>,
    /// Connection attempts.
    pub sessions: u32,
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
                groups: Vec::new(),
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
    let mut reports: Vec<GroupReport> = Vec::with_capacity(groups.len());
    let now = tokio::time::Instant::now();
    let ago = |at: tokio::time::Instant| now.saturating_duration_since(at).as_secs_f64();
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
        let lacking_ids: Vec<_> = sent
            .iter()
            .filter(|id| sv.get(&ClientID::new(id.client)) <= id.clock)
            .collect();
        let lacking = lacking_ids.len() as u64;
        missing += lacking * members.len() as u64;
        let mut lacking_by_writer = BTreeMap::new();
        let mut sent_range: Option<(f64, f64)> = None;
        for id in &lacking_ids {
            *lacking_by_writer.entry(id.client).or_insert(0u64) += 1;
            if let Some(s) = room.sent_at(id).map(ago) {
                sent_range = Some(sent_range.map_or((s, s), |(a, b)| (a.max(s), b.min(s))));
            }
        }
        reports.push(GroupReport {
            clients: members
                .iter()
                .map(|i| {
                    let o = &outcomes[*i];
                    ClientReport {
                        id: o.id,
                        url_index: o.last.url_index,
                        synced_at_end: o.last.synced_at_end,
                        synced_s_ago: o.last.synced_at.map(ago),
                        sessions: o.last.sessions,
                    }
                })
                .collect(),
            lacking,
            lacking_by_writer,
            lacking_sent_s_ago: sent_range,
        });
        let digest = Digest { sv, text, cells };
        if !digests.contains(&digest) {
            digests.push(digest);
        }
    }
    let converged = digests.len() <= 1 && never_synced == 0;
    if converged && missing == 0 {
        reports.clear();
    }
    RoomVerdict {
        room: room.name.clone(),
        clients,
        never_synced,
        distinct_states: digests.len(),
        updates_sent: sent.len() as u64,
        missing,
        converged,
        groups: reports,
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
            last: Default::default(),
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
