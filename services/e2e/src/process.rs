//! Our binaries as child processes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Path of a workspace binary next to the test executable (`target/<profile>/<name>`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`, which scripts/test.sh does)",
        path.display()
    );
    path
}

/// A running yws process whose stderr (logs) is collected.
#[derive(Debug)]
pub struct Service {
    child: Child,
    /// Address the main listener reported.
    pub addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    name: String,
}

/// Builds a service process.
#[derive(Debug, Clone)]
pub struct ServiceBuilder {
    binary: String,
    env: HashMap<String, String>,
    args: Vec<String>,
    ready_marker: &'static str,
}

impl ServiceBuilder {
    /// A gateway on a free loopback port, standalone unless `REDIS_URL` is set.
    pub fn gateway() -> Self {
        let mut env = HashMap::new();
        env.insert("HOST".into(), "127.0.0.1".into());
        env.insert("PORT".into(), "0".into());
        env.insert("LOG_LEVEL".into(), "info,yws_gateway=debug".into());
        ServiceBuilder {
            binary: "yws-gateway".into(),
            env,
            args: vec![],
            ready_marker: "listening",
        }
    }

    /// A compactor with its admin port on a free loopback port.
    pub fn compactor() -> Self {
        let mut env = HashMap::new();
        env.insert("YWS__ADMIN__HOST".into(), "127.0.0.1".into());
        env.insert("YWS__ADMIN__PORT".into(), "0".into());
        env.insert("LOG_LEVEL".into(), "info,yws_compactor=debug".into());
        ServiceBuilder {
            binary: "yws-compactor".into(),
            env,
            args: vec![],
            ready_marker: "listening",
        }
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.insert(key.into(), value.to_string());
        self
    }

    /// Adds command-line arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Starts the process and waits until it reports its listening address.
    pub fn spawn(self) -> Service {
        let mut child = Command::new(binary(&self.binary))
            .args(&self.args)
            .env_remove("RUST_LOG")
            .env_remove("REDIS_URL")
            .env_remove("REDIS_CLUSTER_NODES")
            .env_remove("YWS_REDIS_PREFIX")
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn service");
        let stderr = child.stderr.take().expect("piped stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        let marker = self.ready_marker;
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(marker) {
                    if let Some(addr) = listening_addr(&line) {
                        let _ = tx.send(addr);
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "{} did not report a listening address; logs:\n{}",
                    self.binary,
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        Service {
            child,
            addr,
            logs,
            name: self.binary,
        }
    }

    /// Runs the process to completion (for configuration errors) and returns its status
    /// and stderr.
    pub fn run_to_exit(self, timeout: Duration) -> (ExitStatus, String) {
        let mut child = Command::new(binary(&self.binary))
            .args(&self.args)
            .env_remove("RUST_LOG")
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn service");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let mut err = String::new();
                use std::io::Read;
                child.stderr.take().map(|mut s| s.read_to_string(&mut err));
                return (status, err);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{} did not exit within {timeout:?}", self.binary);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Service {
    /// `ws://addr` for clients.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Waits until a log line contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.logs.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        signal(self.pid(), "TERM");
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The service's name (binary).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- {} logs ----\n{}", self.name, self.logs());
        }
    }
}

/// The `addr` field of a log line, in text (`addr=…`) or JSON (`"addr":"…"`) format.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line
        .split_once("addr=")
        .map(|(_, r)| r)
        .or_else(|| line.split_once("\"addr\":\"").map(|(_, r)| r))?;
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Sends a signal by name (`TERM`, `KILL`, `STOP`, `CONT`) with the system `kill`.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}
