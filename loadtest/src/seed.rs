//! Generated content: the text writers insert, and the seed documents of join storms (a
//! spreadsheet-like `Y.Map` of `"row:col"` cells, the shape yhub's benchmarks use).

use yrs::{Doc, Map, ReadTxn, StateVector, Transact};

/// Name of the root text every writer appends to.
pub const TEXT: &str = "t";
/// Name of the root map seed documents fill.
pub const CELLS: &str = "cells";

/// `len` printable ASCII characters (one byte and one clock tick each), varied per writer so
/// that payloads do not compress into one repeated byte.
pub fn payload(len: usize, salt: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 ";
    let mut state = salt | 1;
    (0..len)
        .map(|_| {
            // xorshift64: deterministic and allocation-free.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// Bytes a seed cell takes in the encoded document, roughly: key, value and struct header.
const CELL_BYTES: usize = 48;

/// Fills `doc` with cells until its encoding is about `target` bytes; returns the size.
pub fn fill(doc: &Doc, target: usize) -> usize {
    if target == 0 {
        return 0;
    }
    let cells = doc.get_or_insert_map(CELLS);
    let value = payload(32, 0x5eed);
    let columns = 26;
    let mut row = 0usize;
    loop {
        let size = encoded_len(doc);
        if size >= target {
            return size;
        }
        let missing = (target - size) / CELL_BYTES + 1;
        let mut txn = doc.transact_mut();
        for _ in 0..missing {
            let key = format!("{}:{}", row / columns, row % columns);
            cells.insert(&mut txn, key, value.as_str());
            row += 1;
        }
    }
}

fn encoded_len(doc: &Doc) -> usize {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_ascii_of_the_requested_length() {
        let p = payload(100, 7);
        assert_eq!(p.len(), 100);
        assert!(p.is_ascii());
        assert_ne!(payload(100, 7), payload(100, 8));
    }

    #[test]
    fn fill_reaches_the_target_size() {
        let doc = Doc::with_client_id(1);
        let size = fill(&doc, 64 * 1024);
        assert!((64 * 1024..80 * 1024).contains(&size), "{size}");
        assert_eq!(size, encoded_len(&doc));
        assert_eq!(fill(&Doc::new(), 0), 0);
    }
}
