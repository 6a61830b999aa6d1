//! What the admin console shows about the cluster: each node's description (its presence
//! report), a room's stored size, the compaction backlog. Backends that share rooms between
//! nodes fill these in; single-node backends leave them empty and the gateway describes itself.

use serde::{Deserialize, Serialize};

/// One gateway as it describes itself every few seconds (the presence report).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeInfo {
    /// The address it listens on (`server.host:server.port`, or the pod's address).
    pub address: String,
    /// The gateway's version.
    pub version: String,
    /// When it started (ms since the epoch).
    pub started_ms: u64,
    /// Whether it takes connections (`/readyz`).
    pub ready: bool,
    /// Its WebSocket connections.
    pub connections: u64,
    /// Rooms loaded on it.
    pub rooms: u64,
}

impl NodeInfo {
    /// The description as stored by a shared backend (JSON).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored description; `None` if it does not parse (fields may be missing or extra, so
    /// nodes of other versions read each other).
    pub fn from_json(json: &str) -> Option<Self> {
        serde_json::from_str(json).ok()
    }
}

/// A live node of the cluster: its id, its description (absent for a node of an older
/// version, which reports only its rooms) and its rooms with their local connection counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeReport {
    /// The backend's node id.
    pub id: String,
    /// Its last description.
    pub info: Option<NodeInfo>,
    /// When it last reported (ms since the epoch).
    pub seen_ms: u64,
    /// Room → connections on that node.
    pub rooms: Vec<(String, u64)>,
}

/// A room's stored state in a shared backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RoomStats {
    /// Entries of the room's update log not yet compacted into its snapshot.
    pub log_entries: u64,
    /// Bytes the log takes in the backend.
    pub log_bytes: u64,
    /// Bytes of the compacted snapshot.
    pub snapshot_bytes: u64,
    /// When the last update was appended (ms since the epoch; 0: none in the log).
    pub last_update_ms: u64,
}

/// The compaction queue of a shared backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Backlog {
    /// Rooms queued for compaction.
    pub queued: u64,
    /// Of those, rooms whose compaction is due now.
    pub due: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_info_reads_reports_with_missing_or_extra_fields() {
        let info =
            NodeInfo::from_json(r#"{"address":"10.0.0.1:1234","ready":true,"later":1}"#).unwrap();
        assert_eq!(info.address, "10.0.0.1:1234");
        assert!(info.ready);
        assert_eq!(info.connections, 0);
        assert_eq!(NodeInfo::from_json(&info.to_json()), Some(info));
        assert_eq!(NodeInfo::from_json("not json"), None);
    }
}
