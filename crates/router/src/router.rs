//! The [`Router`]: routes compiled and sorted once, scanned per request.

use std::cmp::Reverse;

use meshgate_config::{Config, RouteMatch};

use crate::conditions::Conditions;
use crate::host::{self, HostPattern, HostRank};
use crate::path::{PathMatcher, PathRank};
use crate::{Match, RequestView};

/// The compiled routes of one listener, most specific first.
///
/// Build one per listener whenever a config is loaded, then share it (it is
/// `Send + Sync` and immutable). [`Router::find`] scans the entries in
/// precedence order and returns the first whose every condition holds; for
/// the 1–20 routes typical of a listener a linear scan of precompiled
/// matchers beats any index, and it keeps precedence trivially correct.
#[derive(Debug, Clone)]
pub struct Router {
    /// One entry per (route, host pattern), sorted by [`Specificity`]
    /// descending, then by route index and input order.
    entries: Box<[Entry]>,
    /// Some entry has a host condition. When none does, `find` does not even
    /// look at the request's host.
    needs_host: bool,
}

/// One route as compiled for one of its host patterns.
///
/// A route with hosts `[a.example.com, *.example.com]` becomes two entries
/// that differ only in `host`, each ranked by its own pattern. Regexes are
/// reference-counted, so the copies share them.
#[derive(Debug, Clone)]
struct Entry {
    /// Index into `Config::routes`.
    route: usize,
    /// The host condition.
    host: HostPattern,
    /// The path condition.
    path: PathMatcher,
    /// Method, header and query conditions.
    conditions: Conditions,
}

/// How specific an entry is. Fields compare in declaration order, each
/// larger-is-more-specific: the host first, then the path, then the number
/// of other conditions. Equal keys fall back to config order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Specificity {
    host: HostRank,
    path: PathRank,
    conditions: usize,
}

// Compile-time proof of the contract the proxy relies on.
const _: fn() = || {
    fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<Router>();
};

// === impl Router ===

impl Router {
    /// Compiles the routes of one listener.
    ///
    /// `routes` yields `(index into Config::routes, &route.matcher)`; the
    /// index is what [`Match::route`] reports and what breaks ties between
    /// equally specific routes (lower first). All parsing, lower-casing and
    /// ranking happens here, so [`Router::find`] only compares.
    pub fn new<'a>(routes: impl IntoIterator<Item = (usize, &'a RouteMatch)>) -> Router {
        let mut keyed = Vec::new();
        for (seq, (route, m)) in routes.into_iter().enumerate() {
            let path = PathMatcher::compile(m.path.as_ref());
            let conditions = Conditions::compile(m);
            let hosts = if m.hosts.is_empty() {
                vec![HostPattern::Any]
            } else {
                m.hosts.iter().map(HostPattern::compile).collect()
            };
            for host in hosts {
                let key = Specificity {
                    host: host.rank(),
                    path: path.rank(),
                    conditions: conditions.count(),
                };
                let entry = Entry {
                    route,
                    host,
                    path: path.clone(),
                    conditions: conditions.clone(),
                };
                keyed.push((Reverse(key), route, seq, entry));
            }
        }
        keyed.sort_by_key(|(key, route, seq, _)| (*key, *route, *seq));
        let entries: Box<[Entry]> = keyed.into_iter().map(|(.., entry)| entry).collect();
        let needs_host = entries.iter().any(|e| !matches!(e.host, HostPattern::Any));
        Router {
            entries,
            needs_host,
        }
    }

    /// Compiles the routes of `config.listeners[listener]`, in config order.
    /// An index with no routes yields a router that matches nothing.
    pub fn for_listener(config: &Config, listener: usize) -> Router {
        Router::new(
            config
                .routes
                .iter()
                .enumerate()
                .filter(|(_, r)| r.listener == listener)
                .map(|(i, r)| (i, &r.matcher)),
        )
    }

    /// The most specific route whose every condition holds for `req`, or
    /// `None` (the proxy answers 404).
    ///
    /// Allocates nothing, except for the captured values when the winner is
    /// a path template with parameters (and a regex's per-thread scratch
    /// space the first time a thread runs it).
    pub fn find(&self, req: &RequestView<'_>) -> Option<Match> {
        let host = if self.needs_host {
            req.host.map(host::normalize)
        } else {
            None
        };
        let entry = self.entries.iter().find(|e| e.matches(host, req))?;
        Some(Match {
            route: entry.route,
            params: entry.path.params(req.path),
        })
    }
}

