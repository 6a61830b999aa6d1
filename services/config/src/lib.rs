//! # yws-config
//!
//! Configuration is loaded once, at startup, into typed structs (`serde`, with
//! `deny_unknown_fields` and a `validate()` on the caller's side). Layers, lowest first:
//!
//! 1. built-in defaults (`#[serde(default)]` on the caller's structs);
//! 2. an optional TOML file (`--config FILE`);
//! 3. the reference server's own environment names (`HOST`, `PORT`, `GC`, `REDIS_URL`, …),
//!    mapped to config keys by the [`env`](mod@env) tables of the binary's sections;
//! 4. `YWS__SECTION__KEY` environment variables (`__` nests).
//!
//! ## Layout
//! - [`Loader`]: builds the layers and deserializes.
//! - [`env`](mod@env): [`EnvTable`], one section's environment names, and every such table — each
//!   name listed once, the `[redis]` and `[log]` tables shared by the gateway and the compactor.
//! - [`comma_list`]: the one parser of list settings (a sequence, or a comma-separated string).
//! - [`Secret`]: a string that never appears in logs.
//! - [`EXIT_CONFIG`]: the exit code for invalid configuration (64, `EX_USAGE`).

pub mod env;
mod list;

pub use env::{EnvKind, EnvTable, EnvVar};
pub use list::{comma_list, comma_list_keep_empty};

use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use thiserror::Error;

/// Exit code of a binary whose configuration is invalid (`EX_USAGE`).
pub const EXIT_CONFIG: i32 = 64;

/// The prefix of structured environment variables: `YWS__SERVER__PORT`.
pub const ENV_PREFIX: &str = "YWS";

/// Why configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A layer could not be read or a value has the wrong type or an unknown key.
    #[error("{0}")]
    Load(#[from] config::ConfigError),
    /// The values are well-formed but inconsistent (reported by the caller's `validate`).
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Loads configuration from the layers described in the crate docs.
#[derive(Debug, Clone)]
pub struct Loader<'a> {
    file: Option<&'a Path>,
    env: HashMap<String, String>,
    tables: &'a [EnvTable],
}

impl<'a> Loader<'a> {
    /// A loader reading the process environment; `tables` are the environment names of the
    /// binary's sections.
    pub fn new(tables: &'a [EnvTable]) -> Self {
        Loader {
            file: None,
            env: std::env::vars().collect(),
            tables,
        }
    }

    /// Uses `env` instead of the process environment (tests).
    pub fn with_env(mut self, env: HashMap<String, String>) -> Self {
        self.env = env;
        self
    }

    /// Reads `file` (TOML) as the second layer.
    pub fn with_file(mut self, file: Option<&'a Path>) -> Self {
        self.file = file;
        self
    }

    /// Builds the layers and deserializes them into `T`.
    pub fn load<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(file) = self.file {
            builder = builder.add_source(
                config::File::from(file)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        // Reference names become synthetic `YWS__…` variables of a lower layer.
        let mut reference = HashMap::new();
        for table in self.tables {
            for var in table.vars {
                let Some(value) = self.env.get(var.name) else {
                    continue;
                };
                let value = match var.kind {
                    EnvKind::Plain => value.clone(),
                    EnvKind::Flag => {
                        let off = matches!(value.trim(), "false" | "0");
                        (!off).to_string()
                    }
                };
                reference.insert(env_name(table.section, var.key), value);
            }
        }
        builder = builder.add_source(environment(reference));
        let own: HashMap<String, String> = self
            .env
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(environment(own));
        Ok(builder.build()?.try_deserialize()?)
    }
}

/// A layer of `YWS__…` variables. Values stay strings (numbers and booleans are parsed by
/// their target type); lists are split by [`comma_list`] where a section declares one.
fn environment(vars: HashMap<String, String>) -> config::Environment {
    config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .source(Some(vars.into_iter().collect()))
}

fn env_name(section: &str, key: &str) -> String {
    format!(
        "{ENV_PREFIX}__{}__{}",
        section.to_uppercase(),
        key.to_uppercase()
    )
}
/// A secret string: deserializes from plain text, never prints.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

/// The `--config FILE` argument of a yws binary (`-c FILE` also works); an error names
/// the usage of `binary`.
pub fn config_path_from_args(binary: &str) -> Result<Option<std::path::PathBuf>, String> {
    let usage = format!("usage: {binary} [--config FILE]");
    let mut args = std::env::args().skip(1);
    let mut path = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                let file = args
                    .next()
                    .ok_or_else(|| format!("--config needs a file; {usage}"))?;
                path = Some(std::path::PathBuf::from(file));
            }
            "--help" | "-h" => return Err(usage),
            other => return Err(format!("unknown argument {other:?}; {usage}")),
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Server {
        host: String,
        port: u16,
        #[serde(deserialize_with = "comma_list")]
        tags: Vec<String>,
    }
    impl Default for Server {
        fn default() -> Self {
            Server {
                host: "localhost".into(),
                port: 1234,
                tags: vec![],
            }
        }
    }
    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Rooms {
        gc: bool,
    }
    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Top {
        server: Server,
        rooms: Rooms,
        token: Option<Secret>,
    }

    const LEGACY: &[EnvTable] = &[
        EnvTable {
            section: "server",
            vars: &[
                EnvVar::plain("HOST", "host"),
                EnvVar::plain("PORT", "port"),
                EnvVar::plain("TAGS", "tags"),
            ],
        },
        EnvTable {
            section: "rooms",
            vars: &[EnvVar::flag("GC", "gc")],
        },
    ];

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_then_file_then_legacy_then_own_env() {
        let top: Top = Loader::new(LEGACY).with_env(env(&[])).load().unwrap();
        assert_eq!(top.server, Server::default());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[server]\nport = 2000\nhost = \"file\"\n").unwrap();
        let top: Top = Loader::new(LEGACY)
            .with_env(env(&[("PORT", "3000"), ("GC", "false"), ("TAGS", "a,b")]))
            .with_file(Some(&path))
            .load()
            .unwrap();
        assert_eq!(top.server.port, 3000, "legacy env beats the file");
        assert_eq!(top.server.host, "file");
        assert!(!top.rooms.gc);
        assert_eq!(top.server.tags, vec!["a", "b"]);

        let top: Top = Loader::new(LEGACY)
            .with_env(env(&[
                ("PORT", "3000"),
                ("YWS__SERVER__PORT", "4000"),
                ("GC", "yes"),
            ]))
            .load()
            .unwrap();
        assert_eq!(top.server.port, 4000, "YWS__ beats legacy names");
        assert!(top.rooms.gc);

        let top: Top = Loader::new(LEGACY)
            .with_env(env(&[("TAGS", "a"), ("YWS__SERVER__TAGS", "x, y")]))
            .with_file(Some(&path))
            .load()
            .unwrap();
        assert_eq!(
            top.server.tags,
            vec!["x", "y"],
            "lists split the same way in every layer"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let err = Loader::new(LEGACY)
            .with_env(env(&[("PORT", "not-a-port")]))
            .load::<Top>()
            .unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
        let err = Loader::new(LEGACY)
            .with_env(env(&[("YWS__SERVER__PROT", "1")]))
            .load::<Top>()
            .unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        let top: Top = Loader::new(LEGACY)
            .with_env(env(&[("YWS__TOKEN", "hunter2")]))
            .load()
            .unwrap();
        assert_eq!(top.token.as_ref().unwrap().expose(), "hunter2");
        assert!(!format!("{top:?}").contains("hunter2"));
    }
}
