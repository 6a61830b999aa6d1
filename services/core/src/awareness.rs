//! Awareness states of one room with the semantics of `y-protocols/awareness`
//! (`applyAwarenessUpdate`, `removeAwarenessStates`, the 30 s outdated check), plus who owns
//! each state — a local connection, or another node of the cluster — and the limits a local
//! connection's updates are checked against before anything is applied.

use crate::peer::ConnId;
use std::collections::{HashMap, HashSet};
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

/// What one connection's awareness updates may do; checked before an update is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwarenessLimits {
    /// Client ids one connection may own: states *and* the removal markers (tombstones) it
    /// left, so removing and re-adding ids cannot grow the registry without bound.
    pub max_clients_per_conn: usize,
    /// Largest state (JSON text) in bytes.
    pub max_state_bytes: usize,
    /// Largest awareness message (its payload) in bytes.
    pub max_message_bytes: usize,
}

impl Default for AwarenessLimits {
    fn default() -> Self {
        AwarenessLimits {
            max_clients_per_conn: 32,
            max_state_bytes: 64 * 1024,
            max_message_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Why an awareness update from a local connection was refused (nothing of it was applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwarenessViolation {
    /// The message is larger than [`AwarenessLimits::max_message_bytes`].
    MessageTooLarge {
        /// Its size.
        bytes: usize,
    },
    /// A state is larger than [`AwarenessLimits::max_state_bytes`].
    StateTooLarge {
        /// The size of the largest state.
        bytes: usize,
    },
    /// The connection would own more than [`AwarenessLimits::max_clients_per_conn`] ids.
    TooManyClients,
}

impl AwarenessViolation {
    /// A short, bounded label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            AwarenessViolation::MessageTooLarge { .. } => "message_too_large",
            AwarenessViolation::StateTooLarge { .. } => "state_too_large",
            AwarenessViolation::TooManyClients => "too_many_clients",
        }
    }
}

/// What applying an awareness update changed. Each client id appears once, in the list of
/// its first change.
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
    /// Whether nothing is to be told to anyone.
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
    /// How many entries (states and tombstones) each local connection owns, for
    /// [`AwarenessLimits::max_clients_per_conn`]. A connection's count goes when it leaves.
    owned: HashMap<ConnId, usize>,
}

impl AwarenessRegistry {
    /// Whether applying `entry` would change the registry, as `applyAwarenessUpdate` decides:
    /// a higher clock wins; an equal clock is accepted only to remove a present state. A
    /// removal of a client never seen changes nothing and leaves no trace (y-protocols keeps
    /// its clock; a server that did would let any client fill memory with `null`s).
    fn accepts(&self, entry: &AwarenessEntry<'_>) -> bool {
        let removal = entry.is_removal();
        match self.clients.get(&entry.client_id) {
            None => !removal && entry.clock > 0,
            Some(current) => {
                current.clock < entry.clock
                    || (current.clock == entry.clock && removal && current.state.is_some())
            }
        }
    }

    /// Checks an update from the local connection `conn` against `limits` without applying
    /// anything: its size, the size of each state, and how many ids `conn` would own after it.
    pub fn check(
        &self,
        update: &AwarenessUpdate<'_>,
        conn: ConnId,
        limits: &AwarenessLimits,
    ) -> Result<(), AwarenessViolation> {
        if update.payload_len() > limits.max_message_bytes {
            return Err(AwarenessViolation::MessageTooLarge {
                bytes: update.payload_len(),
            });
        }
        if update.max_state_len() > limits.max_state_bytes {
            return Err(AwarenessViolation::StateTooLarge {
                bytes: update.max_state_len(),
            });
        }
        let room = limits
            .max_clients_per_conn
            .saturating_sub(self.owned_count(conn));
        // Ids the update would newly give to `conn`: an id is taken over when any of its
        // entries is accepted, and the first accepted one is judged against today's state, so
        // this dry run counts exactly. Never holds more than `room + 1` ids.
        let mut new = HashSet::new();
        for entry in update.entries() {
            let mine = self
                .clients
                .get(&entry.client_id)
                .is_some_and(|c| c.owner == Owner::Local(conn));
            if !mine && self.accepts(&entry) && new.insert(entry.client_id) && new.len() > room {
                return Err(AwarenessViolation::TooManyClients);
            }
        }
        Ok(())
    }

