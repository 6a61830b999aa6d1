//! Reading a room's stored state: the snapshot and the log after it — when a room loads
//! ([`load`]), when a live node catches up ([`missed_after`]), and for the compactor
//! ([`read_after`]). The replies are parsed by pure functions, unit-tested without Redis.

use crate::client::Redis;
use crate::entry::StreamId;
use crate::error::Error;
use crate::keys::RoomKeys;
use crate::op::Op;
use crate::scripts;
use redis::Value;

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its stream id.
    pub id: StreamId,
    /// The v1 update (`u`).
    pub update: Vec<u8>,
    /// The node that wrote it (`n`).
    pub node: String,
    /// Wall-clock ms of the write (`t`).
    pub ms: u64,
}

/// An entry that could not be read; its id is known so readers can step over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEntry {
    /// Its stream id, if even that was unreadable `None`.
    pub id: Option<StreamId>,
    /// What was wrong.
    pub reason: &'static str,
}

/// Parses an `XRANGE` reply. Unreadable entries are returned separately, never fatal.
pub fn parse_entries(value: &Value) -> (Vec<LogEntry>, Vec<BadEntry>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let Value::Array(items) = value else {
        return (good, bad);
    };
    for item in items {
        match parse_entry(item) {
            Ok(entry) => good.push(entry),
            Err(e) => bad.push(e),
        }
    }
    (good, bad)
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn parse_entry(item: &Value) -> Result<LogEntry, BadEntry> {
    let Value::Array(pair) = item else {
        return Err(BadEntry {
            id: None,
            reason: "not an entry",
        });
    };
    let id = pair
        .first()
        .and_then(text)
        .and_then(|s| s.parse::<StreamId>().ok())
        .ok_or(BadEntry {
            id: None,
            reason: "bad id",
        })?;
    let bad = |reason| BadEntry {
        id: Some(id),
        reason,
    };
    let Some(Value::Array(fields)) = pair.get(1) else {
        return Err(bad("no fields"));
    };
    let (mut update, mut node, mut ms) = (None, None, None);
    for kv in fields.chunks(2) {
        let [k, v] = kv else {
            return Err(bad("odd fields"));
        };
        match text(k).as_deref() {
            Some("u") => match v {
                Value::BulkString(b) => update = Some(b.clone()),
                _ => return Err(bad("update not binary")),
            },
            Some("n") => node = text(v),
            Some("t") => ms = text(v).and_then(|t| t.parse().ok()),
            _ => {}
        }
    }
    Ok(LogEntry {
        id,
        update: update.ok_or(bad("no update"))?,
        node: node.unwrap_or_default(),
        ms: ms.unwrap_or(0),
    })
}

/// A room's stored state, read consistently.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// The snapshot (a v1 update of the merged state), if any.
    pub snapshot: Option<Vec<u8>>,
    /// The last log id the snapshot covers.
    pub upto: StreamId,
    /// The snapshot's fencing epoch.
    pub epoch: u64,
    /// Log entries after `upto`, in order.
    pub entries: Vec<LogEntry>,
    /// Unreadable entries that were skipped.
    pub skipped: Vec<BadEntry>,
    /// The id of the last entry read (or `upto`): where live reading continues.
    pub last: StreamId,
    /// The room's deletion generation when it was read (see [`RoomKeys::generation`]).
    pub generation: u64,
}

/// The reply of [`scripts::LOAD`]: the snapshot and the first page of entries after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReply {
    /// The snapshot, if any (an empty `doc` is none).
    pub snapshot: Option<Vec<u8>>,
    /// The last log id the snapshot covers (`0-0` without one).
    pub upto: StreamId,
    /// The snapshot's fencing epoch.
    pub epoch: u64,
    /// The first page of entries after `upto`.
    pub entries: Vec<LogEntry>,
    /// Unreadable entries among them.
    pub bad: Vec<BadEntry>,
    /// The room's deletion generation.
    pub generation: u64,
}

impl LoadReply {
    /// Parses `{doc or '', upto, epoch, entries, generation}`.
    pub fn parse(reply: &Value) -> Result<Self, Error> {
        let Value::Array(parts) = reply else {
            return Err(Error::corrupt("load reply"));
        };
        let [doc, upto, epoch, entries, generation] = &parts[..] else {
            return Err(Error::corrupt("load reply shape"));
        };
        let number = |value: &Value| {
            text(value).and_then(|s| s.parse().ok()).or(match value {
                Value::Int(i) => u64::try_from(*i).ok(),
                _ => None,
            })
        };
        let epoch = number(epoch).ok_or_else(|| Error::corrupt("snapshot epoch"))?;
        let generation = number(generation).ok_or_else(|| Error::corrupt("generation"))?;
        let (entries, bad) = parse_entries(entries);
        Ok(LoadReply {
            snapshot: non_empty(doc),
            upto: parse_upto(upto)?,
            epoch,
            entries,
            bad,
            generation,
        })
    }
}

fn non_empty(doc: &Value) -> Option<Vec<u8>> {
    match doc {
        Value::BulkString(b) if !b.is_empty() => Some(b.clone()),
        _ => None,
    }
}

