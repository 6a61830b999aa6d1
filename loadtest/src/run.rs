//! A run: one step per rate (one step unless sweeping; a sweep ends on a failed step or two
//! steps in a row over the p99 target). Each step is a written sequence:
//!
//! 1. **seed** (join storms): one seeder per room pushes a `seed_bytes` document and waits for
//!    proof that the server applied it;
//! 2. **connect**: clients are started all at once (or `connect_rate` per second) and connect
//!    and sync, at most `connect_concurrency` handshakes at once; the phase ends when all are
//!    synced or nothing progressed for `connect_timeout`;
//! 3. **run**: writers write at the step's rate for `duration` seconds;
//! 4. **drain**: wait for deliveries still in flight until none arrived for `drain` seconds
//!    (at most six times that, or a minute);
//! 5. **stop**: cancel every client (each closes its socket) and collect their replicas;
//! 6. **check**: build one document per distinct replica and compare.
//!
//! Every client task is owned here (a `JoinHandle` in a list) and cancelled through the step's
//! token; tasks that do not stop within a grace period are aborted.

use crate::client::{self, ClientSpec, Outcome, Role, Shared, Window};
use crate::config::{Settings, MAX_DURATION_S};
use crate::converge;
use crate::metrics::{Metrics, Percentiles};
use crate::report::{self, GeneratorReport, Phases, ProcPhases, Report, ServerReport, StepReport};
use crate::room::Room;
use crate::sampler::{snapshot, ProcSnapshot, Sampler};
use anyhow::Context;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// The longest a drain may last while deliveries keep arriving: six quiet periods, at least
/// a minute.
pub fn drain_cap(drain_s: f64) -> Duration {
    Duration::from_secs_f64((drain_s * 6.0).max(60.0))
}

/// How long stopped clients get to close their sockets before they are aborted.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs every step and assembles the report. `cancel` (Ctrl-C) ends the current phase early.
pub async fn run(settings: Settings, cancel: CancellationToken) -> anyhow::Result<Report> {
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let settings = Arc::new(settings);
    let rates = settings.step_rates();
    let mut ids = IdAllocator::new();
    let mut steps = Vec::with_capacity(rates.len());
    let mut over_in_a_row = 0;
    for (index, rate) in rates.iter().enumerate() {
        let step = run_step(&settings, index, rates.len(), *rate, &mut ids, &cancel).await?;
        let over = step.latency.count > 0 && step.latency.p99_ms > settings.p99_target_ms;
        let failed = !step.problems().is_empty();
        over_in_a_row = if over { over_in_a_row + 1 } else { 0 };
        steps.push(step);
        // A sweep ends on a failed step, or on two steps in a row over the p99 target (one
        // may be a hiccup of a shared machine).
        if cancel.is_cancelled() || (rates.len() > 1 && (failed || over_in_a_row >= 2)) {
            break;
        }
    }
    Ok(Report::new((*settings).clone(), started_unix_s, steps))
}

/// Unique 53-bit yrs client ids: a random 21-bit prefix per run and a counter.
#[derive(Debug)]
struct IdAllocator {
    prefix: u64,
    next: u64,
}

impl IdAllocator {
    fn new() -> IdAllocator {
        IdAllocator {
            prefix: (u64::from(rand::random::<u32>()) & 0x1f_ffff) << 32,
            next: 1,
        }
    }

    fn next(&mut self) -> u64 {
        self.next += 1;
        self.prefix | (self.next & 0xffff_ffff)
    }
}

struct Step {
    settings: Arc<Settings>,
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<Outcome>>,
    sampler: Sampler,
    cancel: CancellationToken,
}

