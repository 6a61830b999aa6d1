//! The once-a-second sampler of a step: drains the latency shards, samples the processes,
//! appends a [`Tick`] to the timeline and prints the progress line.

use crate::metrics::{new_histogram, CounterSnapshot, Metrics, Percentiles};
use crate::procfs::{self, ProcSample};
use crate::report::Tick;
use hdrhistogram::Histogram;
use std::sync::Arc;
use tokio::time::Instant;

/// The phase name of the warm-up (latencies not counted).
pub const WARMUP: &str = "warm";

/// Samples of every watched process at one instant.
#[derive(Debug, Clone)]
pub struct ProcSnapshot {
    /// When the samples were taken.
    pub at: Instant,
    /// One per `--server-pid`, in order; `None` when the process could not be read.
    pub servers: Vec<Option<ProcSample>>,
    /// This process.
    pub own: Option<ProcSample>,
}

/// Samples the servers and this process.
pub fn snapshot(pids: &[u32]) -> ProcSnapshot {
    ProcSnapshot {
        at: Instant::now(),
        servers: pids.iter().map(|p| procfs::sample(Some(*p))).collect(),
        own: procfs::sample(None),
    }
}

/// Accumulates a step's timeline and histograms.
#[derive(Debug)]
pub struct Sampler {
    label: String,
    quiet: bool,
    pids: Vec<u32>,
    metrics: Arc<Metrics>,
    started: Instant,
    last_at: Instant,
    last: CounterSnapshot,
    last_procs: ProcSnapshot,
    interval_latency: Histogram<u64>,
    interval_sync: Histogram<u64>,
    /// Every fan-out latency of the step.
    pub latency: Histogram<u64>,
    /// Every connect-to-synced time of the step.
    pub sync: Histogram<u64>,
    /// One tick per second.
    pub timeline: Vec<Tick>,
    /// Clients the step expects to be connected (for the progress line).
    pub expected_clients: usize,
}

impl Sampler {
    /// A sampler starting now.
    pub fn new(label: String, quiet: bool, pids: &[u32], metrics: Arc<Metrics>) -> Sampler {
        let now = Instant::now();
        Sampler {
            label,
            quiet,
            pids: pids.to_vec(),
            metrics,
            started: now,
            last_at: now,
            last: CounterSnapshot::default(),
            last_procs: snapshot(pids),
            interval_latency: new_histogram(),
            interval_sync: new_histogram(),
            latency: new_histogram(),
            sync: new_histogram(),
            timeline: Vec::new(),
            expected_clients: 0,
        }
    }

    /// Seconds since the step started.
    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The last sample of a step: always collects the remaining latencies, but adds a tick
    /// only when enough time passed for its rates to mean something.
    pub fn finish(&mut self, phase: &'static str) {
        if self.last_at.elapsed().as_secs_f64() >= 0.5 {
            self.tick(phase);
        } else {
            self.metrics
                .drain(&mut self.interval_latency, &mut self.interval_sync);
            let _ = self.latency.add(&self.interval_latency);
            let _ = self.sync.add(&self.interval_sync);
            self.interval_latency.reset();
            self.interval_sync.reset();
        }
    }

    /// The end of the warm-up: its latencies are left out of the step's percentiles; a tick is
    /// added when the interval is long enough to mean something.
    pub fn end_warmup(&mut self) {
        if self.last_at.elapsed().as_secs_f64() >= 0.5 {
            self.tick(WARMUP);
        } else {
            self.metrics
                .drain(&mut self.interval_latency, &mut self.interval_sync);
            let _ = self.sync.add(&self.interval_sync);
            self.interval_latency.reset();
            self.interval_sync.reset();
        }
    }

