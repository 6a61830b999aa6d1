//! `yws-load compare BASELINE CANDIDATE`: the side-by-side ratios of two reports.
//!
//! Each report is summarised by its *sustained* step (the fastest sweep step within the p99
//! target) or, without one, its last step. Ratios are oriented so that bigger means the
//! candidate is better: throughput `candidate / baseline`, CPU, memory and latency
//! `baseline / candidate`.

use serde::Serialize;
use serde_json::Value;

/// The figures compared, from one report.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    /// The scenario name of the report.
    pub scenario: String,
    /// The step the figures come from (the sustained one of a sweep).
    pub step: usize,
    /// Whether that step met the p99 target.
    pub within_p99_target: bool,
    /// Deliveries per second.
    pub deliveries_per_s: Option<f64>,
    /// Median fan-out latency, ms.
    pub p50_ms: Option<f64>,
    /// 99th-percentile fan-out latency, ms.
    pub p99_ms: Option<f64>,
    /// Server CPU per 1,000 deliveries, ms.
    pub server_cpu_ms_per_1k_deliveries: Option<f64>,
    /// Server RSS per connection, bytes.
    pub rss_per_connection_bytes: Option<f64>,
    /// Connections completed per second.
    pub connect_per_s: Option<f64>,
    /// Generator CPU per delivery, µs.
    pub generator_cpu_us_per_delivery: Option<f64>,
}

/// Both summaries and their ratios.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    /// The baseline's figures.
    pub baseline: Summary,
    /// The candidate's figures.
    pub candidate: Summary,
    /// candidate / baseline deliveries per second (at equal p99 when both sustained).
    pub throughput_ratio: Option<f64>,
    /// baseline / candidate server CPU per delivery.
    pub cpu_per_delivery_ratio: Option<f64>,
    /// baseline / candidate memory per connection.
    pub memory_per_connection_ratio: Option<f64>,
    /// baseline / candidate p99 latency.
    pub p99_ratio: Option<f64>,
}

/// Summarises a parsed report.
pub fn summarize(report: &Value) -> Summary {
    let steps = report["steps"].as_array().cloned().unwrap_or_default();
    let sustained = report["sustained"]["step"].as_u64();
    let within = sustained.is_some();
    let step = sustained
        .and_then(|i| steps.iter().find(|s| s["index"].as_u64() == Some(i)))
        .or(steps.last())
        .cloned()
        .unwrap_or(Value::Null);
    let mem: Vec<f64> = steps
        .first()
        .and_then(|s| s["servers"].as_array())
        .map(|servers| {
            servers
                .iter()
                .filter_map(|s| s["rss_per_connection_bytes"].as_f64())
                .collect()
        })
        .unwrap_or_default();
    Summary {
        scenario: report["scenario"].as_str().unwrap_or_default().to_string(),
        step: step["index"].as_u64().unwrap_or(0) as usize,
        within_p99_target: within,
        deliveries_per_s: step["deliveries_per_s"].as_f64(),
        p50_ms: step["latency"]["p50_ms"].as_f64(),
        p99_ms: step["latency"]["p99_ms"].as_f64(),
        server_cpu_ms_per_1k_deliveries: step["server_cpu_ms_per_1k_deliveries"].as_f64(),
        rss_per_connection_bytes: (!mem.is_empty())
            .then(|| mem.iter().sum::<f64>() / mem.len() as f64),
        connect_per_s: step["connect_per_s"].as_f64(),
        generator_cpu_us_per_delivery: step["generator"]["cpu_us_per_delivery"].as_f64(),
    }
}

fn ratio(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    let (n, d) = (num?, den?);
    (d > 0.0 && n.is_finite() && d.is_finite()).then(|| n / d)
}

/// Compares two parsed reports.
pub fn compare(baseline: &Value, candidate: &Value) -> Comparison {
    let b = summarize(baseline);
    let c = summarize(candidate);
    Comparison {
        throughput_ratio: ratio(c.deliveries_per_s, b.deliveries_per_s),
        cpu_per_delivery_ratio: ratio(
            b.server_cpu_ms_per_1k_deliveries,
            c.server_cpu_ms_per_1k_deliveries,
        ),
        memory_per_connection_ratio: ratio(b.rss_per_connection_bytes, c.rss_per_connection_bytes),
        p99_ratio: ratio(b.p99_ms, c.p99_ms),
        baseline: b,
        candidate: c,
    }
}

