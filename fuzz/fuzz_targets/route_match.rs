//! Fuzzes `Router::find` with untrusted request parts.
//!
//! The input is split on `\n` into: method, host, request target (split at
//! the first `?` into path and query, as a real target would be), then
//! header name/value pairs. The router is fixed and uses every kind of
//! condition, so the fuzzer explores host normalisation, each path matcher,
//! header and query parsing. `find` must never panic, must be deterministic,
//! and must only return a route of this listener with well-formed params.
#![no_main]

use std::sync::LazyLock;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use meshgate_config::{
    HeaderMatch, HostMatch, PathMatch, PathTemplate, QueryMatch, RouteMatch, TemplateSegment,
    ValueMatch,
};
use meshgate_router::{RequestView, Router};

/// The listener's routes, built once; every answer must index into them.
static ROUTES: LazyLock<Vec<RouteMatch>> = LazyLock::new(routes);
static ROUTER: LazyLock<Router> = LazyLock::new(|| Router::new(ROUTES.iter().enumerate()));

/// A path condition from an anchored regex. The patterns below are valid,
/// so `None` never happens; if one were broken the route would simply be a
/// catch-all and the target would still run.
fn regex_path(pattern: &str) -> Option<PathMatch> {
    pattern.parse().ok().map(PathMatch::Regex)
}

fn regex_value(pattern: &str) -> ValueMatch {
    pattern
        .parse()
        .map(ValueMatch::Regex)
        .unwrap_or(ValueMatch::Present)
}

fn template(raw: &str, segments: &[&str]) -> Option<PathMatch> {
    let segments = segments
        .iter()
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => TemplateSegment::Param(name.into()),
                None => TemplateSegment::Literal((*s).into()),
            },
        )
        .collect();
    Some(PathMatch::Template(PathTemplate {
        raw: raw.into(),
        segments,
    }))
}

fn routes() -> Vec<RouteMatch> {
    let header = |name: &'static str, value| HeaderMatch {
        name: HeaderName::from_static(name),
        value,
    };
    let query = |name: &str, value| QueryMatch {
        name: name.into(),
        value,
    };
    let m = RouteMatch::default;
    vec![
        RouteMatch {
            hosts: vec![HostMatch::Exact("api.example.com".into())],
            path: Some(PathMatch::Prefix("/v1".into())),
            ..m()
        },
        RouteMatch {
            hosts: vec![HostMatch::Wildcard(".example.com".into())],
            path: Some(PathMatch::Prefix("/v1".into())),
            ..m()
        },
        RouteMatch {
            hosts: vec![
                HostMatch::Exact("::1".into()),
                HostMatch::Wildcard(".b.example.com".into()),
            ],
            ..m()
        },
        RouteMatch {
            path: Some(PathMatch::Exact("/v1/health".into())),
            ..m()
        },
        RouteMatch {
            path: template("/users/{id}", &["users", "{id}"]),
            ..m()
        },
        RouteMatch {
            path: template(
                "/users/{id}/posts/{post}",
                &["users", "{id}", "posts", "{post}"],
            ),
            ..m()
        },
        RouteMatch {
            path: template("/", &[""]),
            ..m()
        },
        RouteMatch {
            path: regex_path(r"^(?:/img/[a-z]+\.png)$"),
            ..m()
        },
        RouteMatch {
            path: Some(PathMatch::Prefix("/static/".into())),
            ..m()
        },
        RouteMatch {
            methods: vec![Method::POST, Method::PUT],
            path: Some(PathMatch::Prefix("/upload".into())),
            ..m()
        },
        RouteMatch {
            headers: vec![header("x-canary", ValueMatch::Exact("1".into()))],
            ..m()
        },
        RouteMatch {
            headers: vec![header("x-version", regex_value(r"^(?:v[0-9]+)$"))],
            ..m()
        },
        RouteMatch {
            headers: vec![header("x-debug", ValueMatch::Present)],
            query: vec![query("debug", ValueMatch::Present)],
            ..m()
        },
        RouteMatch {
            query: vec![query("v", ValueMatch::Exact("2".into()))],
            ..m()
        },
        RouteMatch {
            query: vec![query("lang", regex_value(r"^(?:[a-z]{2})$"))],
            ..m()
        },
        RouteMatch {
            path: Some(PathMatch::Prefix("/".into())),
            methods: vec![Method::GET],
            ..m()
        },
    ]
}

fuzz_target!(|data: &[u8]| {
    let mut pieces = data.split(|&b| b == b'\n');
    let method = pieces
        .next()
        .and_then(|m| Method::from_bytes(m).ok())
        .unwrap_or(Method::GET);
    let host = pieces.next().map(String::from_utf8_lossy);
    let target = String::from_utf8_lossy(pieces.next().unwrap_or(b"/"));
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (&*target, None),
    };
    let mut headers = HeaderMap::new();
    while let (Some(name), Some(value)) = (pieces.next(), pieces.next()) {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }

    let req = RequestView {
        method: &method,
        host: host.as_deref(),
        path,
        query,
        headers: &headers,
    };
    let found = ROUTER.find(&req);
    assert_eq!(found, ROUTER.find(&req), "find must be deterministic");
    if let Some(m) = found {
        assert!(
            m.route < ROUTES.len(),
            "route {} is not on this listener",
            m.route
        );
        for (_, value) in m.params.iter() {
            assert!(
                !value.is_empty() && !value.contains('/'),
                "bad param {value:?}"
            );
        }
    }
});
