//! Rooms whose channel subscription is gone. The server ends sharded subscriptions when their
//! slot migrates (`SUNSUBSCRIBE` push) and a connection can drop; until the subscription is
//! back (the resubscriber in `backend.rs` renews it), the room's log is polled every second,
//! the room is counted in `yws_redis_rooms_without_live_delivery` (and `/readyz`), and if even
//! its log cannot be read for [`UNREADABLE_LOG_CLOSE`], its clients are closed with 1013 so
//! they reconnect rather than edit alone.

use super::Dispatcher;
use std::time::Duration;
use tokio::time::Instant;
use yws_core::CloseReason;

/// How long a room may be without both its subscription and its log before its clients are
/// closed (1013).
const UNREADABLE_LOG_CLOSE: Duration = Duration::from_secs(10);

impl Dispatcher {
    /// The server ended `channel`'s subscription (or confirmed that this node ended it, in
    /// which case the room is gone already).
    pub(super) fn dropped(&mut self, channel: &str) {
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        if sub.subscribed {
            tracing::warn!(room = %sub.room.name(), "redis ended the room's subscription (slot migration or failover); polling its log until it is resubscribed");
        }
        sub.subscribed = false;
        sub.needs_catch_up = true;
    }

    /// `channel` is subscribed (again): read what was published meanwhile.
    pub(super) async fn resubscribed(&mut self, channel: &str) {
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        if !sub.subscribed && sub.live {
            tracing::info!(room = %sub.room.name(), "room resubscribed; live delivery is back");
        }
        sub.subscribed = true;
        sub.failing_since = None;
        if sub.live && sub.needs_catch_up {
            self.catch_up(channel).await;
        }
    }

    /// Every second: catch up rooms that need it and poll the logs of rooms without a
    /// subscription; count the latter; close the clients of rooms whose log is unreadable too.
    pub(super) async fn repair(&mut self) {
        let due: Vec<String> = self
            .subs
            .iter()
            .filter(|(_, s)| s.live && (s.needs_catch_up || !s.subscribed))
            .map(|(c, _)| c.clone())
            .collect();
        let unsure: Vec<String> = self
            .subs
            .iter()
            .filter(|(_, s)| s.live && s.own_unsure_since.is_some())
            .map(|(c, _)| c.clone())
            .collect();
        for channel in unsure {
            self.reapply_own(&channel).await;
        }
        for channel in due {
            self.catch_up(&channel).await;
            let Some(sub) = self.subs.get_mut(&channel) else {
                continue;
            };
            if sub.subscribed || !sub.needs_catch_up {
                sub.failing_since = None;
                continue;
            }
            // Neither live delivery nor the log: the room cannot be kept in step.
            let since = *sub.failing_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= UNREADABLE_LOG_CLOSE {
                tracing::warn!(room = %sub.room.name(), "neither the room's subscription nor its log can be read; closing its clients (1013)");
                sub.room.kick_all(CloseReason::BackendUnavailable);
                sub.failing_since = None;
            }
        }
        let without = self
            .subs
            .values()
            .filter(|s| s.live && !s.subscribed)
            .count();
        let gauge = &self.redis.metrics.rooms_without_live_delivery;
        let before = gauge.get();
        if before == 0 && without > 0 {
            tracing::warn!(
                rooms = without,
                "rooms without live delivery; polling their logs"
            );
        } else if before > 0 && without == 0 {
            tracing::info!("every room has live delivery again");
        }
        gauge.set(without as i64);
    }
}