    /// Applies an update from `owner` at `now`, exactly as `applyAwarenessUpdate` does (see
    /// [`AwarenessRegistry::check`] for the limits of local connections, and the removal of
    /// unknown clients). Every accepted entry becomes `owner`'s.
    pub fn apply(
        &mut self,
        update: &AwarenessUpdate<'_>,
        owner: Owner,
        now: Instant,
    ) -> AwarenessChange {
        let mut change = AwarenessChange::default();
        let mut seen = HashSet::new();
        for entry in update.entries() {
            if !self.accepts(&entry) {
                continue;
            }
            let removal = entry.is_removal();
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
            let prev_owner = prev.as_ref().map(|p| p.owner);
            if prev_owner != Some(owner) {
                if let Some(Owner::Local(conn)) = prev_owner {
                    self.disown(conn);
                }
                if let Owner::Local(conn) = owner {
                    *self.owned.entry(conn).or_default() += 1;
                }
            }
            if !seen.insert(entry.client_id) {
                continue;
            }
            match prev {
                None => change.added.push(entry.client_id),
                Some(prev) if removal => {
                    if prev.state.is_some() {
                        change.removed.push(entry.client_id);
                    }
                }
                // A state re-appearing after a removal counts as an update, like y-protocols.
                Some(_) => change.updated.push(entry.client_id),
            }
        }
        change
    }

    fn disown(&mut self, conn: ConnId) {
        if let Some(count) = self.owned.get_mut(&conn) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.owned.remove(&conn);
            }
        }
    }

    /// Removes the states of `ids`, keeping their clocks, like `removeAwarenessStates`.
    /// Returns the ids that had a state.
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

    /// Removes the states `conn` owns (it went away) and forgets its count; its tombstones
    /// stay until they expire. Returns the ids that had a state.
    pub fn remove_conn(&mut self, conn: ConnId, now: Instant) -> Vec<u64> {
        let ids = self.owned_by(conn);
        self.owned.remove(&conn);
        self.remove(ids, now)
    }

    /// Ids whose state is owned by `conn`.
    pub fn owned_by(&self, conn: ConnId) -> Vec<u64> {
        self.clients
            .iter()
            .filter(|(_, e)| e.state.is_some() && e.owner == Owner::Local(conn))
            .map(|(id, _)| *id)
            .collect()
    }

    /// How many ids `conn` owns: states and tombstones (what
    /// [`AwarenessLimits::max_clients_per_conn`] bounds).
    pub fn owned_count(&self, conn: ConnId) -> usize {
        self.owned.get(&conn).copied().unwrap_or(0)
    }

    /// Whether the entry of `id` (state or tombstone) is owned by `conn`.
    pub fn is_owned_by(&self, id: u64, conn: ConnId) -> bool {
        self.clients
            .get(&id)
            .is_some_and(|e| e.owner == Owner::Local(conn))
    }

    /// Removes states not renewed within `timeout` (clients renew every 15 s; the y-protocols
    /// timeout is 30 s), and forgets the clocks of clients removed longer than `2 × timeout`
    /// ago so the registry stays bounded. Returns the ids whose state was removed.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<u64> {
        let mut removed = Vec::new();
        let mut forgotten = Vec::new();
        self.clients.retain(|id, entry| {
            let age = now.saturating_duration_since(entry.last_updated);
            if entry.state.is_some() {
                if age >= timeout {
                    entry.state = None;
                    entry.last_updated = now;
                    removed.push(*id);
                }
                true
            } else if age < timeout * 2 {
                true
            } else {
                forgotten.push(entry.owner);
                false
            }
        });
        for owner in forgotten {
            if let Owner::Local(conn) = owner {
                self.disown(conn);
            }
        }
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

/// Client ids whose awareness a connection changed while one frame was handled: the change is
/// broadcast (and shared with other nodes) once, when the frame is done, however many
/// awareness messages the frame carried. Holds only ids the connection owns, so it is bounded
/// by [`AwarenessLimits::max_clients_per_conn`].
#[derive(Debug, Default)]
pub struct AwarenessBatch {
    ids: Vec<u64>,
}

impl AwarenessBatch {
    /// Adds what one update changed.
    pub fn add(&mut self, change: &AwarenessChange) {
        for id in change.all() {
            if !self.ids.contains(&id) {
                self.ids.push(id);
            }
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids, leaving the batch empty.
    pub fn take(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.ids)
    }
}

#[cfg(test)]
mod tests;
