//! The routing matrix through the real binary: host, path, method, header and
//! query conditions, and precedence between overlapping routes. (Actions and
//! the 404 are in `route_actions.rs`; the headers meshgate adds and strips
//! are in `forwarding.rs`.)
//!
//! Every route answers with something that names it (an echo upstream of its
//! own, or a direct response whose body is the route's name), so the winner
//! of each request is observable from the outside.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;

use common::Gateway;
use common::client;
use common::routes::{H1, LISTENER, call, cluster, direct_route, proxy_route};
use common::upstream;
use http::StatusCode;
use serde_json::Value;

/// Request headers as `(name, value)` pairs.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// The body of a direct-response route, or `404` when nothing matched.
async fn winner(
    c: &H1,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> String {
    let r = call(c, addr, method, path, headers).await;
    match r.status {
        StatusCode::OK => r.text(),
        StatusCode::NOT_FOUND => {
            assert_eq!(
                r.json()["error"],
                "no_route",
                "a 404 from meshgate: {}",
                r.text()
            );
            "404".into()
        }
        s => panic!("{method} {path} {headers:?}: unexpected {s}: {}", r.text()),
    }
}

/// Asserts a table of `(method, path, headers, expected winner)`.
async fn check_table(g: &Gateway, table: &[(&str, &str, Headers<'_>, &str)]) {
    let c = client::h1();
    let addr = g.addr("public");
    let mut failures = Vec::new();
    for (method, path, headers, want) in table {
        let got = winner(&c, addr, method, path, headers).await;
        if got != *want {
            failures.push(format!(
                "{method} {path} {headers:?}: want {want}, got {got}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "routing mismatches:\n{}",
        failures.join("\n")
    );
}

// === host ===

#[test]
fn host_exact_beats_wildcard_beats_longer_wildcard_order_and_none() {
    let config = format!(
        "{LISTENER}{}{}{}{}{}{}",
        direct_route("no-host", r#"path_prefix = "/""#),
        direct_route("wildcard", r#"host = "*.example.com""#),
        direct_route("longer-wildcard", r#"host = "*.eu.example.com""#),
        direct_route("exact", r#"host = "api.example.com""#),
        direct_route("ipv6", r#"host = "[::1]""#),
        direct_route("ipv4", r#"host = "10.0.0.1""#),
    );
    let g = Gateway::start(&config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(check_table(
        &g,
        &[
            ("GET", "/", &[("host", "api.example.com")], "exact"),
            ("GET", "/", &[("host", "API.Example.COM")], "exact"),
            ("GET", "/", &[("host", "api.example.com:8080")], "exact"),
            ("GET", "/", &[("host", "api.example.com.")], "exact"),
            ("GET", "/", &[("host", "x.example.com")], "wildcard"),
            ("GET", "/", &[("host", "a.b.example.com:1")], "wildcard"),
            (
                "GET",
                "/",
                &[("host", "x.eu.example.com")],
                "longer-wildcard",
            ),
            // The wildcard needs at least one more label.
            ("GET", "/", &[("host", "example.com")], "no-host"),
            ("GET", "/", &[("host", "eu.example.com")], "wildcard"),
            ("GET", "/", &[("host", "other.org")], "no-host"),
            ("GET", "/", &[("host", "badexample.com")], "no-host"),
            ("GET", "/", &[("host", "[::1]:8080")], "ipv6"),
            ("GET", "/", &[("host", "[::1]")], "ipv6"),
            ("GET", "/", &[("host", "10.0.0.1:80")], "ipv4"),
            ("GET", "/", &[("host", "10.0.0.10")], "no-host"),
        ],
    ));
}

#[test]
fn host_routes_without_a_catch_all_answer_404_for_other_hosts() {
    let config = format!(
        "{LISTENER}{}{}",
        direct_route("wildcard", r#"host = "*.example.com""#),
        direct_route("exact", r#"hosts = ["a.test", "b.test"]"#),
    );
    let g = Gateway::start(&config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(check_table(
        &g,
        &[
            ("GET", "/", &[("host", "a.test")], "exact"),
            ("GET", "/x", &[("host", "b.test")], "exact"),
            ("GET", "/", &[("host", "c.test")], "404"),
            ("GET", "/", &[("host", "example.com")], "404"),
            ("GET", "/", &[("host", "w.example.com")], "wildcard"),
        ],
    ));
}

// === path ===

#[test]
fn path_exact_prefix_template_and_regex() {
    let config = format!(
        "{LISTENER}{}{}{}{}{}",
        direct_route("exact", r#"path = "/exact""#),
        direct_route("prefix", r#"path_prefix = "/api""#),
        direct_route("dir-prefix", r#"path_prefix = "/docs/""#),
        direct_route("template", r#"path_template = "/users/{id}/posts/{post}""#),
        direct_route("regex", r#"path_regex = "/static/.+\\.(css|js)""#),
    );
    let g = Gateway::start(&config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(check_table(
        &g,
        &[
            ("GET", "/exact", &[], "exact"),
            ("GET", "/exact?q=1", &[], "exact"),
            ("GET", "/exact/", &[], "404"),
            ("GET", "/exactly", &[], "404"),
            ("GET", "/Exact", &[], "404"),
            // A prefix matches at a segment boundary only.
            ("GET", "/api", &[], "prefix"),
            ("GET", "/api/", &[], "prefix"),
            ("GET", "/api/x/y", &[], "prefix"),
            ("GET", "/api?x=1", &[], "prefix"),
            ("GET", "/apix", &[], "404"),
            // Paths are compared as sent: no percent-decoding.
            ("GET", "/ap%69", &[], "404"),
            ("GET", "/api%2Fx", &[], "404"),
            ("GET", "/ap", &[], "404"),
            // A directory-style prefix also catches the bare directory.
            ("GET", "/docs", &[], "dir-prefix"),
            ("GET", "/docs/", &[], "dir-prefix"),
            ("GET", "/docs/a", &[], "dir-prefix"),
            ("GET", "/docsx", &[], "404"),
            // A template needs exactly its segments, each parameter non-empty.
            ("GET", "/users/42/posts/7", &[], "template"),
            ("GET", "/users/abc/posts/x-y", &[], "template"),
            ("GET", "/users/42/posts/", &[], "404"),
            ("GET", "/users//posts/7", &[], "404"),
            ("GET", "/users/42/posts/7/x", &[], "404"),
            ("GET", "/users/42/comments/7", &[], "404"),
            // A regex must match the whole path.
            ("GET", "/static/a/b.css", &[], "regex"),
            ("GET", "/static/app.js", &[], "regex"),
            ("GET", "/static/app.js.map", &[], "404"),
            ("GET", "/x/static/app.js", &[], "404"),
            ("GET", "/static/.png", &[], "404"),
        ],
    ));
}

// === methods, headers, query ===

#[test]
fn method_header_and_query_conditions() {
    let config = format!(
        "{LISTENER}{}{}{}{}{}{}{}",
        direct_route("methods", r#"path = "/m", methods = ["post", "PUT"]"#),
        direct_route(
            "h-exact",
            r#"path = "/h", headers = [{ name = "X-Env", exact = "prod" }]"#
        ),
        direct_route(
            "h-present",
            r#"path = "/hp", headers = [{ name = "x-debug", present = true }]"#
        ),
        direct_route(
            "h-regex",
            r#"path = "/hr", headers = [{ name = "x-ver", regex = "v[0-9]+" }]"#
        ),
        direct_route(
            "q-exact",
            r#"path = "/q", query = [{ name = "debug", exact = "1" }]"#
        ),
        direct_route(
            "q-present",
            r#"path = "/qp", query = [{ name = "trace", present = true }]"#
        ),
        direct_route(
            "q-regex",
            r#"path = "/qr", query = [{ name = "v", regex = "[0-9]+" }]"#
        ),
    );
    let g = Gateway::start(&config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(check_table(
        &g,
        &[
            ("POST", "/m", &[], "methods"),
            ("PUT", "/m", &[], "methods"),
            ("GET", "/m", &[], "404"),
            ("DELETE", "/m", &[], "404"),
            // Header names are case-insensitive; values are exact bytes.
            ("GET", "/h", &[("x-env", "prod")], "h-exact"),
            ("GET", "/h", &[("x-env", "Prod")], "404"),
            ("GET", "/h", &[("x-env", "prod2")], "404"),
            ("GET", "/h", &[], "404"),
            // Any one of several lines may match.
            (
                "GET",
                "/h",
                &[("x-env", "dev"), ("x-env", "prod")],
                "h-exact",
            ),
            ("GET", "/hp", &[("x-debug", "anything")], "h-present"),
            ("GET", "/hp", &[("x-debug", "")], "h-present"),
            ("GET", "/hp", &[], "404"),
            ("GET", "/hr", &[("x-ver", "v12")], "h-regex"),
            ("GET", "/hr", &[("x-ver", "v12a")], "404"),
            ("GET", "/hr", &[("x-ver", "xv1")], "404"),
            ("GET", "/q?debug=1", &[], "q-exact"),
            ("GET", "/q?a=b&debug=1&c", &[], "q-exact"),
            ("GET", "/q?debug=2&debug=1", &[], "q-exact"),
            ("GET", "/q?debug=10", &[], "404"),
            ("GET", "/q?Debug=1", &[], "404"),
            // Nothing is percent-decoded.
            ("GET", "/q?debug=%31", &[], "404"),
            ("GET", "/q", &[], "404"),
            ("GET", "/qp?trace", &[], "q-present"),
            ("GET", "/qp?x=1&trace=", &[], "q-present"),
            ("GET", "/qp?tracer=1", &[], "404"),
            ("GET", "/qr?v=2024", &[], "q-regex"),
            ("GET", "/qr?v=20a", &[], "404"),
            ("GET", "/qr?v=", &[], "404"),
        ],
    ));
}

// === precedence ===

/// The config lists routes least specific first, so config order alone would
/// pick the wrong route for every request below; each route has its own echo
/// upstream (or a direct response) so the winner is visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_most_specific_route_wins_regardless_of_config_order() {
    let names = [
        "catch-all",
        "api",
        "api-v2",
        "api-canary",
        "user",
        "exact-host",
        "wildcard-host",
    ];
    let mut ups = Vec::new();
    for n in names {
        ups.push(upstream::echo(n).await);
    }
    let mut config = LISTENER.to_owned();
    config += &proxy_route("catch-all", r#"path_prefix = "/""#, "catch-all", "");
    config += &proxy_route("api", r#"path_prefix = "/api""#, "api", "");
    config += &proxy_route("api-v2", r#"path_prefix = "/api/v2""#, "api-v2", "");
    config += &proxy_route(
        "api-canary",
        r#"path_prefix = "/api", headers = [{ name = "x-canary", exact = "1" }]"#,
        "api-canary",
        "",
    );
    config += &proxy_route("user", r#"path_template = "/api/users/{id}""#, "user", "");
    config += &direct_route("health", r#"path = "/api/health""#);
    config += &proxy_route(
        "wildcard-host",
        r#"host = "*.example.com""#,
        "wildcard-host",
        "",
    );
    config += &proxy_route(
        "exact-host",
        r#"host = "a.example.com", path_prefix = "/""#,
        "exact-host",
        "",
    );
    // Equally specific: the first in the file wins, whatever the names.
    config += &direct_route(
        "tie-b",
        r#"path_prefix = "/tie", headers = [{ name = "x-a", present = true }]"#,
    );
    config += &direct_route(
        "tie-a",
        r#"path_prefix = "/tie", headers = [{ name = "x-b", present = true }]"#,
    );
    for (n, up) in names.iter().zip(&ups) {
        config += &cluster(n, up);
    }
    let g = Gateway::start(&config);
    let addr = g.addr("public");
    let c = client::h1();

    let cases: &[(&str, Headers<'_>, &str)] = &[
        ("/", &[], "catch-all"),
        ("/apix", &[], "catch-all"),
        ("/api/orders", &[], "api"),
        // Longer prefix wins.
        ("/api/v2/orders", &[], "api-v2"),
        ("/api/v2", &[], "api-v2"),
        ("/api/v23", &[], "api"),
        // Same prefix, more conditions wins.
        ("/api/orders", &[("x-canary", "1")], "api-canary"),
        ("/api/orders", &[("x-canary", "0")], "api"),
        // Template beats prefix, and the path ranks before conditions.
        ("/api/users/42", &[], "user"),
        ("/api/users/42", &[("x-canary", "1")], "user"),
        ("/api/users/42/avatar", &[], "api"),
        // Exact path beats template and prefixes.
        ("/api/health", &[("x-canary", "1")], "health"),
        // Exact host beats wildcard beats none; host ranks before path.
        ("/api/health", &[("host", "a.example.com")], "exact-host"),
        ("/api/health", &[("host", "b.example.com")], "wildcard-host"),
        (
            "/api/users/1",
            &[("host", "x.y.example.com")],
            "wildcard-host",
        ),
        ("/api/health", &[("host", "example.com")], "health"),
        // Config order on ties.
        ("/tie", &[("x-a", "1"), ("x-b", "1")], "tie-b"),
        ("/tie", &[("x-b", "1")], "tie-a"),
    ];
    let mut failures = Vec::new();
    for (path, headers, want) in cases {
        let r = call(&c, addr, "GET", path, headers).await;
        assert_eq!(r.status, StatusCode::OK, "{path} {headers:?}: {}", r.text());
        let got = match serde_json::from_slice::<Value>(&r.body) {
            Ok(v) => v["instance"].as_str().unwrap_or_default().to_owned(),
            Err(_) => r.text(),
        };
        if got != *want {
            failures.push(format!("GET {path} {headers:?}: want {want}, got {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "precedence mismatches:\n{}",
        failures.join("\n")
    );
    // Each upstream was reached by exactly the requests routed to it.
    let expected_hits = |n: &str| cases.iter().filter(|(_, _, w)| *w == n).count();
    for (n, up) in names.iter().zip(&ups) {
        assert_eq!(up.hits(), expected_hits(n), "hits of upstream {n}");
    }
}
