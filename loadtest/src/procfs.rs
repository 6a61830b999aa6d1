//! Process samples from `/proc`: resident memory and CPU time of the servers under test
//! (`--server-pid`) and of the generator itself. Linux only; elsewhere sampling yields `None`.

use serde::Serialize;
use std::path::Path;

/// One sample of a process.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct ProcSample {
    /// Resident set size in bytes (`VmRSS`).
    pub rss_bytes: u64,
    /// Peak resident set size in bytes (`VmHWM`).
    pub hwm_bytes: u64,
    /// User plus system CPU time in microseconds (`utime + stime`).
    pub cpu_us: u64,
    /// Threads (`Threads`).
    pub threads: u64,
}

/// Samples `pid`, or this process when `pid` is `None`.
pub fn sample(pid: Option<u32>) -> Option<ProcSample> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_string(),
    };
    let stat = std::fs::read_to_string(Path::new(&dir).join("stat")).ok()?;
    let status = std::fs::read_to_string(Path::new(&dir).join("status")).ok()?;
    let ticks = parse_stat_cpu_ticks(&stat)?;
    let (rss_bytes, hwm_bytes, threads) = parse_status(&status);
    Some(ProcSample {
        rss_bytes,
        hwm_bytes,
        cpu_us: ticks.saturating_mul(1_000_000) / clock_ticks_per_second(),
        threads,
    })
}

/// `utime + stime` in clock ticks from the text of `/proc/PID/stat`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is parenthesised and may contain spaces or ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `(VmRSS, VmHWM, Threads)` from the text of `/proc/PID/status`, sizes in bytes.
pub fn parse_status(status: &str) -> (u64, u64, u64) {
    let mut rss = 0;
    let mut hwm = 0;
    let mut threads = 0;
    for line in status.lines() {
        let mut parts = line.split_whitespace();
        let key = parts.next().unwrap_or_default();
        let value: u64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        match key {
            "VmRSS:" => rss = value * 1024,
            "VmHWM:" => hwm = value * 1024,
            "Threads:" => threads = value,
            _ => {}
        }
    }
    (rss, hwm, threads)
}

/// `AT_CLKTCK` from the auxiliary vector; 100 (the Linux default) when it cannot be read.
fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::fs::read("/proc/self/auxv")
            .ok()
            .and_then(|auxv| auxv_value(&auxv, 17))
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

/// Looks `key` up in a native-endian 64-bit auxiliary vector.
fn auxv_value(auxv: &[u8], key: u64) -> Option<u64> {
    let word = |c: &[u8]| c.try_into().ok().map(u64::from_ne_bytes);
    auxv.chunks_exact(16).find_map(|pair| {
        let k = word(&pair[..8])?;
        (k == key).then(|| word(&pair[8..])).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_names() {
        let stat = "1234 (node (x) y) S 1 1234 1234 0 -1 4194560 5000 0 0 0 250 50 0 0 20 0 11 0 \
                    100 1000000 5000 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(300));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn parses_status() {
        let status = "Name:\tnode\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t7\n";
        assert_eq!(parse_status(status), (1024 * 1024, 2048 * 1024, 7));
    }

    #[test]
    fn samples_this_process() {
        if let Some(s) = sample(None) {
            assert!(s.rss_bytes > 0);
            assert!(s.threads >= 1);
        }
        assert_eq!(sample(Some(u32::MAX)), None);
        let mut auxv = Vec::new();
        for (k, v) in [(6u64, 4096u64), (17, 100), (0, 0)] {
            auxv.extend(k.to_ne_bytes());
            auxv.extend(v.to_ne_bytes());
        }
        assert_eq!(auxv_value(&auxv, 17), Some(100));
        assert_eq!(auxv_value(&auxv, 99), None);
    }
}
