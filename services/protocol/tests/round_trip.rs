//! Property tests: every encoder round-trips through `decode`, and `decode` never panics on
//! arbitrary input.
#![allow(
    clippy::unwrap_used,
    reason = "a panic with a message is a test failure"
)]

use proptest::prelude::*;
use yws_protocol::{decode, encode, AwarenessEntry, Message};

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
        let _ = decode(&bytes);
    }

    #[test]
    fn update_frames_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let frame = encode::update(&payload);
        prop_assert_eq!(decode(&frame).unwrap(), vec![Message::Update(&payload)]);
        let frame = encode::sync_step2(&payload);
        prop_assert_eq!(decode(&frame).unwrap(), vec![Message::SyncStep2(&payload)]);
    }

    #[test]
    fn state_vectors_round_trip(clocks in proptest::collection::btree_map(0..=yws_protocol::validate::MAX_CLIENT_ID, any::<u32>(), 0..16)) {
        let mut sv = yrs::StateVector::default();
        for (client, clock) in clocks {
            sv.set_max(yrs::block::ClientID::new(client), clock);
        }
        let frame = encode::sync_step1(&sv);
        prop_assert_eq!(decode(&frame).unwrap(), vec![Message::SyncStep1(sv)]);
    }

    #[test]
    fn awareness_frames_round_trip(entries in proptest::collection::vec((any::<u64>(), any::<u64>(), json_state()), 0..8)) {
        let owned: Vec<_> = entries.iter().map(|(id, clock, s)| AwarenessEntry { client_id: *id, clock: *clock, state: s.as_str() }).collect();
        let frame = encode::awareness(owned.iter().copied());
        let messages = decode(&frame).unwrap();
        let [Message::Awareness(update)] = &messages[..] else { panic!("expected awareness") };
        prop_assert_eq!(&update.entries, &owned);
    }

    #[test]
    fn concatenated_frames_decode_in_order(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..64), 1..6), trailing_headers in 0usize..3) {
        let mut frame = Vec::new();
        for p in &payloads {
            frame.extend(encode::update(p));
        }
        frame.extend(std::iter::repeat_n(0u8, trailing_headers));
        let messages = decode(&frame).unwrap();
        let expected: Vec<_> = payloads.iter().map(|p| Message::Update(p)).collect();
        prop_assert_eq!(messages, expected);
    }
}
