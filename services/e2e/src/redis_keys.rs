//! A room's keys in Redis, read and written directly (the layout of `yws-redis`'s `keys`
//! module): append log entries as a gateway would, read the snapshot and the log, merge them
//! as a loading gateway does, and look at the compaction queue.

use crate::resp::{Reply, Resp};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use yrs::updates::decoder::Decode;
use yrs::{Doc, Transact, Update};

/// Wall-clock milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// The keys of one room (room names used in tests need no escaping: no `%`, `{`, `}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomKeys {
    /// The room.
    pub room: String,
    /// `{p}:{room}:log` (stream).
    pub log: String,
    /// `{p}:{room}:snap` (hash: doc, upto, epoch).
    pub snap: String,
    /// `{p}:{room}:meta` (hash: last, bytes, claim).
    pub meta: String,
    /// `{p}:{room}:lease` (string).
    pub lease: String,
    /// `{p}:compact` (the queue, a sorted set).
    pub queue: String,
}

impl RoomKeys {
    /// The keys of `room` under `prefix` (`yws` by default).
    pub fn new(prefix: &str, room: &str) -> Self {
        assert!(
            !room.contains(['%', '{', '}']),
            "room names in tests need no escaping"
        );
        RoomKeys {
            room: room.to_string(),
            log: format!("{prefix}:{{{room}}}:log"),
            snap: format!("{prefix}:{{{room}}}:snap"),
            meta: format!("{prefix}:{{{room}}}:meta"),
            lease: format!("{prefix}:{{{room}}}:lease"),
            queue: format!("{prefix}:compact"),
        }
    }
}

/// A stored snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The merged state (`doc`).
    pub doc: Option<Vec<u8>>,
    /// The last log id it covers (`upto`).
    pub upto: Option<String>,
    /// The fencing epoch (`epoch`, 0 when absent).
    pub epoch: u64,
}

/// A room's stored state read in one atomic step: the snapshot and every entry after it.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// The snapshot.
    pub snapshot: Snapshot,
    /// `(id, update)` of every log entry after the snapshot's `upto`.
    pub entries: Vec<(String, Vec<u8>)>,
}

impl Stored {
    /// The document a gateway loading the room would build: snapshot, then the entries.
    pub fn doc(&self) -> Doc {
        let doc = Doc::new();
        {
            let mut txn = doc.transact_mut();
            for update in self
                .snapshot
                .doc
                .iter()
                .chain(self.entries.iter().map(|e| &e.1))
            {
                txn.apply_update(Update::decode_v1(update).expect("stored update decodes"))
                    .expect("stored update applies");
            }
        }
        doc
    }
}

/// Snapshot and log tail in one script, so a compaction cannot slip between the two reads.
const READ_STORED: &str = r#"
local s = redis.call('HMGET', KEYS[1], 'doc', 'upto', 'epoch')
local upto = s[2] or '0-0'
return {s[1] or '', s[2] or '', s[3] or '0', redis.call('XRANGE', KEYS[2], '(' .. upto, '+')}
"#;

/// Direct access to rooms' keys.
#[derive(Debug)]
pub struct RedisKeys {
    /// The connection.
    pub conn: Resp,
    prefix: String,
}

impl RedisKeys {
    /// Connects to the Redis on `port`, keys under `prefix`.
    pub fn connect(port: u16, prefix: &str) -> Self {
        RedisKeys {
            conn: Resp::connect(port),
            prefix: prefix.to_string(),
        }
    }

    /// The keys of `room`.
    pub fn keys(&self, room: &str) -> RoomKeys {
        RoomKeys::new(&self.prefix, room)
    }

    /// Appends an update to a room's log as a gateway does (fields `u`, `n`, `t`; the meta
    /// hash is left alone); returns the entry's id.
    pub fn append(&mut self, room: &str, update: &[u8]) -> String {
        let keys = self.keys(room);
        let t = now_ms().to_string();
        self.conn
            .cmd(&[
                b"XADD",
                keys.log.as_bytes(),
                b"*",
                b"u",
                update,
                b"n",
                b"e2e",
                b"t",
                t.as_bytes(),
            ])
            .text()
            .expect("XADD returns an id")
    }

    /// Queues a room for compaction at `due_ms`.
    pub fn schedule(&mut self, room: &str, due_ms: u64) {
        let keys = self.keys(room);
        self.conn
            .cmd_str(&["ZADD", &keys.queue, &due_ms.to_string(), room]);
    }

    /// The room's due time in the queue, if queued.
    pub fn queued(&mut self, room: &str) -> Option<u64> {
        let keys = self.keys(room);
        self.conn
            .cmd_str(&["ZSCORE", &keys.queue, room])
            .text()
            .map(|s| s.parse::<f64>().expect("score") as u64)
    }

    /// Entries in the room's log (0 when it does not exist).
    pub fn log_len(&mut self, room: &str) -> u64 {
        let keys = self.keys(room);
        self.conn.cmd_str(&["XLEN", &keys.log]).int().expect("XLEN") as u64
    }

    /// Whether a key exists.
    pub fn exists(&mut self, key: &str) -> bool {
        self.conn.cmd_str(&["EXISTS", key]).int() == Some(1)
    }

    /// A field of the room's meta hash.
    pub fn meta(&mut self, room: &str, field: &str) -> Option<String> {
        let keys = self.keys(room);
        self.conn.cmd_str(&["HGET", &keys.meta, field]).text()
    }

    /// The room's snapshot.
    pub fn snapshot(&mut self, room: &str) -> Snapshot {
        self.stored(room).snapshot
    }

    /// Snapshot and log tail, read atomically.
    pub fn stored(&mut self, room: &str) -> Stored {
        let keys = self.keys(room);
        let reply = self.conn.cmd(&[
            b"EVAL",
            READ_STORED.as_bytes(),
            b"2",
            keys.snap.as_bytes(),
            keys.log.as_bytes(),
        ]);
        let [doc, upto, epoch, entries] = reply.items() else {
            panic!("unexpected reply {reply:?}");
        };
        let doc = doc.bytes().filter(|d| !d.is_empty()).map(<[u8]>::to_vec);
        let upto = upto.text().filter(|u| !u.is_empty());
        let epoch = epoch.int().expect("epoch") as u64;
        Stored {
            snapshot: Snapshot { doc, upto, epoch },
            entries: entries.items().iter().map(parse_entry).collect(),
        }
    }

    /// Polls `check` every 50 ms until it holds or `timeout` passes; returns whether it held.
    pub fn wait_until(
        &mut self,
        timeout: Duration,
        mut check: impl FnMut(&mut RedisKeys) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if check(self) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn parse_entry(entry: &Reply) -> (String, Vec<u8>) {
    let [id, fields] = entry.items() else {
        panic!("unexpected entry {entry:?}");
    };
    let fields = fields.items();
    let update = fields
        .chunks(2)
        .find(|kv| kv[0].bytes() == Some(b"u"))
        .and_then(|kv| kv[1].bytes())
        .expect("entry has an update")
        .to_vec();
    (id.text().expect("entry id"), update)
}

/// Parses a stream id `ms-seq` for ordering.
pub fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().expect("id ms"), seq.parse().expect("id seq"))
}
