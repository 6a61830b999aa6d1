//! The Node interop scenarios in `tests/interop` (the real npm `y-websocket` client).

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The scenario runner's directory.
pub fn dir() -> PathBuf {
    crate::repo_root().join("tests/interop")
}

/// The verdict of one scenario run.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Exit code: 0 passed, 1 failed, 2 timed out.
    pub code: i32,
    /// The JSON line the scenario printed (`{"scenario":…,"ok":…}`).
    pub json: serde_json::Value,
    /// What it printed on stderr.
    pub stderr: String,
}

impl Verdict {
    /// Whether the scenario passed.
    pub fn ok(&self) -> bool {
        self.code == 0 && self.json["ok"] == true
    }
}

fn command(scenario: &str, urls: &[String], extra: &[&str]) -> Command {
    let dir = dir();
    assert!(
        dir.join("node_modules/y-websocket").exists(),
        "tests/interop/node_modules is missing: run `npm ci` in tests/interop (scripts/test.sh does)"
    );
    let mut command = Command::new("node");
    command
        .current_dir(&dir)
        .arg("run.mjs")
        .arg(scenario)
        .arg("--urls")
        .arg(urls.join(","))
        .args(extra)
        .stdin(Stdio::null());
    command
}

fn verdict(code: Option<i32>, stdout: &str, stderr: String) -> Verdict {
    let json = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .unwrap_or(serde_json::Value::Null);
    Verdict {
        code: code.unwrap_or(-1),
        json,
        stderr,
    }
}

/// Runs `node run.mjs <scenario> --urls <urls> <extra…>` and parses its verdict.
pub fn run(scenario: &str, urls: &[String], extra: &[&str]) -> Verdict {
    let output = command(scenario, urls, extra).output().expect("run node");
    verdict(
        output.status.code(),
        &String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A scenario running in the background, for tests that act on the servers while it runs
/// (the scenario tells them when on stderr). Killed if dropped unfinished.
#[derive(Debug)]
pub struct Running {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    stdout: Arc<Mutex<String>>,
}

/// Starts a scenario like [`run`] without waiting for it.
pub fn spawn(scenario: &str, urls: &[String], extra: &[&str]) -> Running {
    let mut child = command(scenario, urls, extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let pipe = child.stderr.take().expect("piped stderr");
    let sink = stderr.clone();
    let stderr_reader = std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let stdout = Arc::new(Mutex::new(String::new()));
    let mut pipe = child.stdout.take().expect("piped stdout");
    let sink = stdout.clone();
    let stdout_reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = pipe.read_to_string(&mut out);
        *sink.lock().unwrap() = out;
    });
    Running {
        child,
        stderr,
        readers: vec![stderr_reader, stdout_reader],
        stdout,
    }
}

impl Running {
    /// Waits until the scenario printed a stderr line containing `needle`.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        crate::wait_until(timeout, || {
            self.stderr
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
        })
    }

    /// Waits for the scenario to exit (killing it after `timeout`) and returns its verdict.
    pub fn finish(mut self, timeout: Duration) -> Verdict {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for node") {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(25));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let stderr = self.stderr.lock().unwrap().join("\n");
        let stdout = self.stdout.lock().unwrap().clone();
        verdict(status.and_then(|s| s.code()), &stdout, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a scenario and panics with its output unless it passed.
pub fn expect_pass(scenario: &str, urls: &[String], extra: &[&str]) -> serde_json::Value {
    let verdict = run(scenario, urls, extra);
    assert!(
        verdict.ok(),
        "interop scenario {scenario} failed (exit {}):\n{}\n{}",
        verdict.code,
        verdict.json,
        verdict.stderr
    );
    verdict.json
}

/// `write-doc`: appends `text` to the room's `text` through the server at `url`, waits for
/// the server's echo, and returns the whole text the writer then holds.
pub fn write_doc(url: &str, room: &str, text: &str) -> String {
    let verdict = expect_pass(
        "write-doc",
        &[url.to_string()],
        &["--room", room, "--text", text],
    );
    verdict["text"]
        .as_str()
        .expect("write-doc reports text")
        .to_string()
}

/// [`write_doc`], tried again until it goes through or `within` passes (writes fail while Redis
/// fails over; the server closes the client and, like the stock client, it tries again).
pub fn write_doc_when_possible(url: &str, room: &str, text: &str, within: std::time::Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let verdict = run(
            "write-doc",
            &[url.to_string()],
            &["--room", room, "--text", text],
        );
        if verdict.ok() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url}: no write within {within:?}: {}",
            verdict.stderr
        );
    }
}

/// `check-doc`: a new client at `url` must hold exactly `expected` when it is synced.
pub fn check_doc(url: &str, room: &str, expected: &str) {
    expect_pass(
        "check-doc",
        &[url.to_string()],
        &["--room", room, "--expect-text", expected],
    );
}
