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

impl Dispatcher {
    /// Applies this node's own entries after `own_unsure_since` up to the last applied one,
    /// read back from the log (or the snapshot, where a compaction trimmed them). They were
    /// skipped as applied when written, but a write whose outcome was unknown here (a timeout
    /// after Redis ran it) was never applied: without this the room would miss it for good,
    /// and its writer, reconnecting elsewhere, would not send it again. Applying an entry
    /// twice is harmless. On a read failure the repair tick tries again.
    pub(super) async fn reapply_own(&mut self, channel: &str) {
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        let Some(mut from) = sub.own_unsure_since else {
            return;
        };
        if !sub.live {
            return; // it loads everything the log holds
        }
        while from < sub.last {
            let missed = match reader::missed_after(&self.redis, &sub.keys, from, self.page).await {
                Ok(missed) => missed,
                Err(e) => {
                    tracing::warn!(room = %sub.room.name(), error = %e, "could not read back this node's unconfirmed writes; will retry");
                    sub.own_unsure_since = Some(from);
                    return;
                }
            };
            if let Some((doc, upto)) = &missed.snapshot {
                if let Err(e) = sub.room.apply_remote_update(doc) {
                    tracing::error!(room = %sub.room.name(), error = %e, "snapshot could not be applied");
                }
                from = from.max(*upto);
            }
            let count = missed.entries.len() + missed.bad.len();
            for b in &missed.bad {
                if let Some(id) = b.id {
                    from = from.max(id);
                }
            }
            let mut reached = false;
            for entry in missed.entries {
                if entry.id > sub.last {
                    // Not reached yet: the live path applies it (own entries now included).
                    reached = true;
                    break;
                }
                from = from.max(entry.id);
                if entry.node == self.node {
                    if let Err(e) = sub.room.apply_remote_update(&entry.update) {
                        tracing::warn!(room = %sub.room.name(), id = %entry.id, error = %e, "log entry could not be applied; skipped");
                    }
                }
            }
            if reached || count < self.page {
                break;
            }
        }
        sub.own_unsure_since = None;
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
