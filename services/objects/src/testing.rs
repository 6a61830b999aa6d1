//! A real S3-protocol server for tests: an `s3s-fs` process (crates.io `s3s-fs`, feature
//! `binary`; `scripts/test.sh` installs it) on a free loopback port, serving a temporary
//! directory, with signed (SigV4) requests. One bucket exists from the start; the process is
//! killed and its directory removed on drop.
//!
//! Tests only: it panics (with the reason) when the server cannot be started.
#![allow(
    clippy::expect_used,
    reason = "test support: a server that cannot start fails the test with its reason"
)]

use crate::config::StorageEnv;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Access key the server accepts.
pub const ACCESS_KEY: &str = "yws-test-access";
/// Secret key the server accepts.
pub const SECRET_KEY: &str = "yws-test-secret";
/// The bucket created at start.
pub const BUCKET: &str = "yws-test";
/// The version `scripts/test.sh` installs (newer ones need a newer Rust).
pub const VERSION: &str = "0.14.1";

/// An `s3s-fs` server process.
#[derive(Debug)]
pub struct S3Server {
    child: Option<Child>,
    port: u16,
    root: PathBuf,
    log: PathBuf,
}

/// The `s3s-fs` binary: `$S3S_FS` if set, else `s3s-fs` on `PATH`, else in Cargo's bin dir.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("S3S_FS") {
        return PathBuf::from(path);
    }
    let on_path = Command::new("s3s-fs")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if on_path {
        return PathBuf::from("s3s-fs");
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(bin) = cargo_home
        .map(|h| h.join("bin/s3s-fs"))
        .filter(|p| p.exists())
    {
        return bin;
    }
    panic!(
        "s3s-fs is not installed: scripts/test.sh installs it \
         (cargo install s3s-fs@{VERSION} --features binary --locked), or set S3S_FS"
    );
}

impl S3Server {
    /// Starts a server on a free loopback port with an empty bucket [`BUCKET`].
    pub fn start() -> Self {
        let root = std::env::temp_dir().join(format!("yws-s3-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(root.join(BUCKET)).expect("create the bucket directory");
        let log = root.with_extension("log");
        let mut server = S3Server {
            child: None,
            port: 0,
            root,
            log,
        };
        server.launch(0).unwrap_or_else(|e| panic!("{e}"));
        server
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `s3://<bucket>/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{}", prefix.trim_matches('/'))
    }

    /// The environment a client of this server needs: endpoint, plain HTTP allowed,
    /// credentials, region.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// [`S3Server::env_vars`] as a [`StorageEnv`].
    pub fn env(&self) -> StorageEnv {
        StorageEnv::from_vars(self.env_vars())
    }

    /// Where the bucket's objects are on disk.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.join(BUCKET)
    }

    /// Kills the server (SIGKILL); the data stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data (tries for a few seconds in case the port
    /// is briefly held).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.launch(self.port) {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => panic!("{e}"),
                Err(_) => sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Spawns the process on `port` (0: any) and waits for its "running" line.
    fn launch(&mut self, port: u16) -> Result<(), String> {
        let log = std::fs::File::create(&self.log).expect("create the s3s-fs log");
        let mut child = Command::new(binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&self.root)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("s3s-fs log"))
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start s3s-fs: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(port) = running_port(&self.log) {
                self.port = port;
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "s3s-fs exited ({status}) before serving:\n{}",
                    read_log(&self.log)
                ));
            }
            sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "s3s-fs did not start within 15 s:\n{}",
            read_log(&self.log)
        ))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The port from `server is running at http://127.0.0.1:PORT` in the log, once written.
fn running_port(log: &Path) -> Option<u16> {
    let text = read_log(log);
    let rest = text.split("server is running at http://").nth(1)?;
    let addr = rest.split_whitespace().next()?;
    addr.rsplit_once(':')?.1.parse().ok()
}

fn read_log(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    text
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[allow(
    clippy::disallowed_methods,
    reason = "test support outside any runtime; not a tokio task"
)]
fn sleep(d: Duration) {
    std::thread::sleep(d);
}
