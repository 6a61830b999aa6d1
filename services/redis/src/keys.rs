//! The key layout. Every key of a room carries the room in one hash tag, so all of a room's
//! keys live in one Redis Cluster slot and multi-key scripts touch one slot only:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `<p>:{<room>}:log` | stream | the room's update log, one entry per update: `u` (the v1 update as validated), `n` (origin node id), `t` (ms when written) |
//! | `<p>:{<room>}:snap` | hash | `doc` (merged v1 state), `upto` (id of the last log entry it covers), `epoch` (+1 per snapshot write; fencing), `obj` (with object storage: the current snapshot object's file name) |
//! | `<p>:{<room>}:meta` | hash | `last` (id of the newest entry, for gap detection; absent until the log's first entry, which is how `APPEND` knows it created the log), `bytes` and `n` (log bytes and entries not yet in the snapshot: `APPEND` adds, the compactor's `WRITE_SNAPSHOT` subtracts what it merged — they replace an `XLEN` per append; `n` is new: logs written before it start counting at 0, so their entry threshold comes later once, while the byte threshold and `compact_after_ms` still apply), `claim` (lease token of the compactor working on the room, until it releases it) |
//! | `<p>:{<room>}:aw` | hash | awareness: client id → `clock ms node state`; pruned of stale fields, expires when unused |
//! | `<p>:{<room>}:lease` | string | compactor lease token (`PX`) |
//! | `<p>:{<room>}:ch` | (sharded) pub/sub channel | live updates, awareness changes and deletions, for the gateways serving the room |
//! | `<p>:{<room>}:cb` | string | last log position an HTTP callback covered (`PX`: the debounce window) |
//! | `<p>:{<room>}:gen` | string | deletion generation: +1 per `DELETE` of the room (absent: 0); appends name the generation their room was loaded at and are refused after a delete; kept after the delete (the tombstone) |
//! | `<p>:compact` | sorted set | compaction queue: room → due time (ms); one member per room |
//! | `<p>:presence:<node>` | hash | rooms a gateway serves → its local connections (expires unless renewed) |
//! | `<p>:nodes` | sorted set | gateways → time of their last presence report (ms) |
//!
//! `<p>` is the prefix (`YWS_REDIS_PREFIX`). The room inside the tag is percent-encoded for `%`,
//! `{` and `}` so a room name can never end the tag early. The awareness value format is
//! [`AwarenessValue`](crate::awareness::AwarenessValue). `docs/architecture.md` shows this same
//! table (a unit test keeps the two equal).

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

const TAG: &AsciiSet = &CONTROLS.add(b'%').add(b'{').add(b'}');

/// The keys of one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomKeys {
    /// The update log (stream).
    pub log: String,
    /// The snapshot (hash).
    pub snap: String,
    /// Log metadata (hash).
    pub meta: String,
    /// Awareness states (hash).
    pub awareness: String,
    /// Compactor lease (string).
    pub lease: String,
    /// The live channel.
    pub channel: String,
    /// The HTTP-callback claim (one callback per room per debounce window, cluster-wide).
    pub callback: String,
    /// The deletion generation (string): +1 per delete, kept afterwards.
    pub generation: String,
}

impl RoomKeys {
    /// The keys of `room` under `prefix`.
    pub fn new(prefix: &str, room: &str) -> Self {
        let base = format!("{prefix}:{{{}}}", utf8_percent_encode(room, TAG));
        RoomKeys {
            log: format!("{base}:log"),
            snap: format!("{base}:snap"),
            meta: format!("{base}:meta"),
            awareness: format!("{base}:aw"),
            lease: format!("{base}:lease"),
            channel: format!("{base}:ch"),
            callback: format!("{base}:cb"),
            generation: format!("{base}:gen"),
        }
    }
}

/// The hash of rooms a gateway serves, with their connection counts (expires unless renewed).
pub fn presence_key(prefix: &str, node: &str) -> String {
    format!("{prefix}:presence:{node}")
}

