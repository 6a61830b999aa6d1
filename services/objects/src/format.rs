//! The object format, version 1: a small self-describing header, then the payload. Pure:
//! encoding never fails on valid input, decoding never panics and names what is wrong.
//!
//! All integers are little-endian.
//!
//! | bytes | field |
//! | --- | --- |
//! | 8 | magic `89 59 57 53 0D 0A 1A 0A` (`\x89YWS\r\n\x1a\n`: binary, catches text-mode damage) |
//! | 2 | format version, `1` |
//! | 1 | kind: `1` snapshot, `2` log segment |
//! | 1 | flags, `0` (a reader refuses flags it does not know) |
//! | 8 | epoch (fencing counter of the room's snapshots when written) |
//! | 16 | from: first log id covered (`ms`, `seq`); `0-0` for a snapshot |
//! | 16 | upto: last log id covered (`ms`, `seq`) |
//! | 8 | written at, Unix ms |
//! | 4 | entries: updates in a segment; `0` for a snapshot |
//! | 8 | payload length in bytes |
//! | 4 | CRC-32C of the payload |
//! | 2 | room name length *n* |
//! | *n* | room name, UTF-8 |
//! | 4 | CRC-32C of all header bytes before it |
//! | … | payload: exactly the declared length, nothing after it |
//!
//! A snapshot's payload is the document state as one Yjs v1 update. A segment's payload is
//! its entries in log order, each `ms` (8), `seq` (8), written-at ms (8), length (4), update
//! (v1) — ids strictly increasing, the first equal to `from`, the last to `upto`.

use crate::error::{Corruption, StorageError};
use crate::layout::{LogId, SegmentId, SnapshotId};
use bytes::{BufMut, Bytes, BytesMut};
use crc_fast::CrcAlgorithm;

/// The first bytes of every object.
pub const MAGIC: [u8; 8] = *b"\x89YWS\r\n\x1a\n";
/// The format version written.
pub const VERSION: u16 = 1;
/// Header bytes besides the room name.
pub const HEADER_FIXED: usize = 8 + 2 + 1 + 1 + 8 + 16 + 16 + 8 + 4 + 8 + 4 + 2 + 4;
/// Bytes of one segment entry besides its update.
pub const ENTRY_FIXED: usize = 8 + 8 + 8 + 4;

/// What an object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A room's merged state.
    Snapshot = 1,
    /// Raw log entries of a room.
    Segment = 2,
}

impl ObjectKind {
    fn from_byte(b: u8) -> Result<Self, Corruption> {
        match b {
            1 => Ok(ObjectKind::Snapshot),
            2 => Ok(ObjectKind::Segment),
            other => Err(Corruption::UnknownKind(other)),
        }
    }
}

/// The decoded header of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Snapshot or segment.
    pub kind: ObjectKind,
    /// The room, in full.
    pub room: String,
    /// Fencing epoch when written.
    pub epoch: u64,
    /// First log id covered (`0-0` for snapshots).
    pub from: LogId,
    /// Last log id covered.
    pub upto: LogId,
    /// When the object was written, Unix ms.
    pub written_at_ms: u64,
    /// Entries of a segment (0 for snapshots).
    pub entries: u32,
    /// Payload bytes.
    pub payload_len: u64,
    /// CRC-32C of the payload.
    pub payload_crc: u32,
}

/// A room's state at a log position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The room.
    pub room: String,
    /// Fencing epoch under which it was written.
    pub epoch: u64,
    /// The last log id merged into `state`.
    pub covered: LogId,
    /// When it was written, Unix ms.
    pub written_at_ms: u64,
    /// The document state, one Yjs v1 update.
    pub state: Bytes,
}

impl Snapshot {
    /// Its name within the room.
    pub fn id(&self) -> SnapshotId {
        SnapshotId {
            epoch: self.epoch,
            covered: self.covered,
        }
    }
}

/// One archived log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentEntry {
    /// Its log id.
    pub id: LogId,
    /// When the gateway wrote it, Unix ms.
    pub written_at_ms: u64,
    /// The Yjs v1 update.
    pub update: Bytes,
}

/// A run of a room's log entries, archived as one immutable object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The room.
    pub room: String,
    /// The room's snapshot epoch when archived.
    pub epoch: u64,
    /// When the object was written, Unix ms.
    pub written_at_ms: u64,
    /// The entries, ids strictly increasing; at least one.
    pub entries: Vec<SegmentEntry>,
}

impl Segment {
    /// Its name within the room; `None` when it has no entries.
    pub fn id(&self) -> Option<SegmentId> {
        Some(SegmentId {
            first: self.entries.first()?.id,
            last: self.entries.last()?.id,
        })
    }
}

/// An encoded object: the header and the payload, kept apart so a large payload is never
/// copied (both are sent as one body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Header bytes.
    pub header: Bytes,
    /// Payload bytes.
    pub payload: Bytes,
}

