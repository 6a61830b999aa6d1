//! # yws-load
//!
//! A load-test harness for y-websocket servers: N rooms × K clients spread round-robin over
//! a list of URLs, speaking the real protocol (sync handshake, updates, awareness), measuring
//! connect rate, fan-out latency and throughput, the servers' memory and CPU (from `/proc`)
//! and its own CPU, and checking at the end that every room converged.
//!
//! ## Layout
//!
//! - [`config`]: flags over a TOML scenario file → validated [`config::Settings`].
//! - [`header`]: cheap `(client, clock)` identification of updates on the hot path.
//! - [`room`]: what the clients of a room share (sent updates, send instants).
//! - [`replica`]: a client's lazily applied document and its order-free fingerprint.
//! - [`client`]: one simulated client: connect, sync, write, reconnect; its receive path.
//! - [`metrics`]: counters and sharded HDR histograms.
//! - [`sampler`]: the once-a-second timeline and progress line.
//! - [`procfs`]: RSS and CPU time of processes.
//! - [`converge`]: the end-of-step convergence and missing-delivery check.
//! - [`run`]: the phases of a step (seed, connect, run, drain, stop, check) and sweeps.
//! - [`report`], [`svg`], [`compare`]: the JSON report, its charts and side-by-side ratios.
//! - [`seed`]: generated payloads and seed documents.
//!
//! The binary (`src/main.rs`) parses flags, builds the runtime, runs and writes the outputs.
//! Exit codes: 0 passed, 2 the check failed (convergence, missing deliveries, clients that
//! never synced), 64 invalid settings, 1 anything else.

pub mod client;
pub mod compare;
pub mod config;
pub mod converge;
pub mod header;
pub mod metrics;
pub mod procfs;
pub mod replica;
pub mod report;
pub mod room;
pub mod run;
pub mod sampler;
pub mod seed;
pub mod svg;

use std::path::{Path, PathBuf};

/// Writes the JSON report and, next to it (or into `charts_dir`), the SVG charts of each step.
/// Returns the files written.
pub fn write_outputs(report: &report::Report) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context;
    let mut written = Vec::new();
    let settings = &report.settings;
    if let Some(path) = &settings.json {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let json = serde_json::to_vec_pretty(report)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        written.push(path.clone());
    }
    let dir: Option<PathBuf> = settings.charts_dir.clone().or_else(|| {
        settings
            .json
            .as_ref()
            .map(|j| j.parent().unwrap_or(Path::new(".")).to_path_buf())
    });
    let Some(dir) = dir else {
        return Ok(written);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stem = settings
        .json
        .as_ref()
        .and_then(|j| j.file_stem())
        .map_or_else(
            || settings.name.clone(),
            |s| s.to_string_lossy().into_owned(),
        );
    for step in &report.steps {
        let suffix = if report.steps.len() > 1 {
            format!("-step{}", step.index)
        } else {
            String::new()
        };
        let title = format!("{} @{}/s", settings.name, step.rate);
        for (kind, svg) in [
            ("latency", svg::latency_chart(&title, &step.timeline)),
            ("throughput", svg::throughput_chart(&title, &step.timeline)),
            ("cpu", svg::cpu_chart(&title, &step.timeline)),
        ] {
            let path = dir.join(format!("{stem}{suffix}.{kind}.svg"));
            std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}
