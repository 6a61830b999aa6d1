//! The JSON report: per-step measurements, the sustained-throughput summary of a sweep, and
//! the verdict (`ok` and the list of problems) that decides the exit code.

use crate::config::Settings;
use crate::converge::Convergence;
use crate::metrics::{CounterSnapshot, Percentiles};
use crate::procfs::ProcSample;
use serde::Serialize;

/// One second of a step.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Tick {
    /// Seconds since the step started.
    pub t_s: f64,
    /// The step's phase at this tick.
    pub phase: &'static str,
    /// Clients connected and synced.
    pub connected: i64,
    /// Updates sent per second.
    pub sent_per_s: f64,
    /// Deliveries per second.
    pub deliveries_per_s: f64,
    /// Awareness updates received per second.
    pub awareness_per_s: f64,
    /// Median fan-out latency in this interval, ms.
    pub p50_ms: f64,
    /// 99th percentile in this interval, ms.
    pub p99_ms: f64,
    /// Maximum in this interval, ms.
    pub max_ms: f64,
    /// Sum over the sampled servers, 100 = one core.
    pub server_cpu_pct: f64,
    /// Server RSS, MiB.
    pub server_rss_mib: f64,
    /// Generator CPU, % of one core.
    pub generator_cpu_pct: f64,
}

/// Samples of the processes at the step's phase boundaries.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ProcPhases {
    /// Before connecting.
    pub before: Option<ProcSample>,
    /// After every client connected.
    pub after_connect: Option<ProcSample>,
    /// When writing started.
    pub window_start: Option<ProcSample>,
    /// After the drain.
    pub after_run: Option<ProcSample>,
}

/// A server process during a step.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ServerReport {
    /// The process id.
    pub pid: u32,
    /// /proc samples at the phase boundaries.
    pub samples: ProcPhases,
    /// RSS growth from before connecting to after, per synced client.
    pub rss_per_connection_bytes: Option<f64>,
    /// The same, measured after the write (or idle) phase.
    pub rss_per_connection_after_run_bytes: Option<f64>,
    /// CPU seconds from the start of writing to the end of draining.
    pub cpu_run_s: Option<f64>,
}

/// The generator's own cost.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct GeneratorReport {
    /// Tokio worker threads.
    pub threads: usize,
    /// Generator CPU over the whole step, s.
    pub cpu_total_s: Option<f64>,
    /// CPU while writing and draining, s.
    pub cpu_run_s: Option<f64>,
    /// CPU of the generator per delivery it received during the run, in microseconds.
    pub cpu_us_per_delivery: Option<f64>,
    /// Peak RSS, bytes.
    pub rss_peak_bytes: Option<u64>,
}

/// How long each phase took.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Phases {
    /// Seeding, s.
    pub seed_s: f64,
    /// Connecting, s.
    pub connect_s: f64,
    /// Writing, s.
    pub run_s: f64,
    /// Draining, s.
    pub drain_s: f64,
    /// Convergence check, s.
    pub check_s: f64,
}

/// One step: a full connect → write → drain → check cycle at one rate.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StepReport {
    /// Step number (0-based).
    pub index: usize,
    /// Updates per second per writer.
    pub rate: f64,
    /// Rooms.
    pub rooms: usize,
    /// Clients.
    pub clients: usize,
    /// Writing clients.
    pub writers: usize,
    /// Extra clients that pushed a seed document (one per room in join storms).
    pub seeders: usize,
    /// Duration of each phase.
    pub phases: Phases,
    /// Counters at the end of the step.
    pub counters: CounterSnapshot,
    /// Clients synced per second during the connect phase.
    pub connect_per_s: f64,
    /// Connect → sync step 2 received, over every (re)connect.
    pub sync_time: Percentiles,
    /// Updates sent per second.
    pub sent_per_s: f64,
    /// Deliveries over the write and drain phases, per second.
    pub deliveries_per_s: f64,
    /// Fan-out latency: writer sent → observer received (after the warm-up).
    pub latency: Percentiles,
    /// The end-of-step check.
    pub convergence: Convergence,
    /// Every sampled server.
    pub servers: Vec<ServerReport>,
    /// All sampled servers together: CPU per 1,000 deliveries (= µs per delivery).
    pub server_cpu_ms_per_1k_deliveries: Option<f64>,
    /// The generator's own cost.
    pub generator: GeneratorReport,
    /// One tick per second.
    pub timeline: Vec<Tick>,
}

impl StepReport {
    /// What is wrong with this step (empty when it passed).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let prefix = format!("step {} (rate {})", self.index, self.rate);
        let never = (self.clients + self.seeders) as u64
            - self
                .counters
                .synced_first
                .min((self.clients + self.seeders) as u64);
        if never > 0 {
            p.push(format!("{prefix}: {never} clients never synced"));
        }
        let c = &self.convergence;
        if c.converged_rooms < c.rooms {
            p.push(format!(
                "{prefix}: {} of {} rooms did not converge or miss updates",
                c.rooms - c.converged_rooms,
                c.rooms
            ));
        }
        if c.missing > 0 {
            p.push(format!("{prefix}: {} deliveries missing", c.missing));
        }
        if c.apply_errors > 0 {
            p.push(format!(
                "{prefix}: {} updates failed to apply",
                c.apply_errors
            ));
        }
        if self.counters.protocol_errors > 0 {
            p.push(format!(
                "{prefix}: {} undecodable frames",
                self.counters.protocol_errors
            ));
        }
        p
    }
}

