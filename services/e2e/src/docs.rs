//! yrs documents for tests: an author producing exact v1 updates, and comparisons of whole
//! document states (state vector, delete set, content).
//!
//! Documents hold the root types the interop harness uses: a `Y.Text` `text`, a `Y.Map` `map`,
//! and (edit loops) a `Y.Array` `markers`.

use yrs::types::ToJson;
use yrs::updates::decoder::Decode;
use yrs::{Array, Doc, GetString, Map, ReadTxn, StateVector, Text, Transact, Update};

/// A document whose every edit returns the v1 update it produced.
#[derive(Debug)]
pub struct Author {
    /// The document.
    pub doc: Doc,
}

impl Author {
    /// A document with a fixed client id (distinct authors need distinct ids).
    pub fn new(client_id: u64) -> Self {
        Author {
            doc: Doc::with_client_id(client_id),
        }
    }

    /// One transaction; returns its update as a client sends it (its own inserts and
    /// deletes only — a state-vector diff would carry the document's whole delete set).
    fn edit(&self, f: impl FnOnce(&Doc, &mut yrs::TransactionMut<'_>)) -> Vec<u8> {
        let mut txn = self.doc.transact_mut();
        f(&self.doc, &mut txn);
        txn.encode_update_v1()
    }

    /// Inserts `s` into `text` at `at` (UTF-8 byte offset; tests use ASCII).
    pub fn insert(&self, at: u32, s: &str) -> Vec<u8> {
        let text = self.doc.get_or_insert_text("text");
        self.edit(|_, txn| text.insert(txn, at, s))
    }

    /// Appends `s` to `text`.
    pub fn append(&self, s: &str) -> Vec<u8> {
        let at = self.text_len();
        self.insert(at, s)
    }

    /// Deletes `len` characters of `text` at `at`.
    pub fn delete(&self, at: u32, len: u32) -> Vec<u8> {
        let text = self.doc.get_or_insert_text("text");
        self.edit(|_, txn| text.remove_range(txn, at, len))
    }

    /// Sets `map[key] = value`.
    pub fn set(&self, key: &str, value: &str) -> Vec<u8> {
        let map = self.doc.get_or_insert_map("map");
        self.edit(|_, txn| {
            map.insert(txn, key, value);
        })
    }

    /// Pushes `marker` onto the `markers` array.
    pub fn mark(&self, marker: &str) -> Vec<u8> {
        let markers = self.doc.get_or_insert_array("markers");
        self.edit(|_, txn| {
            markers.push_back(txn, marker);
        })
    }

    /// The length of `text`.
    pub fn text_len(&self) -> u32 {
        let text = self.doc.get_or_insert_text("text");
        text.len(&self.doc.transact())
    }

    /// "Typing": `n` single-character updates at a moving cursor, with a backspace now and
    /// then (deterministic for a given author state).
    pub fn typing(&self, n: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = self.text_len();
        for i in 0..n {
            if i % 17 == 16 && cursor > 0 {
                cursor -= 1;
                out.push(self.delete(cursor, 1));
            } else {
                let c = if i % 11 == 10 {
                    "\n"
                } else {
                    &"abcdefghij"[i % 10..i % 10 + 1]
                };
                out.push(self.insert(cursor, c));
                cursor += 1;
            }
            if i % 97 == 96 {
                cursor /= 2; // the cursor jumps
            }
        }
        out
    }
}

/// A document holding `state` (a v1 update).
pub fn doc_from(state: &[u8]) -> Doc {
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(Update::decode_v1(state).expect("state decodes"))
        .expect("state applies");
    doc
}

/// The whole state of `doc` as one v1 update.
pub fn encode(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// The content of the harness's root types as JSON: `{text, map, markers}`.
pub fn content(doc: &Doc) -> serde_json::Value {
    let text = doc.get_or_insert_text("text");
    let map = doc.get_or_insert_map("map");
    let markers = doc.get_or_insert_array("markers");
    let txn = doc.transact();
    let json = |any: yrs::Any| {
        let mut s = String::new();
        any.to_json(&mut s);
        serde_json::from_str::<serde_json::Value>(&s).expect("yrs JSON parses")
    };
    serde_json::json!({
        "text": text.get_string(&txn),
        "map": json(map.to_json(&txn)),
        "markers": json(markers.to_json(&txn)),
    })
}

/// The `text` of `doc`.
pub fn text(doc: &Doc) -> String {
    let text = doc.get_or_insert_text("text");
    let txn = doc.transact();
    text.get_string(&txn)
}

/// `Ok` when both documents are in the same state: equal state vectors, delete sets and
/// content, and nothing pending (missing dependencies) in `actual`.
pub fn same_state(actual: &Doc, expected: &Doc) -> Result<(), String> {
    let (a, e) = (actual.transact(), expected.transact());
    if a.has_missing_updates() {
        return Err("updates with missing dependencies are pending".into());
    }
    if a.state_vector() != e.state_vector() {
        return Err(format!(
            "state vectors differ: {:?} vs expected {:?}",
            a.state_vector(),
            e.state_vector()
        ));
    }
    if a.snapshot() != e.snapshot() {
        return Err("delete sets differ".into());
    }
    drop((a, e));
    let (ca, ce) = (content(actual), content(expected));
    if ca != ce {
        let len = |c: &serde_json::Value| c["text"].as_str().map_or(0, str::len);
        return Err(format!(
            "content differs: text {} vs expected {} bytes, map {} vs {} keys, markers {} vs {}",
            len(&ca),
            len(&ce),
            ca["map"].as_object().map_or(0, |m| m.len()),
            ce["map"].as_object().map_or(0, |m| m.len()),
            ca["markers"].as_array().map_or(0, |m| m.len()),
            ce["markers"].as_array().map_or(0, |m| m.len()),
        ));
    }
    Ok(())
}
