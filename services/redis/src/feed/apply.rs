//! Applying log entries to a room: from live messages and from the log when catching up.

use super::{Dispatcher, Sub};
use crate::client::Redis;
use crate::entry::now_ms;
use crate::reader::{self, LogEntry};

impl Dispatcher {
    /// Reads everything after the room's last applied entry from its log.
    pub(super) async fn catch_up(&mut self, channel: &str) {
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        if !sub.live {
            sub.overflowed = true;
            return;
        }
        sub.needs_catch_up = false;
        loop {
            let missed = match reader::missed_after(&self.redis, &sub.keys, sub.last, self.page)
                .await
            {
                Ok(missed) => missed,
                Err(e) => {
                    tracing::warn!(room = %sub.room.name(), error = %e, "catch-up failed; will retry");
                    sub.needs_catch_up = true;
                    return;
                }
            };
            if let Some((doc, upto)) = &missed.snapshot {
                // Entries this node missed were compacted away meanwhile: the snapshot holds them.
                tracing::info!(room = %sub.room.name(), last = %sub.last, upto = %upto, "missed entries were compacted; applying the snapshot");
                if let Err(e) = sub.room.apply_remote_update(doc) {
                    tracing::error!(room = %sub.room.name(), error = %e, "snapshot could not be applied during catch-up");
                }
                sub.last = sub.last.max(*upto);
                sub.room.advance_position((*upto).into());
            }
            let received_ms = now_ms();
            let count = missed.entries.len() + missed.bad.len();
            for b in &missed.bad {
                self.redis
                    .metrics
                    .entries_skipped
                    .with_label_values(&[b.reason])
                    .inc();
                tracing::warn!(room = %sub.room.name(), id = ?b.id, reason = b.reason, "unreadable log entry skipped");
                if let Some(id) = b.id {
                    sub.last = sub.last.max(id);
                }
            }
            for entry in missed.entries {
                // From the log, an unreadable entry is skipped for good (by its id).
                sub.last = sub.last.max(entry.id);
                apply(&self.node, &self.redis, sub, &entry, received_ms);
            }
            if count < self.page {
                return;
            }
        }
    }
}

/// Applies an entry that arrived at `received_ms` to the room (which hands it to the room's
/// clients); `false` when it could not be applied (counted, logged).
pub(super) fn apply(
    node: &str,
    redis: &Redis,
    sub: &Sub,
    entry: &LogEntry,
    received_ms: u64,
) -> bool {
    let own = entry.node == node;
    if own && !sub.apply_own {
        sub.room.advance_position(entry.id.into());
        return true; // applied locally when it was written
    }
    match sub.room.apply_remote_update(&entry.update) {
        Ok(()) => {
            sub.room.advance_position(entry.id.into());
            if !own && entry.ms > 0 {
                let seconds = |ms: u64| ms.saturating_sub(entry.ms) as f64 / 1000.0;
                redis.metrics.read_lag_seconds.observe(seconds(received_ms));
                redis.metrics.fanout_seconds.observe(seconds(now_ms()));
            }
            true
        }
        Err(e) => {
            redis
                .metrics
                .entries_skipped
                .with_label_values(&["bad_update"])
                .inc();
            tracing::warn!(room = %sub.room.name(), id = %entry.id, error = %e, "log entry could not be applied; skipped");
            false
        }
    }
}
