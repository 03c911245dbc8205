//! The latency-by-percentile plot as a self-contained SVG file (no scripts, fonts or links).
//!
//! The x axis is the percentile on the usual HdrHistogram scale: position = log10(1/(1−p)), so
//! 0%, 90%, 99%, 99.9%, 99.99% and 99.999% are evenly spaced and the tail gets most of the width.
//! The y axis is latency in ms, linear by default (like HdrHistogram's plots) or logarithmic when
//! series differ by orders of magnitude. Each series is one `<path class="series">`, drawn as the
//! step function its histogram is, ending at the percentile its sample count can support
//! (1 − 1/n) with a dot at its maximum. Series without samples appear in the legend only.

use std::fmt::Write as _;

use super::table::format_ms;
use super::Series;

/// Canvas and margins, in SVG user units (px).
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 600.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 28.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 76.0;
/// The x axis spans 10^0 .. 10^5 in 1/(1−p): 0% .. 99.999%.
const X_DECADES: f64 = 5.0;
/// Samples per series along the x axis (the path only keeps the steps).
const X_SAMPLES: u32 = 500;
/// Line colours, reused in order when there are more series.
const PALETTE: [&str; 8] =
    ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/// How to draw the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotOptions {
    /// Heading at the top of the image.
    pub title: String,
    /// Logarithmic latency axis (decades) instead of linear from 0.
    pub log_y: bool,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions { title: "Latency by percentile".to_string(), log_y: false }
    }
}

/// The plot of `series` as a complete SVG document. Cost: O(series × samples × buckets).
pub fn render_svg(series: &[Series], opts: &PlotOptions) -> String {
    let plotted: Vec<&Series> = series.iter().filter(|s| s.latency.count() > 0).collect();
    let max_ms = plotted.iter().map(|s| s.latency.max_micros() as f64 / 1e3).fold(0.0, f64::max);
    let min_ms =
        plotted.iter().map(|s| s.latency.quantile_micros(0.0) as f64 / 1e3).fold(f64::INFINITY, f64::min);
    let y = if opts.log_y { YAxis::log(min_ms, max_ms) } else { YAxis::linear(max_ms) };

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
    );
    let _ = writeln!(svg, "<title>{}</title>", escape(&opts.title));
    let _ = writeln!(svg, "<rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>");
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"30\" text-anchor=\"middle\" font-size=\"18\">{}</text>",
        WIDTH / 2.0,
        escape(&opts.title)
    );
    draw_axes(&mut svg, &y);
    for (i, s) in series.iter().enumerate().filter(|(_, s)| s.latency.count() > 0) {
        draw_series(&mut svg, s, PALETTE[i % PALETTE.len()], &y);
    }
    draw_legend(&mut svg, series);
    svg.push_str("</svg>\n");
    svg
}

fn plot_width() -> f64 {
    WIDTH - LEFT - RIGHT
}

fn plot_height() -> f64 {
    HEIGHT - TOP - BOTTOM
}

/// x pixel of a position on the 1/(1−p) decade scale.
fn x_px(decades: f64) -> f64 {
    LEFT + decades.clamp(0.0, X_DECADES) / X_DECADES * plot_width()
}

/// The latency axis: its range, its ticks, and the mapping from ms to pixels.
#[derive(Debug)]
struct YAxis {
    log: bool,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl YAxis {
    /// 0 .. a round number at or above `max_ms`, ticks every 1, 2 or 5 × 10^k (4 to 10 of them).
    fn linear(max_ms: f64) -> Self {
        let max_ms = if max_ms > 0.0 { max_ms } else { 1.0 };
        let raw = max_ms / 6.0;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|&s| s >= raw)
            .unwrap_or(magnitude * 10.0);
        let hi = (max_ms / step).ceil() * step;
        let ticks = (0..).map(|i| f64::from(i) * step).take_while(|&t| t <= hi * (1.0 + 1e-9)).collect();
        YAxis { log: false, lo: 0.0, hi, ticks }
    }

