//! The awareness update format of `y-protocols/awareness`:
//! `varuint count, then count × (varuint client_id, varuint clock, varstring json_state)`.
//! A state of JSON `null` means "this client is gone".

use crate::varint::{write_var_bytes, write_var_u64, Reader};
use crate::DecodeError;
use serde::de::IgnoredAny;

/// One client's entry in an awareness update, borrowing its JSON from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwarenessEntry<'a> {
    /// The Yjs client id the state belongs to.
    pub client_id: u64,
    /// The client's logical clock; a higher clock wins.
    pub clock: u64,
    /// The state as JSON text (validated); `null` marks a removal.
    pub state: &'a str,
}

impl AwarenessEntry<'_> {
    /// Whether this entry removes the client (its state is JSON `null`).
    pub fn is_removal(&self) -> bool {
        self.state.trim() == "null"
    }
}

/// A validated awareness update. Entries are read from the payload as they are iterated
/// ([`AwarenessUpdate::entries`]), so an update costs no memory per entry however many it
/// carries: an awareness message is as large as a frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct AwarenessUpdate<'a> {
    /// The payload after the entry count.
    entries: &'a [u8],
    /// How many entries it holds.
    count: usize,
    /// Length of the whole payload (count included).
    payload_len: usize,
    /// Length of the longest state.
    max_state_len: usize,
}

impl<'a> AwarenessUpdate<'a> {
    /// Decodes the inner awareness payload (without the message type and length prefix).
    /// Every state must be valid UTF-8 and valid JSON. Nothing is allocated per entry.
    pub fn decode(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(payload);
        let count = reader.read_var_u64("awareness count")?;
        // Each entry takes at least 3 bytes.
        if count > (payload.len() as u64) / 3 + 1 {
            return Err(DecodeError::InvalidAwareness(format!(
                "{count} entries cannot fit in {} bytes",
                payload.len()
            )));
        }
        let entries = reader.remaining();
        let mut max_state_len = 0;
        for _ in 0..count {
            let entry = read_entry(&mut reader)?;
            serde_json::from_str::<IgnoredAny>(entry.state).map_err(|e| {
                DecodeError::InvalidAwareness(format!("state of client {}: {e}", entry.client_id))
            })?;
            max_state_len = max_state_len.max(entry.state.len());
        }
        if reader.has_content() {
            return Err(DecodeError::InvalidAwareness(
                "trailing bytes after the last entry".into(),
            ));
        }
        Ok(AwarenessUpdate {
            entries,
            // At most a third of the payload length, so it fits.
            count: count as usize,
            payload_len: payload.len(),
            max_state_len,
        })
    }

    /// The entries, in the order they were encoded.
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            reader: Reader::new(self.entries),
            left: self.count,
        }
    }

    /// How many entries the update holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the update holds no entry.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the payload it was decoded from, in bytes.
    pub fn payload_len(&self) -> usize {
        self.payload_len
    }

    /// Size of its largest state (JSON text), in bytes.
    pub fn max_state_len(&self) -> usize {
        self.max_state_len
    }

    /// Encodes the inner awareness payload (the inverse of [`AwarenessUpdate::decode`]).
    pub fn encode(&self) -> Vec<u8> {
        encode_entries(self.entries())
    }
}

/// Two updates are equal when they carry the same entries (however their varints were spelt).
impl PartialEq for AwarenessUpdate<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count && self.entries().eq(other.entries())
    }
}

impl Eq for AwarenessUpdate<'_> {}

/// One entry's fields; the state is checked to be UTF-8 (JSON is checked by the caller).
fn read_entry<'a>(reader: &mut Reader<'a>) -> Result<AwarenessEntry<'a>, DecodeError> {
    let client_id = reader.read_var_u64("awareness client id")?;
    let clock = reader.read_var_u64("awareness clock")?;
    let raw = reader.read_var_bytes("awareness state")?;
    let state = std::str::from_utf8(raw).map_err(|_| {
        DecodeError::InvalidAwareness(format!("state of client {client_id} is not UTF-8"))
    })?;
    Ok(AwarenessEntry {
        client_id,
        clock,
        state,
    })
}

