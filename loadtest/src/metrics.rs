//! Counters and latency histograms shared by every client task.
//!
//! Clients record into one of [`SHARDS`] mutex-guarded HDR histograms (picked by client id),
//! so two runtime threads rarely contend. Once a second the run loop [`Metrics::drain`]s the
//! shards into the interval and cumulative histograms it owns.

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Number of histogram shards.
pub const SHARDS: usize = 16;
/// Highest latency a histogram tracks: 60 s, in microseconds (larger values are clamped).
pub const MAX_LATENCY_US: u64 = 60_000_000;

/// A latency histogram in microseconds, 3 significant figures.
#[expect(
    clippy::expect_used,
    reason = "constant bounds (1 ≤ 60 s, 3 figures) that hdrhistogram accepts"
)]
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

/// Recorded under one lock per frame, so the hot path touches no shared atomics.
#[derive(Debug)]
struct Shard {
    latency: Histogram<u64>,
    sync: Histogram<u64>,
    deliveries: u64,
    frames: u64,
    bytes: u64,
}

/// Monotonic counters of one step.
#[derive(Debug, Default)]
pub struct Counters {
    /// Updates sent.
    pub sent: AtomicU64,
    /// Own updates echoed back by the server.
    pub echoes: AtomicU64,
    /// Received updates not matched to a sent one.
    pub unmatched: AtomicU64,
    /// Bytes sent.
    pub bytes_sent: AtomicU64,
    /// Awareness updates sent.
    pub awareness_sent: AtomicU64,
    /// Awareness updates received.
    pub awareness_received: AtomicU64,
    /// Connection attempts.
    pub connect_attempts: AtomicU64,
    /// Attempts that did not reach sync.
    pub connect_failures: AtomicU64,
    /// Clients synced for the first time.
    pub synced_first: AtomicU64,
    /// Synced connections that dropped.
    pub disconnects: AtomicU64,
    /// Syncs after a reconnect.
    pub resyncs: AtomicU64,
    /// Malformed frames from the server.
    pub protocol_errors: AtomicU64,
    /// Writers stopped by `max_updates`.
    pub send_budget_exhausted: AtomicU64,
    /// Largest sync step 2 received, bytes.
    pub step2_bytes_max: AtomicU64,
    /// How connections ended, by the server's close code (see [`CloseKind`]).
    pub closes: [AtomicU64; CloseKind::ALL.len()],
    /// Clients currently connected and synced.
    pub connected: AtomicI64,
}

/// A point-in-time copy of [`Counters`].
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Updates sent.
    pub sent: u64,
    /// Updates received from other clients (fan-out deliveries).
    pub deliveries: u64,
    /// Own updates echoed back by the server.
    pub echoes: u64,
    /// Received updates not matched to a sent one.
    pub unmatched: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Frames received.
    pub frames_received: u64,
    /// Awareness updates sent.
    pub awareness_sent: u64,
    /// Awareness updates received.
    pub awareness_received: u64,
    /// Connection attempts.
    pub connect_attempts: u64,
    /// Attempts that did not reach sync.
    pub connect_failures: u64,
    /// Clients synced for the first time.
    pub synced_first: u64,
    /// Synced connections that dropped.
    pub disconnects: u64,
    /// Syncs after a reconnect.
    pub resyncs: u64,
    /// Malformed frames from the server.
    pub protocol_errors: u64,
    /// Writers stopped by `max_updates`.
    pub send_budget_exhausted: u64,
    /// Largest sync step 2 received, bytes.
    pub step2_bytes_max: u64,
    /// Clients connected and synced at the snapshot.
    pub connected: i64,
    /// Connections ended by the server with 1001 (going away / no pong).
    pub closed_1001: u64,
    /// … 1008 (policy: limits, rate).
    pub closed_1008: u64,
    /// … 1011 (internal error).
    pub closed_1011: u64,
    /// … 1012 (server restarting).
    pub closed_1012: u64,
    /// … 1013 (too slow, or Redis unavailable).
    pub closed_1013: u64,
    /// … any other close code.
    pub closed_other: u64,
    /// Connections that ended without a close frame (reset, EOF, read error, sync timeout).
    pub dropped: u64,
}

