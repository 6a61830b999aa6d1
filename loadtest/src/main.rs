//! `yws-load`: parses flags once into settings, builds a multi-threaded runtime, runs the
//! scenario (or `compare`s two reports) and writes the outputs. See the library docs for the
//! layout and `loadtest/README.md` for usage.

use clap::Parser;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;
use yws_load::config::{Cli, Command};
use yws_load::{compare, run, write_outputs};

/// Settings were invalid (EX_USAGE).
const EXIT_USAGE: u8 = 64;
/// The run finished but its check failed.
const EXIT_CHECK_FAILED: u8 = 2;

fn main() -> ExitCode {
    tracing_subscriber_init();
    let cli = Cli::parse();
    if let Some(Command::Compare(args)) = cli.command {
        return match compare_reports(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("yws-load compare: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match cli.run.resolve() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("yws-load: invalid settings: {e:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.threads)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("yws-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_and_report(settings)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_CHECK_FAILED),
        Err(e) => {
            eprintln!("yws-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs, writes the outputs, prints the summary; `Ok(passed)`.
async fn run_and_report(settings: yws_load::config::Settings) -> anyhow::Result<bool> {
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    #[expect(
        clippy::disallowed_methods,
        reason = "the signal watcher's handle is aborted when the run ends"
    )]
    let signals = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("yws-load: interrupted; stopping the current step");
            on_signal.cancel();
        }
    });
    let result = run::run(settings, cancel).await;
    signals.abort();
    let report = result?;
    print_summary(&report);
    for w in write_outputs(&report)? {
        eprintln!("wrote {}", w.display());
    }
    eprintln!("{}", if report.ok { "PASS" } else { "FAIL" });
    Ok(report.ok)
}

fn print_summary(report: &yws_load::report::Report) {
    for s in &report.steps {
        let c = &s.counters;
        eprintln!(
            "step {} rate {}/s: {} clients synced ({:.0}/s, {} connect failures), sent {} ({:.0}/s), \
             deliveries {} ({:.0}/s), latency p50 {:.2} p95 {:.2} p99 {:.2} max {:.2} ms, \
             missing {}, rooms converged {}/{}, disconnects {}, resyncs {}, \
             closes 1001/1008/1011/1012/1013/other/none {}/{}/{}/{}/{}/{}/{}",
            s.index, s.rate, c.synced_first, s.connect_per_s, c.connect_failures, c.sent,
            s.sent_per_s, c.deliveries, s.deliveries_per_s, s.latency.p50_ms, s.latency.p95_ms,
            s.latency.p99_ms, s.latency.max_ms, s.convergence.missing,
            s.convergence.converged_rooms, s.convergence.rooms, c.disconnects, c.resyncs,
            c.closed_1001, c.closed_1008, c.closed_1011, c.closed_1012, c.closed_1013,
            c.closed_other, c.dropped,
        );
        for srv in &s.servers {
            eprintln!(
                "  server {}: cpu {:.2} s during run, rss/connection {} bytes",
                srv.pid,
                srv.cpu_run_s.unwrap_or(f64::NAN),
                srv.rss_per_connection_bytes
                    .map_or("-".into(), |b| format!("{b:.0}")),
            );
        }
        if let Some(ms) = s.server_cpu_ms_per_1k_deliveries {
            eprintln!("  server CPU per 1,000 deliveries: {ms:.2} ms");
        }
        eprintln!(
            "  generator: cpu {:.2} s during run, {:.2} us per delivery",
            s.generator.cpu_run_s.unwrap_or(f64::NAN),
            s.generator.cpu_us_per_delivery.unwrap_or(f64::NAN),
        );
    }
    if let Some(s) = &report.sustained {
        eprintln!(
            "sustained within p99 {} ms: {:.0} deliveries/s at {}/s per writer (p99 {:.2} ms)",
            s.p99_target_ms, s.deliveries_per_s, s.rate, s.p99_ms
        );
    }
    for p in &report.problems {
        eprintln!("PROBLEM: {p}");
    }
}

#[allow(
    clippy::print_stdout,
    reason = "the compare subcommand prints its table"
)]
fn compare_reports(args: &yws_load::config::CompareArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let read = |p: &std::path::Path| -> anyhow::Result<serde_json::Value> {
        let text = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", p.display()))
    };
    let comparison = compare::compare(&read(&args.baseline)?, &read(&args.candidate)?);
    print!("{}", compare::render(&comparison));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&comparison)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Logs go to stderr: warnings by default, more when `RUST_LOG` asks (e.g. `yws_load=debug`
/// shows why connections dropped).
fn tracing_subscriber_init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