/// The best step of a sweep that stayed within the p99 target without problems.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sustained {
    /// The p99 target of the sweep, ms.
    pub p99_target_ms: f64,
    /// The sustained step.
    pub step: usize,
    /// Updates per second per writer.
    pub rate: f64,
    /// Deliveries per second.
    pub deliveries_per_s: f64,
    /// 99th percentile in this interval, ms.
    pub p99_ms: f64,
    /// Server CPU (all servers) per 1,000 deliveries, ms.
    pub server_cpu_ms_per_1k_deliveries: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `yws-load`.
    pub tool: &'static str,
    /// The tool's version.
    pub version: &'static str,
    /// Scenario name.
    pub scenario: String,
    /// What the scenario is.
    pub description: String,
    /// When the run started (Unix seconds).
    pub started_unix_s: u64,
    /// The settings of the run.
    pub settings: Settings,
    /// Every step.
    pub steps: Vec<StepReport>,
    /// The best step within the p99 target (sweeps).
    pub sustained: Option<Sustained>,
    /// Whether the run passed its checks.
    pub ok: bool,
    /// Why it did not.
    pub problems: Vec<String>,
}

impl Report {
    /// Assembles the report and its verdict.
    pub fn new(settings: Settings, started_unix_s: u64, steps: Vec<StepReport>) -> Report {
        let problems: Vec<String> = steps.iter().flat_map(StepReport::problems).collect();
        let sustained = sustained(&steps, settings.p99_target_ms);
        Report {
            tool: "yws-load",
            version: env!("CARGO_PKG_VERSION"),
            scenario: settings.name.clone(),
            description: settings.description.clone(),
            started_unix_s,
            settings,
            steps,
            sustained,
            ok: problems.is_empty(),
            problems,
        }
    }
}

/// The step with the highest delivery rate whose p99 met the target and that had no problems.
pub fn sustained(steps: &[StepReport], p99_target_ms: f64) -> Option<Sustained> {
    steps
        .iter()
        .filter(|s| s.latency.count > 0 && s.latency.p99_ms <= p99_target_ms)
        .filter(|s| s.problems().is_empty())
        .max_by(|a, b| a.deliveries_per_s.total_cmp(&b.deliveries_per_s))
        .map(|s| Sustained {
            p99_target_ms,
            step: s.index,
            rate: s.rate,
            deliveries_per_s: s.deliveries_per_s,
            p99_ms: s.latency.p99_ms,
            server_cpu_ms_per_1k_deliveries: s.server_cpu_ms_per_1k_deliveries,
        })
}

/// `(after - before) / n`, when both samples exist and `n > 0`.
pub fn per_connection(
    before: Option<ProcSample>,
    after: Option<ProcSample>,
    n: u64,
) -> Option<f64> {
    let (b, a) = (before?, after?);
    (n > 0).then(|| (a.rss_bytes as f64 - b.rss_bytes as f64) / n as f64)
}

/// CPU seconds between two samples.
pub fn cpu_between(before: Option<ProcSample>, after: Option<ProcSample>) -> Option<f64> {
    let (b, a) = (before?, after?);
    Some(a.cpu_us.saturating_sub(b.cpu_us) as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Flags;

    fn step(index: usize, rate: f64, deliveries_per_s: f64, p99_ms: f64) -> StepReport {
        StepReport {
            index,
            rate,
            rooms: 1,
            clients: 2,
            counters: CounterSnapshot {
                synced_first: 2,
                ..CounterSnapshot::default()
            },
            deliveries_per_s,
            latency: Percentiles {
                count: 10,
                p99_ms,
                ..Percentiles::default()
            },
            convergence: Convergence {
                rooms: 1,
                converged_rooms: 1,
                ..Convergence::default()
            },
            ..StepReport::default()
        }
    }

    fn settings() -> Settings {
        Flags {
            urls: Some(vec!["ws://127.0.0.1:1".into()]),
            ..Flags::default()
        }
        .resolve()
        .unwrap()
    }

    #[test]
    fn sustained_picks_the_fastest_step_within_target() {
        let steps = vec![
            step(0, 10.0, 1_000.0, 5.0),
            step(1, 20.0, 2_000.0, 20.0),
            step(2, 40.0, 4_000.0, 80.0),
        ];
        let report = Report::new(settings(), 0, steps);
        assert!(report.ok, "{:?}", report.problems);
        let s = report.sustained.clone().unwrap();
        assert_eq!((s.step, s.rate, s.deliveries_per_s), (1, 20.0, 2_000.0));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["steps"].as_array().unwrap().len(), 3);
        assert_eq!(json["sustained"]["p99_target_ms"], 25.0);
        assert_eq!(json["steps"][0]["latency"]["p99_ms"], 5.0);
    }

    #[test]
    fn problems_fail_the_verdict() {
        let mut bad = step(0, 10.0, 1_000.0, 5.0);
        bad.convergence.missing = 3;
        bad.convergence.converged_rooms = 0;
        bad.counters.synced_first = 1;
        let report = Report::new(settings(), 0, vec![bad]);
        assert!(!report.ok);
        assert_eq!(report.problems.len(), 3, "{:?}", report.problems);
        assert!(report.sustained.is_none());
    }

    #[test]
    fn per_connection_and_cpu_arithmetic() {
        let s = |rss, cpu| {
            Some(ProcSample {
                rss_bytes: rss,
                cpu_us: cpu,
                ..ProcSample::default()
            })
        };
        assert_eq!(per_connection(s(1_000, 0), s(5_000, 0), 4), Some(1_000.0));
        assert_eq!(per_connection(s(1_000, 0), None, 4), None);
        assert_eq!(per_connection(s(1_000, 0), s(5_000, 0), 0), None);
        assert_eq!(cpu_between(s(0, 1_000_000), s(0, 3_500_000)), Some(2.5));
    }
}
