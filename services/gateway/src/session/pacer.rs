//! Pacing a connection by the rate limits (`[rate_limit]`). After each frame, the connection
//! and its room pay for it; a debt means the session stops reading from the socket until it is
//! paid (TCP backpressure — nothing is dropped, the session keeps writing). A connection kept
//! waiting without a break for `max_throttled` is closed (1008).

use crate::metrics::Metrics;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tokio::time::{sleep_until, Instant, Sleep};
use yws_core::{CloseReason, RateLimits, Room, Throttle};

/// A client that resumes sending this long after its wait ended took a break: a new run.
const BREAK: Duration = Duration::from_millis(100);

pub(super) struct Pacer {
    conn: Option<Throttle>,
    max_throttled: Duration,
    /// The wait in progress: the socket is not read until it ends.
    wait: Option<Pin<Box<Sleep>>>,
    /// When the current run of waits began, and when its last wait ends.
    run: Option<(Instant, Instant)>,
}

impl Pacer {
    pub(super) fn new(limits: RateLimits, max_throttled: Duration) -> Self {
        Pacer {
            conn: Throttle::new(limits, Instant::now()),
            max_throttled,
            wait: None,
            run: None,
        }
    }

    /// Whether the session must not read now.
    pub(super) fn waiting(&self) -> bool {
        self.wait.is_some()
    }

    /// The wait ended (see [`until_paced`]).
    pub(super) fn resume(&mut self, metrics: &Metrics) {
        if self.wait.take().is_some() {
            metrics.throttled_connections.dec();
        }
    }

    /// Pays for a frame of `messages` messages and `bytes` bytes. Starts a wait when the
    /// connection or its room is over its limits; an error when the connection has been over
    /// them without a break for too long.
    pub(super) fn pay(
        &mut self,
        room: &Room,
        messages: usize,
        bytes: usize,
        metrics: &Metrics,
    ) -> Result<(), CloseReason> {
        let now = Instant::now();
        let conn = self
            .conn
            .as_mut()
            .map_or(Duration::ZERO, |t| t.take(messages, bytes, now));
        let room_wait = room.throttle(messages, bytes);
        let wait = conn.max(room_wait);
        if self.run.is_some_and(|(_, end)| now > end + BREAK) {
            self.run = None;
        }
        if wait.is_zero() {
            return Ok(());
        }
        let scope = if conn >= room_wait {
            "connection"
        } else {
            "room"
        };
        metrics.throttled_frames.with_label_values(&[scope]).inc();
        let until = now + wait;
        let began = self.run.map_or(now, |(began, _)| began);
        self.run = Some((began, until));
        if until.saturating_duration_since(began) > self.max_throttled {
            return Err(CloseReason::PolicyViolation);
        }
        if self.wait.is_none() {
            metrics.throttled_connections.inc();
        }
        self.wait = Some(Box::pin(sleep_until(until)));
        Ok(())
    }

    /// The session ended.
    pub(super) fn end(mut self, metrics: &Metrics) {
        self.resume(metrics);
    }
}

/// Completes when the pacer's wait ends; never without one. A `poll_fn` over the borrow
/// rather than an `async fn`: this future is part of every session's state.
pub(super) fn until_paced(pacer: &mut Option<Box<Pacer>>) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(
        move |cx| match pacer.as_mut().and_then(|p| p.wait.as_mut()) {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        },
    )
}