fn parse_upto(upto: &Value) -> Result<StreamId, Error> {
    text(upto)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::corrupt("snapshot upto"))
}

/// Reads snapshot + log tail so that no entry can fall into a gap between the two, even
/// while a compactor writes a new snapshot and trims: the snapshot and the first page are
/// read in one script; later pages are read after it; if the snapshot's epoch changed by the
/// end (a trim may have removed entries not yet read), the read starts over.
pub async fn load(redis: &Redis, keys: &RoomKeys, page: usize) -> Result<Stored, Error> {
    for _attempt in 0..5 {
        let (snap, log, generation) =
            (keys.snap.clone(), keys.log.clone(), keys.generation.clone());
        let reply: Value = redis
            .call(Op::Load, |mut c| async move {
                scripts::LOAD
                    .key(&snap)
                    .key(&log)
                    .key(&generation)
                    .arg(page)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        let LoadReply {
            snapshot,
            upto,
            epoch,
            entries: mut good,
            mut bad,
            generation,
        } = LoadReply::parse(&reply)?;
        let mut count = good.len() + bad.len();
        let mut last = last_id(upto, &good, &bad);
        while count == page {
            let (more, more_bad) = read_after(redis, keys, last, page, Op::Load).await?;
            count = more.len() + more_bad.len();
            last = last_id(last, &more, &more_bad);
            good.extend(more);
            bad.extend(more_bad);
        }
        let now_epoch = current_epoch(redis, keys).await?;
        if now_epoch != epoch {
            tracing::debug!(
                epoch,
                now_epoch,
                "snapshot changed during load; reading again"
            );
            continue;
        }
        return Ok(Stored {
            snapshot,
            upto,
            epoch,
            entries: good,
            skipped: bad,
            last,
            generation,
        });
    }
    Err(Error::Failed {
        op: Op::Load,
        message: "room kept changing while loading".into(),
    })
}

/// The highest id among `start` and the entries read (readable or not): where reading
/// continues.
fn last_id(start: StreamId, good: &[LogEntry], bad: &[BadEntry]) -> StreamId {
    good.iter()
        .map(|e| e.id)
        .chain(bad.iter().filter_map(|b| b.id))
        .fold(start, StreamId::max)
}

/// The snapshot's current epoch (0 when there is none).
pub async fn current_epoch(redis: &Redis, keys: &RoomKeys) -> Result<u64, Error> {
    let snap = keys.snap.clone();
    let epoch: Option<u64> = redis
        .call(Op::LoadEpoch, |mut c| async move {
            redis::cmd("HGET")
                .arg(&snap)
                .arg("epoch")
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok(epoch.unwrap_or(0))
}

/// What a live node missed after `after`: a page of entries, and the snapshot when a
/// compaction trimmed entries it had not seen (see [`scripts::CATCH_UP`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Missed {
    /// The snapshot and the id it covers, when it covers entries after `after`.
    pub snapshot: Option<(Vec<u8>, StreamId)>,
    /// Entries after `after` (or after the snapshot), in order.
    pub entries: Vec<LogEntry>,
    /// Unreadable entries among them.
    pub bad: Vec<BadEntry>,
}

impl Missed {
    /// Parses the reply of [`scripts::CATCH_UP`], `{doc or '', upto, entries}`.
    pub fn parse(reply: &Value) -> Result<Self, Error> {
        let Value::Array(parts) = reply else {
            return Err(Error::corrupt("catch-up reply"));
        };
        let [doc, upto, entries] = &parts[..] else {
            return Err(Error::corrupt("catch-up reply shape"));
        };
        let upto = parse_upto(upto)?;
        let (entries, bad) = parse_entries(entries);
        Ok(Missed {
            snapshot: non_empty(doc).map(|doc| (doc, upto)),
            entries,
            bad,
        })
    }
}

/// One page of what was missed after `after`.
pub async fn missed_after(
    redis: &Redis,
    keys: &RoomKeys,
    after: StreamId,
    count: usize,
) -> Result<Missed, Error> {
    let (snap, log) = (keys.snap.clone(), keys.log.clone());
    let reply: Value = redis
        .call(Op::CatchUp, |mut c| async move {
            scripts::CATCH_UP
                .key(&snap)
                .key(&log)
                .arg(after.to_string())
                .arg(count)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    Missed::parse(&reply)
}

/// Up to `count` log entries after `after` (exclusive), read as `op`.
pub async fn read_after(
    redis: &Redis,
    keys: &RoomKeys,
    after: StreamId,
    count: usize,
    op: Op,
) -> Result<(Vec<LogEntry>, Vec<BadEntry>), Error> {
    let log = keys.log.clone();
    let reply: Value = redis
        .call(op, |mut c| async move {
            redis::cmd("XRANGE")
                .arg(&log)
                .arg(format!("({after}"))
                .arg("+")
                .arg("COUNT")
                .arg(count)
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok(parse_entries(&reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    #[test]
    fn parses_entries_and_isolates_bad_ones() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk(b"5-0"),
                Value::Array(vec![
                    bulk(b"u"),
                    bulk(&[1, 2]),
                    bulk(b"n"),
                    bulk(b"g1"),
                    bulk(b"t"),
                    bulk(b"77"),
                ]),
            ]),
            Value::Array(vec![
                bulk(b"6-0"),
                Value::Array(vec![bulk(b"x"), bulk(b"y")]),
            ]),
            Value::Array(vec![bulk(b"nonsense")]),
            Value::Int(3),
        ]);
        let (good, bad) = parse_entries(&reply);
        assert_eq!(
            good,
            vec![LogEntry {
                id: StreamId { ms: 5, seq: 0 },
                update: vec![1, 2],
                node: "g1".into(),
                ms: 77
            }]
        );
        assert_eq!(bad.len(), 3);
        assert_eq!(
            bad[0],
            BadEntry {
                id: Some(StreamId { ms: 6, seq: 0 }),
                reason: "no update"
            }
        );
        assert_eq!(
            last_id(StreamId::ZERO, &good, &bad),
            StreamId { ms: 6, seq: 0 }
        );
    }

    fn entry(id: &[u8], update: &[u8]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(vec![bulk(b"u"), bulk(update), bulk(b"n"), bulk(b"g2")]),
        ])
    }

    #[test]
    fn load_reply_with_and_without_a_snapshot() {
        let reply = Value::Array(vec![
            bulk(b"\x01\x00"),
            bulk(b"7-1"),
            bulk(b"3"),
            Value::Array(vec![entry(b"7-2", b"\x05"), Value::Int(1)]),
            bulk(b"2"),
        ]);
        let parsed = LoadReply::parse(&reply).unwrap();
        assert_eq!(parsed.snapshot.as_deref(), Some(&b"\x01\x00"[..]));
        assert_eq!(parsed.upto, StreamId { ms: 7, seq: 1 });
        assert_eq!(parsed.epoch, 3);
        assert_eq!(parsed.generation, 2);
        assert_eq!(parsed.entries.len(), 1);
        assert_eq!(parsed.entries[0].node, "g2");
        assert_eq!(parsed.entries[0].ms, 0, "no `t` field: unknown time");
        assert_eq!(parsed.bad.len(), 1);

        // A room without a snapshot: '' / '0-0' / '0' (or an integer epoch) and no entries.
        let empty = Value::Array(vec![
            bulk(b""),
            bulk(b"0-0"),
            Value::Int(0),
            Value::Array(vec![]),
            bulk(b"0"),
        ]);
        let parsed = LoadReply::parse(&empty).unwrap();
        assert_eq!(parsed.snapshot, None);
        assert_eq!(parsed.upto, StreamId::ZERO);
        assert_eq!(parsed.epoch, 0);
        assert!(parsed.entries.is_empty() && parsed.bad.is_empty());
    }

    #[test]
    fn load_reply_of_the_wrong_shape_is_corrupt() {
        for reply in [
            Value::Nil,
            Value::Array(vec![bulk(b""), bulk(b"0-0"), bulk(b"0")]),
            Value::Array(vec![
                bulk(b""),
                bulk(b"0-0"),
                bulk(b"0"),
                Value::Array(vec![]),
                bulk(b"-1"),
            ]),
            Value::Array(vec![
                bulk(b""),
                bulk(b"x"),
                bulk(b"0"),
                Value::Array(vec![]),
                bulk(b"0"),
            ]),
            Value::Array(vec![
                bulk(b""),
                bulk(b"0-0"),
                bulk(b"-1"),
                Value::Array(vec![]),
                bulk(b"0"),
            ]),
            Value::Array(vec![
                bulk(b""),
                bulk(b"0-0"),
                Value::Int(-1),
                Value::Array(vec![]),
                bulk(b"0"),
            ]),
        ] {
            assert!(
                matches!(LoadReply::parse(&reply), Err(Error::Corrupt(_))),
                "{reply:?}"
            );
        }
    }

    #[test]
    fn catch_up_reply_carries_the_snapshot_only_when_it_covers_missed_entries() {
        let reply = Value::Array(vec![
            bulk(b"\x01"),
            bulk(b"9-0"),
            Value::Array(vec![entry(b"9-1", b"\x02")]),
        ]);
        let missed = Missed::parse(&reply).unwrap();
        assert_eq!(missed.snapshot, Some((vec![1], StreamId { ms: 9, seq: 0 })));
        assert_eq!(missed.entries[0].id, StreamId { ms: 9, seq: 1 });

        let reply = Value::Array(vec![bulk(b""), bulk(b"9-0"), Value::Array(vec![])]);
        assert_eq!(Missed::parse(&reply).unwrap(), Missed::default());
        assert!(Missed::parse(&Value::Array(vec![bulk(b"")])).is_err());
    }

    #[test]
    fn reading_continues_after_the_highest_id_read() {
        let bad = [BadEntry {
            id: None,
            reason: "bad id",
        }];
        assert_eq!(
            last_id(StreamId { ms: 4, seq: 0 }, &[], &bad),
            StreamId { ms: 4, seq: 0 }
        );
    }
}
