//! Awareness states of one room with the semantics of `y-protocols/awareness`
//! (`applyAwarenessUpdate`, `removeAwarenessStates`, the 30 s outdated check), plus who owns
//! each state: a local connection, or another node of the cluster.

use crate::peer::ConnId;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::time::{Duration, Instant};
use yws_protocol::awareness::AwarenessEntry;
use yws_protocol::AwarenessUpdate;

/// Where an awareness state came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A connection on this node.
    Local(ConnId),
    /// Another node of the cluster (through the backend).
    Remote,
}

#[derive(Debug, Clone)]
struct ClientEntry {
    clock: u64,
    /// `None` once removed; the clock is kept so older updates cannot resurrect the state.
    state: Option<Arc<str>>,
    last_updated: Instant,
    owner: Owner,
}

/// What applying an awareness update changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AwarenessChange {
    /// Clients seen for the first time with a state.
    pub added: Vec<u64>,
    /// Clients whose state was renewed or changed (renewals included, as y-protocols' `update`).
    pub updated: Vec<u64>,
    /// Clients whose state was removed.
    pub removed: Vec<u64>,
}

impl AwarenessChange {
    /// Whether nothing was accepted.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.updated.is_empty() && self.removed.is_empty()
    }

    /// Every client id touched, in the order y-protocols broadcasts them.
    pub fn all(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        let ids: Vec<u64> = self
            .added
            .iter()
            .chain(&self.updated)
            .chain(&self.removed)
            .copied()
            .collect();
        ids.into_iter()
    }
}

/// The awareness states of a room.
#[derive(Debug, Default)]
pub struct AwarenessRegistry {
    clients: HashMap<u64, ClientEntry>,
}

impl AwarenessRegistry {
    /// Applies an update from `owner` at `now`, exactly as `applyAwarenessUpdate` does: a
    /// higher clock wins; an equal clock is accepted only to remove a present state.
    pub fn apply(
        &mut self,
        update: &AwarenessUpdate<'_>,
        owner: Owner,
        now: Instant,
    ) -> AwarenessChange {
        let mut change = AwarenessChange::default();
        for entry in &update.entries {
            let removal = entry.is_removal();
            let current = self.clients.get(&entry.client_id);
            let known = current.is_some();
            let present = current.is_some_and(|c| c.state.is_some());
            let current_clock = current.map_or(0, |c| c.clock);
            if !(current_clock < entry.clock
                || (current_clock == entry.clock && removal && present))
            {
                continue;
            }
            let state: Option<Arc<str>> = (!removal).then(|| entry.state.into());
            let prev = self.clients.insert(
                entry.client_id,
                ClientEntry {
                    clock: entry.clock,
                    state,
                    last_updated: now,
                    owner,
                },
            );
            if !known && !removal {
                change.added.push(entry.client_id);
            } else if known && removal {
                change.removed.push(entry.client_id);
            } else if !removal {
                // A state re-appearing after a removal counts as an update, like y-protocols.
                let _ = prev;
                change.updated.push(entry.client_id);
            }
        }
        change
    }

    /// Removes the states of `ids` (a connection went away), keeping their clocks, like
    /// `removeAwarenessStates`. Returns the ids that had a state.
    pub fn remove(&mut self, ids: impl IntoIterator<Item = u64>, now: Instant) -> Vec<u64> {
        let mut removed = Vec::new();
        for id in ids {
            if let Some(entry) = self.clients.get_mut(&id) {
                if entry.state.take().is_some() {
                    entry.last_updated = now;
                    removed.push(id);
                }
            }
        }
        removed
    }

    /// Ids whose state is owned by `conn`.
    pub fn owned_by(&self, conn: ConnId) -> Vec<u64> {
        self.clients
            .iter()
            .filter(|(_, e)| e.state.is_some() && e.owner == Owner::Local(conn))
            .map(|(id, _)| *id)
            .collect()
    }

    /// How many live states `conn` owns.
    pub fn count_owned_by(&self, conn: ConnId) -> usize {
        self.clients
            .values()
            .filter(|e| e.state.is_some() && e.owner == Owner::Local(conn))
            .count()
    }

