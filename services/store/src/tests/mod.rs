//! Tests against real database files in temporary directories, with real yrs documents.
//!
//! - `durability`: reopen, shutdown flush, the group-commit window under a simulated crash,
//!   backpressure, flushes on open and close.
//! - `compaction`: merging and shrinking, appends racing a compaction, stale snapshots.
//! - `api`: many rooms and tasks at once, corrupt entries, `list_rooms` / `delete_room`, the
//!   core `Rooms` registry over the store.

#![allow(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "a panic with a message is a test failure; tests may spawn: each test owns and awaits what it starts, and the runtime ends with it"
)]

mod api;
mod compaction;
mod durability;

use crate::schema::{self, RoomLog};
use crate::{StoreBackend, StoreConfig, StoreMetrics};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use yrs::{Doc, GetString, Map, ReadTxn, StateVector, Text, Transact};
use yws_core::{Room, RoomBackend, RoomName, RoomSettings};

/// A configuration storing in `dir`, with compaction effectively off unless a test lowers it.
pub(super) fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        dir: Some(dir.to_path_buf()),
        compact_after_updates: 1_000_000,
        compact_after_bytes: u64::MAX,
        ..StoreConfig::default()
    }
}

pub(super) async fn start(config: StoreConfig) -> StoreBackend {
    let metrics = StoreMetrics::new(&prometheus::Registry::new()).unwrap();
    StoreBackend::start(config, metrics).await.unwrap()
}

pub(super) fn room(name: &str) -> Arc<Room> {
    Arc::new(Room::new(
        RoomName::new(name, 1024).unwrap(),
        RoomSettings::default(),
    ))
}

/// A fresh `Room` loaded from the store.
pub(super) async fn load(store: &StoreBackend, name: &str) -> Arc<Room> {
    let r = room(name);
    store.open(&r).await.unwrap();
    r
}

/// Appends `update` the way the gateway does: backend first, then apply to the room.
pub(super) async fn append(store: &StoreBackend, room: &Room, update: &[u8]) {
    store.append(room, update).await.unwrap();
    let decoded = yws_protocol::validate::update(update).unwrap();
    room.apply_update(decoded, update).unwrap();
}

/// The room's committed log, read directly from the database.
pub(super) fn stored(store: &StoreBackend, name: &str) -> RoomLog {
    let db = store.database().unwrap();
    schema::read_room(&db, name, |_| {}).unwrap()
}

/// A client editing its own copy of a document; every edit returns its v1 update.
pub(super) struct Editor {
    pub(super) doc: Doc,
}

impl Editor {
    pub(super) fn new(client_id: u64) -> Self {
        Editor {
            doc: Doc::with_client_id(client_id),
        }
    }

    fn edit(&self, f: impl FnOnce(&Doc)) -> Vec<u8> {
        let sv = self.doc.transact().state_vector();
        f(&self.doc);
        self.doc.transact().encode_state_as_update_v1(&sv)
    }

    pub(super) fn set(&self, key: &str, value: &str) -> Vec<u8> {
        self.edit(|d| {
            d.get_or_insert_map("m")
                .insert(&mut d.transact_mut(), key, value);
        })
    }

    pub(super) fn type_at(&self, at: u32, s: &str) -> Vec<u8> {
        self.edit(|d| {
            d.get_or_insert_text("t")
                .insert(&mut d.transact_mut(), at, s)
        })
    }

    pub(super) fn delete(&self, at: u32, len: u32) -> Vec<u8> {
        self.edit(|d| {
            d.get_or_insert_text("t")
                .remove_range(&mut d.transact_mut(), at, len)
        })
    }
}

/// The text `t` of a document.
pub(super) fn text(doc: &Doc) -> String {
    doc.get_or_insert_text("t").get_string(&doc.transact())
}

/// The map `m` of a document, as strings.
pub(super) fn map(doc: &Doc) -> BTreeMap<String, String> {
    let m = doc.get_or_insert_map("m");
    let txn = doc.transact();
    m.iter(&txn)
        .map(|(k, v)| (k.to_string(), v.to_string(&txn)))
        .collect()
}

/// Whether two documents hold the same state: same state vector, same content.
pub(super) fn same_state(a: &Doc, b: &Doc) -> bool {
    let sv = |d: &Doc| d.transact().state_vector();
    let full = |d: &Doc| {
        d.transact()
            .encode_state_as_update_v1(&StateVector::default())
            .len()
    };
    sv(a) == sv(b) && text(a) == text(b) && map(a) == map(b) && full(a) > 0 && full(b) > 0
}

/// An update that decodes and then makes yrs panic after writing part of itself into the
/// document, wherever it comes: in a build with overflow checks (tests), one found by a
/// structure-aware fuzzer (`yrs-apply-half-applied-any-doc` in the protocol's fuzz
/// regressions); in a release build the fuzz regression `yrs-apply-panic`, which
/// panics in an empty document only. Returns the update and how many good updates may come
/// before it.
pub(super) fn poison() -> (Vec<u8>, usize) {
    if cfg!(debug_assertions) {
        let update = vec![
            2, 1, 1, 1, 34, 1, 1, 116, 1, 107, 1, 1, 49, 2, 3, 1, 2, 1, 1, 97, 1, 1, 49, 4, 1, 1,
            116, 2, 98, 99, 0,
        ];
        (update, 2)
    } else {
        let frame: &[u8] = include_bytes!("../../../protocol/fuzz/regressions/yrs-apply-panic");
        // A sync step 2 frame: message 0, step 1, the update's length (25), the update.
        (frame[3..].to_vec(), 0)
    }
}
