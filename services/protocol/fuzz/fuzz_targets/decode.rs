//! Feeds arbitrary frames to the decoder. Whatever decodes must re-encode to a frame that
//! decodes to the same messages, and updates that validate must apply to a fresh document
//! without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yws_protocol::{decode, encode, validate, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(messages) = decode(data) else { return };
    for message in messages {
        let frame = match &message {
            Message::SyncStep1(sv) => encode::sync_step1(sv),
            Message::SyncStep2(u) => encode::sync_step2(u),
            Message::Update(u) => encode::update(u),
            Message::Awareness(a) => encode::awareness_payload(&a.encode()),
            Message::QueryAwareness => encode::query_awareness(),
            Message::Auth { denied: Some(reason) } => encode::auth_denied(reason),
            Message::Auth { denied: None } => continue,
        };
        let again = decode(&frame).expect("re-encoded frame decodes");
        assert_eq!(again, vec![message.clone()]);
        if let Message::Update(bytes) | Message::SyncStep2(bytes) = message {
            if let Ok(update) = validate::update(bytes) {
                let doc = yrs::Doc::new();
                let _ = yrs::Transact::transact_mut(&doc).apply_update(update);
            }
        }
    }
});
