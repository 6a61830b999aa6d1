//! Merging a snapshot and log entries into one state — pure, no IO.

use yrs::updates::decoder::Decode;
use yrs::{Doc, Options, ReadTxn, StateVector, Transact, Update};

/// Accumulates a room's state. Dropped after each task.
#[derive(Debug)]
pub struct Merger {
    doc: Doc,
    applied: u64,
    skipped: u64,
}

impl Merger {
    /// An empty document; `gc` garbage-collects deleted content.
    pub fn new(gc: bool) -> Self {
        let options = Options {
            skip_gc: !gc,
            cleanup_formatting: false,
            ..Options::default()
        };
        Merger {
            doc: Doc::with_options(options),
            applied: 0,
            skipped: 0,
        }
    }

    /// Applies a v1 update; an unreadable one is counted and skipped, never fatal.
    pub fn apply(&mut self, update: &[u8]) -> bool {
        let decoded = match yws_protocol::validate::update(update) {
            Ok(u) => u,
            Err(_) => {
                self.skipped += 1;
                return false;
            }
        };
        // yrs can panic on some malformed updates that decode: catch it, skip the update.
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.doc.transact_mut().apply_update(decoded).is_ok()
        }))
        .unwrap_or(false);
        if applied {
            self.applied += 1;
        } else {
            self.skipped += 1;
        }
        applied
    }

    /// Updates applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Updates skipped as unreadable.
    pub fn skipped(&self) -> u64 {
        self.skipped
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
        assert!(!merger.apply(&[9, 9, 9]));
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