/// How a connection ended, as counted in [`Counters::closes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    /// Close code 1001.
    GoingAway,
    /// Close code 1008.
    Policy,
    /// Close code 1011.
    Internal,
    /// Close code 1012.
    Restart,
    /// Close code 1013.
    TryAgain,
    /// Another close code.
    Other,
    /// No close frame.
    Dropped,
}

impl CloseKind {
    /// Every kind, in counter order.
    pub const ALL: [CloseKind; 7] = [
        CloseKind::GoingAway,
        CloseKind::Policy,
        CloseKind::Internal,
        CloseKind::Restart,
        CloseKind::TryAgain,
        CloseKind::Other,
        CloseKind::Dropped,
    ];

    /// The kind of a close frame's code.
    pub fn of_code(code: u16) -> CloseKind {
        match code {
            1001 => CloseKind::GoingAway,
            1008 => CloseKind::Policy,
            1011 => CloseKind::Internal,
            1012 => CloseKind::Restart,
            1013 => CloseKind::TryAgain,
            _ => CloseKind::Other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters and histograms of one step.
#[derive(Debug)]
pub struct Metrics {
    /// The step's counters.
    pub counters: Counters,
    shards: Vec<Mutex<Shard>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Metrics {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    latency: new_histogram(),
                    sync: new_histogram(),
                    deliveries: 0,
                    frames: 0,
                    bytes: 0,
                })
            })
            .collect();
        Metrics {
            counters: Counters::default(),
            shards,
        }
    }

    fn shard(&self, client: u64) -> &Mutex<Shard> {
        &self.shards[(client % SHARDS as u64) as usize]
    }

    /// One frame of `bytes` received by `client`, a delivery when it has a latency.
    pub fn frame(&self, client: u64, bytes: usize, latency_us: Option<u64>) {
        let mut shard = self.shard(client).lock();
        shard.frames += 1;
        shard.bytes += bytes as u64;
        if let Some(us) = latency_us {
            shard.deliveries += 1;
            shard.latency.saturating_record(us.clamp(1, MAX_LATENCY_US));
        }
    }

    /// One fan-out delivery and its latency (from a frame already counted).
    pub fn delivery(&self, client: u64, latency_us: u64) {
        let mut shard = self.shard(client).lock();
        shard.deliveries += 1;
        shard
            .latency
            .saturating_record(latency_us.clamp(1, MAX_LATENCY_US));
    }

    /// A connect-to-synced time.
    pub fn synced(&self, client: u64, sync_us: u64, first: bool) {
        if first {
            add(&self.counters.synced_first, 1);
        } else {
            add(&self.counters.resyncs, 1);
        }
        self.counters.connected.fetch_add(1, Ordering::Relaxed);
        self.shard(client)
            .lock()
            .sync
            .saturating_record(sync_us.clamp(1, MAX_LATENCY_US));
    }

    /// Adds `n` to a counter.
    pub fn add(&self, pick: impl FnOnce(&Counters) -> &AtomicU64, n: u64) {
        add(pick(&self.counters), n);
    }

    /// One connection ended this way.
    pub fn closed(&self, kind: CloseKind) {
        add(&self.counters.closes[kind.index()], 1);
    }

    /// Raises the largest sync step 2 seen.
    pub fn step2_bytes(&self, n: u64) {
        self.counters
            .step2_bytes_max
            .fetch_max(n, Ordering::Relaxed);
    }

    /// Moves the recorded latencies into `latency` and `sync`, leaving the shards empty.
    pub fn drain(&self, latency: &mut Histogram<u64>, sync: &mut Histogram<u64>) {
        for shard in &self.shards {
            let mut s = shard.lock();
            // Same bounds on both sides, so adding cannot fail.
            let _ = latency.add(&s.latency);
            let _ = sync.add(&s.sync);
            s.latency.reset();
            s.sync.reset();
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> CounterSnapshot {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (mut deliveries, mut frames, mut bytes) = (0, 0, 0);
        for shard in &self.shards {
            let s = shard.lock();
            deliveries += s.deliveries;
            frames += s.frames;
            bytes += s.bytes;
        }
        CounterSnapshot {
            sent: l(&c.sent),
            deliveries,
            echoes: l(&c.echoes),
            unmatched: l(&c.unmatched),
            bytes_sent: l(&c.bytes_sent),
            bytes_received: bytes,
            frames_received: frames,
            awareness_sent: l(&c.awareness_sent),
            awareness_received: l(&c.awareness_received),
            connect_attempts: l(&c.connect_attempts),
            connect_failures: l(&c.connect_failures),
            synced_first: l(&c.synced_first),
            disconnects: l(&c.disconnects),
            resyncs: l(&c.resyncs),
            protocol_errors: l(&c.protocol_errors),
            send_budget_exhausted: l(&c.send_budget_exhausted),
            step2_bytes_max: l(&c.step2_bytes_max),
            connected: c.connected.load(Ordering::Relaxed),
            closed_1001: l(&c.closes[CloseKind::GoingAway.index()]),
            closed_1008: l(&c.closes[CloseKind::Policy.index()]),
            closed_1011: l(&c.closes[CloseKind::Internal.index()]),
            closed_1012: l(&c.closes[CloseKind::Restart.index()]),
            closed_1013: l(&c.closes[CloseKind::TryAgain.index()]),
            closed_other: l(&c.closes[CloseKind::Other.index()]),
            dropped: l(&c.closes[CloseKind::Dropped.index()]),
        }
    }
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
}

impl Percentiles {
    /// Summarises a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1_000.0;
        Percentiles {
            count: h.len(),
            mean_ms: h.mean() / 1_000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_are_counted_by_code() {
        let m = Metrics::new();
        for code in [1012, 1012, 1013, 4404] {
            m.closed(CloseKind::of_code(code));
        }
        m.closed(CloseKind::Dropped);
        let s = m.snapshot();
        assert_eq!(
            (
                s.closed_1012,
                s.closed_1013,
                s.closed_other,
                s.dropped,
                s.closed_1001
            ),
            (2, 1, 1, 1, 0)
        );
    }

    #[test]
    fn shards_drain_into_percentiles() {
        let m = Metrics::new();
        for i in 1..=1_000u64 {
            m.frame(i, 10, Some(i * 1_000)); // 1 ms .. 1000 ms
        }
        m.frame(1, 5, None);
        m.synced(1, 5_000, true);
        m.synced(2, 7_000, false);
        let mut lat = new_histogram();
        let mut sync = new_histogram();
        m.drain(&mut lat, &mut sync);
        let p = Percentiles::of(&lat);
        assert_eq!(p.count, 1_000);
        assert!((p.p50_ms - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p99_ms - 990.0).abs() < 1.0, "{p:?}");
        assert!((p.max_ms - 1_000.0).abs() < 1.0, "{p:?}");
        assert_eq!(Percentiles::of(&sync).count, 2);
        // Drained: a second drain adds nothing.
        m.drain(&mut lat, &mut sync);
        assert_eq!(lat.len(), 1_000);
        let snap = m.snapshot();
        assert_eq!(snap.deliveries, 1_000);
        assert_eq!((snap.frames_received, snap.bytes_received), (1_001, 10_005));
        assert_eq!((snap.synced_first, snap.resyncs, snap.connected), (1, 1, 2));
        assert_eq!(Percentiles::of(&new_histogram()), Percentiles::default());
    }

    #[test]
    fn out_of_range_latencies_are_clamped_not_lost() {
        let m = Metrics::new();
        m.delivery(0, 0);
        m.delivery(0, u64::MAX);
        let mut lat = new_histogram();
        let mut sync = new_histogram();
        m.drain(&mut lat, &mut sync);
        assert_eq!(lat.len(), 2);
    }
}