    /// Takes one sample; prints the progress line unless quiet. Latencies of the
    /// [`WARMUP`] phase are not added to the step's histogram.
    pub fn tick(&mut self, phase: &'static str) {
        let now = Instant::now();
        let dt = now.duration_since(self.last_at).as_secs_f64().max(1e-3);
        self.metrics
            .drain(&mut self.interval_latency, &mut self.interval_sync);
        if phase != WARMUP {
            let _ = self.latency.add(&self.interval_latency);
        }
        let _ = self.sync.add(&self.interval_sync);
        let p = Percentiles::of(&self.interval_latency);
        self.interval_latency.reset();
        self.interval_sync.reset();
        let c = self.metrics.snapshot();
        let procs = snapshot(&self.pids);
        let cpu_pct = |before: Option<ProcSample>, after: Option<ProcSample>| match (before, after)
        {
            (Some(b), Some(a)) => a.cpu_us.saturating_sub(b.cpu_us) as f64 / 1e6 / dt * 100.0,
            _ => 0.0,
        };
        let server_cpu_pct: f64 = procs
            .servers
            .iter()
            .zip(&self.last_procs.servers)
            .map(|(a, b)| cpu_pct(*b, *a))
            .sum();
        let server_rss: u64 = procs.servers.iter().flatten().map(|s| s.rss_bytes).sum();
        let rate = |now: u64, before: u64| now.saturating_sub(before) as f64 / dt;
        let tick = Tick {
            t_s: self.started.elapsed().as_secs_f64(),
            phase,
            connected: c.connected,
            sent_per_s: rate(c.sent, self.last.sent),
            deliveries_per_s: rate(c.deliveries, self.last.deliveries),
            awareness_per_s: rate(c.awareness_received, self.last.awareness_received),
            p50_ms: p.p50_ms,
            p99_ms: p.p99_ms,
            max_ms: p.max_ms,
            server_cpu_pct,
            server_rss_mib: server_rss as f64 / (1024.0 * 1024.0),
            generator_cpu_pct: cpu_pct(self.last_procs.own, procs.own),
        };
        if !self.quiet {
            self.print(&tick, &c);
        }
        self.timeline.push(tick);
        self.last = c;
        self.last_at = now;
        self.last_procs = procs;
    }

    #[allow(clippy::print_stderr, reason = "the progress line goes to stderr")]
    fn print(&self, t: &Tick, c: &CounterSnapshot) {
        let servers = if self.pids.is_empty() {
            String::new()
        } else {
            format!(
                "  srv cpu {:>4.0}% rss {:>6.1} MiB",
                t.server_cpu_pct, t.server_rss_mib
            )
        };
        eprintln!(
            "[{} {:>5} {:>5.0}s] conn {}/{}  sent {:>7.0}/s  deliv {:>8.0}/s  p50 {:>6.2} p99 {:>7.2} max {:>7.2} ms{}  gen cpu {:>4.0}%  fail {} drop {}",
            self.label,
            t.phase,
            t.t_s,
            c.connected,
            self.expected_clients,
            t.sent_per_s,
            t.deliveries_per_s,
            t.p50_ms,
            t.p99_ms,
            t.max_ms,
            servers,
            t.generator_cpu_pct,
            c.connect_failures,
            c.disconnects,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn ticks_rates_and_a_final_partial_interval() {
        let metrics = Arc::new(Metrics::new());
        let mut sampler = Sampler::new("t".into(), true, &[], Arc::clone(&metrics));
        for client in 0..100 {
            metrics.frame(client, 10, Some(2_000));
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        sampler.tick("run");
        assert_eq!(sampler.timeline.len(), 1);
        let tick = &sampler.timeline[0];
        assert!((tick.deliveries_per_s - 100.0).abs() < 1.0, "{tick:?}");
        assert!((tick.p99_ms - 2.0).abs() < 0.01, "{tick:?}");
        // A few milliseconds later: the latencies are kept, the tick is not.
        metrics.frame(1, 10, Some(4_000));
        tokio::time::advance(Duration::from_millis(5)).await;
        sampler.finish("drain");
        assert_eq!(sampler.timeline.len(), 1);
        assert_eq!(sampler.latency.len(), 101);
        tokio::time::advance(Duration::from_secs(1)).await;
        sampler.finish("drain");
        assert_eq!(sampler.timeline.len(), 2);
        // Warm-up latencies appear in the timeline, not in the step's histogram.
        metrics.frame(1, 10, Some(9_000));
        tokio::time::advance(Duration::from_secs(1)).await;
        sampler.tick(WARMUP);
        metrics.frame(1, 10, Some(9_000));
        sampler.end_warmup();
        assert_eq!(sampler.timeline.len(), 3);
        assert!((sampler.timeline[2].max_ms - 9.0).abs() < 0.05);
        assert_eq!(sampler.latency.len(), 101);
    }
}
