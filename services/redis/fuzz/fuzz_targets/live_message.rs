//! Feeds arbitrary bytes to the parsers of what gateways read from Redis: live (pub/sub)
//! messages, stream ids and awareness hash values. Redis is trusted less than our own code: a
//! message written by another version, by hand or corrupted must be refused with an error,
//! never panic or loop. What parses must keep its parts where the format puts them, and the
//! messages gateways build must parse back to what was built.
//!
//! Run with `-O` to match release builds (no overflow checks).
#![no_main]

use libfuzzer_sys::fuzz_target;
use yws_redis::awareness::AwarenessValue;
use yws_redis::entry::{awareness_message, delete_message, LiveMessage, StreamId};

fuzz_target!(|data: &[u8]| {
    match LiveMessage::parse(data) {
        Ok(LiveMessage::Update { node, update, .. }) => {
            assert_eq!(data[0], b'u');
            assert!(!node.contains([' ', '\n']));
            assert!(data.ends_with(update));
        }
        Ok(LiveMessage::Reference { node, .. }) => {
            assert_eq!(data[0], b'r');
            assert!(!node.contains([' ', '\n']));
        }
        Ok(LiveMessage::Awareness { node, ms, payload }) => {
            assert_eq!(data[0], b'a');
            assert!(!node.contains([' ', '\n']));
            assert!(data.ends_with(payload));
            // What a node builds from these parts reads back the same.
            let rebuilt = awareness_message(node, ms, payload);
            assert_eq!(
                LiveMessage::parse(&rebuilt),
                Ok(LiveMessage::Awareness { node, ms, payload })
            );
        }
        Ok(LiveMessage::Delete { node, generation }) => {
            assert_eq!(data[0], b'd');
            assert!(!node.contains([' ', '\n']));
            if let Some(generation) = generation {
                assert_eq!(
                    LiveMessage::parse(&delete_message(node, generation)),
                    Ok(LiveMessage::Delete {
                        node,
                        generation: Some(generation)
                    })
                );
            }
        }
        Err(_) => {}
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = text.parse::<StreamId>() {
            assert_eq!(id.to_string().parse::<StreamId>(), Ok(id));
            // Trims and exclusive ranges start after `next()`: it must never go backwards.
            assert!(id.next() >= id);
        }
        if let Some(value) = AwarenessValue::parse(text) {
            if !value.node.contains(' ') {
                assert_eq!(AwarenessValue::parse(&value.encode()), Some(value));
            }
        }
    }
});
