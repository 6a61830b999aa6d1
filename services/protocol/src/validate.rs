//! Turning raw bytes from the wire into yrs values. Every Yjs update is decoded (and thereby
//! validated) exactly once, before it is applied, logged or broadcast.

use crate::varint::Reader;
use crate::DecodeError;
use yrs::block::ClientID;
use yrs::updates::decoder::Decode;
use yrs::{StateVector, Update};

/// Decodes a v1 Yjs update. The returned [`Update`] can be applied without decoding again.
///
/// Updates whose items refer to their own client's future are refused ([`crate::structs`]).
///
/// Decoding touches nothing shared, so a panic inside yrs (it `debug_assert`s on client ids
/// wider than 53 bits, for one) is caught and reported as an invalid update.
pub fn update(bytes: &[u8]) -> Result<Update, DecodeError> {
    check_update_counts(bytes)?;
    match std::panic::catch_unwind(|| Update::decode_v1(bytes)) {
        Ok(Ok(update)) => {
            crate::structs::check_references(bytes)?;
            Ok(update)
        }
        Ok(Err(e)) => Err(DecodeError::InvalidUpdate(e.to_string())),
        Err(_) => Err(DecodeError::InvalidUpdate(
            "decoder rejected the update".into(),
        )),
    }
}

/// Rejects counts an update cannot possibly hold before yrs reserves memory for them: yrs
/// sizes a hash table by the declared number of clients (initialising one control byte per
/// bucket), so six bytes could otherwise make the process touch gigabytes. Each client section
/// takes at least three bytes (struct count, client, clock), each struct at least one.
fn check_update_counts(bytes: &[u8]) -> Result<(), DecodeError> {
    let invalid = |what: &str| DecodeError::InvalidUpdate(what.to_string());
    let mut reader = Reader::new(bytes);
    let clients = reader
        .read_var_u64("update client count")
        .map_err(|e| invalid(&e.to_string()))?;
    if clients > bytes.len() as u64 / 3 {
        return Err(invalid("more clients than the update can hold"));
    }
    if clients > 0 {
        let structs = reader
            .read_var_u64("update struct count")
            .map_err(|e| invalid(&e.to_string()))?;
        if structs > bytes.len() as u64 {
            return Err(invalid("more structs than the update can hold"));
        }
    }
    Ok(())
}

/// Yjs client ids are JavaScript safe integers: at most 53 bits.
pub const MAX_CLIENT_ID: u64 = (1 << 53) - 1;

/// Decodes a v1 state vector: `varuint count, count × (varuint client, varuint clock)`.
///
/// Decoded here rather than by yrs so that out-of-range client ids (which yrs only
/// `debug_assert`s against) and trailing bytes are errors, never panics or silent truncation.
pub fn state_vector(bytes: &[u8]) -> Result<StateVector, DecodeError> {
    let invalid = |what: &str| DecodeError::InvalidStateVector(what.to_string());
    let mut reader = Reader::new(bytes);
    let count = reader
        .read_var_u64("state vector length")
        .map_err(|e| invalid(&e.to_string()))?;
    if count > bytes.len() as u64 / 2 {
        return Err(invalid("more entries than bytes"));
    }
    let mut sv = StateVector::default();
    for _ in 0..count {
        let client = reader
            .read_var_u64("state vector client")
            .map_err(|e| invalid(&e.to_string()))?;
        let clock = reader
            .read_var_u64("state vector clock")
            .map_err(|e| invalid(&e.to_string()))?;
        if client > MAX_CLIENT_ID {
            return Err(invalid("client id exceeds 53 bits"));
        }
        let clock = u32::try_from(clock).map_err(|_| invalid("clock exceeds 32 bits"))?;
        sv.set_max(ClientID::new(client), clock);
    }
    if reader.has_content() {
        return Err(invalid("trailing bytes"));
    }
    Ok(sv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::encoder::Encode;
    use yrs::{Doc, GetString, ReadTxn, Text, Transact};

    #[test]
    fn absurd_counts_are_rejected_before_allocating() {
        // Found by the fuzzer (fuzz/regressions/client-count-bomb): an 8-byte update that
        // declares ~2^50 clients.
        let bomb = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(matches!(update(&bomb), Err(DecodeError::InvalidUpdate(_))));
        let structs_bomb = [1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0];
        assert!(matches!(
            update(&structs_bomb),
            Err(DecodeError::InvalidUpdate(_))
        ));
        // The empty update is fine.
        assert!(update(&[0, 0]).is_ok());
    }

    #[test]
    fn client_ids_beyond_53_bits_are_invalid_not_a_crash() {
        // One client, one GC struct, client id 2^60, then an empty delete set.
        let mut bytes = vec![1, 1];
        crate::varint::write_var_u64(&mut bytes, 1 << 60);
        bytes.extend([0, 0, 1, 0]);
        let _ = update(&bytes); // must return (Ok in release builds, Err in debug), not unwind
    }

    #[test]
    fn accepts_real_updates_and_rejects_garbage() {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("t");
        text.push(&mut doc.transact_mut(), "hello");
        let bytes = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let decoded = update(&bytes).unwrap();
        let other = Doc::new();
        other.transact_mut().apply_update(decoded).unwrap();
        assert_eq!(
            other.get_or_insert_text("t").get_string(&other.transact()),
            "hello"
        );

        assert!(update(&[0xff, 0xff, 0xff]).is_err());
        let sv = doc.transact().state_vector().encode_v1();
        assert_eq!(state_vector(&sv).unwrap(), doc.transact().state_vector());
        assert!(state_vector(&[5, 1]).is_err());
        assert!(state_vector(&[1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 1]).is_err());
        assert!(state_vector(&[0, 0]).is_err());
        assert_eq!(state_vector(&[0]).unwrap(), StateVector::default());
    }
}
