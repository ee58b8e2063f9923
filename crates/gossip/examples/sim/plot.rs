//! A hand-written SVG line plot: seconds against cluster size (log scale),
//! with a dashed line at the target.

use std::fmt::Write;

const W: f64 = 560.0;
const H: f64 = 320.0;
const L: f64 = 60.0;
const R: f64 = 20.0;
const T: f64 = 40.0;
const B: f64 = 50.0;
const COLOURS: [&str; 3] = ["#1f77b4", "#d62728", "#2ca02c"];

pub(crate) fn svg(title: &str, series: &[(&str, &[(usize, f64)])], target: f64) -> String {
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(n, _)| (*n as f64).log10()))
        .collect();
    let (x0, x1) = (
        xs.iter().cloned().fold(f64::INFINITY, f64::min).floor(),
        xs.iter()
            .cloned()
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil()
            .max(1.0),
    );
    let ymax = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .filter(|y| y.is_finite())
        .fold(target, f64::max)
        * 1.15;
    let px = |x: f64| L + (x - x0) / (x1 - x0).max(1e-9) * (W - L - R);
    let py = |y: f64| H - B - y / ymax * (H - T - B);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\
<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{title}</text>",
        W / 2.0
    );
    let _ = write!(
        s,
        "<line x1=\"{L}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/><line x1=\"{L}\" y1=\"{T}\" x2=\"{L}\" y2=\"{}\" stroke=\"black\"/>",
        H - B,
        W - R,
        H - B,
        H - B
    );
    let mut e = x0;
    while e <= x1 + 1e-9 {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            px(e),
            H - B + 18.0,
            10f64.powf(e).round()
        );
        e += 1.0;
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">nodes (log scale)</text>",
        W / 2.0,
        H - 12.0
    );
    for i in 0..=5 {
        let y = ymax / 5.0 * f64::from(i);
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{y:.1}</text>",
            L - 6.0,
            py(y) + 4.0
        );
    }
    let _ = write!(
        s,
        "<text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">seconds</text>",
        H / 2.0,
        H / 2.0
    );
    let _ = write!(
        s,
        "<line x1=\"{L}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"gray\" stroke-dasharray=\"6 4\"/><text x=\"{1}\" y=\"{2}\" text-anchor=\"end\" fill=\"gray\">target {target} s</text>",
        py(target),
        W - R,
        py(target) - 4.0
    );
    for (k, (name, points)) in series.iter().enumerate() {
        let c = COLOURS[k % COLOURS.len()];
        let pts: Vec<String> = points
            .iter()
            .filter(|(_, y)| y.is_finite())
            .map(|(n, y)| format!("{:.1},{:.1}", px((*n as f64).log10()), py(*y)))
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        );
        for p in &pts {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(s, "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{c}\"/>");
        }
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"{c}\">{name}</text>",
            L + 10.0,
            T + 14.0 + 16.0 * k as f64
        );
    }
    s.push_str("</svg>\n");
    s
}
