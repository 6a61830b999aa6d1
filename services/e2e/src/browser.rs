//! The browser scenarios in `tests/browser`: Debian's `chromium` driven by npm
//! `playwright-core` through the gateway's pages (see `tests/browser/run.mjs`).

use crate::interop::Verdict;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The scenario runner's directory.
pub fn dir() -> PathBuf {
    crate::repo_root().join("tests/browser")
}

/// The browser the scenarios drive (Debian's package; `YWS_CHROMIUM` overrides).
pub fn chromium() -> PathBuf {
    std::env::var_os("YWS_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Where screenshots go: `<target>/browser-artifacts`, beside the binaries under test.
pub fn artifacts() -> PathBuf {
    let target = crate::process::binary("yws-gateway")
        .parent()
        .and_then(|profile| profile.parent())
        .expect("target/<profile>/yws-gateway")
        .to_path_buf();
    target.join("browser-artifacts")
}

/// Runs `node run.mjs <scenario> --urls <urls> --artifacts <dir> <extra…>` (killed after
/// `timeout`) and parses its verdict.
pub fn run(scenario: &str, urls: &[String], extra: &[&str], timeout: Duration) -> Verdict {
    let dir = dir();
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "tests/browser/node_modules is missing: run `npm ci` in tests/browser (scripts/test.sh does)"
    );
    assert!(
        chromium().exists(),
        "{} is missing: install Debian's chromium (scripts/test.sh does: apt-get install chromium)",
        chromium().display()
    );
    let child = Command::new("node")
        .current_dir(&dir)
        .arg("run.mjs")
        .arg(scenario)
        .arg("--urls")
        .arg(urls.join(","))
        .arg("--artifacts")
        .arg(artifacts())
        .arg("--timeout-ms")
        .arg(timeout.as_millis().to_string())
        .args(extra)
        .env("YWS_CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    // The runner enforces `timeout` itself; this is the backstop if node hangs.
    let backstop = timeout + Duration::from_secs(30);
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            if !crate::wait_until(backstop, || done.load(std::sync::atomic::Ordering::Relaxed)) {
                crate::process::signal(pid, "KILL");
            }
        })
    };
    let output = child.wait_with_output().expect("wait for node");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watchdog.join();
    let stdout = String::from_utf8_lossy(&output.stdout);
    Verdict {
        code: output.status.code().unwrap_or(-1),
        json: stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or(serde_json::Value::Null),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs a scenario and panics with its output unless it passed.
pub fn expect_pass(scenario: &str, urls: &[String], extra: &[&str]) -> serde_json::Value {
    let verdict = run(scenario, urls, extra, Duration::from_secs(90));
    assert!(
        verdict.ok(),
        "browser scenario {scenario} failed (exit {}):\n{:#}\n{}",
        verdict.code,
        verdict.json,
        verdict.stderr
    );
    verdict.json
}
