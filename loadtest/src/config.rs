//! Settings: command-line flags layered over an optional TOML scenario file, parsed once
//! into a validated [`Settings`].
//!
//! Precedence: flag > scenario file > default. Scenario files use the flag names with `_`
//! instead of `-` (`clients_per_room = 3`), plus `name` and `description`; unknown keys are
//! errors.

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Hard ceilings that keep every run bounded, whatever the flags say.
pub const MAX_CLIENTS: usize = 50_000;
/// Longest write phase accepted, in seconds.
pub const MAX_DURATION_S: f64 = 3_600.0;
/// Most (update, receiver) pairs one step may plan: each costs a 16-byte key in the
/// receiver's replica until the end-of-step check (400 M ≈ 6.4 GB).
pub const MAX_PLANNED_DELIVERIES: f64 = 400e6;
/// Most updates a seed document may be split into.
pub const MAX_SEED_UPDATES: usize = 1_000_000;
/// Fewest seed bytes per seed update (a seed cell takes about 48 bytes).
pub const MIN_SEED_BYTES_PER_UPDATE: usize = 64;

/// `yws-load`: a swarm of y-websocket clients with reports and charts.
#[derive(Debug, Parser)]
#[command(
    name = "yws-load",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// A subcommand; without one, a load run.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of a load run.
    #[command(flatten)]
    pub run: Flags,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compare two JSON reports (baseline first) and print the ratios.
    Compare(CompareArgs),
}

/// Arguments of `yws-load compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline report (e.g. the reference server).
    pub baseline: PathBuf,
    /// The candidate report (e.g. yws).
    pub candidate: PathBuf,
    /// Also write the comparison as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Flags of a load run; every one overrides the scenario file.
#[derive(Debug, Default, Clone, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flags {
    /// Scenario file (TOML) setting any of the flags below.
    #[arg(long)]
    #[serde(skip)]
    pub scenario: Option<PathBuf>,
    /// Scenario name (reports only).
    #[arg(long)]
    pub name: Option<String>,
    /// Free text describing the scenario (reports only).
    #[arg(skip)]
    pub description: Option<String>,
    /// Server URLs, comma separated; clients are spread round-robin: ws://a,ws://b.
    #[arg(long, value_delimiter = ',')]
    pub urls: Option<Vec<String>>,
    /// Number of rooms.
    #[arg(long)]
    pub rooms: Option<usize>,
    /// Clients in each room.
    #[arg(long)]
    pub clients_per_room: Option<usize>,
    /// How many of a room's clients write (the rest observe); default: all.
    #[arg(long)]
    pub writers_per_room: Option<usize>,
    /// Updates per second per writer (0: nobody writes).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Characters inserted per update.
    #[arg(long)]
    pub payload_bytes: Option<usize>,
    /// Seconds of writing (or of idling, with --rate 0).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds at the start of writing whose latencies are left out of the percentiles.
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Connection handshakes in flight at once.
    #[arg(long)]
    pub connect_concurrency: Option<usize>,
    /// Clients started per second in the connect phase (0: all at once).
    #[arg(long)]
    pub connect_rate: Option<f64>,
    /// Seconds a client may take to connect and sync before the attempt fails.
    #[arg(long)]
    pub connect_timeout: Option<f64>,
    /// Seconds to wait after writing stops for deliveries still in flight.
    #[arg(long)]
    pub drain: Option<f64>,
    /// Awareness updates per second per client (0: no awareness traffic).
    #[arg(long)]
    pub awareness_rate: Option<f64>,
    /// Size of a document seeded into every room before the clients join (join storms).
    #[arg(long)]
    pub seed_bytes: Option<usize>,
    /// Write the seed document as this many updates, one message each, instead of one sync
    /// step 2 (a room log as it looks before compaction); 1: one message.
    #[arg(long)]
    pub seed_updates: Option<usize>,
    /// Reconnect (with backoff, resyncing through sync step 1) when a connection drops.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub reconnect: Option<bool>,
    /// Upper bound on updates sent in one step, over all writers.
    #[arg(long)]
    pub max_updates: Option<u64>,
    /// Bytes of not-yet-applied updates a client may hold before it applies them to a doc.
    #[arg(long)]
    pub retain_bytes: Option<usize>,
    /// Largest WebSocket message accepted or sent, in bytes.
    #[arg(long)]
    pub max_message_bytes: Option<usize>,
    /// Room name prefix (default: a random one per run, so runs never share rooms).
    #[arg(long)]
    pub room_prefix: Option<String>,
    /// Server process ids to sample (RSS and CPU from /proc), comma separated: one per URL.
    #[arg(long = "server-pid", value_delimiter = ',')]
    #[serde(rename = "server_pid")]
    pub server_pids: Option<Vec<u32>>,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write SVG charts into this directory (default: next to the JSON report).
    #[arg(long)]
    pub charts_dir: Option<PathBuf>,
    /// Run one step per rate (updates/s per writer) and report the best one within the p99 target.
    #[arg(long, value_delimiter = ',')]
    pub sweep_rates: Option<Vec<f64>>,
    /// The p99 fan-out latency a sweep step must stay under, in milliseconds.
    #[arg(long)]
    pub p99_target_ms: Option<f64>,
    /// Tokio worker threads of the generator (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress line every second.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub quiet: Option<bool>,
}

