//! Encoding outgoing messages. Every function returns one complete frame holding exactly one
//! message: `y-websocket` 3.x clients decode only the first message of a frame.

use crate::awareness::{encode_entries, AwarenessEntry};
use crate::varint::{var_u64_len, write_var_bytes, write_var_u64};
use crate::{MSG_AUTH, MSG_AWARENESS, MSG_QUERY_AWARENESS, MSG_SYNC};
use crate::{SYNC_STEP_1, SYNC_STEP_2, SYNC_UPDATE};
use yrs::updates::encoder::Encode;
use yrs::StateVector;

fn sync_frame(sub_type: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + var_u64_len(payload.len() as u64) + payload.len());
    write_var_u64(&mut out, MSG_SYNC);
    write_var_u64(&mut out, sub_type);
    write_var_bytes(&mut out, payload);
    out
}

/// Sync step 1 carrying `sv`.
pub fn sync_step1(sv: &StateVector) -> Vec<u8> {
    sync_frame(SYNC_STEP_1, &sv.encode_v1())
}

/// Sync step 1 from an already encoded state vector.
pub fn sync_step1_encoded(sv: &[u8]) -> Vec<u8> {
    sync_frame(SYNC_STEP_1, sv)
}

/// Sync step 2 carrying a v1 update.
pub fn sync_step2(update: &[u8]) -> Vec<u8> {
    sync_frame(SYNC_STEP_2, update)
}

/// An incremental update carrying a v1 update.
pub fn update(update: &[u8]) -> Vec<u8> {
    sync_frame(SYNC_UPDATE, update)
}

/// An awareness message from entries.
pub fn awareness<'s, I>(entries: I) -> Vec<u8>
where
    I: IntoIterator<Item = AwarenessEntry<'s>>,
    I::IntoIter: ExactSizeIterator,
{
    awareness_payload(&encode_entries(entries))
}

/// An awareness message from an already encoded awareness payload.
pub fn awareness_payload(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + var_u64_len(payload.len() as u64) + payload.len());
    write_var_u64(&mut out, MSG_AWARENESS);
    write_var_bytes(&mut out, payload);
    out
}

/// An awareness update with no entries: a harmless message that keeps client watchdogs quiet.
pub fn empty_awareness() -> Vec<u8> {
    vec![MSG_AWARENESS as u8, 1, 0]
}

/// A query-awareness message.
pub fn query_awareness() -> Vec<u8> {
    vec![MSG_QUERY_AWARENESS as u8]
}

/// A permission-denied auth message.
pub fn auth_denied(reason: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + reason.len());
    write_var_u64(&mut out, MSG_AUTH);
    write_var_u64(&mut out, 0);
    write_var_bytes(&mut out, reason.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, Message};

    #[test]
    fn empty_awareness_decodes_to_no_entries() {
        let frame = empty_awareness();
        let messages: Vec<_> = decode(&frame).collect::<Result<_, _>>().unwrap();
        let [Message::Awareness(update)] = &messages[..] else {
            panic!("expected one awareness message, got {messages:?}")
        };
        assert!(update.is_empty());
    }
}
