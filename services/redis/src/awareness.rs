//! The room awareness hash (`{p}:{<room>}:aw`): client id → [`AwarenessValue`], written when
//! a node publishes its clients' states, read when a node loads the room, pruned by the
//! [`AWARENESS`](crate::scripts::AWARENESS) script. The value format is defined here only.

use yws_protocol::{AwarenessEntry, AwarenessUpdate};

/// One client's awareness state as stored in the hash: `clock ms node state`, space separated.
/// The state (JSON, may contain spaces) comes last; node ids contain no spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwarenessValue<'a> {
    /// The client's awareness clock.
    pub clock: u64,
    /// Wall-clock ms when a node stored it: states older than the awareness timeout are stale.
    pub ms: u64,
    /// The node that stored it.
    pub node: &'a str,
    /// The state, JSON.
    pub state: &'a str,
}

/// The Lua pattern that captures `ms` from an [`AwarenessValue`] (used by the
/// [`AWARENESS`](crate::scripts::AWARENESS) script to prune stale states).
pub const LUA_MS_PATTERN: &str = "^%d+ (%d+) ";

impl<'a> AwarenessValue<'a> {
    /// The stored form.
    pub fn encode(&self) -> String {
        format!("{} {} {} {}", self.clock, self.ms, self.node, self.state)
    }

    /// Reads a stored value; `None` when it is not in this format.
    pub fn parse(value: &'a str) -> Option<Self> {
        let mut parts = value.splitn(4, ' ');
        let clock = parts.next()?.parse().ok()?;
        let ms = parts.next()?.parse().ok()?;
        let node = parts.next()?;
        let state = parts.next()?;
        Some(AwarenessValue {
            clock,
            ms,
            node,
            state,
        })
    }
}

/// The hash fields a node writes for an awareness update of its clients, stored at `now_ms`:
/// a removal becomes `''` (the script deletes the field).
pub fn fields(update: &AwarenessUpdate<'_>, node: &str, now_ms: u64) -> Vec<(String, String)> {
    update
        .entries()
        .map(|e| {
            let value = if e.is_removal() {
                String::new()
            } else {
                AwarenessValue {
                    clock: e.clock,
                    ms: now_ms,
                    node,
                    state: e.state,
                }
                .encode()
            };
            (e.client_id.to_string(), value)
        })
        .collect()
}

/// The states of a hash read back (`HGETALL` pairs) that were stored at or after
/// `fresh_after` ms, as awareness entries; fields that are not in the format are skipped.
pub fn fresh_entries(hash: &[(String, String)], fresh_after: u64) -> Vec<AwarenessEntry<'_>> {
    hash.iter()
        .filter_map(|(client, value)| {
            let client_id = client.parse::<u64>().ok()?;
            let value = AwarenessValue::parse(value)?;
            (value.ms >= fresh_after).then_some(AwarenessEntry {
                client_id,
                clock: value.clock,
                state: value.state,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn format_is_clock_ms_node_state() {
        let v = AwarenessValue {
            clock: 7,
            ms: 1_700_000_000_123,
            node: "g0123456789ab",
            state: r#"{"user": {"name": "a b"}}"#,
        };
        assert_eq!(
            v.encode(),
            r#"7 1700000000123 g0123456789ab {"user": {"name": "a b"}}"#
        );
        assert_eq!(AwarenessValue::parse(&v.encode()), Some(v));
        assert_eq!(AwarenessValue::parse("7 x g1 {}"), None);
        assert_eq!(AwarenessValue::parse("7 8 g1"), None);
        assert_eq!(AwarenessValue::parse(""), None);
    }

    #[test]
    fn the_prune_script_uses_the_pattern() {
        let script = crate::scripts::AWARENESS_SOURCE.as_str();
        assert!(script.contains(&format!("string.match(sample[i + 1], '{LUA_MS_PATTERN}')")));
        // The pattern: digits (the clock), a space, the captured digits (ms), a space — the
        // first two fields of the format, in this order.
        assert_eq!(LUA_MS_PATTERN, "^%d+ (%d+) ");
    }

    #[test]
    fn publish_then_load() {
        let payload = yws_protocol::awareness::encode_entries([
            AwarenessEntry {
                client_id: 1,
                clock: 3,
                state: r#"{"cursor":null}"#,
            },
            AwarenessEntry {
                client_id: 2,
                clock: 9,
                state: "null",
            },
        ]);
        let update = AwarenessUpdate::decode(&payload).unwrap();
        let written = fields(&update, "g1", 5000);
        assert_eq!(
            written,
            [
                ("1".to_string(), r#"3 5000 g1 {"cursor":null}"#.to_string()),
                ("2".to_string(), String::new()),
            ]
        );
        let mut hash: Vec<(String, String)> =
            written.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        hash.push(("3".into(), "1 100 g2 {}".into())); // stale
        hash.push(("x".into(), "1 9000 g2 {}".into())); // not a client id
        hash.push(("4".into(), "garbage".into()));
        assert_eq!(
            fresh_entries(&hash, 1000),
            [AwarenessEntry {
                client_id: 1,
                clock: 3,
                state: r#"{"cursor":null}"#
            }]
        );
    }

    proptest! {
        #[test]
        fn round_trip(clock: u64, ms: u64, node in "[a-z0-9]{1,16}", state in "\\PC*") {
            let v = AwarenessValue { clock, ms, node: &node, state: &state };
            let encoded = v.encode();
            prop_assert_eq!(AwarenessValue::parse(&encoded), Some(v));
        }
    }
}
