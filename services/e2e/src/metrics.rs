//! Reading what a running process reports: Prometheus text from `/metrics`, and the peak
//! resident memory from `/proc`.

use std::net::SocketAddr;

/// The value of the sample `series` (the metric name with its labels exactly as exposed,
/// e.g. `yws_compactor_compactions_total{result="ok"}`) in Prometheus text.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// [`sample`] read from the `/metrics` of the process at `addr`; 0 when absent.
pub fn scrape(addr: SocketAddr, series: &str) -> f64 {
    sample(&crate::http::get(addr, "/metrics").text(), series).unwrap_or(0.0)
}

/// Peak resident set size (`VmHWM`) of a live process, in bytes.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_labelled_samples() {
        let text = "# HELP x y\nyws_a_total{result=\"ok\"} 3\nyws_a_total{result=\"failed\"} 0\nyws_b 1.5\n";
        assert_eq!(sample(text, "yws_a_total{result=\"ok\"}"), Some(3.0));
        assert_eq!(sample(text, "yws_b"), Some(1.5));
        assert_eq!(sample(text, "yws_c"), None);
        assert!(peak_rss_bytes(std::process::id()).is_some_and(|b| b > 0));
    }
}
