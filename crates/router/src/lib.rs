//! Route matching for meshgate: which configured route handles a request.
//!
//! This crate is **pure**. It turns the typed route conditions of
//! `meshgate-config` into a [`Router`] and answers [`Router::find`] from the
//! borrowed parts of a request. It must never depend on tokio, hyper, a
//! clock, randomness or I/O: the same config and request always give the
//! same answer, which is what lets the matrix, property and fuzz tests pin
//! its behaviour down completely.
//!
//! # Why it looks like this
//!
//! `find` runs once per request, and almost every listener has between one
//! and twenty routes (the benchmark has a single catch-all). So the router
//! does all of its work up front: [`Router::new`] compiles every condition
//! into a form that can be compared against borrowed request bytes, ranks the
//! routes once, and stores them most specific first. `find` is then a linear
//! scan that returns the first route whose conditions all hold. It allocates
//! nothing unless the winning route is a path template that captures
//! parameters: hosts are compared ASCII-case-insensitively in place (port,
//! IPv6 brackets and a trailing dot are sliced off, not copied), query
//! strings are split in place, and header values are compared as bytes.
//!
//! # Precedence
//!
//! Among one listener's routes the most specific wins, compared in order:
//!
//! 1. **host**: exact host > wildcard (longer suffix first) > no host
//!    condition. A route with several hosts ranks by the host that matched.
//! 2. **path**: exact > template (more literal segments, then more segments)
//!    > prefix (longer first) > regex > no path condition.
//! 3. **other conditions**: more first; the method list counts as one, each
//!    header and each query condition as one.
//! 4. **config order**: the lower index into `Config::routes` wins.
//!
//! `docs/routing.md` has the matching rules in full and a worked example.
//!
//! # Example
//!
//! ```
//! use http::{HeaderMap, Method};
//! use meshgate_config::{PathMatch, RouteMatch};
//! use meshgate_router::{RequestView, Router};
//!
//! let api = RouteMatch { path: Some(PathMatch::Prefix("/api".into())), ..RouteMatch::default() };
//! let everything = RouteMatch::default();
//! // Config order puts the catch-all first; the longer prefix still wins.
//! let router = Router::new([(0, &everything), (1, &api)]);
//!
//! let headers = HeaderMap::new();
//! let req = |path| RequestView {
//!     method: &Method::GET,
//!     host: Some("example.com"),
//!     path,
//!     query: None,
//!     headers: &headers,
//! };
//! assert_eq!(router.find(&req("/api/users")).map(|m| m.route), Some(1));
//! assert_eq!(router.find(&req("/apix")).map(|m| m.route), Some(0));
//! ```
#![warn(missing_docs)]

mod conditions;
mod host;
mod path;
mod router;

use std::sync::Arc;

use http::header::HOST;
use http::{HeaderMap, Method, Uri};

pub use router::Router;

/// The parts of a request that routing looks at, all borrowed.
///
/// Building one costs nothing; the proxy fills it from the parsed request
/// head (see [`RequestView::from_parts`]) or by hand in tests.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The `Host` header or `:authority`, exactly as received: it may carry a
    /// port (`example.com:8080`), IPv6 brackets (`[::1]:80`), upper case or a
    /// trailing dot. The router normalises it in place.
    pub host: Option<&'a str>,
    /// The path, without the query string and not percent-decoded.
    pub path: &'a str,
    /// The raw query string without the leading `?`, if the target had one.
    pub query: Option<&'a str>,
    /// All request headers.
    pub headers: &'a HeaderMap,
}

/// The winning route for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Index into `Config::routes` (the index given to [`Router::new`]).
    pub route: usize,
    /// The `{param}` values captured by a path template; empty for every
    /// other kind of route.
    pub params: Params,
}

/// Path-template parameters, in template order.
///
/// Values are the raw path segments, not percent-decoded. Names point into
/// the compiled router, so capturing allocates only the values and the list.
/// An empty `Params` never allocates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub(crate) Vec<(Arc<str>, String)>);

// === impl RequestView ===

impl<'a> RequestView<'a> {
    /// Views a request head as the proxy received it.
    ///
    /// The host comes from the target's authority when it has one (HTTP/2
    /// `:authority`, or an HTTP/1.1 absolute-form target, which RFC 9112
    /// §3.2.2 says takes precedence), and otherwise from the `Host` header;
    /// a `Host` value that is not visible ASCII counts as absent.
    pub fn from_parts(parts: &'a http::request::Parts) -> Self {
        Self::new(&parts.method, &parts.uri, &parts.headers)
    }

    /// Like [`RequestView::from_parts`], for a whole request.
    pub fn from_request<B>(req: &'a http::Request<B>) -> Self {
        Self::new(req.method(), req.uri(), req.headers())
    }

    fn new(method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap) -> Self {
        let host = match uri.authority() {
            // `host()` drops any `user@` part and the port; IPv6 keeps its brackets.
            Some(authority) => Some(authority.host()),
            None => headers.get(HOST).and_then(|v| v.to_str().ok()),
        };
        Self {
            method,
            host,
            path: uri.path(),
            query: uri.query(),
            headers,
        }
    }
}

// === impl Params ===

impl Params {
    /// The value of the parameter `name`, if the template has one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `(name, value)` pairs in template order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (&**n, v.as_str()))
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (every non-template route).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]
mod tests {
    use super::*;

    fn parts(uri: &str, host: Option<&str>) -> http::request::Parts {
        let mut builder = http::Request::builder().uri(uri);
        if let Some(host) = host {
            builder = builder.header(HOST, host);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn origin_form_takes_host_header_path_and_query() {
        let p = parts("/a/b?x=1&y", Some("Example.com:80"));
        let v = RequestView::from_parts(&p);
        assert_eq!(v.host, Some("Example.com:80"));
        assert_eq!(v.path, "/a/b");
        assert_eq!(v.query, Some("x=1&y"));
    }

    #[test]
    fn authority_wins_over_host_header() {
        let p = parts("http://user@[::1]:8080/p", Some("other.example"));
        let v = RequestView::from_parts(&p);
        assert_eq!(v.host, Some("[::1]"));
        assert_eq!(v.path, "/p");
        assert_eq!(v.query, None);
    }

    #[test]
    fn params_look_up_by_name_in_order() {
        let p = Params(vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
        assert_eq!(p.get("b"), Some("2"));
        assert_eq!(p.get("c"), None);
        assert_eq!(p.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
        assert!(!p.is_empty() && Params::default().is_empty());
    }
}
