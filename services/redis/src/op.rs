//! [`Op`]: every kind of Redis call this crate makes, with its metric label and its timeout.
//!
//! One table below defines all three, so a call cannot get the timeout of another operation by
//! sharing its label: a call names what it does, and that decides how long it may take.

use std::fmt;

/// How long a call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// `redis.command_timeout_ms`: small requests and replies.
    Command,
    /// `redis.bulk_timeout_ms`: calls that may move whole documents (snapshots, pages of log
    /// entries) or trim long logs.
    Bulk,
}

macro_rules! ops {
    ($($(#[doc = $doc:literal])+ $op:ident => $label:literal, $timeout:ident;)+) => {
        /// A kind of Redis call: the `op` label of `yws_redis_command_duration_seconds` and
        /// `yws_redis_errors_total`, and the timeout the call runs under.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Op {
            $($(#[doc = $doc])+ $op,)+
        }

        impl Op {
            /// Every operation, in the order of the table.
            pub const ALL: &'static [Op] = &[$(Op::$op),+];

            /// The metric label.
            pub const fn label(self) -> &'static str {
                match self {
                    $(Op::$op => $label,)+
                }
            }

            /// The timeout class.
            pub const fn timeout(self) -> Timeout {
                match self {
                    $(Op::$op => Timeout::$timeout,)+
                }
            }
        }
    };
}

ops! {
    /// An update appended to a room's log and published (`APPEND`).
    Append => "append", Command;
    /// An update larger than `redis.inline_publish_bytes` appended (published by reference):
    /// moving up to `server.max_message_bytes` may take longer than a small call.
    AppendLarge => "append_large", Bulk;
    /// Awareness states of local clients stored and published (`AWARENESS`).
    Awareness => "awareness", Command;
    /// A room's snapshot and first log page (`LOAD`), then the further pages of its log.
    Load => "load", Bulk;
    /// The snapshot epoch, checked at the end of a load.
    LoadEpoch => "load_epoch", Command;
    /// A room's stored awareness states, read when it loads.
    LoadAwareness => "load_awareness", Command;
    /// Entries a node missed, with the snapshot when they were compacted (`CATCH_UP`).
    CatchUp => "catch_up", Bulk;
    /// A room's channel subscribed on the pub/sub connection.
    Subscribe => "subscribe", Command;
    /// The health check.
    Ping => "ping", Command;
    /// The convergence watchdog's read of rooms' last log ids.
    Watchdog => "watchdog", Command;
    /// Whether a room has stored state (the document API).
    Exists => "exists", Command;
    /// Rooms served cluster-wide, from the gateways' presence reports (the document API).
    List => "list", Command;
    /// A room's state deleted, with a message to every node serving it (`DELETE`).
    Delete => "delete", Command;
    /// A gateway's report of the rooms it serves.
    Presence => "presence", Command;
    /// The cluster-wide HTTP-callback claim (`CLAIM_CALLBACK`).
    Callback => "callback", Command;
    /// A room's due time set in, or removed from, the compaction queue.
    Schedule => "schedule", Command;
    /// Tasks read from the compaction queue (due tasks, depth, one room's due time).
    Queue => "queue", Command;
    /// A compactor lease claimed, renewed or released.
    Lease => "lease", Command;
    /// The snapshot a compactor merges into.
    ReadSnapshot => "read_snapshot", Bulk;
    /// A page of log entries a compactor merges.
    ReadLog => "read_log", Bulk;
    /// Entries left in a log after a compaction.
    LogLength => "log_length", Command;
    /// A merged snapshot written, fenced by lease and epoch (`WRITE_SNAPSHOT`).
    WriteSnapshot => "write_snapshot", Bulk;
    /// A snapshot read from object storage written into Redis when a room loads cold
    /// (`SEED_SNAPSHOT`).
    SeedSnapshot => "seed_snapshot", Bulk;
    /// Merged entries trimmed from a log.
    Trim => "trim", Bulk;
    /// An empty, fully compacted log deleted (`CLEANUP`).
    Cleanup => "cleanup", Command;
    /// The sweep for logs without a queued task (`CLUSTER NODES`, `SCAN`).
    Sweep => "sweep", Command;
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn labels_are_distinct_metric_label_values() {
        let labels: HashSet<&str> = Op::ALL.iter().map(|op| op.label()).collect();
        assert_eq!(labels.len(), Op::ALL.len(), "every op has its own label");
        for label in labels {
            assert!(
                label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{label}"
            );
        }
    }

    #[test]
    fn observability_doc_lists_every_label() {
        let doc = include_str!("../../../docs/observability.md");
        for op in Op::ALL {
            assert!(
                doc.contains(&format!("`{op}`")),
                "docs/observability.md: `{op}`"
            );
        }
    }

    #[test]
    fn only_calls_that_move_documents_get_the_bulk_timeout() {
        let bulk: Vec<&str> = Op::ALL
            .iter()
            .filter(|op| op.timeout() == Timeout::Bulk)
            .map(|op| op.label())
            .collect();
        assert_eq!(
            bulk,
            [
                "append_large",
                "load",
                "catch_up",
                "read_snapshot",
                "read_log",
                "write_snapshot",
                "seed_snapshot",
                "trim"
            ]
        );
        // Reads that belong to loading a room but move no document.
        for op in [Op::LoadAwareness, Op::LoadEpoch, Op::Exists, Op::List] {
            assert_eq!(op.timeout(), Timeout::Command, "{op}");
        }
    }
}
