//! Hand-built routes and requests for the router's integration tests.
//!
//! Routes are built straight from the typed config model, the way the config
//! crate would produce them: hosts lower-case, wildcards as `.suffix`, regexes
//! anchored with `^(?:...)$`.
#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(
    clippy::unwrap_used,
    reason = "test fixtures: a panic is the failure report"
)]

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use meshgate_config::{
    HeaderMatch, HostMatch, PathMatch, PathTemplate, QueryMatch, RouteMatch, TemplateSegment,
    ValueMatch,
};
use meshgate_router::{Match, RequestView, Router};

/// Starts a route with no conditions (it matches everything).
pub(crate) fn route() -> RouteMatch {
    RouteMatch::default()
}

/// Builder methods for [`RouteMatch`], named after the config keys.
pub(crate) trait RouteExt: Sized {
    fn host(self, host: &str) -> Self;
    fn wildcard(self, suffix: &str) -> Self;
    fn exact(self, path: &str) -> Self;
    fn prefix(self, prefix: &str) -> Self;
    fn template(self, template: &str) -> Self;
    fn regex(self, pattern: &str) -> Self;
    fn methods(self, methods: &[Method]) -> Self;
    fn header(self, name: &'static str, value: ValueMatch) -> Self;
    fn query(self, name: &str, value: ValueMatch) -> Self;
}

impl RouteExt for RouteMatch {
    fn host(mut self, host: &str) -> Self {
        self.hosts.push(HostMatch::Exact(host.into()));
        self
    }
    fn wildcard(mut self, suffix: &str) -> Self {
        self.hosts.push(HostMatch::Wildcard(suffix.into()));
        self
    }
    fn exact(mut self, path: &str) -> Self {
        self.path = Some(PathMatch::Exact(path.into()));
        self
    }
    fn prefix(mut self, prefix: &str) -> Self {
        self.path = Some(PathMatch::Prefix(prefix.into()));
        self
    }
    fn template(mut self, template: &str) -> Self {
        let segments = template
            .strip_prefix('/')
            .unwrap_or(template)
            .split('/')
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => TemplateSegment::Param(name.into()),
                    None => TemplateSegment::Literal(s.into()),
                },
            )
            .collect();
        self.path = Some(PathMatch::Template(PathTemplate {
            raw: template.into(),
            segments,
        }));
        self
    }
    fn regex(mut self, pattern: &str) -> Self {
        self.path = Some(PathMatch::Regex(anchored(pattern)));
        self
    }
    fn methods(mut self, methods: &[Method]) -> Self {
        self.methods = methods.to_vec();
        self
    }
    fn header(mut self, name: &'static str, value: ValueMatch) -> Self {
        self.headers.push(HeaderMatch {
            name: HeaderName::from_static(name),
            value,
        });
        self
    }
    fn query(mut self, name: &str, value: ValueMatch) -> Self {
        self.query.push(QueryMatch {
            name: name.into(),
            value,
        });
        self
    }
}

/// Anchors a pattern the way the config crate does.
pub(crate) fn anchored(pattern: &str) -> regex::Regex {
    regex::Regex::new(&format!("^(?:{pattern})$")).unwrap()
}

pub(crate) fn is(value: &str) -> ValueMatch {
    ValueMatch::Exact(value.into())
}

pub(crate) fn present() -> ValueMatch {
    ValueMatch::Present
}

pub(crate) fn re(pattern: &str) -> ValueMatch {
    ValueMatch::Regex(anchored(pattern))
}

/// A router over `routes`, with config indices 0, 1, 2, ...
pub(crate) fn router(routes: &[RouteMatch]) -> Router {
    Router::new(routes.iter().enumerate())
}

/// Routes `"METHOD host /path?query"` (host `-` for none) with `headers`.
pub(crate) fn find(router: &Router, request: &str, headers: &[(&str, &str)]) -> Option<Match> {
    let mut words = request.split(' ');
    let method = Method::from_bytes(words.next().unwrap().as_bytes()).unwrap();
    let host = Some(words.next().unwrap()).filter(|h| *h != "-");
    let target = words.next().unwrap();
    assert!(
        words.next().is_none(),
        "request {request:?} has extra words"
    );
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    router.find(&RequestView {
        method: &method,
        host,
        path,
        query,
        headers: &map,
    })
}

/// One listener's routes with every kind of condition, overlapping on
/// purpose. The numbers are the config indices the tests expect.
pub(crate) fn every_kind() -> Vec<RouteMatch> {
    vec![
        /* 0 */ route().host("api.example.com").prefix("/v1"),
        /* 1 */ route().wildcard(".example.com").prefix("/v1"),
        /* 2 */ route().prefix("/v1"),
        /* 3 */ route().exact("/v1/health"),
        /* 4 */ route().template("/users/{id}"),
        /* 5 */ route().template("/users/{id}/posts/{post}"),
        /* 6 */ route().template("/users/me"),
        /* 7 */ route().prefix("/users"),
        /* 8 */ route().regex(r"/img/[a-z]+\.png"),
        /* 9 */ route().prefix("/static/"),
        /* 10 */
        route()
            .methods(&[Method::POST, Method::PUT])
            .prefix("/upload"),
        /* 11 */ route().prefix("/upload"),
        /* 12 */ route().header("x-canary", is("1")).prefix("/app"),
        /* 13 */ route().header("x-version", re("v[0-9]+")).prefix("/app"),
        /* 14 */
        route()
            .header("x-debug", present())
            .query("debug", present())
            .prefix("/app"),
        /* 15 */ route().query("v", is("2")).prefix("/app"),
        /* 16 */ route().query("lang", re("[a-z]{2}")).prefix("/app"),
        /* 17 */ route().prefix("/app"),
        /* 18 */ route().wildcard(".internal.example.com"),
        /* 19 */ route().host("[::1]").prefix("/"),
        /* 20 */ route().host("shop.example.com"),
        /* 21 */
        route()
            .host("multi.test")
            .wildcard(".multi.test")
            .exact("/m"),
    ]
}