    /// Whole decades around `min_ms ..= max_ms`, never below 1 µs (0.001 ms).
    fn log(min_ms: f64, max_ms: f64) -> Self {
        let min_ms = if min_ms.is_finite() && min_ms > 0.001 { min_ms } else { 0.001 };
        let max_ms = max_ms.max(min_ms);
        let lo_exp = min_ms.log10().floor() as i32;
        let hi_exp = (max_ms.log10().ceil() as i32).max(lo_exp + 1);
        let ticks = (lo_exp..=hi_exp).map(|e| 10f64.powi(e)).collect();
        YAxis { log: true, lo: 10f64.powi(lo_exp), hi: 10f64.powi(hi_exp), ticks }
    }

    fn px(&self, ms: f64) -> f64 {
        let fraction = if self.log {
            (ms.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            ms / self.hi
        };
        TOP + plot_height() * (1.0 - fraction.clamp(0.0, 1.0))
    }
}

fn draw_axes(svg: &mut String, y: &YAxis) {
    let (left, right, top, bottom) = (LEFT, LEFT + plot_width(), TOP, TOP + plot_height());
    svg.push_str("<g class=\"grid\" stroke=\"#dddddd\" stroke-width=\"1\">\n");
    for &t in &y.ticks {
        let py = y.px(t);
        let _ = writeln!(svg, "<line x1=\"{left:.1}\" y1=\"{py:.1}\" x2=\"{right:.1}\" y2=\"{py:.1}\"/>");
    }
    for d in 0..=X_DECADES as u32 {
        let px = x_px(f64::from(d));
        let _ = writeln!(svg, "<line x1=\"{px:.1}\" y1=\"{top:.1}\" x2=\"{px:.1}\" y2=\"{bottom:.1}\"/>");
    }
    let median = x_px(2f64.log10());
    let _ = writeln!(
        svg,
        "<line x1=\"{median:.1}\" y1=\"{top:.1}\" x2=\"{median:.1}\" y2=\"{bottom:.1}\" stroke-dasharray=\"4 4\"/>"
    );
    svg.push_str("</g>\n");
    let _ = writeln!(
        svg,
        "<rect class=\"frame\" x=\"{left:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" \
         stroke=\"#444444\"/>",
        plot_width(),
        plot_height()
    );
    svg.push_str("<g class=\"x-ticks\" text-anchor=\"middle\">\n");
    let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"];
    for (d, label) in labels.iter().enumerate() {
        let _ = writeln!(svg, "<text x=\"{:.1}\" y=\"{:.1}\">{label}</text>", x_px(d as f64), bottom + 18.0);
    }
    let _ = writeln!(svg, "<text x=\"{median:.1}\" y=\"{:.1}\" fill=\"#777777\">50%</text>", bottom + 18.0);
    svg.push_str("</g>\n<g class=\"y-ticks\" text-anchor=\"end\">\n");
    for &t in &y.ticks {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            left - 8.0,
            y.px(t) + 4.0,
            tick_label(t)
        );
    }
    svg.push_str("</g>\n");
    let _ = writeln!(
        svg,
        "<text class=\"x-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"14\">Percentile \
         (log scale of 1/(1−p))</text>",
        left + plot_width() / 2.0,
        bottom + 42.0
    );
    let (tx, ty) = (22.0, top + plot_height() / 2.0);
    let _ = writeln!(
        svg,
        "<text class=\"y-title\" x=\"{tx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" font-size=\"14\" \
         transform=\"rotate(-90 {tx:.1} {ty:.1})\">Latency (ms{})</text>",
        if y.log { ", log scale" } else { "" }
    );
    let _ = writeln!(
        svg,
        "<text class=\"note\" x=\"{right:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"10\" fill=\"#777777\">\
         open-loop latency: receive time − scheduled send time</text>",
        bottom + 62.0
    );
}

