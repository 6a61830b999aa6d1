//! # yws-telemetry
//!
//! What every yws binary needs to be observable, built once in `main` and passed down.
//!
//! ## Layout
//! - [`logging`]: `tracing` subscriber setup — readable text by default, JSON when configured;
//!   `RUST_LOG` overrides the configured level.
//! - [`metrics`]: the Prometheus [`Registry`](prometheus::Registry) with the standard
//!   `process_*` collector, and text encoding for `/metrics`.
//! - [`health`]: [`Health`], liveness and readiness as the HTTP probes report them.
//! - [`process`]: the shared `main` (config, logging, runtime, exit codes).
//! - [`signals`]: SIGTERM/SIGINT, registered early.
//! - [`admin`]: a small HTTP server for `/healthz`, `/readyz` and `/metrics` on its own port.

pub mod admin;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod process;
pub mod signals;

pub use health::Health;
pub use logging::{LogConfig, LogFormat};