/// The entries of a validated [`AwarenessUpdate`], read as they are iterated.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    reader: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = AwarenessEntry<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        // Validated by `AwarenessUpdate::decode`; a failure cannot happen, and ends the
        // iteration rather than panicking if it ever did.
        match read_entry(&mut self.reader) {
            Ok(entry) => {
                self.left -= 1;
                Some(entry)
            }
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Entries<'_> {}

impl std::iter::FusedIterator for Entries<'_> {}

/// Encodes an awareness payload from entries (client id, clock, JSON state).
pub fn encode_entries<'s, I>(entries: I) -> Vec<u8>
where
    I: IntoIterator<Item = AwarenessEntry<'s>>,
    I::IntoIter: ExactSizeIterator,
{
    let entries = entries.into_iter();
    let mut out = Vec::with_capacity(8 + entries.len() * 32);
    write_var_u64(&mut out, entries.len() as u64);
    for entry in entries {
        write_var_u64(&mut out, entry.client_id);
        write_var_u64(&mut out, entry.clock);
        write_var_bytes(&mut out, entry.state.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_what_yrs_encodes() {
        use yrs::updates::encoder::Encode;
        let mut clients = std::collections::HashMap::new();
        clients.insert(
            yrs::block::ClientID::new(42),
            yrs::sync::awareness::AwarenessUpdateEntry {
                clock: 3,
                json: r#"{"user":{"name":"ann"}}"#.into(),
            },
        );
        let bytes = yrs::sync::AwarenessUpdate { clients }.encode_v1();
        let update = AwarenessUpdate::decode(&bytes).unwrap();
        assert_eq!(
            update.entries().collect::<Vec<_>>(),
            vec![AwarenessEntry {
                client_id: 42,
                clock: 3,
                state: r#"{"user":{"name":"ann"}}"#
            }]
        );
        assert_eq!(update.encode(), bytes);
    }

    #[test]
    fn rejects_bad_json_and_bad_utf8() {
        let bad_json = encode_entries([AwarenessEntry {
            client_id: 1,
            clock: 1,
            state: "{not json",
        }]);
        assert!(matches!(
            AwarenessUpdate::decode(&bad_json),
            Err(DecodeError::InvalidAwareness(_))
        ));
        let bad_utf8 = [1u8, 1, 1, 2, 0xff, 0xfe];
        assert!(matches!(
            AwarenessUpdate::decode(&bad_utf8),
            Err(DecodeError::InvalidAwareness(_))
        ));
    }

    #[test]
    fn rejects_absurd_counts_without_allocating() {
        let mut bytes = Vec::new();
        write_var_u64(&mut bytes, u64::MAX >> 1);
        assert!(matches!(
            AwarenessUpdate::decode(&bytes),
            Err(DecodeError::InvalidAwareness(_))
        ));
    }

    #[test]
    fn reports_sizes_and_compares_by_entries() {
        let entries = [
            AwarenessEntry {
                client_id: 1,
                clock: 1,
                state: "{}",
            },
            AwarenessEntry {
                client_id: 300,
                clock: 2,
                state: r#"{"name":"ann"}"#,
            },
        ];
        let payload = encode_entries(entries);
        let update = AwarenessUpdate::decode(&payload).unwrap();
        assert_eq!(update.len(), 2);
        assert_eq!(update.payload_len(), payload.len());
        assert_eq!(update.max_state_len(), r#"{"name":"ann"}"#.len());
        // Client id 1 spelt with a redundant continuation byte: other bytes, same entries.
        let mut padded = vec![2u8, 0x81, 0x00];
        padded.extend_from_slice(&payload[2..]);
        let same = AwarenessUpdate::decode(&padded).unwrap();
        assert_eq!(same, update);
        assert_eq!(same.encode(), payload);
    }

    #[test]
    fn null_is_removal() {
        let e = AwarenessEntry {
            client_id: 1,
            clock: 2,
            state: "null",
        };
        assert!(e.is_removal());
        assert!(!AwarenessEntry { state: "{}", ..e }.is_removal());
    }

    fn json_state() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_string()),
            "[a-z]{0,12}".prop_map(|s| format!(r#"{{"user":{{"name":"{s}"}}}}"#)),
            any::<i32>().prop_map(|n| n.to_string()),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(entries in proptest::collection::vec((any::<u64>(), any::<u64>(), json_state()), 0..8)) {
            let owned: Vec<_> = entries.iter().map(|(id, clock, s)| AwarenessEntry { client_id: *id, clock: *clock, state: s.as_str() }).collect();
            let bytes = encode_entries(owned.iter().copied());
            let decoded = AwarenessUpdate::decode(&bytes).unwrap();
            prop_assert_eq!(decoded.len(), owned.len());
            prop_assert_eq!(decoded.entries().collect::<Vec<_>>(), owned);
        }
    }
}
