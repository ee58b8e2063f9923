//! Properties: `find` never panics, and its answer agrees with a naive,
//! allocating re-statement of the matching rules (the oracle below).
//!
//! The oracle is written from `docs/routing.md`, not from the crate's code,
//! so a shortcut in the optimised matchers shows up as a disagreement.

#[path = "support/build.rs"]
mod build;

use build::every_kind;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use meshgate_config::{HostMatch, PathMatch, RouteMatch, TemplateSegment, ValueMatch};
use meshgate_router::{RequestView, Router};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};

/// An owned request, for proptest to generate and shrink.
#[derive(Debug, Clone)]
struct Req {
    method: Method,
    host: Option<String>,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
}

impl Req {
    fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            host: self.host.as_deref(),
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
        }
    }
}

// --- the oracle ---

fn oracle(m: &RouteMatch, req: &Req) -> bool {
    host_ok(&m.hosts, req.host.as_deref())
        && m.path.as_ref().is_none_or(|p| path_ok(p, &req.path))
        && (m.methods.is_empty() || m.methods.contains(&req.method))
        && m.headers.iter().all(|h| {
            req.headers
                .get_all(&h.name)
                .iter()
                .any(|v| value_ok(&h.value, v.as_bytes()))
        })
        && m.query.iter().all(|q| {
            req.query.as_deref().is_some_and(|query| {
                query.split('&').filter(|kv| !kv.is_empty()).any(|kv| {
                    let (k, v) = match kv.find('=') {
                        Some(i) => (&kv[..i], &kv[i + 1..]),
                        None => (kv, ""),
                    };
                    k == q.name && value_ok(&q.value, v.as_bytes())
                })
            })
        })
}

fn host_ok(hosts: &[HostMatch], host: Option<&str>) -> bool {
    if hosts.is_empty() {
        return true;
    }
    let Some(host) = host else { return false };
    let mut h = host.to_ascii_lowercase();
    if let Some(inner) = h.strip_prefix('[') {
        h = inner.split(']').next().unwrap_or("").to_string();
    } else if h.matches(':').count() == 1 {
        h.truncate(h.find(':').unwrap_or(h.len()));
    }
    if h.ends_with('.') {
        h.pop();
    }
    hosts.iter().any(|p| match p {
        HostMatch::Exact(e) => h == e.trim_start_matches('[').trim_end_matches(']'),
        HostMatch::Wildcard(s) => h.ends_with(s.as_str()) && h.len() > s.len(),
    })
}

fn path_ok(p: &PathMatch, path: &str) -> bool {
    match p {
        PathMatch::Exact(e) => path == e,
        PathMatch::Prefix(pre) if pre.ends_with('/') => {
            path.starts_with(pre.as_str()) || format!("{path}/") == *pre
        }
        PathMatch::Prefix(pre) => path == pre || path.starts_with(&format!("{pre}/")),
        PathMatch::Regex(re) => re.is_match(path),
        PathMatch::Template(t) => {
            let Some(rest) = path.strip_prefix('/') else {
                return false;
            };
            let parts: Vec<&str> = rest.split('/').collect();
            parts.len() == t.segments.len()
                && parts.iter().zip(&t.segments).all(|(part, seg)| match seg {
                    TemplateSegment::Literal(l) => part == l,
                    TemplateSegment::Param(_) => !part.is_empty(),
                })
        }
    }
}

fn value_ok(v: &ValueMatch, value: &[u8]) -> bool {
    match v {
        ValueMatch::Exact(e) => value == e.as_bytes(),
        ValueMatch::Present => true,
        ValueMatch::Regex(re) => std::str::from_utf8(value).is_ok_and(|s| re.is_match(s)),
    }
}

// --- generators: mostly near-misses of the routes, sometimes anything ---

fn host() -> impl Strategy<Value = Option<String>> {
    let near = select(vec![
        "api.example.com",
        "API.EXAMPLE.COM:8080",
        "a.example.com",
        "example.com",
        "a.internal.example.com",
        "shop.example.com.",
        "[::1]:80",
        "::1",
        "[::1",
        "",
        ":",
        "..",
        "x.example.com.:1",
        "multi.test",
        "é.multi.test",
        ".example.com",
        ".internal.example.com",
        "internal.example.com",
        ".multi.test",
        "shop.example.com..",
    ])
    .prop_map(String::from);
    proptest::option::of(
        prop_oneof![4 => near, 1 => "[a-zA-Z0-9.:\\[\\]-]{0,24}", 1 => any::<String>()],
    )
}

