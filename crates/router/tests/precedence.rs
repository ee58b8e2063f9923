//! Precedence between overlapping routes, one small listener per rule.
//!
//! Each table lists the routes in config order and requests with the route
//! they must reach. Every table is also run with the routes in reverse input
//! order (same config indices), to show the answer comes from specificity
//! and the config index, never from the order `Router::new` saw them in.

#[path = "support/build.rs"]
mod build;

use build::{RouteExt, find, is, present, route};
use http::Method;
use meshgate_config::RouteMatch;
use meshgate_router::Router;

type Expect = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<usize>,
);

const NO: &[(&str, &str)] = &[];

/// Checks every expectation against `routes`, given forwards and backwards.
fn check(rule: &str, routes: &[RouteMatch], expect: &[Expect]) {
    let forwards = Router::new(routes.iter().enumerate());
    let backwards = Router::new(routes.iter().enumerate().rev());
    for router in [forwards, backwards] {
        for (request, headers, want) in expect {
            let got = find(&router, request, headers).map(|m| m.route);
            assert_eq!(got, *want, "{rule}: {request:?} {headers:?}");
        }
    }
}

#[test]
fn exact_path_beats_prefix() {
    let routes = [route().prefix("/a"), route().exact("/a/b")];
    check(
        "exact > prefix",
        &routes,
        &[("GET - /a/b", NO, Some(1)), ("GET - /a/c", NO, Some(0))],
    );
}

#[test]
fn longer_prefix_beats_shorter() {
    let routes = [
        route().prefix("/"),
        route().prefix("/a"),
        route().prefix("/a/b"),
    ];
    check(
        "longer prefix first",
        &routes,
        &[
            ("GET - /a/b/c", NO, Some(2)),
            ("GET - /a/bc", NO, Some(1)),
            ("GET - /a", NO, Some(1)),
            ("GET - /b", NO, Some(0)),
        ],
    );
}

#[test]
fn exact_host_beats_wildcard_beats_none() {
    let routes = [
        route().prefix("/"),
        route().wildcard(".x.com"),
        route().host("a.x.com"),
    ];
    check(
        "host rank",
        &routes,
        &[
            ("GET a.x.com /", NO, Some(2)),
            ("GET b.x.com /", NO, Some(1)),
            ("GET x.com /", NO, Some(0)),
            ("GET - /", NO, Some(0)),
        ],
    );
}

#[test]
fn longer_wildcard_beats_shorter() {
    let routes = [
        route().wildcard(".com"),
        route().wildcard(".x.com"),
        route().wildcard(".a.x.com"),
    ];
    check(
        "wildcard length",
        &routes,
        &[
            ("GET b.a.x.com /", NO, Some(2)),
            ("GET a.x.com /", NO, Some(1)),
            ("GET x.com /", NO, Some(0)),
        ],
    );
}

#[test]
fn host_outranks_path() {
    let routes = [route().exact("/x"), route().wildcard(".e.com")];
    check(
        "host before path",
        &routes,
        &[
            ("GET a.e.com /x", NO, Some(1)),
            ("GET e.com /x", NO, Some(0)),
        ],
    );
}

#[test]
fn template_beats_prefix_and_loses_to_exact() {
    let routes = [
        route().prefix("/users/"),
        route().template("/users/{id}"),
        route().exact("/users/new"),
    ];
    check(
        "exact > template > prefix",
        &routes,
        &[
            ("GET - /users/1", NO, Some(1)),
            ("GET - /users/new", NO, Some(2)),
            ("GET - /users/1/2", NO, Some(0)),
            ("GET - /users", NO, Some(0)),
        ],
    );
}

#[test]
fn templates_rank_by_literals_then_segments() {
    let routes = [
        route().template("/{a}/{b}"),
        route().template("/{a}/{b}/{c}"),
        route().template("/x/{b}"),
    ];
    check(
        "template literals, then length",
        &routes,
        &[
            ("GET - /x/1", NO, Some(2)),
            ("GET - /y/1", NO, Some(0)),
            ("GET - /x/1/2", NO, Some(1)),
        ],
    );
}