fn draw_series(svg: &mut String, s: &Series, colour: &str, y: &YAxis) {
    let h = &s.latency;
    let end = (h.count() as f64).log10().clamp(0.0, X_DECADES);
    let value_ms = |decades: f64| h.quantile_micros(1.0 - 10f64.powf(-decades)) as f64 / 1e3;
    let mut d = String::new();
    let mut last_y = y.px(value_ms(0.0));
    let _ = write!(d, "M{:.1},{last_y:.1}", x_px(0.0));
    for i in 1..=X_SAMPLES {
        let decades = end * f64::from(i) / f64::from(X_SAMPLES);
        let py = y.px(value_ms(decades));
        if (py - last_y).abs() >= 0.05 {
            let px = x_px(decades);
            let _ = write!(d, " L{px:.1},{last_y:.1} L{px:.1},{py:.1}");
            last_y = py;
        }
    }
    let (end_x, max_y) = (x_px(end), y.px(h.max_micros() as f64 / 1e3));
    let _ = write!(d, " L{end_x:.1},{last_y:.1} L{end_x:.1},{max_y:.1}");
    let _ = writeln!(
        svg,
        "<path class=\"series\" data-label=\"{}\" d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
        escape(&s.label)
    );
    let _ = writeln!(svg, "<circle cx=\"{end_x:.1}\" cy=\"{max_y:.1}\" r=\"3\" fill=\"{colour}\"/>");
}

fn draw_legend(svg: &mut String, series: &[Series]) {
    let entries: Vec<String> = series.iter().map(legend_text).collect();
    let (x, y0, row) = (LEFT + 12.0, TOP + 12.0, 18.0);
    let height = row * entries.len() as f64 + 8.0;
    // ~6.7 px per character at 12 px sans-serif, plus the colour swatch.
    let longest = entries.iter().map(|t| t.chars().count()).max().unwrap_or(0);
    let width = (48.0 + 6.7 * longest as f64).clamp(160.0, plot_width() - 24.0);
    let _ = writeln!(
        svg,
        "<g class=\"legend\">\n<rect x=\"{x:.1}\" y=\"{y0:.1}\" width=\"{width:.1}\" height=\"{height:.1}\" \
         fill=\"white\" fill-opacity=\"0.85\" stroke=\"#bbbbbb\"/>"
    );
    for (i, text) in entries.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let cy = y0 + 4.0 + row * (i as f64 + 0.5);
        let _ = writeln!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{cy:.1}\" x2=\"{:.1}\" y2=\"{cy:.1}\" stroke=\"{colour}\" stroke-width=\"3\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 8.0,
            x + 32.0,
            x + 40.0,
            cy + 4.0,
            escape(text)
        );
    }
    svg.push_str("</g>\n");
}

/// `label: p50 … · p99 … · max … ms (n=…)`, or `label (no samples)`.
fn legend_text(s: &Series) -> String {
    let h = &s.latency;
    if h.count() == 0 {
        return format!("{} (no samples)", s.label);
    }
    format!(
        "{}: p50 {} · p99 {} · max {} ms (n={})",
        s.label,
        format_ms(h.quantile_micros(0.5)),
        format_ms(h.quantile_micros(0.99)),
        format_ms(h.max_micros()),
        h.count()
    )
}

/// A tick value without trailing zeros: 0, 0.005, 0.5, 2, 250, 10000.
fn tick_label(ms: f64) -> String {
    let text = format!("{ms:.3}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    text.to_string()
}

/// Escapes text for XML character data and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_cover_the_maximum() {
        let y = YAxis::linear(512.0);
        assert_eq!(y.ticks, [0.0, 100.0, 200.0, 300.0, 400.0, 500.0, 600.0]);
        assert!(y.hi >= 512.0);
        assert_eq!(YAxis::linear(0.0).hi, 1.0);
    }

    #[test]
    fn log_ticks_are_whole_decades_around_the_data() {
        let y = YAxis::log(0.35, 512.0);
        assert_eq!(y.ticks, [0.1, 1.0, 10.0, 100.0, 1000.0]);
        assert!((y.px(1000.0) - TOP).abs() < 1e-9 && (y.px(0.1) - (TOP + plot_height())).abs() < 1e-9);
    }

    #[test]
    fn tick_labels_and_escaping() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(0.005), "0.005");
        assert_eq!(tick_label(250.0), "250");
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
