//! Hand-written SVG line charts of a step's timeline: fan-out latency (p50, p99, max) and
//! throughput (updates sent, deliveries) per second. No fonts or C libraries are needed; the
//! viewer renders the text with its own generic `sans-serif`.

use crate::report::Tick;
use std::fmt::Write as _;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Stroke colour (CSS).
    pub color: &'static str,
    /// (x, y) points in data units.
    pub points: Vec<(f64, f64)>,
}

/// Escapes text for use inside SVG.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" upper bound and tick step for `max`.
pub fn nice_scale(max: f64) -> (f64, f64) {
    if !max.is_finite() || max <= 0.0 {
        return (1.0, 0.2);
    }
    let magnitude = 10f64.powf(max.log10().floor());
    let step = [0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| max / s <= 6.0)
        .unwrap_or(10.0 * magnitude);
    ((max / step).ceil() * step, step)
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Renders a line chart.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (x_max, y_max) = all.fold((0f64, 0f64), |(x, y), p| (x.max(p.0), y.max(p.1)));
    let (x_top, x_step) = nice_scale(x_max);
    let (y_top, y_step) = nice_scale(y_max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let sx = |x: f64| LEFT + x / x_top * plot_w;
    let sy = |y: f64| TOP + plot_h - y / y_top * plot_h;

    let mut out = String::with_capacity(8 * 1024);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    out.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = write!(
        out,
        r#"<text x="{}" y="28" font-size="16" font-weight="bold">{}</text>"#,
        LEFT,
        escape(title)
    );
    // Grid and ticks.
    let mut y = 0.0;
    while y <= y_top + y_step / 2.0 {
        let py = sy(y);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            py + 4.0,
            fmt_num(y)
        );
        y += y_step;
    }
    let mut x = 0.0;
    while x <= x_top + x_step / 2.0 {
        let px = sx(x);
        let _ = write!(
            out,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#f0f0f0"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0,
            fmt_num(x)
        );
        x += x_step;
    }
    let _ = write!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>"##
    );
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 18.0,
        escape(x_label)
    );
    let _ = write!(
        out,
        r#"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + plot_h / 2.0,
        escape(y_label)
    );
    // Lines and legend.
    for (i, s) in series.iter().enumerate() {
        if !s.points.is_empty() {
            out.push_str(r#"<polyline fill="none" stroke-width="2" stroke=""#);
            out.push_str(s.color);
            out.push_str(r#"" points=""#);
            for (x, y) in &s.points {
                let _ = write!(out, "{:.1},{:.1} ", sx(*x), sy(*y));
            }
            out.push_str(r#""/>"#);
        }
        let ly = TOP + 10.0 + i as f64 * 20.0;
        let lx = LEFT + plot_w + 15.0;
        let _ = write!(
            out,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            lx + 20.0,
            s.color,
            lx + 26.0,
            ly + 4.0,
            escape(&s.name)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn series(name: &str, color: &'static str, ticks: &[Tick], f: impl Fn(&Tick) -> f64) -> Series {
    Series {
        name: name.into(),
        color,
        points: ticks.iter().map(|t| (t.t_s, f(t))).collect(),
    }
}

/// The latency chart of a timeline.
pub fn latency_chart(title: &str, ticks: &[Tick]) -> String {
    let with_data: Vec<Tick> = ticks
        .iter()
        .filter(|t| t.deliveries_per_s > 0.0)
        .cloned()
        .collect();
    line_chart(
        &format!("{title}: fan-out latency"),
        "seconds since step start",
        "milliseconds",
        &[
            series("p50", "#1f77b4", &with_data, |t| t.p50_ms),
            series("p99", "#ff7f0e", &with_data, |t| t.p99_ms),
            series("max", "#d62728", &with_data, |t| t.max_ms),
        ],
    )
}

/// Stacks whole charts vertically into one SVG document.
pub fn stack(charts: &[String]) -> String {
    let height = HEIGHT * charts.len() as f64;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">"#
    );
    for (i, chart) in charts.iter().enumerate() {
        // Each chart is a complete <svg>; nested, it only needs a vertical offset.
        let inner =
            chart
                .trim_end()
                .replacen("<svg ", &format!(r#"<svg y="{}" "#, HEIGHT * i as f64), 1);
        out.push_str(&inner);
    }
    out.push_str("</svg>\n");
    out
}

/// The throughput chart of a timeline: deliveries, updates and awareness sent, and connected
/// clients, each on its own scale.
pub fn throughput_chart(title: &str, ticks: &[Tick]) -> String {
    stack(&[
        line_chart(
            &format!("{title}: deliveries"),
            "seconds since step start",
            "per second",
            &[series("deliveries", "#9467bd", ticks, |t| {
                t.deliveries_per_s
            })],
        ),
        line_chart(
            &format!("{title}: updates sent, awareness received"),
            "seconds since step start",
            "per second",
            &[
                series("updates sent", "#2ca02c", ticks, |t| t.sent_per_s),
                series("awareness recv", "#8c564b", ticks, |t| t.awareness_per_s),
            ],
        ),
        line_chart(
            &format!("{title}: connected clients"),
            "seconds since step start",
            "clients",
            &[series("connected", "#17becf", ticks, |t| {
                t.connected as f64
            })],
        ),
    ])
}

/// The server and generator CPU chart of a timeline.
pub fn cpu_chart(title: &str, ticks: &[Tick]) -> String {
    line_chart(
        &format!("{title}: CPU"),
        "seconds since step start",
        "% of one core",
        &[
            series("servers", "#d62728", ticks, |t| t.server_cpu_pct),
            series("generator", "#7f7f7f", ticks, |t| t.generator_cpu_pct),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_scales() {
        assert_eq!(nice_scale(0.0), (1.0, 0.2));
        assert_eq!(nice_scale(7.0), (8.0, 2.0));
        assert_eq!(nice_scale(95.0), (100.0, 20.0));
        let (top, step) = nice_scale(12_345.0);
        assert!(top >= 12_345.0 && top / step <= 6.0);
    }

    #[test]
    fn charts_are_well_formed_svg() {
        let ticks: Vec<Tick> = (0..5)
            .map(|i| Tick {
                t_s: i as f64,
                deliveries_per_s: 100.0 * i as f64,
                sent_per_s: 10.0,
                p50_ms: 1.0,
                p99_ms: 2.5,
                max_ms: 4.0,
                ..Tick::default()
            })
            .collect();
        for svg in [
            latency_chart("a <b>", &ticks),
            throughput_chart("t", &ticks),
            cpu_chart("c", &[]),
        ] {
            assert!(svg.starts_with("<svg"));
            assert!(svg.trim_end().ends_with("</svg>"));
            assert!(!svg.contains("NaN"));
        }
        assert!(latency_chart("a <b>", &ticks).contains("a &lt;b&gt;"));
        assert_eq!(latency_chart("x", &ticks).matches("<polyline").count(), 3);
        let stacked = throughput_chart("x", &ticks);
        assert_eq!(stacked.matches("<svg").count(), 4);
        assert_eq!(stacked.matches("</svg>").count(), 4);
        assert!(stacked.contains(r#"<svg y="840" "#));
    }
}
