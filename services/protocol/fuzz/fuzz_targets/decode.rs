//! Feeds arbitrary frames to the decoder, one message at a time as the server handles them:
//! messages, then at most one error, then nothing. Whatever decodes must re-encode to a frame
//! that decodes to the same message, and update payloads go through `validate::update` (our
//! pre-checks, then yrs's decoder) without aborting or exhausting memory.
//!
//! Integrating updates is left out: yrs panics on some inputs that decode (see
//! `regressions/yrs-apply-panic`, and `regressions/yrs-apply-half-applied-*`, which panic only
//! with overflow checks on, after writing part of themselves into the document); the gateway,
//! compactor and store catch those panics and throw the suspect document away
//! (`yws_core::room`), but a fuzz build aborts on any panic. Run with `-O` to match release
//! builds (no overflow checks).
//!
//! `regressions/yrs-apply-segfault-three-updates` is one frame of three updates that yrs decodes
//! and that, applied in order to an empty yrs 0.28.1 document, make it crash with a segmentation
//! fault (debug and release builds; no panic first). Its second update holds an item whose left
//! origin is a later clock of its own client, which no Yjs client writes: `validate::update`
//! refuses it (`yws_protocol::structs`), so it is never written or applied.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yws_protocol::{decode, encode, validate, Message};

fuzz_target!(|data: &[u8]| {
    let mut messages = decode(data);
    for message in messages.by_ref() {
        let Ok(message) = message else { break };
        let frame = match &message {
            Message::SyncStep1(sv) => encode::sync_step1(sv),
            Message::SyncStep2(u) => encode::sync_step2(u),
            Message::Update(u) => encode::update(u),
            Message::Awareness(a) => encode::awareness_payload(&a.encode()),
            Message::QueryAwareness => encode::query_awareness(),
            Message::Auth { denied: Some(reason) } => encode::auth_denied(reason),
            Message::Auth { denied: None } => continue,
        };
        let again: Vec<_> = decode(&frame).collect();
        assert_eq!(again, vec![Ok(message.clone())], "re-encoded frame decodes alone");
        if let Message::Update(bytes) | Message::SyncStep2(bytes) = message {
            let _ = validate::update(bytes);
        }
        if let Message::Awareness(update) = &message {
            assert_eq!(update.entries().count(), update.len());
        }
    }
    assert!(messages.next().is_none(), "nothing after the first error");
});
