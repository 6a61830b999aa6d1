//! Stream ids and live (pub/sub) messages — pure parsing of bytes that come from Redis,
//! property-tested and fuzzed (`fuzz/`): unreadable input is an error, never a panic.

use std::fmt;
use std::str::FromStr;
use yws_core::LogPosition;

/// A Redis stream id `ms-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// `0-0`, before every entry.
    pub const ZERO: StreamId = StreamId { ms: 0, seq: 0 };

    /// The smallest id greater than this one (for `MINID` trims and exclusive ranges); the
    /// largest possible id, for which there is none, stays itself.
    pub fn next(self) -> StreamId {
        match (self.seq.checked_add(1), self.ms.checked_add(1)) {
            (Some(seq), _) => StreamId { ms: self.ms, seq },
            (None, Some(ms)) => StreamId { ms, seq: 0 },
            (None, None) => self,
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A room's position in its log is the id of the last entry applied.
impl From<StreamId> for LogPosition {
    fn from(id: StreamId) -> Self {
        LogPosition::new(id.ms, id.seq)
    }
}

impl From<LogPosition> for StreamId {
    fn from(position: LogPosition) -> Self {
        StreamId {
            ms: position.major,
            seq: position.minor,
        }
    }
}

/// An unparsable stream id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadStreamId;

impl FromStr for StreamId {
    type Err = BadStreamId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        Ok(StreamId {
            ms: ms.parse().map_err(|_| BadStreamId)?,
            seq: seq.parse().map_err(|_| BadStreamId)?,
        })
    }
}

/// A live message published on a room's channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveMessage<'a> {
    /// A log entry was appended: `u<prev> <id> <node> <ms>\n<update>`.
    Update {
        /// The id of the entry before it (gap detection).
        prev: StreamId,
        /// The new entry's id.
        id: StreamId,
        /// The node that wrote it.
        node: &'a str,
        /// Wall-clock ms when it was written (fan-out latency).
        ms: u64,
        /// The v1 update.
        update: &'a [u8],
    },
    /// A log entry too large to publish inline was appended: `r<prev> <id> <node> <ms>\n`;
    /// the update is read from the log.
    Reference {
        /// The id of the entry before it.
        prev: StreamId,
        /// The new entry's id.
        id: StreamId,
        /// The node that wrote it.
        node: &'a str,
        /// Wall-clock ms when it was written.
        ms: u64,
    },
    /// The room was deleted through the document API on `node`: `d<node> <generation>\n`.
    Delete {
        /// The node that deleted it.
        node: &'a str,
        /// The room's deletion generation after it (`None` from nodes that predate
        /// generations: then every loaded copy of the room is stale).
        generation: Option<u64>,
    },
    /// Awareness states changed on a node: `a<node> <ms>\n<awareness payload>`.
    Awareness {
        /// The node that published it.
        node: &'a str,
        /// Wall-clock ms when it was published.
        ms: u64,
        /// The awareness payload (y-protocols format).
        payload: &'a [u8],
    },
}

/// Why a live message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMessage(pub &'static str);

impl<'a> LiveMessage<'a> {
    /// Parses a message as published by the scripts in [`crate::scripts`].
    pub fn parse(raw: &'a [u8]) -> Result<Self, BadMessage> {
        let (&kind, rest) = raw.split_first().ok_or(BadMessage("empty"))?;
        let nl = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or(BadMessage("no header"))?;
        let header =
            std::str::from_utf8(&rest[..nl]).map_err(|_| BadMessage("header not UTF-8"))?;
        let body = &rest[nl + 1..];
        let mut fields = header.split(' ');
        let mut next = |what: &'static str| fields.next().ok_or(BadMessage(what));
        match kind {
            b'u' | b'r' => {
                let prev = next("prev")?.parse().map_err(|_| BadMessage("prev id"))?;
                let id = next("id")?.parse().map_err(|_| BadMessage("id"))?;
                let node = next("node")?;
                let ms = next("ms")?.parse().map_err(|_| BadMessage("ms"))?;
                Ok(match kind {
                    b'u' => LiveMessage::Update {
                        prev,
                        id,
                        node,
                        ms,
                        update: body,
                    },
                    _ => LiveMessage::Reference { prev, id, node, ms },
                })
            }
            b'd' => {
                let node = next("node")?;
                let generation = match fields.next() {
                    Some(g) => Some(g.parse().map_err(|_| BadMessage("generation"))?),
                    None => None,
                };
                Ok(LiveMessage::Delete { node, generation })
            }
            b'a' => {
                let node = next("node")?;
                let ms = next("ms")?.parse().map_err(|_| BadMessage("ms"))?;
                Ok(LiveMessage::Awareness {
                    node,
                    ms,
                    payload: body,
                })
            }
            _ => Err(BadMessage("unknown kind")),
        }
    }
}

/// Builds an awareness live message (updates are built inside the append script).
pub fn awareness_message(node: &str, ms: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(node.len() + payload.len() + 24);
    out.push(b'a');
    out.extend_from_slice(node.as_bytes());
    out.push(b' ');
    out.extend_from_slice(ms.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload);
    out
}

/// Builds a delete live message (the `DELETE` script builds the same inside Redis).
pub fn delete_message(node: &str, generation: u64) -> Vec<u8> {
    format!("d{node} {generation}\n").into_bytes()
}

