//! The registry: named families of labelled series, rendered on demand.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use crate::metric::{Counter, Gauge, Histogram};

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic counter.
    Counter,
    /// Gauge.
    Gauge,
    /// Histogram.
    Histogram,
}

#[derive(Debug, Clone)]
enum Series {
    Counter(Arc<Counter>),
    Gauge(Arc<Gauge>),
    Histogram(Arc<Histogram>),
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: Kind,
    series: Vec<(Vec<(String, String)>, Series)>,
}

/// A set of metric families. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    families: Arc<Mutex<Vec<Family>>>,
}

/// One flattened value, for JSON stats.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Family name (histograms report `_count` and `_sum` samples).
    pub name: String,
    /// Label pairs.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

// === impl Registry ===

impl Registry {
    /// Creates an empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gets or creates the counter with this name and labels.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Arc<Counter> {
        match self.series(name, help, Kind::Counter, labels, || {
            Series::Counter(Arc::default())
        }) {
            Series::Counter(c) => c,
            // A name registered under another kind: hand out a detached
            // metric rather than panic; the conflict is a programming error
            // that the registry tests catch.
            _ => Arc::default(),
        }
    }

    /// Gets or creates the gauge with this name and labels.
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Arc<Gauge> {
        match self.series(name, help, Kind::Gauge, labels, || {
            Series::Gauge(Arc::default())
        }) {
            Series::Gauge(g) => g,
            _ => Arc::default(),
        }
    }

    /// Gets or creates the histogram with this name and labels.
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
    ) -> Arc<Histogram> {
        let make = || Series::Histogram(Arc::new(Histogram::new(bounds)));
        match self.series(name, help, Kind::Histogram, labels, make) {
            Series::Histogram(h) => h,
            _ => Arc::new(Histogram::new(bounds)),
        }
    }

    fn series(
        &self,
        name: &str,
        help: &str,
        kind: Kind,
        labels: &[(&str, &str)],
        make: impl FnOnce() -> Series,
    ) -> Series {
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        // A panic while holding the lock cannot leave a family half-written
        // (pushes are the only mutation), so a poisoned lock is still usable.
        let mut families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        let family = match families.iter_mut().position(|f| f.name == name) {
            Some(i) => &mut families[i],
            None => {
                families.push(Family {
                    name: name.to_owned(),
                    help: help.to_owned(),
                    kind,
                    series: Vec::new(),
                });
                let last = families.len() - 1;
                &mut families[last]
            }
        };
        if family.kind != kind {
            return make();
        }
        if let Some((_, s)) = family.series.iter().find(|(l, _)| *l == labels) {
            return s.clone();
        }
        let s = make();
        family.series.push((labels, s.clone()));
        s
    }

    /// Renders every family in Prometheus text exposition format 0.0.4.
    pub fn render_prometheus(&self) -> String {
        let mut families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        prune(&mut families);
        let mut out = String::with_capacity(4096);
        for f in families.iter().filter(|f| !f.series.is_empty()) {
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            // Writing into a String cannot fail.
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {} {}", f.name, kind);
            for (labels, s) in &f.series {
                match s {
                    Series::Counter(c) => line(&mut out, &f.name, labels, None, c.get() as f64),
                    Series::Gauge(g) => line(&mut out, &f.name, labels, None, g.get() as f64),
                    Series::Histogram(h) => {
                        let bucket = format!("{}_bucket", f.name);
                        let cum = h.cumulative();
                        for (i, count) in cum.iter().enumerate() {
                            let le = h
                                .bounds()
                                .get(i)
                                .map_or("+Inf".to_owned(), |b| b.to_string());
                            line(&mut out, &bucket, labels, Some(&le), *count as f64);
                        }
                        line(
                            &mut out,
                            &format!("{}_sum", f.name),
                            labels,
                            None,
                            h.sum_seconds(),
                        );
                        line(
                            &mut out,
                            &format!("{}_count", f.name),
                            labels,
                            None,
                            h.count() as f64,
                        );
                    }
                }
            }
        }
        out
    }

    /// Flattens every series into samples (histograms give `_count` and `_sum`).
    pub fn samples(&self) -> Vec<Sample> {
        let mut families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        prune(&mut families);
        let mut out = Vec::new();
        for f in families.iter() {
            for (labels, s) in &f.series {
                let mut push = |name: String, value: f64| {
                    out.push(Sample {
                        name,
                        labels: labels.clone(),
                        value,
                    });
                };
                match s {
                    Series::Counter(c) => push(f.name.clone(), c.get() as f64),
                    Series::Gauge(g) => push(f.name.clone(), g.get() as f64),
                    Series::Histogram(h) => {
                        push(format!("{}_count", f.name), h.count() as f64);
                        push(format!("{}_sum", f.name), h.sum_seconds());
                    }
                }
            }
        }
        out
    }
}