/// The sorted set of gateways by their last presence report (ms).
pub fn nodes_key(prefix: &str) -> String {
    format!("{prefix}:nodes")
}

/// The compaction queue key.
pub fn queue_key(prefix: &str) -> String {
    format!("{prefix}:compact")
}

/// The room name from a room key or channel (`{p}:{<room>}:…`), if it has this prefix.
pub fn room_of(prefix: &str, key: &str) -> Option<String> {
    let rest = key.strip_prefix(prefix)?.strip_prefix(":{")?;
    let end = rest.find('}')?;
    percent_decode_str(&rest[..end])
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The Redis Cluster slot of a key (CRC16 of the hash tag, mod 16384).
pub fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tag = match (
        key.find('{'),
        key.find('{')
            .and_then(|s| key[s + 1..].find('}').map(|e| s + 1 + e)),
    ) {
        (Some(start), Some(end)) if end > start + 1 => &bytes[start + 1..end],
        _ => bytes,
    };
    crc16(tag) % 16384
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout() {
        let k = RoomKeys::new("yws", "team/doc 1");
        assert_eq!(k.log, "yws:{team/doc 1}:log");
        assert_eq!(k.channel, "yws:{team/doc 1}:ch");
        assert_eq!(room_of("yws", &k.snap).as_deref(), Some("team/doc 1"));
        assert_eq!(room_of("other", &k.snap), None);
    }

    #[test]
    fn braces_cannot_break_the_tag() {
        let k = RoomKeys::new("yws", "}{evil}");
        assert_eq!(k.log, "yws:{%7D%7Bevil%7D}:log");
        assert_eq!(room_of("yws", &k.log).as_deref(), Some("}{evil}"));
        assert_eq!(slot(&k.log), slot(&k.lease));
    }

    #[test]
    fn crc16_matches_redis() {
        // Values from the Redis Cluster specification.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
        assert_eq!(slot("foo"), 12182);
    }

    /// The rows of the first table in `text` whose lines start with `prefix`.
    fn table(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .skip_while(|l| !l.starts_with("| key | type |"))
            .take_while(|l| l.starts_with('|'))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_documented_table_lists_every_key_built_here() {
        let rows = table(include_str!("keys.rs"), "//! ");
        let documented: Vec<&str> = rows
            .iter()
            .skip(2)
            .filter_map(|row| row.split('`').nth(1))
            .collect();
        let k = RoomKeys::new("<p>", "<room>");
        let built = [
            k.log.as_str(),
            &k.snap,
            &k.meta,
            &k.awareness,
            &k.lease,
            &k.channel,
            &k.callback,
            &k.generation,
            &queue_key("<p>"),
            &presence_key("<p>", "<node>"),
            &nodes_key("<p>"),
        ];
        assert_eq!(documented, built);
    }

    #[test]
    fn architecture_doc_shows_the_same_key_table() {
        let here = table(include_str!("keys.rs"), "//! ");
        let doc = table(include_str!("../../../docs/architecture.md"), "");
        assert!(here.len() > 2, "table found in keys.rs");
        assert_eq!(
            doc, here,
            "docs/architecture.md and keys.rs list the same keys"
        );
    }

    #[test]
    fn global_keys() {
        assert_eq!(queue_key("yws"), "yws:compact");
        assert_eq!(presence_key("yws", "g1"), "yws:presence:g1");
        assert_eq!(nodes_key("yws"), "yws:nodes");
        assert_eq!(room_of("yws", "yws:compact"), None);
    }

    proptest! {
        #[test]
        fn all_keys_of_a_room_share_a_slot(room in "\\PC{1,40}") {
            let k = RoomKeys::new("yws", &room);
            let s = slot(&k.log);
            for key in [&k.snap, &k.meta, &k.awareness, &k.lease, &k.channel, &k.callback, &k.generation] {
                prop_assert_eq!(slot(key), s);
            }
            prop_assert_eq!(room_of("yws", &k.log), Some(room));
        }
    }
}
