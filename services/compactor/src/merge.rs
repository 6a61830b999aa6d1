//! Merging a snapshot and log entries into one state — pure, no IO.

use std::panic::{catch_unwind, AssertUnwindSafe};
use yrs::updates::decoder::Decode;
use yrs::{Doc, Options, ReadTxn, StateVector, Transact, Update};

/// What became of one update given to [`Merger::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Merged into the state.
    Merged,
    /// Unreadable (does not decode, or yrs refused it): skipped.
    Unreadable,
    /// yrs panicked integrating it: skipped for good, and the state rebuilt without it.
    Quarantined,
}

/// Accumulates a room's state. Dropped after each task.
///
/// yrs can panic on some malformed updates that decode, and may leave part of such an update in
/// the document. The merger therefore keeps the bytes of everything it merged (at most a run's
/// `max_bytes_per_run` of entries plus the snapshot, all of which are in memory during a run
/// anyway) and, after a panic, throws its document away and merges those again into a fresh
/// one: the state never holds a piece of a quarantined update.
#[derive(Debug)]
pub struct Merger {
    doc: Doc,
    gc: bool,
    merged: Vec<Vec<u8>>,
    skipped: u64,
    quarantined: u64,
}

fn new_doc(gc: bool) -> Doc {
    Doc::with_options(Options {
        skip_gc: !gc,
        cleanup_formatting: false,
        ..Options::default()
    })
}

/// Integrates `update` into `doc`: `Some(applied)`, or `None` when yrs panicked (the document
/// may then hold part of it). The transaction is committed inside the outer catch, never while
/// unwinding (a panic there would abort the process).
fn integrate(doc: &Doc, update: Update) -> Option<bool> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut txn = doc.transact_mut();
        let applied = catch_unwind(AssertUnwindSafe(|| txn.apply_update(update).is_ok()));
        drop(txn);
        applied
    }));
    match outcome {
        Ok(Ok(applied)) => Some(applied),
        Ok(Err(_)) | Err(_) => None,
    }
}

impl Merger {
    /// An empty document; `gc` garbage-collects deleted content.
    pub fn new(gc: bool) -> Self {
        Merger {
            doc: new_doc(gc),
            gc,
            merged: Vec::new(),
            skipped: 0,
            quarantined: 0,
        }
    }

    /// Applies a v1 update; an unreadable one is counted and skipped, one that makes yrs panic
    /// is quarantined — never fatal.
    pub fn apply(&mut self, update: &[u8]) -> Applied {
        let Ok(decoded) = yws_protocol::validate::update(update) else {
            self.skipped += 1;
            return Applied::Unreadable;
        };
        match integrate(&self.doc, decoded) {
            Some(true) => {
                self.merged.push(update.to_vec());
                Applied::Merged
            }
            Some(false) => {
                self.skipped += 1;
                Applied::Unreadable
            }
            None => {
                self.quarantined += 1;
                self.rebuild();
                Applied::Quarantined
            }
        }
    }

    /// Merges everything merged so far into a fresh document. An update that panics now (yrs
    /// is deterministic, so this is not expected) is quarantined too and the rebuild starts
    /// over; each start has one update fewer, so this ends.
    fn rebuild(&mut self) {
        'again: loop {
            self.doc = new_doc(self.gc);
            for i in 0..self.merged.len() {
                let Ok(decoded) = yws_protocol::validate::update(&self.merged[i]) else {
                    continue; // decoded before; cannot happen
                };
                if integrate(&self.doc, decoded).is_none() {
                    self.merged.remove(i);
                    self.quarantined += 1;
                    continue 'again;
                }
            }
            return;
        }
    }

    /// Updates merged into the state.
    pub fn applied(&self) -> u64 {
        self.merged.len() as u64
    }

    /// Updates skipped as unreadable.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Updates quarantined (yrs panicked integrating them).
    pub fn quarantined(&self) -> u64 {
        self.quarantined
    }

    /// The whole state as one v1 update.
    pub fn encode(&self) -> Vec<u8> {
        self.doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
    }
}

