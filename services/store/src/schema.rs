//! The on-disk layout and every transaction on it — synchronous, called from blocking tasks.
//!
//! One redb file, four tables:
//!
//! | table        | key                      | value                  |
//! |--------------|--------------------------|------------------------|
//! | `updates`    | `(room, seq)`            | one v1 update          |
//! | `snapshots`  | `room`                   | `(seq, v1 state)`      |
//! | `quarantine` | `(room, seq, kind)`      | an unreadable entry    |
//! | `meta`       | `"format"`, `"next_seq"` | `u64`                  |
//!
//! Keys compare element by element and strings by their bytes, so a room's updates are
//! contiguous and in append order, and any UTF-8 room name works. `seq` comes from one counter
//! for the whole store (`meta.next_seq`, written in the same transaction as the updates): it is
//! never reused, not even after a room is deleted, so "the update `(room, n)`" names one update
//! for ever. A room's state is its snapshot plus its updates; a snapshot with `seq = n` covers
//! every update of the room up to `n`, and those updates are deleted in the transaction that
//! writes it. Compaction moves entries it could not read to `quarantine` instead of deleting them.

use crate::error::StoreError;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The layout version this build reads and writes.
pub(crate) const FORMAT: u64 = 1;
/// The database file inside the configured directory.
pub(crate) const FILE_NAME: &str = "yws-store.redb";

const UPDATES: TableDefinition<'static, (&str, u64), &[u8]> = TableDefinition::new("updates");
const SNAPSHOTS: TableDefinition<'static, &str, (u64, &[u8])> = TableDefinition::new("snapshots");
const QUARANTINE: TableDefinition<'static, (&str, u64, u8), &[u8]> =
    TableDefinition::new("quarantine");
const META: TableDefinition<'static, &str, u64> = TableDefinition::new("meta");

/// What a stored entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Update = 0,
    Snapshot = 1,
}

/// One stored entry of a room, as visited when reading it.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    pub(crate) kind: Kind,
    pub(crate) seq: u64,
    pub(crate) bytes: &'a [u8],
}

/// What reading a room found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RoomLog {
    /// Whether the room has a snapshot.
    pub(crate) snapshot: bool,
    /// Bytes of the snapshot.
    pub(crate) snapshot_bytes: u64,
    /// Updates after the snapshot.
    pub(crate) updates: u64,
    /// Their total size.
    pub(crate) update_bytes: u64,
    /// The last update's seq (0 when there is none).
    pub(crate) last_seq: u64,
}

/// One change of a group commit.
#[derive(Debug)]
pub(crate) enum Op {
    /// Appends an update to a room (it gets the next seq).
    Append { room: Arc<str>, update: Vec<u8> },
    /// Removes everything stored for a room.
    Delete { room: Arc<str> },
    /// Replaces a room's snapshot by a merged one (compaction).
    Install(Install),
}

/// A merged snapshot ready to replace a room's snapshot and updates up to `upto`.
#[derive(Debug)]
pub(crate) struct Install {
    pub(crate) room: Arc<str>,
    /// The last update merged into `snapshot`.
    pub(crate) upto: u64,
    /// The whole state as one v1 update.
    pub(crate) snapshot: Vec<u8>,
    /// Entries that could not be read: moved to quarantine rather than deleted.
    pub(crate) skipped: Vec<(Kind, u64)>,
    /// Updates and bytes merged (to adjust the room's counters).
    pub(crate) merged_updates: u64,
    pub(crate) merged_bytes: u64,
}

