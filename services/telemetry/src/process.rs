//! The `main` every yws binary shares: `--config FILE`, configuration loaded once (exit 64 when
//! invalid), logging, a multi-threaded runtime, exit 1 when `run` fails — or 64 when it fails
//! with a [`ConfigError`] (configuration found unusable while starting, e.g. a key file).

use crate::LogConfig;
use std::fmt::Display;
use std::future::Future;
use std::path::Path;
use yws_config::ConfigError;

/// Runs a binary: `load` reads the configuration (from the `--config` file when given),
/// `log` picks its logging section, `run` is the program.
pub fn main<C, E, Fut>(
    binary: &str,
    load: impl FnOnce(Option<&Path>) -> Result<C, E>,
    log: impl FnOnce(&C) -> &LogConfig,
    run: impl FnOnce(C) -> Fut,
) where
    E: Display,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let config = yws_config::config_path_from_args(binary)
        .and_then(|path| load(path.as_deref()).map_err(|e| e.to_string()));
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{binary}: {e}");
            std::process::exit(yws_config::EXIT_CONFIG);
        }
    };
    crate::logging::init(log(&config));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(config)) {
        if e.downcast_ref::<ConfigError>().is_some() {
            tracing::error!(error = format!("{e:#}"), "{binary}: invalid configuration");
            std::process::exit(yws_config::EXIT_CONFIG);
        }
        tracing::error!(error = format!("{e:#}"), "{binary} failed");
        std::process::exit(1);
    }
}