/// Decodes a stored state (for checks in tests and tools).
pub fn decode_state(bytes: &[u8]) -> Option<Update> {
    Update::decode_v1(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{GetString, Text};

    fn edit(doc: &Doc, at: u32, s: &str) -> Vec<u8> {
        let sv = doc.transact().state_vector();
        doc.get_or_insert_text("t")
            .insert(&mut doc.transact_mut(), at, s);
        let update = doc.transact().encode_state_as_update_v1(&sv);
        update
    }

    #[test]
    fn merged_state_equals_the_edited_document() {
        let source = Doc::with_client_id(1);
        let mut merger = Merger::new(true);
        for i in 0..50 {
            merger.apply(&edit(&source, i, "x"));
        }
        assert_eq!(merger.apply(&[9, 9, 9]), Applied::Unreadable);
        assert_eq!((merger.applied(), merger.skipped()), (50, 1));
        // Re-merging the merged state with more entries, as the next run does.
        let mut again = Merger::new(true);
        again.apply(&merger.encode());
        again.apply(&edit(&source, 0, "y"));
        let check = Doc::new();
        check
            .transact_mut()
            .apply_update(decode_state(&again.encode()).unwrap())
            .unwrap();
        assert_eq!(
            check.get_or_insert_text("t").get_string(&check.transact()),
            source
                .get_or_insert_text("t")
                .get_string(&source.transact())
        );
    }

    /// An update that decodes and then makes yrs panic after writing part of itself into the
    /// document, wherever it comes: in a build with overflow checks (tests), one found by a
    /// structure-aware fuzzer (fuzz regression `yrs-apply-half-applied-any-doc`); in a release
    /// build the fuzz regression `yrs-apply-panic`.
    fn poison() -> Vec<u8> {
        if cfg!(debug_assertions) {
            vec![
                2, 1, 1, 1, 34, 1, 1, 116, 1, 107, 1, 1, 49, 2, 3, 1, 2, 1, 1, 97, 1, 1, 49, 4, 1,
                1, 116, 2, 98, 99, 0,
            ]
        } else {
            let frame: &[u8] = include_bytes!("../../protocol/fuzz/regressions/yrs-apply-panic");
            // The frame is a sync step 2: message 0, step 1, the update's length (25).
            frame.get(3..).map(<[u8]>::to_vec).unwrap_or_default()
        }
    }

    #[test]
    fn a_panicking_update_is_quarantined_and_leaves_nothing_in_the_state() {
        let source = Doc::with_client_id(50);
        let good: Vec<Vec<u8>> = (0..4).map(|i| edit(&source, i, "x")).collect();
        let mut reference = Merger::new(true);
        for u in &good {
            assert_eq!(reference.apply(u), Applied::Merged);
        }
        let mut merger = Merger::new(true);
        // In a release build the known poison panics only in an empty document: first there.
        let at = if cfg!(debug_assertions) { 2 } else { 0 };
        for (i, u) in good.iter().enumerate() {
            if i == at {
                assert_eq!(merger.apply(&poison()), Applied::Quarantined);
            }
            assert_eq!(merger.apply(u), Applied::Merged);
        }
        assert_eq!((merger.applied(), merger.quarantined()), (4, 1));
        assert_eq!(
            merger.encode(),
            reference.encode(),
            "exactly the state of the other updates"
        );
    }

    #[test]
    fn gc_shrinks_deleted_content() {
        let source = Doc::with_client_id(2);
        let mut updates = vec![edit(&source, 0, &"z".repeat(10_000))];
        let sv = source.transact().state_vector();
        source
            .get_or_insert_text("t")
            .remove_range(&mut source.transact_mut(), 0, 10_000);
        updates.push(source.transact().encode_state_as_update_v1(&sv));
        let size = |gc| {
            let mut m = Merger::new(gc);
            for u in &updates {
                m.apply(u);
            }
            m.encode().len()
        };
        assert!(size(true) < 100, "deleted text is collected");
        assert!(size(false) > 10_000, "kept without GC");
    }
}