/// The validated settings of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Scenario name.
    pub name: String,
    /// What the scenario is.
    pub description: String,
    /// Server URLs; clients are spread round-robin.
    pub urls: Vec<String>,
    /// Number of rooms.
    pub rooms: usize,
    /// Clients in each room.
    pub clients_per_room: usize,
    /// Clients of a room that write.
    pub writers_per_room: usize,
    /// Updates per second per writer.
    pub rate: f64,
    /// Characters inserted per update.
    pub payload_bytes: usize,
    /// Seconds of writing.
    pub duration_s: f64,
    /// Seconds at the start of writing left out of the percentiles.
    pub warmup_s: f64,
    /// Handshakes in flight at once.
    pub connect_concurrency: usize,
    /// Clients started per second (0: all at once).
    pub connect_rate: f64,
    /// Seconds a client may take to connect and sync.
    pub connect_timeout_s: f64,
    /// Quiet seconds that end the drain after writing.
    pub drain_s: f64,
    /// Awareness updates per second per client.
    pub awareness_rate: f64,
    /// Bytes of the document seeded into every room.
    pub seed_bytes: usize,
    /// Updates the seed is written as.
    pub seed_updates: usize,
    /// Whether dropped clients reconnect (backoff, resync).
    pub reconnect: bool,
    /// Most updates one step may send.
    pub max_updates: u64,
    /// Bytes of unapplied updates a client holds before applying them.
    pub retain_bytes: usize,
    /// Largest WebSocket message.
    pub max_message_bytes: usize,
    /// Prefix of every room name.
    pub room_prefix: String,
    /// Server processes sampled from /proc.
    pub server_pids: Vec<u32>,
    /// Where the JSON report goes.
    pub json: Option<PathBuf>,
    /// Where the SVG charts go.
    pub charts_dir: Option<PathBuf>,
    /// One step per rate (a sweep); empty: one step at `rate`.
    pub sweep_rates: Vec<f64>,
    /// The p99 a sweep step must stay under, ms.
    pub p99_target_ms: f64,
    /// Tokio worker threads of the generator.
    pub threads: usize,
    /// No progress line.
    pub quiet: bool,
}