/// The database path for a configured directory.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Opens (or creates) the store in `dir`, checks its format and returns it with the next seq.
pub(crate) fn open(dir: &Path) -> Result<(Database, u64), StoreError> {
    let file = path(dir);
    let open_error = |reason: String| StoreError::Open {
        path: file.display().to_string(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| open_error(e.to_string()))?;
    let db = Database::create(&file).map_err(|e| open_error(e.to_string()))?;
    let txn = db.begin_write()?;
    let next_seq = {
        txn.open_table(UPDATES)?;
        txn.open_table(SNAPSHOTS)?;
        txn.open_table(QUARANTINE)?;
        let mut meta = txn.open_table(META)?;
        let format = meta.get("format")?.map(|v| v.value());
        match format {
            None => {
                meta.insert("format", FORMAT)?;
            }
            Some(found) if found != FORMAT => {
                return Err(StoreError::Format {
                    found,
                    expected: FORMAT,
                })
            }
            Some(_) => {}
        }
        let next = meta.get("next_seq")?.map(|v| v.value());
        next.unwrap_or(1)
    };
    txn.commit()?;
    Ok((db, next_seq))
}

/// Visits the room's snapshot, then its updates in order, in one consistent read.
pub(crate) fn read_room(
    db: &Database,
    room: &str,
    mut visit: impl FnMut(Entry<'_>),
) -> Result<RoomLog, StoreError> {
    let txn = db.begin_read()?;
    let mut log = RoomLog::default();
    {
        let snapshots = txn.open_table(SNAPSHOTS)?;
        if let Some(guard) = snapshots.get(room)? {
            let (seq, bytes) = guard.value();
            log.snapshot = true;
            log.snapshot_bytes = bytes.len() as u64;
            visit(Entry {
                kind: Kind::Snapshot,
                seq,
                bytes,
            });
        }
    }
    let updates = txn.open_table(UPDATES)?;
    for item in updates.range((room, 0u64)..=(room, u64::MAX))? {
        let (key, value) = item?;
        let seq = key.value().1;
        let bytes = value.value();
        log.updates += 1;
        log.update_bytes += bytes.len() as u64;
        log.last_seq = seq;
        visit(Entry {
            kind: Kind::Update,
            seq,
            bytes,
        });
    }
    Ok(log)
}

/// What a group commit did, besides appending.
#[derive(Debug, Default)]
pub(crate) struct Committed {
    /// The counter after the batch.
    pub(crate) next_seq: u64,
    /// For each [`Op::Install`] of the batch, in order: whether it was written (a stale one,
    /// overtaken by a deletion or a newer snapshot, is dropped).
    pub(crate) installed: Vec<bool>,
}

/// Applies `ops` in order in one write transaction and commits it durably (fsync).
pub(crate) fn commit(db: &Database, next_seq: u64, ops: &[Op]) -> Result<Committed, StoreError> {
    let txn = db.begin_write()?;
    let mut done = Committed {
        next_seq,
        installed: Vec::new(),
    };
    {
        let mut updates = txn.open_table(UPDATES)?;
        let mut snapshots = txn.open_table(SNAPSHOTS)?;
        let mut quarantine = txn.open_table(QUARANTINE)?;
        for op in ops {
            match op {
                Op::Append { room, update } => {
                    updates.insert((&**room, done.next_seq), update.as_slice())?;
                    done.next_seq += 1;
                }
                Op::Delete { room } => {
                    let room: &str = room;
                    updates.retain_in((room, 0u64)..=(room, u64::MAX), |_, _| false)?;
                    snapshots.remove(room)?;
                    quarantine
                        .retain_in((room, 0u64, 0u8)..=(room, u64::MAX, u8::MAX), |_, _| false)?;
                }
                Op::Install(install) => {
                    let ok =
                        install_snapshot(&mut updates, &mut snapshots, &mut quarantine, install)?;
                    done.installed.push(ok);
                }
            }
        }
        let mut meta = txn.open_table(META)?;
        meta.insert("next_seq", done.next_seq)?;
    }
    txn.commit()?;
    Ok(done)
}

fn install_snapshot(
    updates: &mut redb::Table<'_, (&str, u64), &[u8]>,
    snapshots: &mut redb::Table<'_, &str, (u64, &[u8])>,
    quarantine: &mut redb::Table<'_, (&str, u64, u8), &[u8]>,
    install: &Install,
) -> Result<bool, StoreError> {
    let room: &str = &install.room;
    // Seqs are never reused: if `(room, upto)` is still there, nothing removed what was merged.
    if updates.get((room, install.upto))?.is_none() {
        return Ok(false);
    }
    let current = snapshots.get(room)?.map(|g| {
        let (seq, bytes) = g.value();
        (seq, bytes.to_vec())
    });
    if let Some((seq, _)) = &current {
        if *seq >= install.upto {
            return Ok(false);
        }
    }
    for &(kind, seq) in &install.skipped {
        let bytes = match kind {
            Kind::Update => updates.get((room, seq))?.map(|g| g.value().to_vec()),
            Kind::Snapshot => current
                .as_ref()
                .filter(|(s, _)| *s == seq)
                .map(|(_, b)| b.clone()),
        };
        if let Some(bytes) = bytes {
            quarantine.insert((room, seq, kind as u8), bytes.as_slice())?;
        }
    }
    updates.retain_in((room, 0u64)..=(room, install.upto), |_, _| false)?;
    snapshots.insert(room, (install.upto, install.snapshot.as_slice()))?;
    Ok(true)
}

/// Up to `limit` rooms with stored state (a snapshot or updates), sorted, after `after`.
/// Whether `room` has a snapshot or any update.
pub(crate) fn has_room(db: &Database, room: &str) -> Result<bool, StoreError> {
    let txn = db.begin_read()?;
    if txn.open_table(SNAPSHOTS)?.get(room)?.is_some() {
        return Ok(true);
    }
    let updates = txn.open_table(UPDATES)?;
    let mut range = updates.range((room, 0u64)..=(room, u64::MAX))?;
    Ok(range.next().transpose()?.is_some())
}

pub(crate) fn list_rooms(
    db: &Database,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let txn = db.begin_read()?;
    let mut found = Vec::with_capacity(limit.min(1024) * 2);
    {
        let snapshots = txn.open_table(SNAPSHOTS)?;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        for item in snapshots
            .range::<&str>((lower, Bound::Unbounded))?
            .take(limit)
        {
            found.push(item?.0.value().to_string());
        }
    }
    {
        // Distinct rooms of the update log: one seek past each room's last possible key.
        let updates = txn.open_table(UPDATES)?;
        let mut cursor: Option<String> = after.map(str::to_string);
        let mut distinct = 0;
        while distinct < limit {
            let lower = match &cursor {
                Some(c) => Bound::Excluded((c.as_str(), u64::MAX)),
                None => Bound::Unbounded,
            };
            let room = match updates.range((lower, Bound::Unbounded))?.next() {
                Some(item) => item?.0.value().0.to_string(),
                None => break,
            };
            found.push(room.clone());
            cursor = Some(room);
            distinct += 1;
        }
    }
    found.sort_unstable();
    found.dedup();
    found.truncate(limit);
    Ok(found)
}

/// Entries moved to quarantine for a room (tests and tools).
#[cfg(test)]
pub(crate) fn quarantined(db: &Database, room: &str) -> Result<u64, StoreError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(QUARANTINE)?;
    let mut n = 0;
    for item in table.range((room, 0u64, 0u8)..=(room, u64::MAX, u8::MAX))? {
        item?;
        n += 1;
    }
    Ok(n)
}

/// Writes a raw update entry, bypassing every check (tests inject corrupt entries with it).
#[cfg(test)]
pub(crate) fn write_raw_update(db: &Database, room: &str, bytes: &[u8]) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    let seq = {
        let mut meta = txn.open_table(META)?;
        let seq = meta.get("next_seq")?.map(|v| v.value()).unwrap_or(1);
        meta.insert("next_seq", seq + 1)?;
        let mut updates = txn.open_table(UPDATES)?;
        updates.insert((room, seq), bytes)?;
        seq
    };
    txn.commit()?;
    Ok(seq)
}