#[test]
fn prefix_beats_regex_beats_no_path() {
    let routes = [route(), route().regex("/a/.*"), route().prefix("/a/b")];
    check(
        "prefix > regex > none",
        &routes,
        &[
            ("GET - /a/b", NO, Some(2)),
            ("GET - /a/c", NO, Some(1)),
            ("GET - /b", NO, Some(0)),
        ],
    );
}

#[test]
fn more_conditions_first() {
    let routes = [
        route().prefix("/"),
        route().prefix("/").methods(&[Method::GET, Method::POST]),
        route()
            .prefix("/")
            .methods(&[Method::GET])
            .header("x-a", present()),
        route()
            .prefix("/")
            .query("q", is("1"))
            .header("x-a", present())
            .header("x-b", present()),
    ];
    check(
        "condition count",
        &routes,
        &[
            ("GET - /?q=1", &[("x-a", ""), ("x-b", "")], Some(3)),
            ("GET - /", &[("x-a", ""), ("x-b", "")], Some(2)),
            ("POST - /", &[("x-a", "")], Some(1)),
            ("PUT - /", &[("x-a", "")], Some(0)),
        ],
    );
}

#[test]
fn conditions_never_outrank_a_more_specific_path() {
    let routes = [
        route()
            .prefix("/a")
            .methods(&[Method::GET])
            .header("x-a", present())
            .query("q", present()),
        route().prefix("/a/b"),
    ];
    check(
        "path before conditions",
        &routes,
        &[("GET - /a/b?q", &[("x-a", "1")], Some(1))],
    );
}

#[test]
fn config_order_breaks_ties() {
    let routes = [
        route().prefix("/p").header("x", present()),
        route().prefix("/p").query("x", present()),
    ];
    check(
        "config order",
        &routes,
        &[
            ("GET - /p?x", &[("x", "")], Some(0)),
            ("GET - /p?x", NO, Some(1)),
            ("GET - /p", &[("x", "")], Some(0)),
        ],
    );
    let same = [route().prefix("/"), route().prefix("/")];
    check("identical routes", &same, &[("GET - /", NO, Some(0))]);
}

#[test]
fn slash_terminated_prefix_outranks_its_bare_twin() {
    let routes = [route().prefix("/demo"), route().prefix("/demo/")];
    check(
        "`/demo/` is one byte longer than `/demo`",
        &routes,
        &[
            ("GET - /demo/x", NO, Some(1)),
            ("GET - /demo", NO, Some(1)),
            ("GET - /demox", NO, None),
        ],
    );
}

/// The worked example in `docs/routing.md`, verbatim; keep the two in step.
#[test]
fn the_documented_worked_example_holds() {
    let routes = [
        route().prefix("/"),
        route().prefix("/api"),
        route().prefix("/api").header("x-canary", is("1")),
        route().template("/api/users/{id}"),
        route().exact("/api/health"),
        route().wildcard(".tenants.example.com"),
    ];
    const CANARY: &[(&str, &str)] = &[("x-canary", "1")];
    check(
        "docs/routing.md",
        &routes,
        &[
            ("GET acme.tenants.example.com /api/health", NO, Some(5)),
            ("GET example.com /api/health", NO, Some(4)),
            ("GET example.com /api/users/42", NO, Some(3)),
            ("GET example.com /api/users/42/avatar", NO, Some(1)),
            ("GET example.com /api/users/42", CANARY, Some(3)),
            ("GET example.com /api/orders", CANARY, Some(2)),
            ("GET example.com /api/orders", NO, Some(1)),
            ("GET example.com /apix", NO, Some(0)),
            ("GET tenants.example.com /", NO, Some(0)),
        ],
    );
    let params = build::find(
        &Router::new(routes.iter().enumerate()),
        "GET example.com /api/users/42",
        NO,
    )
    .map(|m| {
        m.params
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
    });
    assert_eq!(params, Some(vec!["id=42".to_string()]));
}