impl Flags {
    /// Reads a scenario file.
    pub fn from_toml_file(path: &Path) -> anyhow::Result<Flags> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading scenario {}", path.display()))?;
        Flags::from_toml(&text).with_context(|| format!("parsing scenario {}", path.display()))
    }

    /// Parses scenario text.
    pub fn from_toml(text: &str) -> anyhow::Result<Flags> {
        Ok(toml::from_str(text)?)
    }

    /// `self` where set, otherwise `base`.
    pub fn over(self, base: Flags) -> Flags {
        macro_rules! pick {
            ($($f:ident),*) => { Flags { $($f: self.$f.or(base.$f),)* } };
        }
        pick!(
            scenario,
            name,
            description,
            urls,
            rooms,
            clients_per_room,
            writers_per_room,
            rate,
            payload_bytes,
            duration,
            warmup,
            connect_concurrency,
            connect_rate,
            connect_timeout,
            drain,
            awareness_rate,
            seed_bytes,
            seed_updates,
            reconnect,
            max_updates,
            retain_bytes,
            max_message_bytes,
            room_prefix,
            server_pids,
            json,
            charts_dir,
            sweep_rates,
            p99_target_ms,
            threads,
            quiet
        )
    }

    /// Loads the scenario file named by `--scenario` (if any) under these flags, then
    /// validates the result.
    pub fn resolve(self) -> anyhow::Result<Settings> {
        let merged = match &self.scenario {
            Some(path) => {
                let file = Flags::from_toml_file(path)?;
                let default_name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
                let mut merged = self.over(file);
                merged.name = merged.name.or(default_name);
                merged
            }
            None => self,
        };
        merged.into_settings()
    }

    fn into_settings(self) -> anyhow::Result<Settings> {
        let clients_per_room = self.clients_per_room.unwrap_or(3);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let settings = Settings {
            name: self.name.unwrap_or_else(|| "adhoc".into()),
            description: self.description.unwrap_or_default(),
            urls: self.urls.unwrap_or_default(),
            rooms: self.rooms.unwrap_or(4),
            clients_per_room,
            writers_per_room: self.writers_per_room.unwrap_or(clients_per_room),
            rate: self.rate.unwrap_or(5.0),
            payload_bytes: self.payload_bytes.unwrap_or(32),
            duration_s: self.duration.unwrap_or(10.0),
            warmup_s: self.warmup.unwrap_or(0.0),
            connect_concurrency: self.connect_concurrency.unwrap_or(64),
            connect_rate: self.connect_rate.unwrap_or(0.0),
            connect_timeout_s: self.connect_timeout.unwrap_or(30.0),
            drain_s: self.drain.unwrap_or(5.0),
            awareness_rate: self.awareness_rate.unwrap_or(0.0),
            seed_bytes: self.seed_bytes.unwrap_or(0),
            seed_updates: self.seed_updates.unwrap_or(1),
            reconnect: self.reconnect.unwrap_or(true),
            max_updates: self.max_updates.unwrap_or(5_000_000),
            retain_bytes: self.retain_bytes.unwrap_or(1 << 20),
            max_message_bytes: self.max_message_bytes.unwrap_or(256 << 20),
            room_prefix: self
                .room_prefix
                .unwrap_or_else(|| format!("yws-load-{:08x}", rand::random::<u32>())),
            server_pids: self.server_pids.unwrap_or_default(),
            json: self.json,
            charts_dir: self.charts_dir,
            sweep_rates: self.sweep_rates.unwrap_or_default(),
            p99_target_ms: self.p99_target_ms.unwrap_or(25.0),
            threads: self.threads.unwrap_or(cores),
            quiet: self.quiet.unwrap_or(false),
        };
        settings.validate()?;
        Ok(settings)
    }
}

impl Settings {
    /// Total simulated clients (seeders not included).
    pub fn total_clients(&self) -> usize {
        self.rooms * self.clients_per_room
    }

    /// The rates to run: the sweep, or the single `rate`.
    pub fn step_rates(&self) -> Vec<f64> {
        if self.sweep_rates.is_empty() {
            vec![self.rate]
        } else {
            self.sweep_rates.clone()
        }
    }

    /// The most deliveries one step can produce: updates (capped by `max_updates`) times the
    /// other clients of the room.
    pub fn planned_deliveries(&self) -> f64 {
        let fastest = self.step_rates().into_iter().fold(0.0, f64::max);
        let updates = (self.rooms * self.writers_per_room) as f64 * fastest * self.duration_s;
        updates.min(self.max_updates as f64) * self.clients_per_room.saturating_sub(1) as f64
    }