impl Encoded {
    /// Total bytes.
    pub fn len(&self) -> usize {
        self.header.len() + self.payload.len()
    }

    /// Whether it is empty (never: a header has at least [`HEADER_FIXED`] bytes).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Header and payload as one buffer (tests, small objects).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut all = Vec::with_capacity(self.len());
        all.extend_from_slice(&self.header);
        all.extend_from_slice(&self.payload);
        all
    }
}

/// CRC-32C (Castagnoli).
pub fn crc32c(data: &[u8]) -> u32 {
    // A CRC-32 fits 32 bits; the crate returns every width as u64.
    crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, data) as u32
}

/// Encodes a snapshot.
pub fn encode_snapshot(snapshot: &Snapshot) -> Result<Encoded, StorageError> {
    let header = Header {
        kind: ObjectKind::Snapshot,
        room: snapshot.room.clone(),
        epoch: snapshot.epoch,
        from: LogId::ZERO,
        upto: snapshot.covered,
        written_at_ms: snapshot.written_at_ms,
        entries: 0,
        payload_len: snapshot.state.len() as u64,
        payload_crc: crc32c(&snapshot.state),
    };
    Ok(Encoded {
        header: encode_header(&header)?,
        payload: snapshot.state.clone(),
    })
}

/// Encodes a segment; its entries must be non-empty with strictly increasing ids.
pub fn encode_segment(segment: &Segment) -> Result<Encoded, StorageError> {
    let id = segment
        .id()
        .ok_or_else(|| StorageError::InvalidObject("a segment needs at least one entry".into()))?;
    if segment.entries.windows(2).any(|w| w[0].id >= w[1].id) {
        return Err(StorageError::InvalidObject(
            "segment entries must have strictly increasing log ids".into(),
        ));
    }
    let entries = u32::try_from(segment.entries.len())
        .map_err(|_| StorageError::InvalidObject("too many entries in one segment".into()))?;
    let size: usize = segment
        .entries
        .iter()
        .map(|e| ENTRY_FIXED + e.update.len())
        .sum();
    let mut payload = BytesMut::with_capacity(size);
    for e in &segment.entries {
        let len = u32::try_from(e.update.len())
            .map_err(|_| StorageError::InvalidObject("an update is larger than 4 GiB".into()))?;
        payload.put_u64_le(e.id.ms);
        payload.put_u64_le(e.id.seq);
        payload.put_u64_le(e.written_at_ms);
        payload.put_u32_le(len);
        payload.put_slice(&e.update);
    }
    let payload = payload.freeze();
    let header = Header {
        kind: ObjectKind::Segment,
        room: segment.room.clone(),
        epoch: segment.epoch,
        from: id.first,
        upto: id.last,
        written_at_ms: segment.written_at_ms,
        entries,
        payload_len: payload.len() as u64,
        payload_crc: crc32c(&payload),
    };
    Ok(Encoded {
        header: encode_header(&header)?,
        payload,
    })
}

/// Encodes a header (its `payload_len` and `payload_crc` as given).
pub fn encode_header(h: &Header) -> Result<Bytes, StorageError> {
    let room_len = u16::try_from(h.room.len()).map_err(|_| {
        StorageError::InvalidRoom("a room name must be at most 65535 bytes to be stored")
    })?;
    let mut out = BytesMut::with_capacity(HEADER_FIXED + h.room.len());
    out.put_slice(&MAGIC);
    out.put_u16_le(VERSION);
    out.put_u8(h.kind as u8);
    out.put_u8(0);
    out.put_u64_le(h.epoch);
    for id in [h.from, h.upto] {
        out.put_u64_le(id.ms);
        out.put_u64_le(id.seq);
    }
    out.put_u64_le(h.written_at_ms);
    out.put_u32_le(h.entries);
    out.put_u64_le(h.payload_len);
    out.put_u32_le(h.payload_crc);
    out.put_u16_le(room_len);
    out.put_slice(h.room.as_bytes());
    let crc = crc32c(&out);
    out.put_u32_le(crc);
    Ok(out.freeze())
}

/// A bounds-checked little-endian reader over a byte slice.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Corruption> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(Corruption::Truncated {
                needed: self.pos as u64 + n as u64,
                available: self.data.len() as u64,
            });
        };
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Corruption> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, Corruption> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, Corruption> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, Corruption> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, Corruption> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn log_id(&mut self) -> Result<LogId, Corruption> {
        Ok(LogId {
            ms: self.u64()?,
            seq: self.u64()?,
        })
    }
}

