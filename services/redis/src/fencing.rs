//! How one compactor replica at a time rewrites a room's snapshot: a lease on the room, and
//! writes fenced by that lease and by the snapshot's epoch.
//!
//! Every step is safe to interrupt: a snapshot is written together with the last log id it
//! covers, in one script, only by the lease holder and only if no other snapshot was written
//! since it was read; the log is trimmed only afterwards, up to that id. The replies of the
//! scripts are parsed by pure functions, unit-tested without Redis.

use crate::client::Redis;
use crate::entry::{now_ms, StreamId};
use crate::error::Error;
use crate::keys::RoomKeys;
use crate::op::Op;
use crate::reader::{self, BadEntry, LogEntry};
use crate::scripts;
use crate::stored;

/// What a snapshot merged from the log: the log's counters go down by it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCounts {
    /// Log bytes merged.
    pub bytes: u64,
    /// Log entries merged.
    pub entries: u64,
}
/// Outcome of trying to claim a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This replica holds the lease; `takeover` when a previous claimant died mid-task.
    Acquired {
        /// Whether an unreleased claim of another replica was found.
        takeover: bool,
    },
    /// Another replica holds the lease.
    Busy,
}

impl Claim {
    /// From the reply of [`scripts::CLAIM`]: `{acquired (0|1), previous claim or ''}`.
    fn from_reply(acquired: u8, previous: &str) -> Self {
        if acquired == 1 {
            Claim::Acquired {
                takeover: !previous.is_empty(),
            }
        } else {
            Claim::Busy
        }
    }
}

/// Outcome of a fenced snapshot write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written.
    Written,
    /// The lease expired and may belong to another replica: nothing written.
    LeaseLost,
    /// Another snapshot was written since this one was read: nothing written.
    Stale,
}

impl WriteOutcome {
    /// From the reply of [`scripts::WRITE_SNAPSHOT`].
    fn from_reply(reply: &str) -> Result<Self, Error> {
        match reply {
            "ok" => Ok(WriteOutcome::Written),
            "lease_lost" => Ok(WriteOutcome::LeaseLost),
            "stale" => Ok(WriteOutcome::Stale),
            other => Err(Error::corrupt(format!("snapshot write answered {other:?}"))),
        }
    }
}

/// A snapshot as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The merged state, if any.
    pub doc: Option<Vec<u8>>,
    /// The last log id it covers.
    pub upto: StreamId,
    /// Its fencing epoch.
    pub epoch: u64,
    /// The file name of its object in storage, when one was recorded (`obj`, see
    /// [`crate::stored`]).
    pub object: Option<String>,
    /// The room's deletion generation when it was read (0: never deleted).
    pub generation: u64,
}

impl Snapshot {
    /// From the snapshot hash's `doc`, `upto` and `epoch` fields (all missing: no snapshot).
    fn from_fields(
        doc: Option<Vec<u8>>,
        upto: Option<String>,
        epoch: Option<u64>,
    ) -> Result<Self, Error> {
        let upto = match upto {
            Some(u) => u
                .parse()
                .map_err(|_| Error::corrupt(format!("snapshot upto {u:?}")))?,
            None => StreamId::ZERO,
        };
        Ok(Snapshot {
            doc: doc.filter(|d| !d.is_empty()),
            upto,
            epoch: epoch.unwrap_or(0),
            object: None,
            generation: 0,
        })
    }
}

/// A room under a compactor lease: claim, renew and release the lease, read the snapshot and
/// the log, write the merged snapshot (fenced), trim, delete an empty log.
#[derive(Debug)]
pub struct LeasedRoom<'a> {
    redis: &'a Redis,
    room: String,
    /// The room's keys.
    pub keys: RoomKeys,
    token: String,
    lease_ms: u64,
}

impl<'a> LeasedRoom<'a> {
    /// Operations on `room` under the lease `token` (see [`new_token`]).
    pub fn new(redis: &'a Redis, room: &str, token: &str, lease_ms: u64) -> Self {
        LeasedRoom {
            keys: RoomKeys::new(redis.prefix(), room),
            room: room.to_string(),
            redis,
            token: token.to_string(),
            lease_ms,
        }
    }

    /// The room's name.
    pub fn room(&self) -> &str {
        &self.room
    }