/// Drops the gauges nobody holds any more. A gauge describes something that
/// exists now (an endpoint's health, a listener's open connections); once
/// every holder is gone (a reload or a discovered change removed the
/// endpoint, and the last generation that had it finished), its last value
/// would otherwise be reported forever. Counters and histograms stay: a
/// total that stops growing is still true.
fn prune(families: &mut [Family]) {
    for f in families.iter_mut().filter(|f| f.kind == Kind::Gauge) {
        f.series.retain(|(_, s)| match s {
            Series::Gauge(g) => Arc::strong_count(g) > 1,
            _ => true,
        });
    }
}

fn line(out: &mut String, name: &str, labels: &[(String, String)], le: Option<&str>, v: f64) {
    out.push_str(name);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let mut first = true;
        for (k, val) in labels {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{k}=\"{}\"", escape_label(val));
        }
        if let Some(le) = le {
            if !first {
                out.push(',');
            }
            let _ = write!(out, "le=\"{le}\"");
        }
        out.push('}');
    }
    let _ = writeln!(out, " {v}");
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_and_labels_share_one_series() {
        let r = Registry::new();
        let a = r.counter("x_total", "x", &[("route", "a")]);
        let b = r.counter("x_total", "x", &[("route", "a")]);
        a.inc();
        b.inc();
        assert_eq!(a.get(), 2);
    }

    #[test]
    fn renders_prometheus_text() {
        let r = Registry::new();
        r.counter("req_total", "Requests.", &[("route", "r\"1")])
            .add(3);
        let conns = r.gauge("conns", "Connections.", &[]);
        conns.set(2);
        let h = r.histogram("dur_seconds", "Duration.", &[("route", "a")], &[0.1]);
        h.observe(std::time::Duration::from_millis(50));
        let text = r.render_prometheus();
        assert!(
            text.contains("# TYPE req_total counter\nreq_total{route=\"r\\\"1\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("conns 2\n"), "{text}");
        assert!(
            text.contains("dur_seconds_bucket{route=\"a\",le=\"0.1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("dur_seconds_bucket{route=\"a\",le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("dur_seconds_count{route=\"a\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn gauges_nobody_holds_are_no_longer_reported() {
        let r = Registry::new();
        let kept = r.gauge("endpoint_healthy", "h", &[("endpoint", "a")]);
        let gone = r.gauge("endpoint_healthy", "h", &[("endpoint", "b")]);
        let total = r.counter("checks_total", "c", &[("endpoint", "b")]);
        kept.set(1);
        gone.set(1);
        total.inc();
        let text = r.render_prometheus();
        assert!(
            text.contains("endpoint_healthy{endpoint=\"b\"} 1\n"),
            "{text}"
        );
        // The generation that had endpoint b is gone: its gauge goes with
        // it, from the text and the JSON samples; the counter stays.
        drop((gone, total));
        let text = r.render_prometheus();
        assert!(
            text.contains("endpoint_healthy{endpoint=\"a\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("endpoint_healthy{endpoint=\"b\"}"), "{text}");
        assert!(text.contains("checks_total{endpoint=\"b\"} 1\n"), "{text}");
        let samples = r.samples();
        assert!(samples.iter().any(|s| s.name == "endpoint_healthy"));
        assert!(
            !samples
                .iter()
                .any(|s| s.name == "endpoint_healthy" && s.labels[0].1 == "b")
        );
        // Asked for again, it starts afresh.
        assert_eq!(
            r.gauge("endpoint_healthy", "h", &[("endpoint", "b")]).get(),
            0
        );
        // With no series left, the family is not rendered at all.
        drop(kept);
        let text = r.render_prometheus();
        assert!(!text.contains("endpoint_healthy"), "{text}");
    }

    #[test]
    fn a_kind_conflict_does_not_panic_or_corrupt() {
        let r = Registry::new();
        r.counter("m", "m", &[]).inc();
        let g = r.gauge("m", "m", &[]);
        g.set(5);
        assert!(r.render_prometheus().contains("m 1\n"));
    }
}
