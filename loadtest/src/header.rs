//! Cheap identification of updates on the hot path, without building a yrs `Doc`.
//!
//! A v1 update starts with `varuint client count`, then for the first client
//! `varuint struct count, varuint client id, varuint clock`. Every update a writer of this
//! tool sends carries exactly one client (its own) starting at its current clock, so
//! `(client, clock)` names the update uniquely and is the key observers use to find the
//! send instant. [`sync_update_payload`] picks the update payload out of a frame without the
//! validation that [`yws_protocol::decode()`] does, so the common frame costs no heap work.

use yws_protocol::varint::Reader;
use yws_protocol::{MSG_SYNC, SYNC_UPDATE};

/// The first block of an update: who wrote it and at which clock it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UpdateId {
    /// The yrs client id of the writer.
    pub client: u64,
    /// The clock of the update's first struct.
    pub clock: u32,
}

/// Parses the id of the first client's first struct of a v1 update.
///
/// Returns `None` for updates without structs (delete-set only, or the empty update) and for
/// bytes that are not a v1 update header.
pub fn update_id(update: &[u8]) -> Option<UpdateId> {
    let mut reader = Reader::new(update);
    let clients = reader.read_var_u64("client count").ok()?;
    if clients == 0 {
        return None;
    }
    let structs = reader.read_var_u64("struct count").ok()?;
    if structs == 0 {
        return None;
    }
    let client = reader.read_var_u64("client").ok()?;
    let clock = reader.read_var_u64("clock").ok()?;
    Some(UpdateId {
        client,
        clock: u32::try_from(clock).ok()?,
    })
}

/// How many clients' structs a v1 update carries (its first varuint).
pub fn client_count(update: &[u8]) -> Option<u64> {
    Reader::new(update).read_var_u64("client count").ok()
}

/// If `frame` is exactly one sync-update message (the hot path), returns the payload's range
/// inside `frame`, so a caller holding the frame as `Bytes` can slice it without copying.
/// Anything else (several messages, other types, malformed) returns `None` and goes through
/// the full decoder.
pub fn sync_update_payload(frame: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut reader = Reader::new(frame);
    if reader.read_var_u64("type").ok()? != MSG_SYNC {
        return None;
    }
    if reader.read_var_u64("sync type").ok()? != SYNC_UPDATE {
        return None;
    }
    let payload = reader.read_var_bytes("update").ok()?;
    let rest = reader.remaining();
    if !rest.iter().all(|b| *b == 0) {
        return None;
    }
    let start = frame.len() - rest.len() - payload.len();
    Some(start..start + payload.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, Map, ReadTxn, StateVector, Text, Transact, Update};

    fn text_update(doc: &Doc, s: &str) -> Vec<u8> {
        let text = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        let len = text.len(&txn);
        text.insert(&mut txn, len, s);
        txn.encode_update_v1()
    }

    #[test]
    fn parses_ids_of_updates_produced_by_yrs() {
        let doc = Doc::with_client_id(123_456_789_012);
        let first = text_update(&doc, "hello");
        assert_eq!(
            update_id(&first),
            Some(UpdateId {
                client: 123_456_789_012,
                clock: 0
            })
        );
        let second = text_update(&doc, "world!");
        assert_eq!(
            update_id(&second),
            Some(UpdateId {
                client: 123_456_789_012,
                clock: 5
            })
        );
        // Large clocks use multi-byte varints.
        let big = "x".repeat(300);
        text_update(&doc, &big);
        let after = text_update(&doc, "y");
        assert_eq!(update_id(&after).map(|id| id.clock), Some(311));
        // The id agrees with what yrs itself makes of the update.
        let other = Doc::new();
        let full = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let before = Doc::new();
        before
            .transact_mut()
            .apply_update(Update::decode_v1(&full).unwrap())
            .unwrap();
        let sv = before.transact().state_vector();
        let client = yrs::block::ClientID::new(123_456_789_012);
        assert_eq!(sv.get(&client), 312);
        other
            .transact_mut()
            .apply_update(Update::decode_v1(&first).unwrap())
            .unwrap();
        assert_eq!(other.transact().state_vector().get(&client), 5);
    }

    #[test]
    fn map_updates_and_full_state_have_ids_too() {
        let doc = Doc::with_client_id(42);
        let map = doc.get_or_insert_map("m");
        map.insert(&mut doc.transact_mut(), "k", "v");
        let full = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        assert_eq!(
            update_id(&full),
            Some(UpdateId {
                client: 42,
                clock: 0
            })
        );
    }

    #[test]
    fn updates_without_structs_have_no_id() {
        let empty = Doc::new()
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        assert_eq!(update_id(&empty), None);
        assert_eq!(update_id(&[]), None);
        assert_eq!(update_id(&[1, 1, 0x80]), None);
    }

    #[test]
    fn picks_the_payload_out_of_an_update_frame() {
        let doc = Doc::with_client_id(7);
        let update = text_update(&doc, "abc");
        let frame = yws_protocol::encode::update(&update);
        let range = sync_update_payload(&frame).unwrap();
        assert_eq!(&frame[range], &update[..]);
        // A trailing lone sync header (4.x clients) is tolerated.
        let mut padded = frame.clone();
        padded.push(0);
        assert_eq!(sync_update_payload(&padded), Some(3..3 + update.len()));
        // Other messages take the slow path.
        assert_eq!(
            sync_update_payload(&yws_protocol::encode::sync_step2(&update)),
            None
        );
        assert_eq!(
            sync_update_payload(&yws_protocol::encode::query_awareness()),
            None
        );
        let mut two = frame.clone();
        two.extend(yws_protocol::encode::query_awareness());
        assert_eq!(sync_update_payload(&two), None);
        assert_eq!(sync_update_payload(&frame[..frame.len() - 1]), None);
    }
}