    /// Takes the room's lease.
    pub async fn claim(&self) -> Result<Claim, Error> {
        let (lease, meta, token, ms) = (
            self.keys.lease.clone(),
            self.keys.meta.clone(),
            self.token.clone(),
            self.lease_ms,
        );
        let (acquired, previous): (u8, String) = self
            .redis
            .call(Op::Lease, |mut c| async move {
                scripts::CLAIM
                    .key(&lease)
                    .key(&meta)
                    .arg(&token)
                    .arg(ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(Claim::from_reply(acquired, &previous))
    }

    /// Extends the lease; `false` if it was lost.
    pub async fn renew(&self) -> Result<bool, Error> {
        let (lease, token, ms) = (self.keys.lease.clone(), self.token.clone(), self.lease_ms);
        let renewed: i64 = self
            .redis
            .call(Op::Lease, |mut c| async move {
                scripts::RENEW
                    .key(&lease)
                    .arg(&token)
                    .arg(ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(renewed == 1)
    }

    /// Releases the lease and the claim.
    pub async fn release(&self) -> Result<(), Error> {
        let (lease, meta, token) = (
            self.keys.lease.clone(),
            self.keys.meta.clone(),
            self.token.clone(),
        );
        self.redis
            .call(Op::Lease, |mut c| async move {
                scripts::RELEASE
                    .key(&lease)
                    .key(&meta)
                    .arg(&token)
                    .invoke_async::<i64>(&mut c)
                    .await
                    .map(|_| ())
            })
            .await
    }

    /// Reads the current snapshot (with its object name and the room's deletion generation).
    pub async fn snapshot(&self) -> Result<Snapshot, Error> {
        let (snap, generation) = (self.keys.snap.clone(), self.keys.generation.clone());
        type Fields = (Option<Vec<u8>>, Option<String>, Option<u64>, Option<String>);
        let ((doc, upto, epoch, object), generation): (Fields, Option<u64>) = self
            .redis
            .call(Op::ReadSnapshot, |mut c| async move {
                redis::pipe()
                    .cmd("HMGET")
                    .arg(&snap)
                    .arg("doc")
                    .arg("upto")
                    .arg("epoch")
                    .arg("obj")
                    .cmd("GET")
                    .arg(&generation)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(Snapshot {
            object: object.filter(|o| !o.is_empty()),
            generation: generation.unwrap_or(0),
            ..Snapshot::from_fields(doc, upto, epoch)?
        })
    }

    /// Up to `count` log entries after `after`.
    pub async fn read(
        &self,
        after: StreamId,
        count: usize,
    ) -> Result<(Vec<LogEntry>, Vec<BadEntry>), Error> {
        reader::read_after(self.redis, &self.keys, after, count, Op::ReadLog).await
    }

    /// Writes a snapshot covering the log up to `upto`, fenced by lease and epoch; the log's
    /// counters (bytes and entries not in the snapshot) go down by what was merged.
    pub async fn write(
        &self,
        doc: Vec<u8>,
        upto: StreamId,
        epoch_read: u64,
        merged_bytes: u64,
        merged_entries: u64,
    ) -> Result<WriteOutcome, Error> {
        let (snap, lease, meta, token) = (
            self.keys.snap.clone(),
            self.keys.lease.clone(),
            self.keys.meta.clone(),
            self.token.clone(),
        );
        let outcome: String = self
            .redis
            .call(Op::WriteSnapshot, |mut c| async move {
                scripts::WRITE_SNAPSHOT
                    .key(&snap)
                    .key(&lease)
                    .key(&meta)
                    .arg(&token)
                    .arg(doc)
                    .arg(upto.to_string())
                    .arg(epoch_read)
                    .arg(merged_bytes)
                    .arg(merged_entries)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        WriteOutcome::from_reply(&outcome)
    }

    /// Records a snapshot whose object (`object`, epoch `epoch_new`) is already stored, fenced
    /// by lease and epoch ([`stored::RECORD_SNAPSHOT`]); `epoch_read` is the epoch Redis held
    /// when the snapshot was read.
    pub async fn record(
        &self,
        doc: Vec<u8>,
        upto: StreamId,
        epoch_read: u64,
        epoch_new: u64,
        object: &str,
        merged: LogCounts,
    ) -> Result<WriteOutcome, Error> {
        let (snap, lease, meta, token, object) = (
            self.keys.snap.clone(),
            self.keys.lease.clone(),
            self.keys.meta.clone(),
            self.token.clone(),
            object.to_string(),
        );
        let outcome: String = self
            .redis
            .call(Op::WriteSnapshot, |mut c| async move {
                stored::RECORD_SNAPSHOT
                    .key(&snap)
                    .key(&lease)
                    .key(&meta)
                    .arg(&token)
                    .arg(doc)
                    .arg(upto.to_string())
                    .arg(epoch_read)
                    .arg(epoch_new)
                    .arg(&object)
                    .arg(merged.bytes)
                    .arg(merged.entries)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        WriteOutcome::from_reply(&outcome)
    }

    /// Evicts the idle room from Redis under this lease ([`stored::EVICT`]): only while its
    /// current snapshot is the stored `object` at `epoch` and its log is empty.
    pub async fn evict(&self, epoch: u64, object: &str) -> Result<stored::Evicted, Error> {
        stored::evict(self.redis, &self.keys, &self.token, epoch, object).await
    }

    /// Connections to the room on every live gateway (their presence reports).
    pub async fn connections_anywhere(&self) -> Result<u64, Error> {
        stored::connections_anywhere(self.redis, &self.room).await
    }

    /// Removes log entries with ids below `min` (exact).
    pub async fn trim_below(&self, min: StreamId) -> Result<u64, Error> {
        let log = self.keys.log.clone();
        self.redis
            .call(Op::Trim, |mut c| async move {
                redis::cmd("XTRIM")
                    .arg(&log)
                    .arg("MINID")
                    .arg(min.to_string())
                    .query_async(&mut c)
                    .await
            })
            .await
    }

    /// Entries left in the log.
    pub async fn log_len(&self) -> Result<u64, Error> {
        let log = self.keys.log.clone();
        self.redis
            .call(Op::LogLength, |mut c| async move {
                redis::cmd("XLEN").arg(&log).query_async(&mut c).await
            })
            .await
    }

    /// Deletes the log if it is empty; `true` when deleted.
    pub async fn delete_if_empty(&self) -> Result<bool, Error> {
        let (log, meta) = (self.keys.log.clone(), self.keys.meta.clone());
        let deleted: i64 = self
            .redis
            .call(Op::Cleanup, |mut c| async move {
                scripts::CLEANUP
                    .key(&log)
                    .key(&meta)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(deleted == 1)
    }
}

/// A random lease token: unique per task, so a replica can tell its own claim from another's.
pub fn new_token() -> String {
    format!("c{:016x}{:x}", rand::random::<u64>(), now_ms())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_replies() {
        assert_eq!(
            Claim::from_reply(1, ""),
            Claim::Acquired { takeover: false }
        );
        assert_eq!(
            Claim::from_reply(1, "c00ff"),
            Claim::Acquired { takeover: true }
        );
        assert_eq!(Claim::from_reply(0, ""), Claim::Busy);
    }

    #[test]
    fn write_replies() {
        assert_eq!(
            WriteOutcome::from_reply("ok").unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(
            WriteOutcome::from_reply("lease_lost").unwrap(),
            WriteOutcome::LeaseLost
        );
        assert_eq!(
            WriteOutcome::from_reply("stale").unwrap(),
            WriteOutcome::Stale
        );
        assert!(matches!(
            WriteOutcome::from_reply("OK"),
            Err(Error::Corrupt(_))
        ));
    }

    #[test]
    fn snapshot_fields() {
        assert_eq!(
            Snapshot::from_fields(None, None, None).unwrap(),
            Snapshot::default()
        );
        let s = Snapshot::from_fields(Some(vec![]), Some("12-3".into()), Some(4)).unwrap();
        assert_eq!(s.doc, None, "an empty doc is no snapshot");
        assert_eq!((s.upto, s.epoch), (StreamId { ms: 12, seq: 3 }, 4));
        assert!(Snapshot::from_fields(Some(vec![1]), Some("nope".into()), Some(1)).is_err());
    }

    #[test]
    fn tokens_differ() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with('c'));
    }
}
