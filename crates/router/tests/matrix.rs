//! The routing matrix: one listener with every kind of condition, and a
//! table of requests with the route each must reach.
//!
//! Precedence between overlapping routes has its own tables in
//! `precedence.rs`; this file is about each matcher doing the right thing.

#[path = "support/build.rs"]
mod build;

use build::{RouteExt, every_kind, find, route, router};
use meshgate_router::Router;

/// The listener under test: [`every_kind`], whose comments give the indices.
fn listener() -> Router {
    router(&every_kind())
}

type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<usize>,
);

const NO: &[(&str, &str)] = &[];

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Hosts: exact, wildcard, none; port, case and root dot ignored.
    ("GET api.example.com /v1/x", NO, Some(0)),
    ("GET API.Example.COM:8443 /v1", NO, Some(0)),
    ("GET api.example.com. /v1/", NO, Some(0)),
    ("GET api.example.com.:80 /v1", NO, Some(0)),
    ("GET a.example.com /v1/x", NO, Some(1)),
    ("GET a.b.EXAMPLE.com /v1", NO, Some(1)),
    ("GET example.com /v1", NO, Some(2)),
    ("GET - /v1/x", NO, Some(2)),
    ("GET other.org /v1x", NO, None),
    ("GET api.example.com /v2", NO, None),
    // An exact path beats a prefix with the same host rank, but the host ranks first.
    ("GET other.org /v1/health", NO, Some(3)),
    ("GET - /v1/health", NO, Some(3)),
    ("GET api.example.com /v1/health", NO, Some(0)),
    ("GET - /v1/health/", NO, Some(2)),
    // Templates: literals beat params, params must be non-empty, counts must agree.
    ("GET - /users/42", NO, Some(4)),
    ("GET - /users/me", NO, Some(6)),
    ("GET - /users/42/posts/7", NO, Some(5)),
    ("GET - /users/", NO, Some(7)),
    ("GET - /users", NO, Some(7)),
    ("GET - /users/42/x", NO, Some(7)),
    ("GET - /users/42/posts/", NO, Some(7)),
    ("GET - /usersx/42", NO, None),
    // Regex: whole path, case-sensitive.
    ("GET - /img/cat.png", NO, Some(8)),
    ("GET - /img/Cat.png", NO, None),
    ("GET - /img/cat.png.bak", NO, None),
    // A `/`-terminated prefix also matches itself without the slash.
    ("GET - /static", NO, Some(9)),
    ("GET - /static/", NO, Some(9)),
    ("GET - /static/css/a.css", NO, Some(9)),
    ("GET - /staticx", NO, None),
    // Methods: any of the list; the list makes route 10 more specific than 11.
    ("POST - /upload", NO, Some(10)),
    ("PUT - /upload/a", NO, Some(10)),
    ("GET - /upload", NO, Some(11)),
    ("DELETE - /uploadx", NO, None),
    // Headers: exact, regex, present; any of several lines.
    ("GET - /app", &[("x-canary", "1")], Some(12)),
    ("GET - /app", &[("x-canary", "2")], Some(17)),
    ("GET - /app", &[("x-canary", "0"), ("x-canary", "1")], Some(12)),
    ("GET - /app", &[("x-canary", "0, 1")], Some(17)),
    ("GET - /app", &[("X-Version", "v3")], Some(13)),
    ("GET - /app", &[("x-version", "3v")], Some(17)),
    ("GET - /app", &[("x-version", "v3"), ("x-canary", "1")], Some(12)),
    // Two conditions beat one; both must hold.
    ("GET - /app?debug", &[("x-debug", "")], Some(14)),
    ("GET - /app?x=1&debug=0", &[("x-debug", "yes"), ("x-canary", "1")], Some(14)),
    ("GET - /app", &[("x-debug", "yes")], Some(17)),
    ("GET - /app?debug", NO, Some(17)),
    // Query: exact, regex, repeated names, raw bytes.
    ("GET - /app?v=2", NO, Some(15)),
    ("GET - /app?a=1&v=2", NO, Some(15)),
    ("GET - /app?v=1&v=2", NO, Some(15)),
    ("GET - /app?v=22", NO, Some(17)),
    ("GET - /app?V=2", NO, Some(17)),
    ("GET - /app?v=%32", NO, Some(17)),
    ("GET - /app?lang=en", NO, Some(16)),
    ("GET - /app?lang=eng", NO, Some(17)),
    ("GET - /app?v=2", &[("x-canary", "1")], Some(12)),
    ("GET - /app/x?lang=de&v=2", NO, Some(15)),
    // A longer wildcard beats a shorter one, even against a path condition.
    ("GET a.internal.example.com /v1", NO, Some(18)),
    ("GET a.internal.example.com /anything", NO, Some(18)),
    ("GET internal.example.com /v1", NO, Some(1)),
    // IPv6 literals, with and without brackets and port.
    ("GET [::1]:8080 /x", NO, Some(19)),
    ("GET [::1] /", NO, Some(19)),
    ("GET ::1 /x", NO, Some(19)),
    ("GET [::2]:80 /x", NO, None),
    // An exact host with no path beats a wildcard with one.
    ("GET shop.example.com /v1", NO, Some(20)),
    ("GET SHOP.example.com.:80 /whatever", NO, Some(20)),
    ("GET shop.example.com.. /", NO, None),
    // A route with several hosts matches through any of them.
    ("GET multi.test /m", NO, Some(21)),
    ("GET a.Multi.test:1 /m", NO, Some(21)),
    ("GET multi.test /m/", NO, None),
    // Nothing fits.
    ("GET example.org /", NO, None),
    ("GET - *", NO, None),
    ("GET - ", NO, None),
];

#[test]
fn every_request_reaches_its_route() {
    let router = listener();
    let mut failures = Vec::new();
    for (request, headers, want) in CASES {
        let got = find(&router, request, headers).map(|m| m.route);
        if got != *want {
            failures.push(format!(
                "{request:?} {headers:?}: want {want:?}, got {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn templates_capture_their_params_and_nothing_else_does() {
    let router = listener();
    let m = find(&router, "GET - /users/42/posts/7", NO).map(|m| m.params);
    let params: Vec<(String, String)> = m
        .iter()
        .flat_map(|p| p.iter())
        .map(|(n, v)| (n.into(), v.into()))
        .collect();
    assert_eq!(
        params,
        [("id".into(), "42".into()), ("post".into(), "7".into())]
    );
    assert_eq!(
        find(&router, "GET - /users/a%2Fb", NO).and_then(|m| m.params.get("id").map(String::from)),
        Some("a%2Fb".into())
    );
    assert!(find(&router, "GET - /users/me", NO).is_some_and(|m| m.params.is_empty()));
    assert!(find(&router, "GET - /v1", NO).is_some_and(|m| m.params.is_empty()));
}

#[test]
fn a_listener_without_routes_matches_nothing() {
    let empty = router(&[]);
    assert_eq!(find(&empty, "GET example.com /", NO), None);
}

#[test]
fn a_catch_all_matches_any_request_shape() {
    for catch_all in [route(), route().prefix("/")] {
        let r = router(&[catch_all]);
        for request in ["GET - /", "POST x.org:1 /a/b?c=d", "PATCH [::1] /%ff"] {
            assert_eq!(find(&r, request, NO).map(|m| m.route), Some(0), "{request}");
        }
    }
}
