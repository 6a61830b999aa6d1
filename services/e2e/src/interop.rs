//! The Node interop scenarios in `tests/interop` (the real npm `y-websocket` client).

use std::path::PathBuf;
use std::process::{Command, Stdio};

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

/// Runs `node run.mjs <scenario> --urls <urls> <extra…>` and parses its verdict.
pub fn run(scenario: &str, urls: &[String], extra: &[&str]) -> Verdict {
    let dir = dir();
    assert!(
        dir.join("node_modules/y-websocket").exists(),
        "tests/interop/node_modules is missing: run `npm ci` in tests/interop (scripts/test.sh does)"
    );
    let output = Command::new("node")
        .current_dir(&dir)
        .arg("run.mjs")
        .arg(scenario)
        .arg("--urls")
        .arg(urls.join(","))
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .unwrap_or(serde_json::Value::Null);
    Verdict {
        code: output.status.code().unwrap_or(-1),
        json,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
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