    /// Checks that the run is well-formed and bounded.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.urls.is_empty() {
            bail!("no server URL given (--urls ws://host:port)");
        }
        for url in &self.urls {
            if !url.starts_with("ws://") {
                bail!("unsupported URL {url:?}: only ws:// is supported");
            }
        }
        if self.rooms == 0 || self.clients_per_room == 0 {
            bail!("--rooms and --clients-per-room must be at least 1");
        }
        if self.total_clients() > MAX_CLIENTS {
            bail!(
                "{} clients exceed the limit of {MAX_CLIENTS}",
                self.total_clients()
            );
        }
        if self.writers_per_room > self.clients_per_room {
            bail!("--writers-per-room exceeds --clients-per-room");
        }
        let finite = |v: f64| v.is_finite() && v >= 0.0;
        for (name, v) in [
            ("rate", self.rate),
            ("awareness-rate", self.awareness_rate),
            ("connect-rate", self.connect_rate),
            ("connect-timeout", self.connect_timeout_s),
            ("drain", self.drain_s),
            ("p99-target-ms", self.p99_target_ms),
        ] {
            if !finite(v) || v > 100_000.0 {
                bail!("--{name} must be between 0 and 100000, got {v}");
            }
        }
        if !finite(self.duration_s) || self.duration_s > MAX_DURATION_S {
            bail!("--duration must be between 0 and {MAX_DURATION_S} seconds");
        }
        if !finite(self.warmup_s) || (self.warmup_s > 0.0 && self.warmup_s >= self.duration_s) {
            bail!("--warmup must be shorter than --duration");
        }
        if self
            .sweep_rates
            .iter()
            .any(|r| !finite(*r) || *r > 100_000.0)
        {
            bail!("--sweep-rates must be rates between 0 and 100000");
        }
        if self.sweep_rates.len() > 32 {
            bail!("--sweep-rates takes at most 32 steps");
        }
        if self.connect_concurrency == 0 || self.threads == 0 || self.max_updates == 0 {
            bail!("--connect-concurrency, --threads and --max-updates must be at least 1");
        }
        if self.payload_bytes == 0 || self.payload_bytes > 1 << 20 {
            bail!("--payload-bytes must be between 1 and 1 MiB");
        }
        if self.seed_bytes > 1 << 30 {
            bail!("--seed-bytes is limited to 1 GiB");
        }
        if self.seed_updates == 0 || self.seed_updates > MAX_SEED_UPDATES {
            bail!("--seed-updates must be between 1 and {MAX_SEED_UPDATES}");
        }
        if self.seed_updates > 1 && self.seed_bytes == 0 {
            bail!("--seed-updates needs --seed-bytes");
        }
        if self.seed_updates > 1 && self.seed_bytes / self.seed_updates < MIN_SEED_BYTES_PER_UPDATE
        {
            bail!(
                "--seed-bytes / --seed-updates must be at least {MIN_SEED_BYTES_PER_UPDATE} \
                 bytes per update"
            );
        }
        if self.seed_bytes + (1 << 20) > self.max_message_bytes {
            bail!("--max-message-bytes must exceed --seed-bytes by at least 1 MiB");
        }
        if self.planned_deliveries() > MAX_PLANNED_DELIVERIES {
            bail!(
                "a step could produce {:.0} deliveries (limit {MAX_PLANNED_DELIVERIES:.0}): \
                 lower --rate, --duration, --max-updates or the room size",
                self.planned_deliveries()
            );
        }
        if self.room_prefix.is_empty() || self.room_prefix.contains(['/', '?', '#', ' ']) {
            bail!("--room-prefix must be non-empty and URL-path safe");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_files_parse_and_flags_override_them() {
        let file = Flags::from_toml(
            r#"
            name = "hot-room"
            description = "one writer, many observers"
            rooms = 1
            clients_per_room = 101
            writers_per_room = 1
            rate = 20.0
            duration = 5.0
            warmup = 1.0
            connect_rate = 50.0
            server_pid = [1, 2]
            sweep_rates = [10.0, 20.0]
            "#,
        )
        .unwrap();
        let flags = Flags {
            urls: Some(vec!["ws://127.0.0.1:1".into()]),
            rate: Some(50.0),
            ..Flags::default()
        };
        let settings = flags.over(file).into_settings().unwrap();
        assert_eq!(settings.name, "hot-room");
        assert_eq!(settings.rooms, 1);
        assert_eq!(settings.clients_per_room, 101);
        assert_eq!(settings.writers_per_room, 1);
        assert_eq!(settings.rate, 50.0);
        assert_eq!(settings.duration_s, 5.0);
        assert_eq!(settings.warmup_s, 1.0);
        assert_eq!(settings.connect_rate, 50.0);
        assert_eq!(settings.server_pids, vec![1, 2]);
        assert_eq!(settings.step_rates(), vec![10.0, 20.0]);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        assert!(Flags::from_toml("romos = 3").is_err());
        assert!(Flags::from_toml("rooms = -1").is_err());
        let base = || Flags {
            urls: Some(vec!["ws://127.0.0.1:1".into()]),
            ..Flags::default()
        };
        assert!(base().into_settings().is_ok());
        assert!(Flags::default().into_settings().is_err(), "no URL");
        let http = Flags {
            urls: Some(vec!["http://x".into()]),
            ..Flags::default()
        };
        assert!(http.into_settings().is_err());
        let too_many = Flags {
            rooms: Some(1_000),
            clients_per_room: Some(1_000),
            ..base()
        };
        assert!(too_many.into_settings().is_err());
        let writers = Flags {
            clients_per_room: Some(2),
            writers_per_room: Some(3),
            ..base()
        };
        assert!(writers.into_settings().is_err());
        let nan = Flags {
            rate: Some(f64::NAN),
            ..base()
        };
        assert!(nan.into_settings().is_err());
        let unbounded = Flags {
            rooms: Some(1),
            clients_per_room: Some(10_000),
            writers_per_room: Some(1),
            rate: Some(1_000.0),
            duration: Some(3_600.0),
            ..base()
        };
        assert!(unbounded.into_settings().is_err());
        let warmup = Flags {
            duration: Some(2.0),
            warmup: Some(2.0),
            ..base()
        };
        assert!(warmup.into_settings().is_err());
    }

    #[test]
    fn seed_updates_are_validated() {
        let seeded = |bytes: usize, updates: usize| Flags {
            urls: Some(vec!["ws://127.0.0.1:1".into()]),
            seed_bytes: Some(bytes),
            seed_updates: Some(updates),
            ..Flags::default()
        };
        let defaults = Flags {
            urls: Some(vec!["ws://127.0.0.1:1".into()]),
            ..Flags::default()
        };
        assert_eq!(defaults.into_settings().unwrap().seed_updates, 1);
        let ok = seeded(20 << 20, 4_000).into_settings().unwrap();
        assert_eq!((ok.seed_bytes, ok.seed_updates), (20 << 20, 4_000));
        assert!(seeded(1 << 20, 1).into_settings().is_ok());
        assert!(seeded(1 << 20, 0).into_settings().is_err(), "zero updates");
        assert!(seeded(0, 10).into_settings().is_err(), "nothing to split");
        assert!(seeded(0, 1).into_settings().is_ok(), "1 is the default");
        assert!(
            seeded(1 << 20, (1 << 20) / 64).into_settings().is_ok(),
            "64 bytes per update"
        );
        assert!(
            seeded(1 << 20, (1 << 20) / 64 + 1).into_settings().is_err(),
            "under 64 bytes per update"
        );
        assert!(seeded(128 << 20, MAX_SEED_UPDATES).into_settings().is_ok());
        assert!(seeded(128 << 20, MAX_SEED_UPDATES + 1)
            .into_settings()
            .is_err());
        let file = Flags::from_toml("seed_bytes = 1048576\nseed_updates = 100").unwrap();
        assert_eq!(file.seed_updates, Some(100));
        assert!(Flags::from_toml("seed_updates = -1").is_err());
        let cli = Cli::try_parse_from([
            "yws-load",
            "--urls",
            "ws://a:1",
            "--seed-bytes",
            "1048576",
            "--seed-updates",
            "256",
        ])
        .unwrap();
        assert_eq!(cli.run.seed_updates, Some(256));
        assert!(Cli::try_parse_from(["yws-load", "--seed-updates", "many"]).is_err());
    }

    #[test]
    fn command_line_parses() {
        let cli = Cli::try_parse_from([
            "yws-load",
            "--urls",
            "ws://a:1,ws://b:2",
            "--rooms",
            "4",
            "--server-pid",
            "10,11",
            "--reconnect",
            "false",
        ])
        .unwrap();
        assert_eq!(cli.run.urls.unwrap().len(), 2);
        assert_eq!(cli.run.server_pids, Some(vec![10, 11]));
        assert_eq!(cli.run.reconnect, Some(false));
        let cli = Cli::try_parse_from(["yws-load", "compare", "a.json", "b.json"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Compare(_))));
    }
}
