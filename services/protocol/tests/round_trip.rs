//! Property tests: every encoder round-trips through `decode`, and `decode` never panics on
//! arbitrary input.
#![allow(
    clippy::unwrap_used,
    reason = "a panic with a message is a test failure"
)]

use proptest::prelude::*;
use yws_protocol::{decode, encode, AwarenessEntry, DecodeError, Message};

fn all(frame: &[u8]) -> Result<Vec<Message<'_>>, DecodeError> {
    decode(frame).collect()
}

/// One message of each kind that a client sends, as a frame and as what it decodes to.
fn client_message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..32).prop_map(|p| encode::update(&p)),
        proptest::collection::vec(any::<u8>(), 0..32).prop_map(|p| encode::sync_step2(&p)),
        Just(encode::sync_step1(&yrs::StateVector::default())),
        Just(encode::query_awareness()),
        (any::<u64>(), any::<u64>(), json_state()).prop_map(|(client_id, clock, state)| {
            encode::awareness([AwarenessEntry {
                client_id,
                clock,
                state: &state,
            }])
        }),
    ]
}

fn json_state() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        "[ -~]{0,16}"
            .prop_map(|s| serde_json::to_string(&serde_json::json!({ "name": s })).unwrap()),
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        // Messages, then at most one error, then nothing.
        let mut messages = decode(&bytes);
        for item in messages.by_ref() {
            if item.is_err() {
                break;
            }
        }
        prop_assert!(messages.next().is_none());
    }

    #[test]
    fn mixed_frames_decode_in_order_one_at_a_time(
        parts in proptest::collection::vec(client_message(), 1..12),
        garbage in proptest::option::of(proptest::collection::vec(1u8..=255, 1..8)),
    ) {
        let mut frame = Vec::new();
        for part in &parts {
            frame.extend(part);
        }
        let clean_len = frame.len();
        if let Some(garbage) = &garbage {
            frame.extend(garbage);
        }
        // Each message decodes as the frame holding only it does, in order.
        let mut messages = decode(&frame);
        for part in &parts {
            let alone = all(part).unwrap();
            prop_assert_eq!(alone.len(), 1);
            prop_assert_eq!(messages.next(), Some(Ok(alone[0].clone())));
        }
        match garbage {
            // Bytes after the last message are decoded as a message: some happen to be one,
            // otherwise exactly one error ends the frame.
            Some(_) => {
                let rest: Vec<_> = messages.collect();
                let errors = rest.iter().filter(|m| m.is_err()).count();
                prop_assert!(errors <= 1);
                prop_assert_eq!(errors == 1, all(&frame[clean_len..]).is_err());
            }
            None => prop_assert_eq!(messages.next(), None),
        }
    }

    #[test]
    fn update_frames_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let frame = encode::update(&payload);
        prop_assert_eq!(all(&frame).unwrap(), vec![Message::Update(&payload)]);
        let frame = encode::sync_step2(&payload);
        prop_assert_eq!(all(&frame).unwrap(), vec![Message::SyncStep2(&payload)]);
    }

    #[test]
    fn state_vectors_round_trip(clocks in proptest::collection::btree_map(0..=yws_protocol::validate::MAX_CLIENT_ID, any::<u32>(), 0..16)) {
        let mut sv = yrs::StateVector::default();
        for (client, clock) in clocks {
            sv.set_max(yrs::block::ClientID::new(client), clock);
        }
        let frame = encode::sync_step1(&sv);
        prop_assert_eq!(all(&frame).unwrap(), vec![Message::SyncStep1(sv)]);
    }

    #[test]
    fn awareness_frames_round_trip(entries in proptest::collection::vec((any::<u64>(), any::<u64>(), json_state()), 0..8)) {
        let owned: Vec<_> = entries.iter().map(|(id, clock, s)| AwarenessEntry { client_id: *id, clock: *clock, state: s.as_str() }).collect();
        let frame = encode::awareness(owned.iter().copied());
        let messages = all(&frame).unwrap();
        let [Message::Awareness(update)] = &messages[..] else { panic!("expected awareness") };
        prop_assert_eq!(&update.entries().collect::<Vec<_>>(), &owned);
    }

    #[test]
    fn concatenated_frames_decode_in_order(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..64), 1..6), trailing_headers in 0usize..3) {
        let mut frame = Vec::new();
        for p in &payloads {
            frame.extend(encode::update(p));
        }
        frame.extend(std::iter::repeat_n(0u8, trailing_headers));
        let messages = all(&frame).unwrap();
        let expected: Vec<_> = payloads.iter().map(|p| Message::Update(p)).collect();
        prop_assert_eq!(messages, expected);
    }
}