async fn run_step(
    settings: &Arc<Settings>,
    index: usize,
    steps: usize,
    rate: f64,
    ids: &mut IdAllocator,
    interrupt: &CancellationToken,
) -> anyhow::Result<StepReport> {
    let metrics = Arc::new(Metrics::new());
    let (window_tx, window_rx) = watch::channel(None);
    let cancel = interrupt.child_token();
    let shared = Arc::new(Shared {
        settings: Arc::clone(settings),
        metrics: Arc::clone(&metrics),
        connect_permits: Arc::new(Semaphore::new(settings.connect_concurrency)),
        window: window_rx,
        cancel: cancel.clone(),
        send_budget: AtomicU64::new(settings.max_updates),
    });
    let label = if steps > 1 {
        format!("{} {}/{} @{rate}/s", settings.name, index + 1, steps)
    } else {
        settings.name.clone()
    };
    let prefix = if steps > 1 {
        format!("{}-s{index}", settings.room_prefix)
    } else {
        settings.room_prefix.clone()
    };
    let seeders = usize::from(settings.seed_bytes > 0);
    let rooms: Vec<Arc<Room>> = (0..settings.rooms)
        .map(|r| {
            let members = settings.clients_per_room + seeders;
            Arc::new(Room::new(r, format!("{prefix}-{r}"), members))
        })
        .collect();
    let mut step = Step {
        settings: Arc::clone(settings),
        shared,
        handles: Vec::with_capacity(settings.total_clients() + rooms.len() * seeders),
        sampler: Sampler::new(label, settings.quiet, &settings.server_pids, metrics),
        cancel,
    };
    let mut phases = Phases::default();
    let before = snapshot(&settings.server_pids);

    // 1. Seed.
    if settings.seed_bytes > 0 {
        let t = Instant::now();
        step.seed(&rooms, ids).await?;
        phases.seed_s = t.elapsed().as_secs_f64();
    }

    // 2. Connect.
    let t = Instant::now();
    let urls = settings.urls.len();
    let mut specs = Vec::with_capacity(settings.total_clients());
    for room in &rooms {
        for k in 0..settings.clients_per_room {
            let role = if k < settings.writers_per_room && rate > 0.0 {
                Role::Writer
            } else {
                Role::Observer
            };
            let spec = ClientSpec {
                id: ids.next(),
                role,
                url_index: (room.index * settings.clients_per_room + k) % urls,
                room: Arc::clone(room),
                ready: None,
            };
            specs.push(spec);
        }
    }
    step.sampler.expected_clients = settings.total_clients() + rooms.len() * seeders;
    step.connect_phase(specs).await;
    phases.connect_s = t.elapsed().as_secs_f64();
    let synced = step.shared.metrics.snapshot().synced_first;
    let connect_per_s = synced as f64 / phases.connect_s.max(1e-3);
    let after_connect = snapshot(&settings.server_pids);

    // 3. Run.
    let t = Instant::now();
    let duration = Duration::from_secs_f64(settings.duration_s);
    let window = Window {
        start: t,
        stop: t + duration,
        rate,
    };
    // Receivers live as long as the clients; a send error only means none is left.
    let _ = window_tx.send(Some(window));
    let window_start = snapshot(&settings.server_pids);
    if settings.warmup_s > 0.0 {
        let warm_until = t + Duration::from_secs_f64(settings.warmup_s);
        step.sleep_ticking(crate::sampler::WARMUP, warm_until).await;
        step.sampler.end_warmup();
    }
    step.sleep_ticking("run", window.stop).await;
    phases.run_s = t.elapsed().as_secs_f64();

    // 4. Drain.
    let t = Instant::now();
    step.drain(&rooms).await;
    phases.drain_s = t.elapsed().as_secs_f64();
    let after_run = snapshot(&settings.server_pids);
    step.sampler.finish("drain");

    // 5. Stop, 6. check.
    let outcomes = step.stop().await;
    let t = Instant::now();
    let convergence = tokio::task::spawn_blocking(move || converge::check(outcomes))
        .await
        .context("convergence check panicked")?;
    phases.check_s = t.elapsed().as_secs_f64();

    let counters = step.shared.metrics.snapshot();
    let measured_s = (phases.run_s + phases.drain_s).max(1e-3);
    let procs = ProcSet {
        before,
        after_connect,
        window_start,
        after_run,
    };
    let servers = procs.servers(settings, synced);
    let server_cpu: Option<f64> = if servers.is_empty() {
        None
    } else {
        servers.iter().map(|s| s.cpu_run_s).sum()
    };
    let per_1k = |cpu: Option<f64>| {
        cpu.filter(|_| counters.deliveries > 0)
            .map(|s| s * 1e6 / counters.deliveries as f64)
    };
    let generator = GeneratorReport {
        threads: settings.threads,
        cpu_total_s: report::cpu_between(procs.before.own, procs.after_run.own),
        cpu_run_s: report::cpu_between(procs.window_start.own, procs.after_run.own),
        cpu_us_per_delivery: per_1k(report::cpu_between(
            procs.window_start.own,
            procs.after_run.own,
        )),
        rss_peak_bytes: procs.after_run.own.map(|s| s.hwm_bytes),
    };
    Ok(StepReport {
        index,
        rate,
        rooms: settings.rooms,
        clients: settings.total_clients(),
        writers: if rate > 0.0 {
            settings.rooms * settings.writers_per_room
        } else {
            0
        },
        seeders: rooms.len() * seeders,
        phases,
        counters,
        connect_per_s,
        sync_time: Percentiles::of(&step.sampler.sync),
        sent_per_s: counters.sent as f64 / settings.duration_s.max(1e-3),
        deliveries_per_s: counters.deliveries as f64 / measured_s,
        latency: Percentiles::of(&step.sampler.latency),
        convergence,
        server_cpu_ms_per_1k_deliveries: per_1k(server_cpu),
        servers,
        generator,
        timeline: std::mem::take(&mut step.sampler.timeline),
    })
}