// === impl Entry ===

impl Entry {
    /// Host first (it rules out most entries on multi-host listeners), then
    /// path, then the rest.
    #[inline]
    fn matches(&self, host: Option<&[u8]>, req: &RequestView<'_>) -> bool {
        self.host.matches(host)
            && self.path.matches(req.path)
            && self.conditions.matches(req.method, req.headers, req.query)
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, Method};
    use meshgate_config::{HostMatch, PathMatch};

    use super::*;

    fn route(hosts: &[HostMatch], prefix: &str) -> RouteMatch {
        RouteMatch {
            hosts: hosts.to_vec(),
            path: Some(PathMatch::Prefix(prefix.into())),
            ..RouteMatch::default()
        }
    }

    #[test]
    fn a_multi_host_route_is_ranked_by_the_host_that_matched() {
        let both = route(
            &[
                HostMatch::Exact("a.example.com".into()),
                HostMatch::Wildcard(".example.com".into()),
            ],
            "/",
        );
        let wild_longer = route(&[HostMatch::Wildcard(".b.example.com".into())], "/");
        let router = Router::new([(0, &both), (1, &wild_longer)]);
        let headers = HeaderMap::new();
        let find = |host| {
            let req = RequestView {
                method: &Method::GET,
                host: Some(host),
                path: "/",
                query: None,
                headers: &headers,
            };
            router.find(&req).map(|m| m.route)
        };
        assert_eq!(find("a.example.com"), Some(0), "exact beats any wildcard");
        assert_eq!(
            find("x.b.example.com"),
            Some(1),
            "longer wildcard beats shorter"
        );
        assert_eq!(find("x.example.com"), Some(0));
        assert_eq!(find("example.com"), None);
    }

    #[test]
    fn for_listener_keeps_config_indices_of_that_listener_only() {
        let on = |listener, prefix: &str| meshgate_config::Route {
            name: format!("{listener}{prefix}"),
            listener,
            matcher: route(&[], prefix),
            action: meshgate_config::RouteAction::Direct(meshgate_config::DirectResponse {
                status: http::StatusCode::OK,
                body: Default::default(),
                content_type: None,
            }),
            auth: None,
            authz: Vec::new(),
            rate_limit: None,
        };
        let config = Config {
            source: None,
            runtime: meshgate_config::Runtime::default(),
            admin: None,
            listeners: Vec::new(),
            routes: vec![on(0, "/"), on(1, "/"), on(0, "/a"), on(1, "/a")],
            clusters: Vec::new(),
            firewall: Default::default(),
            mesh: None,
            discovery: None,
            services: Vec::new(),
            warnings: Vec::new(),
        };
        let router = Router::for_listener(&config, 1);
        assert_eq!(
            router.entries.iter().map(|e| e.route).collect::<Vec<_>>(),
            [3, 1]
        );
        assert!(Router::for_listener(&config, 7).entries.is_empty());
    }

    #[test]
    fn ties_use_the_config_index_not_the_input_order() {
        let a = route(&[], "/x");
        let b = route(&[], "/y");
        let router = Router::new([(7, &a), (3, &b)]);
        assert_eq!(
            router.entries.iter().map(|e| e.route).collect::<Vec<_>>(),
            [3, 7]
        );
        assert!(!router.needs_host);
    }
}