    /// Removes states not renewed within `timeout` (clients renew every 15 s; the y-protocols
    /// timeout is 30 s), and forgets the clocks of clients removed longer than `2 × timeout`
    /// ago so the registry stays bounded. Returns the ids whose state was removed.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<u64> {
        let mut removed = Vec::new();
        self.clients.retain(|id, entry| {
            let age = now.saturating_duration_since(entry.last_updated);
            if entry.state.is_some() {
                if age >= timeout {
                    entry.state = None;
                    entry.last_updated = now;
                    removed.push(*id);
                }
                true
            } else {
                age < timeout * 2
            }
        });
        removed
    }

    /// Number of clients with a state.
    pub fn len(&self) -> usize {
        self.clients.values().filter(|e| e.state.is_some()).count()
    }

    /// Whether no client has a state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Encodes the entries of `ids` (current clock; `null` for removed states) as an awareness
    /// payload. Unknown ids are skipped.
    pub fn encode(&self, ids: impl IntoIterator<Item = u64>) -> Vec<u8> {
        let entries: Vec<AwarenessEntry<'_>> = ids
            .into_iter()
            .filter_map(|id| {
                self.clients.get(&id).map(|e| AwarenessEntry {
                    client_id: id,
                    clock: e.clock,
                    state: e.state.as_deref().unwrap_or("null"),
                })
            })
            .collect();
        yws_protocol::awareness::encode_entries(entries)
    }

    /// Encodes every present state, or `None` when there is none.
    pub fn encode_all(&self) -> Option<Vec<u8>> {
        let ids: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, e)| e.state.is_some())
            .map(|(id, _)| *id)
            .collect();
        (!ids.is_empty()).then(|| self.encode(ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(entries: &[(u64, u64, &'static str)]) -> AwarenessUpdate<'static> {
        AwarenessUpdate {
            entries: entries
                .iter()
                .map(|&(client_id, clock, state)| AwarenessEntry {
                    client_id,
                    clock,
                    state,
                })
                .collect(),
        }
    }

    const A: Owner = Owner::Local(ConnId(1));

    #[test]
    fn add_renew_change_remove() {
        let now = Instant::now();
        let mut reg = AwarenessRegistry::default();
        let c = reg.apply(&update(&[(7, 1, r#"{"a":1}"#)]), A, now);
        assert_eq!(c.added, vec![7]);
        // Renewal with the same state and a higher clock is an `updated` (relayed).
        let c = reg.apply(&update(&[(7, 2, r#"{"a":1}"#)]), A, now);
        assert_eq!(c.updated, vec![7]);
        // Same clock, non-null: ignored.
        assert!(reg
            .apply(&update(&[(7, 2, r#"{"a":2}"#)]), A, now)
            .is_empty());
        // Older clock: ignored.
        assert!(reg.apply(&update(&[(7, 1, "null")]), A, now).is_empty());
        // Same clock with null removes a present state.
        let c = reg.apply(&update(&[(7, 2, "null")]), A, now);
        assert_eq!(c.removed, vec![7]);
        assert!(reg.is_empty());
        // ... but only once.
        assert!(reg.apply(&update(&[(7, 2, "null")]), A, now).is_empty());
        assert_eq!(
            reg.encode([7]),
            yws_protocol::awareness::encode_entries([AwarenessEntry {
                client_id: 7,
                clock: 2,
                state: "null"
            }])
        );
    }

    #[test]
    fn ownership_and_removal_keep_clock() {
        let now = Instant::now();
        let mut reg = AwarenessRegistry::default();
        reg.apply(&update(&[(1, 5, "{}"), (2, 1, "{}")]), A, now);
        reg.apply(&update(&[(3, 1, "{}")]), Owner::Remote, now);
        let mut mine = reg.owned_by(ConnId(1));
        mine.sort_unstable();
        assert_eq!(mine, vec![1, 2]);
        assert_eq!(reg.remove(mine, now), vec![1, 2]);
        assert_eq!(reg.len(), 1);
        // A stale update with the old clock cannot resurrect client 1.
        assert!(reg.apply(&update(&[(1, 5, "{}")]), A, now).is_empty());
        assert!(!reg.apply(&update(&[(1, 6, "{}")]), A, now).is_empty());
    }

    #[test]
    fn expiry_removes_then_forgets() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(30);
        let mut reg = AwarenessRegistry::default();
        reg.apply(&update(&[(1, 1, "{}")]), Owner::Remote, t0);
        reg.apply(&update(&[(2, 1, "{}")]), A, t0 + Duration::from_secs(20));
        assert_eq!(reg.expire(t0 + timeout, timeout), vec![1]);
        assert_eq!(reg.len(), 1);
        assert!(reg.encode_all().is_some());
        // Removed clocks are forgotten after twice the timeout.
        assert_eq!(reg.expire(t0 + timeout * 2, timeout), vec![2]);
        assert_eq!(
            reg.clients.len(),
            2,
            "removed clocks are remembered for a while"
        );
        reg.expire(t0 + timeout * 5, timeout);
        assert!(reg.clients.is_empty());
    }
}