impl Step {
    #[expect(
        clippy::disallowed_methods,
        reason = "the step owns its clients: it keeps every handle and awaits them all at its end"
    )]
    fn spawn(&mut self, spec: ClientSpec) {
        let shared = Arc::clone(&self.shared);
        self.handles.push(tokio::spawn(client::run(spec, shared)));
    }

    async fn seed(&mut self, rooms: &[Arc<Room>], ids: &mut IdAllocator) -> anyhow::Result<()> {
        let mut ready = Vec::with_capacity(rooms.len());
        for room in rooms {
            let (tx, rx) = oneshot::channel();
            ready.push(rx);
            self.spawn(ClientSpec {
                id: ids.next(),
                role: Role::Seeder(self.settings.seed_bytes),
                url_index: room.index % self.settings.urls.len(),
                room: Arc::clone(room),
                ready: Some(tx),
            });
        }
        self.sampler.expected_clients = rooms.len();
        let deadline =
            Instant::now() + Duration::from_secs_f64(self.settings.connect_timeout_s * 4.0);
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        for rx in ready {
            tokio::pin!(rx);
            loop {
                tokio::select! {
                    r = &mut rx => {
                        r.context("a seeder stopped before its document was applied")?;
                        break;
                    }
                    _ = ticks.tick() => self.sampler.tick("seed"),
                    _ = tokio::time::sleep_until(deadline) => anyhow::bail!("seeding timed out"),
                    _ = self.cancel.cancelled() => anyhow::bail!("interrupted while seeding"),
                }
            }
        }
        Ok(())
    }

    /// Starts the clients (all at once, or `connect_rate` per second) and waits until every
    /// client synced once, or no client synced for `connect_timeout`.
    async fn connect_phase(&mut self, specs: Vec<ClientSpec>) {
        let expected = self.sampler.expected_clients as u64;
        let stall = Duration::from_secs_f64(self.settings.connect_timeout_s);
        let rate = self.settings.connect_rate;
        let started = Instant::now();
        let mut pending = specs.into_iter().peekable();
        let mut spawned = 0u64;
        let mut last_progress = Instant::now();
        let mut last_synced = 0;
        let step = if rate > 0.0 { 10 } else { 100 };
        let mut ticks = tokio::time::interval(Duration::from_millis(step));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut next_print = Instant::now() + Duration::from_secs(1);
        loop {
            let due = if rate > 0.0 {
                (started.elapsed().as_secs_f64() * rate).ceil() as u64
            } else {
                u64::MAX
            };
            while spawned < due {
                let Some(spec) = pending.next() else { break };
                self.spawn(spec);
                spawned += 1;
                last_progress = Instant::now();
            }
            tokio::select! {
                _ = ticks.tick() => {}
                _ = self.cancel.cancelled() => return,
            }
            let synced = self.shared.metrics.snapshot().synced_first;
            if Instant::now() >= next_print {
                self.sampler.tick("conn");
                next_print += Duration::from_secs(1);
            }
            if synced >= expected && pending.peek().is_none() {
                return;
            }
            if synced > last_synced {
                last_synced = synced;
                last_progress = Instant::now();
            } else if last_progress.elapsed() > stall {
                return;
            }
            if started.elapsed().as_secs_f64() > MAX_DURATION_S {
                tracing::warn!("connect phase cut at {MAX_DURATION_S} s");
                return;
            }
        }
    }

    /// Samples once a second until `until`.
    async fn sleep_ticking(&mut self, phase: &'static str, until: Instant) {
        let mut ticks = tokio::time::interval_at(
            Instant::now() + Duration::from_secs(1),
            Duration::from_secs(1),
        );
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return,
                _ = ticks.tick() => self.sampler.tick(phase),
                _ = self.cancel.cancelled() => return,
            }
        }
    }

    /// Waits until every room's live deliveries caught up with what was sent, or until no
    /// delivery arrived for `drain` seconds (a saturated server may still be flushing its
    /// backlog), but never longer than [`drain_cap`].
    async fn drain(&mut self, rooms: &[Arc<Room>]) {
        let quiet = Duration::from_secs_f64(self.settings.drain_s);
        let cap = Instant::now() + drain_cap(self.settings.drain_s);
        let mut next_print = Instant::now() + Duration::from_secs(1);
        let mut last_live = u64::MAX;
        let mut last_progress = Instant::now();
        loop {
            let connected = self.shared.metrics.snapshot().connected.max(0) as u64;
            let live: u64 = rooms.iter().map(|r| r.live_deliveries()).sum();
            let caught_up = rooms.iter().all(|r| {
                let others = (r.members as u64).saturating_sub(1);
                r.live_deliveries() >= r.sent_count() * others
            });
            let all_connected = connected >= self.sampler.expected_clients as u64;
            if live != last_live {
                last_live = live;
                last_progress = Instant::now();
            }
            if (caught_up && all_connected)
                || last_progress.elapsed() >= quiet
                || Instant::now() >= cap
            {
                return;
            }
            if Instant::now() >= next_print {
                self.sampler.tick("drain");
                next_print += Duration::from_secs(1);
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = self.cancel.cancelled() => return,
            }
        }
    }

    /// Cancels every client and collects what they hand back.
    async fn stop(&mut self) -> Vec<Outcome> {
        self.cancel.cancel();
        let deadline = Instant::now() + STOP_GRACE;
        let mut outcomes = Vec::with_capacity(self.handles.len());
        for handle in self.handles.drain(..) {
            let abort = handle.abort_handle();
            match tokio::time::timeout_at(deadline, handle).await {
                Ok(Ok(outcome)) => outcomes.push(outcome),
                Ok(Err(e)) => tracing::warn!(error = %e, "client task failed"),
                Err(_) => {
                    abort.abort();
                    tracing::warn!("client task did not stop in time; aborted");
                }
            }
        }
        outcomes
    }
}