/// Wall-clock milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stream_ids() {
        let id: StreamId = "1700000000000-5".parse().unwrap();
        assert_eq!(
            id,
            StreamId {
                ms: 1_700_000_000_000,
                seq: 5
            }
        );
        assert_eq!(id.to_string(), "1700000000000-5");
        assert_eq!(id.next().to_string(), "1700000000000-6");
        assert!(StreamId { ms: 1, seq: 9 } < StreamId { ms: 2, seq: 0 });
        assert_eq!(
            "12".parse::<StreamId>().unwrap(),
            StreamId { ms: 12, seq: 0 }
        );
        assert!("x-1".parse::<StreamId>().is_err());
        assert_eq!(
            StreamId {
                ms: 3,
                seq: u64::MAX
            }
            .next(),
            StreamId { ms: 4, seq: 0 }
        );
        let last = StreamId {
            ms: u64::MAX,
            seq: u64::MAX,
        };
        assert_eq!(last.next(), last);
    }

    #[test]
    fn stream_ids_are_log_positions_in_the_same_order() {
        let (a, b) = (StreamId { ms: 5, seq: 9 }, StreamId { ms: 6, seq: 0 });
        let (pa, pb) = (LogPosition::from(a), LogPosition::from(b));
        assert!(pa < pb);
        assert_eq!(pa.to_string(), a.to_string());
        assert_eq!(StreamId::from(pb), b);
    }

    #[test]
    fn live_messages() {
        let raw = b"u1-0 2-0 node-a 1234\n\x01\x02\x00";
        assert_eq!(
            LiveMessage::parse(raw).unwrap(),
            LiveMessage::Update {
                prev: StreamId { ms: 1, seq: 0 },
                id: StreamId { ms: 2, seq: 0 },
                node: "node-a",
                ms: 1234,
                update: &[1, 2, 0],
            }
        );
        let raw = b"r1-0 2-0 node-a 1234\n";
        assert_eq!(
            LiveMessage::parse(raw).unwrap(),
            LiveMessage::Reference {
                prev: StreamId { ms: 1, seq: 0 },
                id: StreamId { ms: 2, seq: 0 },
                node: "node-a",
                ms: 1234,
            }
        );
        let raw = awareness_message("n1", 99, &[1, 2, 3, b'\n']);
        assert_eq!(
            LiveMessage::parse(&raw).unwrap(),
            LiveMessage::Awareness {
                node: "n1",
                ms: 99,
                payload: &[1, 2, 3, b'\n']
            }
        );
        assert_eq!(
            LiveMessage::parse(&delete_message("n2", 3)).unwrap(),
            LiveMessage::Delete {
                node: "n2",
                generation: Some(3)
            }
        );
        assert!(LiveMessage::parse(b"").is_err());
        assert!(LiveMessage::parse(b"x\n").is_err());
        assert!(LiveMessage::parse(b"u1-0\n").is_err());
        assert!(LiveMessage::parse(b"ubad 2-0 n 1\nx").is_err());
    }

    proptest! {
        /// Whatever Redis hands over, parsing answers with a message or an error.
        #[test]
        fn parsing_arbitrary_bytes_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = LiveMessage::parse(&raw);
            if let Ok(text) = std::str::from_utf8(&raw) {
                let _ = text.parse::<StreamId>().map(StreamId::next);
            }
        }

        /// Near-misses of the real formats: a kind byte, a header of plausible fields, a body.
        #[test]
        fn parsing_near_misses_never_panics(
            kind in prop::sample::select(vec![b'u', b'a', b'd', b'x']),
            header in "[0-9a-z -]{0,40}",
            body in proptest::collection::vec(any::<u8>(), 0..32),
        ) {
            let mut raw = vec![kind];
            raw.extend_from_slice(header.as_bytes());
            raw.push(b'\n');
            raw.extend_from_slice(&body);
            if let Ok(LiveMessage::Update { update, .. } | LiveMessage::Awareness { payload: update, .. }) =
                LiveMessage::parse(&raw)
            {
                prop_assert_eq!(update, &body[..]);
            }
        }

        #[test]
        fn built_messages_parse_back(
            node in "[a-z0-9]{0,16}",
            ms: u64,
            generation: u64,
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let raw = awareness_message(&node, ms, &payload);
            prop_assert_eq!(
                LiveMessage::parse(&raw),
                Ok(LiveMessage::Awareness { node: &node, ms, payload: &payload })
            );
            let raw = delete_message(&node, generation);
            prop_assert_eq!(
                LiveMessage::parse(&raw),
                Ok(LiveMessage::Delete { node: &node, generation: Some(generation) })
            );
            // The format of nodes that predate generations still parses.
            let old_format = format!("d{node}\n");
            prop_assert_eq!(
                LiveMessage::parse(old_format.as_bytes()),
                Ok(LiveMessage::Delete { node: &node, generation: None })
            );
        }

        #[test]
        fn stream_ids_round_trip(ms: u64, seq: u64) {
            let id = StreamId { ms, seq };
            prop_assert_eq!(id.to_string().parse::<StreamId>(), Ok(id));
            prop_assert!(id.next() >= id);
        }
    }
}
