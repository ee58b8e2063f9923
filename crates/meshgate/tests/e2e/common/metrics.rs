//! Prometheus metrics from the admin API: quick sample lookup by name and
//! labels, and a strict text-format parser ([`Exposition`]).

use std::collections::{BTreeMap, BTreeSet};

use http::StatusCode;

use super::Gateway;
use super::client;

// === quick lookup ===

/// The raw `/metrics` text of the admin API.
pub async fn metrics(gw: &Gateway) -> String {
    let reply = client::get(gw.addr("admin"), "/metrics", &[]).await;
    assert_eq!(reply.status, 200);
    reply.text()
}

/// The value of the sample `name{labels...}` (every given label must match).
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
        if n != name {
            return None;
        }
        let rest = rest.strip_suffix('}')?;
        let all = labels
            .iter()
            .all(|(k, v)| rest.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
        if all { value.parse().ok() } else { None }
    })
}

/// One sample of a fresh scrape of `gw` (see [`sample`]).
pub async fn sample_of(gw: &Gateway, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    sample(&metrics(gw).await, name, labels)
}

/// `meshgate_http_requests_total` for a route and status class (0 if absent).
pub fn requests(text: &str, route: &str, class: &str) -> f64 {
    sample(
        text,
        "meshgate_http_requests_total",
        &[("route", route), ("status_class", class)],
    )
    .unwrap_or(0.0)
}

/// Upstream connections (created, reused) of a cluster.
pub async fn created_reused(gw: &Gateway, cluster: &str) -> (f64, f64) {
    let m = metrics(gw).await;
    let get = |name: &str| {
        sample(&m, name, &[("cluster", cluster)])
            .unwrap_or_else(|| panic!("no {name}{{cluster={cluster:?}}} in\n{m}"))
    };
    (
        get("meshgate_upstream_connections_created_total"),
        get("meshgate_upstream_connections_reused_total"),
    )
}

// === a small Prometheus text parser ===

/// One sample line.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition: families (name -> type) and samples.
#[derive(Debug, Default)]
pub struct Exposition {
    pub types: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Parses text format 0.0.4 strictly enough to catch malformed output:
    /// every sample belongs to a family with `# HELP` and `# TYPE` lines before
    /// it, names and label names are valid, values are numbers, and no series
    /// repeats.
    pub fn parse(text: &str) -> Exposition {
        let mut e = Exposition::default();
        let mut helped = BTreeSet::new();
        let mut seen = BTreeSet::new();
        assert!(text.ends_with('\n'), "the exposition ends with a newline");
        for (n, line) in text.lines().enumerate() {
            let at = || format!("line {}: {line:?}", n + 1);
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, _) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", at()));
                assert!(helped.insert(name.to_owned()), "second HELP for {name}");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", at()));
                assert!(
                    matches!(
                        kind,
                        "counter" | "gauge" | "histogram" | "summary" | "untyped"
                    ),
                    "{}",
                    at()
                );
                assert!(
                    e.types.insert(name.to_owned(), kind.to_owned()).is_none(),
                    "second TYPE for {name}"
                );
                continue;
            }
            assert!(
                !line.starts_with('#') && !line.is_empty(),
                "unexpected {}",
                at()
            );
            let sample = parse_sample(line).unwrap_or_else(|| panic!("malformed sample {}", at()));
            let family = family_of(&sample.name, &e.types)
                .unwrap_or_else(|| panic!("no TYPE before {}", at()));
            assert!(helped.contains(&family), "no HELP before {}", at());
            let key = (sample.name.clone(), sample.labels.clone());
            assert!(seen.insert(key), "duplicate series {}", at());
            e.samples.push(sample);
        }
        e
    }

    /// Samples named `name` whose labels include all of `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The one sample named `name` with exactly these labels.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels == want)
            .collect();
        assert_eq!(found.len(), 1, "series {name}{labels:?}: {found:?}");
        found[0].value
    }
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (head, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    let (name, labels) = match head.split_once('{') {
        None => (head, BTreeMap::new()),
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
    };
    valid_name(name).then(|| Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `k="v",k2="v2"` with `\\`, `\"` and `\n` escapes.
fn parse_labels(mut s: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    while !s.is_empty() {
        let (k, rest) = s.split_once("=\"")?;
        if !valid_name(k) || k.contains(':') {
            return None;
        }
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    _ => return None,
                },
                (_, c) => value.push(c),
            }
        };
        if out.insert(k.to_owned(), value).is_some() {
            return None;
        }
        s = &rest[end + 1..];
        s = s.strip_prefix(',').unwrap_or(s);
    }
    Some(out)
}

/// The declared family a sample belongs to (histograms add suffixes).
fn family_of(name: &str, types: &BTreeMap<String, String>) -> Option<String> {
    if types.contains_key(name) {
        return Some(name.to_owned());
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = name.strip_suffix(suffix)?;
        (types.get(base).map(String::as_str) == Some("histogram")).then(|| base.to_owned())
    })
}

/// Scrapes `/metrics` on the admin API, checks its content type, and parses
/// it strictly.
pub async fn scrape(g: &Gateway) -> (String, Exposition) {
    let r = client::get(g.addr("admin"), "/metrics", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let ct = r.headers["content-type"].to_str().unwrap();
    assert!(
        ct.starts_with("text/plain") && ct.contains("version=0.0.4"),
        "content-type {ct}"
    );
    let text = r.text();
    let e = Exposition::parse(&text);
    (text, e)
}