struct ProcSet {
    before: ProcSnapshot,
    after_connect: ProcSnapshot,
    window_start: ProcSnapshot,
    after_run: ProcSnapshot,
}

impl ProcSet {
    fn servers(&self, settings: &Settings, synced: u64) -> Vec<ServerReport> {
        settings
            .server_pids
            .iter()
            .enumerate()
            .map(|(i, pid)| {
                let at = |s: &ProcSnapshot| s.servers.get(i).copied().flatten();
                let samples = ProcPhases {
                    before: at(&self.before),
                    after_connect: at(&self.after_connect),
                    window_start: at(&self.window_start),
                    after_run: at(&self.after_run),
                };
                // Connections spread evenly over the URLs; per-server share.
                let share = synced / settings.urls.len().max(1) as u64;
                ServerReport {
                    pid: *pid,
                    rss_per_connection_bytes: report::per_connection(
                        samples.before,
                        samples.after_connect,
                        share,
                    ),
                    rss_per_connection_after_run_bytes: report::per_connection(
                        samples.before,
                        samples.after_run,
                        share,
                    ),
                    cpu_run_s: report::cpu_between(samples.window_start, samples.after_run),
                    samples,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_are_capped_but_never_below_a_minute() {
        assert_eq!(drain_cap(0.0), Duration::from_secs(60));
        assert_eq!(drain_cap(5.0), Duration::from_secs(60));
        assert_eq!(drain_cap(30.0), Duration::from_secs(180));
    }

    #[test]
    fn client_ids_are_unique_53_bit_values() {
        let mut ids = IdAllocator::new();
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert!(a < 1 << 53 && b < 1 << 53);
    }
}