/// Decodes the header at the start of `data` (which may hold only the header); returns it
/// and its length in bytes. Checks magic, version, kind, flags and the header checksum.
pub fn decode_header(data: &[u8]) -> Result<(Header, usize), Corruption> {
    let mut r = Reader { data, pos: 0 };
    if r.array::<8>().map_err(|_| Corruption::BadMagic)? != MAGIC {
        return Err(Corruption::BadMagic);
    }
    let version = r.u16()?;
    if version != VERSION {
        return Err(Corruption::UnsupportedVersion(version));
    }
    let kind = ObjectKind::from_byte(r.u8()?)?;
    let flags = r.u8()?;
    if flags != 0 {
        return Err(Corruption::UnsupportedFlags(flags));
    }
    let epoch = r.u64()?;
    let from = r.log_id()?;
    let upto = r.log_id()?;
    let written_at_ms = r.u64()?;
    let entries = r.u32()?;
    let payload_len = r.u64()?;
    let payload_crc = r.u32()?;
    let room_len = r.u16()?;
    let room = r.take(usize::from(room_len))?;
    let covered = r.pos;
    let stored = r.u32()?;
    let computed = crc32c(&data[..covered]);
    if stored != computed {
        return Err(Corruption::HeaderChecksum { stored, computed });
    }
    let room = std::str::from_utf8(room)
        .map_err(|_| Corruption::RoomNotUtf8)?
        .to_string();
    if from > upto {
        return Err(Corruption::Invalid("from is after upto"));
    }
    let header = Header {
        kind,
        room,
        epoch,
        from,
        upto,
        written_at_ms,
        entries,
        payload_len,
        payload_crc,
    };
    Ok((header, r.pos))
}

/// Decodes a whole object: the header, and the payload checked against its declared length
/// and checksum. The payload shares `data`'s buffer.
pub fn decode_object(data: &Bytes) -> Result<(Header, Bytes), Corruption> {
    let (header, header_len) = decode_header(data)?;
    let actual = (data.len() - header_len) as u64;
    if actual < header.payload_len {
        return Err(Corruption::Truncated {
            needed: header_len as u64 + header.payload_len,
            available: data.len() as u64,
        });
    }
    if actual > header.payload_len {
        return Err(Corruption::TrailingBytes {
            declared: header.payload_len,
            actual,
        });
    }
    let payload = data.slice(header_len..);
    let computed = crc32c(&payload);
    if computed != header.payload_crc {
        return Err(Corruption::PayloadChecksum {
            stored: header.payload_crc,
            computed,
        });
    }
    Ok((header, payload))
}

/// Decodes a snapshot object.
pub fn decode_snapshot(data: &Bytes) -> Result<Snapshot, Corruption> {
    let (h, payload) = decode_object(data)?;
    if h.kind != ObjectKind::Snapshot {
        return Err(Corruption::WrongKind);
    }
    if h.from != LogId::ZERO || h.entries != 0 {
        return Err(Corruption::Invalid(
            "a snapshot covers the log from 0-0 and has no entries",
        ));
    }
    Ok(Snapshot {
        room: h.room,
        epoch: h.epoch,
        covered: h.upto,
        written_at_ms: h.written_at_ms,
        state: payload,
    })
}

/// Decodes a segment object, checking every entry against the header.
pub fn decode_segment(data: &Bytes) -> Result<Segment, Corruption> {
    let (h, payload) = decode_object(data)?;
    if h.kind != ObjectKind::Segment {
        return Err(Corruption::WrongKind);
    }
    // Each entry takes at least ENTRY_FIXED bytes: never reserve more than the payload allows.
    let bound = payload.len() / ENTRY_FIXED;
    if h.entries == 0 || h.entries as usize > bound {
        return Err(Corruption::Invalid(
            "entry count does not fit the payload length",
        ));
    }
    let mut entries = Vec::with_capacity(h.entries as usize);
    let mut r = Reader {
        data: &payload,
        pos: 0,
    };
    while r.pos < payload.len() {
        let id = r.log_id()?;
        let written_at_ms = r.u64()?;
        let len = r.u32()? as usize;
        let start = r.pos;
        r.take(len)?;
        if entries
            .last()
            .is_some_and(|prev: &SegmentEntry| prev.id >= id)
        {
            return Err(Corruption::Invalid("entry ids are not strictly increasing"));
        }
        entries.push(SegmentEntry {
            id,
            written_at_ms,
            update: payload.slice(start..start + len),
        });
    }
    if entries.len() != h.entries as usize {
        return Err(Corruption::Invalid("entry count differs from the header's"));
    }
    let first = entries.first().map(|e| e.id);
    let last = entries.last().map(|e| e.id);
    if first != Some(h.from) || last != Some(h.upto) {
        return Err(Corruption::Invalid(
            "first and last entry ids differ from the header's",
        ));
    }
    Ok(Segment {
        room: h.room,
        epoch: h.epoch,
        written_at_ms: h.written_at_ms,
        entries,
    })
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
