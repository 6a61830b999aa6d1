//! Where a room's objects live: names built from the room and the log positions they cover.
//! Pure — no IO — and shared by writers and readers, so the names are defined once.
//!
//! ```text
//! <prefix>/rooms/<shard>/<room>/snap/<epoch>-<covered>.bin      one per snapshot (issue 16)
//! <prefix>/rooms/<shard>/<room>/log/<last>_<first>.bin          archived log segments (issue 17)
//! ```
//!
//! - `<shard>`: the first byte of SHA-256 of the room name (UTF-8), two lowercase hex digits —
//!   256 prefixes, so a bucket's request-rate limits (per key prefix on S3) are spread.
//!   `printf %s "$ROOM" | sha256sum | cut -c1-2` finds it.
//! - `<room>`: the room name percent-encoded: `A-Z a-z 0-9 - _ .` are kept, every other byte
//!   (UTF-8) becomes `%XX`, and the names `.` and `..` become `%2E` and `%2E%2E`. Encodings
//!   longer than [`MAX_ROOM_SEGMENT`] bytes are cut after [`KEPT_WHEN_HASHED`] bytes (at a
//!   character boundary of the encoding) and end in `!` and 32 hex digits of SHA-256 of the
//!   room (`!` is never left unencoded otherwise, so the two forms cannot collide). The object
//!   header always carries the full name.
//! - `<epoch>`: the snapshot's epoch (fencing counter), 20 decimal digits.
//! - `<covered>`, `<first>`, `<last>`: log ids `ms-seq`, each part 20 decimal digits.
//!
//! Every number is zero-padded to the width of a `u64`, so names sort like the numbers:
//! a listing returns snapshots by epoch and segments by their last id. Segments are named by
//! their **last** id first so that a listing starting after `log/<id>` returns exactly the
//! segments that hold entries after `id`, in log order.

use crate::error::StorageError;
use object_store::path::Path;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// Bytes of the encoded room segment at most; longer encodings are cut and hashed.
pub const MAX_ROOM_SEGMENT: usize = 240;
/// Bytes of the encoding kept in front of `!<hash>` when a name is too long.
pub const KEPT_WHEN_HASHED: usize = 200;
/// Bytes of the key prefix at most (the rest of a key is at most ~350 bytes; stores allow 1024).
pub const MAX_PREFIX: usize = 512;

/// Bytes left unencoded in a room segment.
const ROOM_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');
/// Marks a cut-and-hashed room segment.
const HASHED: char = '!';
const SNAP_DIR: &str = "snap";
const LOG_DIR: &str = "log";
const SUFFIX: &str = ".bin";

/// A position in a room's update log: a Redis stream id `ms-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl LogId {
    /// `0-0`, before every entry.
    pub const ZERO: LogId = LogId { ms: 0, seq: 0 };

    /// An id from its parts.
    pub const fn new(ms: u64, seq: u64) -> Self {
        LogId { ms, seq }
    }

    /// The first id at or after Unix ms `ms`. Log ids are Redis stream ids, whose `ms` part is
    /// the Redis server's clock at the append, so a time range `t1..=t2` (ms) is the id range
    /// `LogId::first_at(t1)..=LogId::last_at(t2)`.
    pub const fn first_at(ms: u64) -> Self {
        LogId { ms, seq: 0 }
    }

    /// The last id at Unix ms `ms` (see [`LogId::first_at`]).
    pub const fn last_at(ms: u64) -> Self {
        LogId { ms, seq: u64::MAX }
    }

    /// The id as it appears in object names: both parts zero-padded to 20 digits.
    fn name(self) -> String {
        format!("{:020}-{:020}", self.ms, self.seq)
    }

    /// Parses [`LogId::name`] (exactly 41 bytes).
    fn parse_name(s: &str) -> Option<Self> {
        let (ms, seq) = s.split_once('-')?;
        Some(LogId {
            ms: fixed_digits(ms)?,
            seq: fixed_digits(seq)?,
        })
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for LogId {
    type Err = StorageError;
    /// `ms-seq` or `ms` (sequence 0), as Redis writes stream ids.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        match (ms.parse(), seq.parse()) {
            (Ok(ms), Ok(seq)) => Ok(LogId { ms, seq }),
            _ => Err(StorageError::InvalidObject(format!(
                "{s:?} is not a log id (ms-seq)"
            ))),
        }
    }
}

/// Names one snapshot of a room: its epoch and the last log id it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId {
    /// The fencing epoch under which it was written.
    pub epoch: u64,
    /// The last log id the snapshot covers.
    pub covered: LogId,
}

impl SnapshotId {
    /// The object's file name, `<epoch>-<covered>.bin`.
    pub fn file_name(&self) -> String {
        format!("{:020}-{}{SUFFIX}", self.epoch, self.covered.name())
    }

    /// Parses [`SnapshotId::file_name`]; `None` for anything else.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(SUFFIX)?;
        let (epoch, covered) = stem.split_once('-')?;
        Some(SnapshotId {
            epoch: fixed_digits(epoch)?,
            covered: LogId::parse_name(covered)?,
        })
    }
}

/// Names one archived log segment of a room: the first and last log ids it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentId {
    /// The first entry's id.
    pub first: LogId,
    /// The last entry's id.
    pub last: LogId,
}

impl SegmentId {
    /// The object's file name, `<last>_<first>.bin`.
    pub fn file_name(&self) -> String {
        format!("{}_{}{SUFFIX}", self.last.name(), self.first.name())
    }

