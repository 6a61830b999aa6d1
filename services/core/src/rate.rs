//! Rate limits as token buckets. A bucket refills at `per_sec` up to `burst`; paying more than
//! it holds leaves a debt that is paid back over time, and the payer waits until then. Used per
//! connection and per room for messages and bytes: the gateway pays for a frame after handling
//! it and stops reading from the socket for the wait (TCP backpressure) — nothing is dropped.

use std::time::Duration;
use tokio::time::Instant;

/// A rate: `per_sec` on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens per second.
    pub per_sec: f64,
    /// What a full bucket holds.
    pub burst: f64,
}

impl Rate {
    /// `per_sec` with a burst of `burst` seconds' worth (at least one token); `None` for 0.
    pub fn per_second(per_sec: u64, burst: Duration) -> Option<Rate> {
        (per_sec > 0).then(|| {
            let per_sec = per_sec as f64;
            Rate {
                per_sec,
                burst: (per_sec * burst.as_secs_f64()).max(1.0),
            }
        })
    }
}

/// One bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: Rate, now: Instant) -> Self {
        TokenBucket {
            rate,
            tokens: rate.burst,
            at: now,
        }
    }

    /// Takes `amount` at `now`; how long the payer must wait until the bucket is out of debt
    /// (zero when it is not in debt).
    pub fn take(&mut self, amount: f64, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_sec).min(self.rate.burst) - amount;
        self.at = now;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate.per_sec)
        }
    }
}

/// Limits on messages and bytes per second; either may be off.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateLimits {
    /// y-websocket messages (a frame may carry several).
    pub messages: Option<Rate>,
    /// Bytes of frames.
    pub bytes: Option<Rate>,
}

impl RateLimits {
    /// Whether any limit is set.
    pub fn is_on(&self) -> bool {
        self.messages.is_some() || self.bytes.is_some()
    }
}

/// The buckets of one [`RateLimits`].
#[derive(Debug, Clone)]
pub struct Throttle {
    messages: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
}

impl Throttle {
    /// Full buckets for `limits`; `None` when no limit is set.
    pub fn new(limits: RateLimits, now: Instant) -> Option<Self> {
        limits.is_on().then(|| Throttle {
            messages: limits.messages.map(|r| TokenBucket::new(r, now)),
            bytes: limits.bytes.map(|r| TokenBucket::new(r, now)),
        })
    }

    /// Pays for a frame of `messages` messages and `bytes` bytes; the wait it costs.
    pub fn take(&mut self, messages: usize, bytes: usize, now: Instant) -> Duration {
        let wait = |bucket: &mut Option<TokenBucket>, amount: usize| {
            bucket
                .as_mut()
                .map_or(Duration::ZERO, |b| b.take(amount as f64, now))
        };
        wait(&mut self.messages, messages).max(wait(&mut self.bytes, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_free_and_a_debt_is_paid_back_at_the_rate() {
        let start = Instant::now();
        let rate = Rate::per_second(10, Duration::from_secs(1)).unwrap();
        let mut bucket = TokenBucket::new(rate, start);
        assert_eq!(bucket.take(10.0, start), Duration::ZERO, "the burst");
        // Five more than it holds: half a second of debt.
        assert_eq!(bucket.take(5.0, start), Duration::from_millis(500));
        // Half a second later the debt is paid; one more token costs 100 ms.
        let later = start + Duration::from_millis(500);
        assert_eq!(bucket.take(1.0, later), Duration::from_millis(100));
        // A long pause refills only up to the burst.
        let much_later = later + Duration::from_secs(60);
        assert_eq!(bucket.take(10.0, much_later), Duration::ZERO);
        assert!(bucket.take(1.0, much_later) > Duration::ZERO);
    }

    #[test]
    fn a_throttle_waits_for_the_slower_of_its_buckets_and_none_is_no_limit() {
        let now = Instant::now();
        assert!(Throttle::new(RateLimits::default(), now).is_none());
        assert_eq!(Rate::per_second(0, Duration::from_secs(1)), None);
        let limits = RateLimits {
            messages: Rate::per_second(100, Duration::from_secs(1)),
            bytes: Rate::per_second(1000, Duration::from_secs(1)),
        };
        let mut throttle = Throttle::new(limits, now).unwrap();
        // 1 message but 3000 bytes: the byte bucket is 2000 short, 2 s.
        assert_eq!(throttle.take(1, 3000, now), Duration::from_secs(2));
        // A frame of many tiny messages is limited by the message bucket.
        let mut throttle = Throttle::new(limits, now).unwrap();
        assert_eq!(throttle.take(400, 10, now), Duration::from_secs(3));
    }
}