/// The comparison as a text table.
pub fn render(c: &Comparison) -> String {
    let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
    let x = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}x"));
    let rows = [
        (
            "deliveries/s",
            f(c.baseline.deliveries_per_s),
            f(c.candidate.deliveries_per_s),
            x(c.throughput_ratio),
        ),
        (
            "p50 (ms)",
            f(c.baseline.p50_ms),
            f(c.candidate.p50_ms),
            "-".into(),
        ),
        (
            "p99 (ms)",
            f(c.baseline.p99_ms),
            f(c.candidate.p99_ms),
            x(c.p99_ratio),
        ),
        (
            "server CPU ms / 1k deliveries",
            f(c.baseline.server_cpu_ms_per_1k_deliveries),
            f(c.candidate.server_cpu_ms_per_1k_deliveries),
            x(c.cpu_per_delivery_ratio),
        ),
        (
            "server RSS bytes / connection",
            f(c.baseline.rss_per_connection_bytes),
            f(c.candidate.rss_per_connection_bytes),
            x(c.memory_per_connection_ratio),
        ),
        (
            "connects/s",
            f(c.baseline.connect_per_s),
            f(c.candidate.connect_per_s),
            "-".into(),
        ),
        (
            "generator CPU us / delivery",
            f(c.baseline.generator_cpu_us_per_delivery),
            f(c.candidate.generator_cpu_us_per_delivery),
            "-".into(),
        ),
    ];
    let mut out = format!(
        "{:<32} {:>14} {:>14} {:>10}\n",
        "metric", "baseline", "candidate", "ratio"
    );
    for (name, b, c, r) in rows {
        out.push_str(&format!("{name:<32} {b:>14} {c:>14} {r:>10}\n"));
    }
    out.push_str(&format!(
        "(step compared: baseline {}{}, candidate {}{}; ratios >1 favour the candidate)\n",
        c.baseline.step,
        if c.baseline.within_p99_target {
            " sustained"
        } else {
            ""
        },
        c.candidate.step,
        if c.candidate.within_p99_target {
            " sustained"
        } else {
            ""
        },
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(deliveries: f64, cpu: f64, rss: f64, p99: f64) -> Value {
        json!({
            "scenario": "fanout",
            "sustained": {"step": 1},
            "steps": [
                {"index": 0, "deliveries_per_s": 1.0, "latency": {"p50_ms": 1.0, "p99_ms": 1.0},
                 "servers": [{"rss_per_connection_bytes": rss}]},
                {"index": 1, "deliveries_per_s": deliveries, "latency": {"p50_ms": 1.0, "p99_ms": p99},
                 "server_cpu_ms_per_1k_deliveries": cpu, "connect_per_s": 100.0,
                 "generator": {"cpu_us_per_delivery": 2.0}},
                {"index": 2, "deliveries_per_s": 99999.0, "latency": {"p50_ms": 90.0, "p99_ms": 900.0}}
            ]
        })
    }

    #[test]
    fn ratios_favour_the_better_side() {
        let c = compare(
            &report(10_000.0, 12.0, 40_000.0, 20.0),
            &report(60_000.0, 2.0, 4_000.0, 5.0),
        );
        assert_eq!(c.baseline.step, 1);
        assert!(c.baseline.within_p99_target);
        assert_eq!(c.throughput_ratio, Some(6.0));
        assert_eq!(c.cpu_per_delivery_ratio, Some(6.0));
        assert_eq!(c.memory_per_connection_ratio, Some(10.0));
        assert_eq!(c.p99_ratio, Some(4.0));
        let table = render(&c);
        assert!(table.contains("6.00x"), "{table}");
    }

    #[test]
    fn missing_figures_give_no_ratio() {
        let empty = json!({});
        let c = compare(&empty, &report(1.0, 1.0, 1.0, 1.0));
        assert_eq!(c.throughput_ratio, None);
        assert_eq!(c.baseline, Summary::default());
        assert!(render(&c).contains('-'));
    }
}
