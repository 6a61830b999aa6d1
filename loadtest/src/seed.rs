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

/// Columns of the seed spreadsheet.
const COLUMNS: usize = 26;

/// The key of the `index`-th seed cell (`"row:col"`).
fn cell_key(index: usize) -> String {
    format!("{}:{}", index / COLUMNS, index % COLUMNS)
}

/// The value every seed cell holds.
fn cell_value() -> String {
    payload(32, 0x5eed)
}

/// Fills `doc` with cells until its encoding is about `target` bytes; returns the size.
pub fn fill(doc: &Doc, target: usize) -> usize {
    fill_counting(doc, target).0
}

/// [`fill`], also returning the number of cells inserted.
fn fill_counting(doc: &Doc, target: usize) -> (usize, usize) {
    if target == 0 {
        return (0, 0);
    }
    let cells = doc.get_or_insert_map(CELLS);
    let value = cell_value();
    let mut row = 0usize;
    loop {
        let size = encoded_len(doc);
        if size >= target {
            return (size, row);
        }
        let missing = (target - size) / CELL_BYTES + 1;
        let mut txn = doc.transact_mut();
        for _ in 0..missing {
            cells.insert(&mut txn, cell_key(row), value.as_str());
            row += 1;
        }
    }
}

/// The seed document of `target` bytes written as `updates` transactions instead of one: the
/// shape of a room's log before compaction. [`SeedPlan::next_update`] inserts the next slice
/// of the cells [`fill`] would insert and returns that transaction's update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedPlan {
    cells: usize,
    updates: usize,
    next: usize,
    value: String,
}

impl SeedPlan {
    /// Plans `updates` updates (fewer when the document has fewer cells) that together hold
    /// the document [`fill`] builds for `target` bytes. Sizes it on a scratch document.
    pub fn new(target: usize, updates: usize) -> SeedPlan {
        let (_, cells) = fill_counting(&Doc::with_client_id(1), target);
        SeedPlan::with_cells(cells, updates)
    }

    fn with_cells(cells: usize, updates: usize) -> SeedPlan {
        SeedPlan {
            cells,
            updates: updates.clamp(1, cells.max(1)),
            next: 0,
            value: cell_value(),
        }
    }

    /// Updates this plan writes in all.
    pub fn len(&self) -> usize {
        if self.cells == 0 {
            0
        } else {
            self.updates
        }
    }

    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Updates written so far.
    pub fn written(&self) -> usize {
        self.next
    }

    /// Inserts the next slice of cells into `doc` in one transaction and returns its v1
    /// update; `None` once every update was written.
    pub fn next_update(&mut self, doc: &Doc) -> Option<Vec<u8>> {
        if self.next >= self.len() {
            return None;
        }
        // Even slices: update i holds cells [cells·i/n, cells·(i+1)/n).
        let from = self.cells * self.next / self.updates;
        let to = self.cells * (self.next + 1) / self.updates;
        self.next += 1;
        let map = doc.get_or_insert_map(CELLS);
        let mut txn = doc.transact_mut();
        for index in from..to {
            map.insert(&mut txn, cell_key(index), self.value.as_str());
        }
        Some(txn.encode_update_v1())
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
    use yrs::updates::decoder::Decode;

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

    #[test]
    fn a_seed_plan_writes_the_filled_document_as_many_updates() {
        let target = 64 * 1024;
        let filled = Doc::with_client_id(1);
        fill(&filled, target);
        let mut plan = SeedPlan::new(target, 100);
        assert_eq!(plan.len(), 100);
        let writer = Doc::with_client_id(2);
        let reader = Doc::with_client_id(3);
        let mut sizes = Vec::new();
        while let Some(update) = plan.next_update(&writer) {
            sizes.push(update.len());
            let update = yrs::Update::decode_v1(&update).unwrap();
            reader.transact_mut().apply_update(update).unwrap();
        }
        assert_eq!(plan.written(), 100);
        assert_eq!(sizes.len(), 100);
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(
            *min > 0 && max - min < max / 2,
            "uneven slices {min}..{max}"
        );
        let cells = |d: &Doc| {
            let txn = d.transact();
            txn.get_map(CELLS).map_or(0, |m| m.len(&txn))
        };
        assert_eq!(cells(&reader), cells(&filled));
        assert_eq!(cells(&writer), cells(&filled));
        let size = encoded_len(&reader);
        assert!((60 * 1024..80 * 1024).contains(&size), "{size}");
    }

    #[test]
    fn a_seed_plan_never_writes_empty_updates() {
        let mut plan = SeedPlan::with_cells(3, 10);
        assert_eq!(plan.len(), 3);
        let doc = Doc::with_client_id(1);
        let mut n = 0;
        while let Some(update) = plan.next_update(&doc) {
            assert_ne!(update, crate::replica::EMPTY_UPDATE.to_vec());
            n += 1;
        }
        assert_eq!(n, 3);
        let mut empty = SeedPlan::with_cells(0, 10);
        assert!(empty.is_empty());
        assert_eq!(empty.next_update(&doc), None);
    }
}