fn path() -> impl Strategy<Value = String> {
    let segment = select(vec![
        "", "v1", "health", "users", "42", "me", "posts", "img", "cat.png", "static", "upload",
        "app", "m", "%2F", "é", "v1x", "usersx", "staticx", "uploadx", "appx", "mm",
    ]);
    let near = (prop::collection::vec(segment, 0..5), any::<bool>())
        .prop_map(|(segs, slash)| format!("/{}{}", segs.join("/"), if slash { "/" } else { "" }));
    prop_oneof![4 => near, 1 => any::<String>()]
}

fn query() -> impl Strategy<Value = Option<String>> {
    let key = select(vec!["v", "debug", "lang", "x", ""]);
    let value = prop_oneof![
        select(vec!["2", "22", "en", "", "%32"]).prop_map(String::from),
        "[=&a-z0-9]{0,4}"
    ];
    let pair = (key, proptest::option::of(value)).prop_map(|(k, v)| match v {
        Some(v) => format!("{k}={v}"),
        None => k.to_string(),
    });
    let near = prop::collection::vec(pair, 0..4).prop_map(|pairs| pairs.join("&"));
    proptest::option::of(prop_oneof![4 => near, 1 => any::<String>()])
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    let name = prop_oneof![
        select(vec!["x-canary", "x-version", "x-debug", "x-other"]).prop_map(String::from),
        "[a-z-]{1,8}"
    ];
    let value = prop_oneof![
        select(vec!["1", "0", "v3", "", "yes", "0, 1"]).prop_map(|v| v.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec((name, value), 0..4).prop_map(|pairs| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            // Skip what `http` itself would refuse to carry (control bytes).
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(&value),
            ) {
                map.append(n, v);
            }
        }
        map
    })
}

fn request() -> impl Strategy<Value = Req> {
    let method = select(vec![
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ]);
    (method, host(), path(), query(), headers()).prop_map(|(method, host, path, query, headers)| {
        Req {
            method,
            host,
            path,
            query,
            headers,
        }
    })
}

/// A random subset of [`every_kind`] in random input order, with the
/// config indices kept.
fn listener() -> impl Strategy<Value = Vec<usize>> {
    let all: Vec<usize> = (0..every_kind().len()).collect();
    subsequence(all.clone(), 0..=all.len()).prop_shuffle()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn find_agrees_with_the_oracle(chosen in listener(), req in request()) {
        let pool = every_kind();
        let router = Router::new(chosen.iter().map(|&i| (i, &pool[i])));
        match router.find(&req.view()) {
            Some(m) => {
                prop_assert!(chosen.contains(&m.route), "route {} is not on this listener", m.route);
                prop_assert!(oracle(&pool[m.route], &req), "route {} won but its conditions fail", m.route);
                let want_params = match &pool[m.route].path {
                    Some(PathMatch::Template(t)) => {
                        t.segments.iter().filter(|s| matches!(s, TemplateSegment::Param(_))).count()
                    }
                    _ => 0,
                };
                prop_assert_eq!(m.params.len(), want_params);
                for (_, value) in m.params.iter() {
                    prop_assert!(!value.is_empty() && !value.contains('/'));
                }
            }
            None => {
                let matching: Vec<usize> = chosen.iter().copied().filter(|&i| oracle(&pool[i], &req)).collect();
                prop_assert!(matching.is_empty(), "no match, but routes {:?} fit", matching);
            }
        }
    }

    #[test]
    fn find_never_panics_on_arbitrary_strings(
        host in proptest::option::of(any::<String>()),
        path in any::<String>(),
        query in proptest::option::of(any::<String>()),
        value in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let router = build::router(&every_kind());
        let mut headers = HeaderMap::new();
        for name in ["x-canary", "x-version", "x-debug"] {
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                headers.append(name, v);
            }
        }
        let req = Req { method: Method::GET, host, path, query, headers };
        if let Some(m) = router.find(&req.view()) {
            prop_assert!(oracle(&every_kind()[m.route], &req));
        }
    }
}