    /// Parses [`SegmentId::file_name`]; `None` for anything else (also when `first > last`).
    pub fn from_file_name(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(SUFFIX)?;
        let (last, first) = stem.split_once('_')?;
        let id = SegmentId {
            first: LogId::parse_name(first)?,
            last: LogId::parse_name(last)?,
        };
        (id.first <= id.last).then_some(id)
    }

    /// Whether the segment holds an entry in `from..=to` (by ids).
    pub fn overlaps(&self, from: LogId, to: LogId) -> bool {
        self.last >= from && self.first <= to
    }
}

/// Exactly 20 ASCII digits, as a `u64`.
fn fixed_digits(s: &str) -> Option<u64> {
    if s.len() != 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The room's path segment (see the module docs).
pub fn room_segment(room: &str) -> Result<String, StorageError> {
    if room.is_empty() {
        return Err(StorageError::InvalidRoom("a room name must not be empty"));
    }
    let encoded = match room {
        "." => "%2E".to_string(),
        ".." => "%2E%2E".to_string(),
        _ => utf8_percent_encode(room, ROOM_SET).to_string(),
    };
    if encoded.len() <= MAX_ROOM_SEGMENT {
        return Ok(encoded);
    }
    // Cut before an escape that would straddle the limit.
    let mut cut = KEPT_WHEN_HASHED;
    while let Some(i) = encoded[..cut].rfind('%').filter(|i| i + 3 > cut) {
        cut = i;
    }
    let digest = Sha256::digest(room.as_bytes());
    let hash: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}{HASHED}{hash}", &encoded[..cut]))
}

/// The room name back from its path segment; `None` when it was cut and hashed (read the
/// object header instead) or is not a room segment at all.
pub fn room_from_segment(segment: &str) -> Option<String> {
    if segment.is_empty() || segment.contains(HASHED) {
        return None;
    }
    let room = percent_decode_str(segment).decode_utf8().ok()?.into_owned();
    // Only canonical encodings name rooms (so a room has exactly one directory).
    (room_segment(&room).ok()? == segment).then_some(room)
}

/// The room's shard: two lowercase hex digits of SHA-256 of the name.
pub fn shard(room: &str) -> String {
    format!("{:02x}", Sha256::digest(room.as_bytes())[0])
}

/// Builds object paths under a key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The key prefix without leading or trailing `/`, possibly empty.
    prefix: String,
}

impl Layout {
    /// A layout under `prefix` (`""` for the store's root). The prefix is checked: segments
    /// separated by `/`, none empty, `.` or `..`, no control characters, at most
    /// [`MAX_PREFIX`] bytes.
    pub fn new(prefix: &str) -> Result<Self, StorageError> {
        let prefix = prefix.trim_matches('/');
        check_prefix(prefix).map_err(StorageError::InvalidObject)?;
        Ok(Layout {
            prefix: prefix.to_string(),
        })
    }

    /// The key prefix (no leading or trailing `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>/rooms`: every room's objects are below it.
    pub fn rooms(&self) -> Path {
        self.path(["rooms"])
    }

    /// `<prefix>/rooms/<shard>/<room>`: everything of one room.
    pub fn room_dir(&self, room: &str) -> Result<Path, StorageError> {
        let segment = room_segment(room)?;
        Ok(self.path(["rooms", &shard(room), &segment]))
    }

    /// The directory of a room's snapshots.
    pub fn snapshot_dir(&self, room: &str) -> Result<Path, StorageError> {
        Ok(self.room_dir(room)?.join(SNAP_DIR))
    }

    /// The directory of a room's log segments.
    pub fn segment_dir(&self, room: &str) -> Result<Path, StorageError> {
        Ok(self.room_dir(room)?.join(LOG_DIR))
    }

    /// The path of one snapshot.
    pub fn snapshot(&self, room: &str, id: &SnapshotId) -> Result<Path, StorageError> {
        Ok(self.snapshot_dir(room)?.join(id.file_name()))
    }

    /// The path of one log segment.
    pub fn segment(&self, room: &str, id: &SegmentId) -> Result<Path, StorageError> {
        Ok(self.segment_dir(room)?.join(id.file_name()))
    }

    /// A listing offset: every segment listed after it has a last id of at least `from`.
    pub fn segments_from(&self, room: &str, from: LogId) -> Result<Path, StorageError> {
        // `log/<from>` sorts after every `log/<smaller last>_…` and before `log/<from>_…`.
        Ok(self.segment_dir(room)?.join(from.name()))
    }

    #[expect(
        clippy::expect_used,
        reason = "the prefix was validated at startup and every other part is percent-encoded"
    )]
    fn path<'a>(&self, parts: impl IntoIterator<Item = &'a str>) -> Path {
        let mut raw = self.prefix.clone();
        for part in parts {
            if !raw.is_empty() {
                raw.push('/');
            }
            raw.push_str(part);
        }
        Path::parse(&raw).expect("the prefix was checked and the other parts use a safe alphabet")
    }
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() > MAX_PREFIX {
        return Err(format!("the key prefix is longer than {MAX_PREFIX} bytes"));
    }
    if prefix.is_empty() {
        return Ok(());
    }
    for segment in prefix.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!(
                "the key prefix {prefix:?} has an empty, '.' or '..' segment"
            ));
        }
        if segment.chars().any(char::is_control) {
            return Err(format!(
                "the key prefix {prefix:?} contains a control character"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
