//! Route authorization: ordered allow and deny rules on the caller's mTLS
//! identity, its address, the path and the method, evaluated after
//! authentication.
//!
//! The first rule whose every named part matches decides. A route with no
//! rules allows everything; once it has rules, a request that no rule
//! matches is denied (`no_matching_rule`), as Consul intentions and Envoy
//! RBAC do. A denial is a 403 with its reason code, counted per route.
//!
//! Rules see the path as an upstream will most likely read it
//! ([`canonical`]: unreserved characters decoded, `//` merged, `.` and `..`
//! resolved), so `//admin`, `/./admin`, `/x/../admin` and `/%61dmin` all
//! meet a rule on `/admin/`. A path with an encoded slash or any backslash
//! could mean another path to some upstream and none of it to us: on a
//! route with rules it is refused (400 `ambiguous_path`). `path_prefix`
//! matches whole segments: `/api` matches `/api` and `/api/x`, not
//! `/api-internal`.

use std::net::IpAddr;
use std::sync::Arc;

use http::Method;
use meshgate_config::auth::{AuthzAction, AuthzRule};
use meshgate_core::{Error, ErrorKind};
use meshgate_telemetry::{Counter, Registry};

use crate::caller::Caller;

/// What a request looks like to the rules.
#[derive(Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub(crate) caller: &'a Caller,
    pub(crate) client: IpAddr,
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
}

/// A route's rules and their counters.
pub(crate) struct RouteAuthz {
    rules: Vec<AuthzRule>,
    denied_by_rule: Arc<Counter>,
    no_matching_rule: Arc<Counter>,
}

impl RouteAuthz {
    /// The rules of `route`; `None` when it has none (everything passes).
    pub(crate) fn new(rules: &[AuthzRule], route: &str, registry: &Registry) -> Option<Self> {
        if rules.is_empty() {
            return None;
        }
        let counter = |reason| {
            registry.counter(
                "meshgate_authz_denied_total",
                "Requests a route's authorization rules denied (403), by reason.",
                &[("route", route), ("reason", reason)],
            )
        };
        Some(Self {
            rules: rules.to_vec(),
            denied_by_rule: counter("denied_by_rule"),
            no_matching_rule: counter("no_matching_rule"),
        })
    }

    /// Allows the request, or answers why not.
    pub(crate) fn check(&self, subject: &Subject<'_>) -> Result<(), Error> {
        let Some(path) = canonical(subject.path) else {
            return Err(Error::downstream(
                ErrorKind::BadRequest,
                "the path has an encoded slash or a backslash, which authorization rules cannot judge",
            )
            .with_reason("ambiguous_path"));
        };
        let subject = Subject {
            path: &path,
            ..*subject
        };
        match decide(&self.rules, &subject) {
            Some((_, AuthzAction::Allow)) => Ok(()),
            Some((i, AuthzAction::Deny)) => {
                self.denied_by_rule.inc();
                Err(
                    Error::downstream(ErrorKind::Forbidden, format!("denied by authz rule {i}"))
                        .with_reason("denied_by_rule"),
                )
            }
            None => {
                self.no_matching_rule.inc();
                Err(
                    Error::downstream(ErrorKind::Forbidden, "no authz rule allows this request")
                        .with_reason("no_matching_rule"),
                )
            }
        }
    }
}

/// The first rule matching `subject`: its index and action.
pub(crate) fn decide(rules: &[AuthzRule], subject: &Subject<'_>) -> Option<(usize, AuthzAction)> {
    rules
        .iter()
        .enumerate()
        .find(|(_, r)| matches(r, subject))
        .map(|(i, r)| (i, r.action))
}

fn matches(rule: &AuthzRule, s: &Subject<'_>) -> bool {
    let identity_ok = rule.identities.is_empty()
        || s.caller
            .peer_identity
            .as_deref()
            .is_some_and(|id| rule.identities.iter().any(|p| p.matches(id)));
    identity_ok
        && (rule.sources.is_empty() || rule.sources.iter().any(|c| c.contains(s.client)))
        && rule.path_prefix.as_deref().is_none_or(|p| under(s.path, p))
        && (rule.methods.is_empty() || rule.methods.contains(s.method))
}

/// Whether `path` is `prefix` or below it, at a segment boundary.
fn under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        None => false,
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
    }
}

/// The path rules judge: `%XX` of unreserved characters (RFC 3986
/// `ALPHA / DIGIT / "-" / "." / "_" / "~"`) decoded, empty segments merged,
/// dot segments removed (RFC 3986 §5.2.4). `None` for an encoded `/` or
/// backslash, a raw backslash, or a malformed `%` escape.
pub(crate) fn canonical(path: &str) -> Option<String> {
    if path.contains('\\') {
        return None;
    }
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            decoded.push(char::from(b));
            i += 1;
            continue;
        }
        let hex = bytes.get(i + 1..i + 3)?;
        let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
        match value {
            b'/' | b'\\' => return None,
            v if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~') => {
                decoded.push(char::from(v));
            }
            // Kept encoded, upper-cased, so `%c3`-style variants compare equal.
            _ => {
                decoded.push('%');
                decoded.push_str(&format!("{value:02X}"));
            }
        }
        i += 3;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    if out.is_empty() || (trailing && !segments.is_empty()) {
        out.push('/');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshgate_config::auth::IdentityPattern;

    fn rule(action: AuthzAction) -> AuthzRule {
        AuthzRule {
            action,
            identities: Vec::new(),
            sources: Vec::new(),
            path_prefix: None,
            methods: Vec::new(),
        }
    }

    fn subject<'a>(caller: &'a Caller, ip: &str, method: &'a Method, path: &'a str) -> Subject<'a> {
        Subject {
            caller,
            client: ip.parse().unwrap(),
            method,
            path,
        }
    }

    #[test]
    fn paths_are_judged_as_upstreams_read_them() {
        for (raw, want) in [
            ("/admin/x", Some("/admin/x")),
            ("//admin/x", Some("/admin/x")),
            ("/./admin/x", Some("/admin/x")),
            ("/x/../admin/x", Some("/admin/x")),
            ("/../../admin", Some("/admin")),
            ("/%61dmin/x", Some("/admin/x")),
            ("/a/%2e%2e/admin/", Some("/admin/")),
            ("/a%20b", Some("/a%20b")),
            ("/a%c3%a9", Some("/a%C3%A9")),
            ("/", Some("/")),
            ("", Some("/")),
            ("/admin%2Fx", None),
            ("/admin%5cx", None),
            ("/admin\\x", None),
            ("/bad%zz", None),
            ("/bad%2", None),
        ] {
            assert_eq!(canonical(raw).as_deref(), want, "{raw}");
        }
        assert!(
            under("/api", "/api") && under("/api/x", "/api") && !under("/api-internal", "/api")
        );
        assert!(under("/admin/x", "/admin/") && !under("/admin", "/admin/"));
    }

    #[test]
    fn first_match_decides_and_default_denies() {
        let web = Caller {
            peer_identity: Some("spiffe://example.org/svc/web".into()),
            ..Caller::default()
        };
        let anonymous = Caller::default();
        let mut deny_admin = rule(AuthzAction::Deny);
        deny_admin.path_prefix = Some("/admin/".into());
        let mut allow_svc = rule(AuthzAction::Allow);
        allow_svc.identities = vec![IdentityPattern::Prefix("spiffe://example.org/svc/".into())];
        let mut allow_lan_get = rule(AuthzAction::Allow);
        allow_lan_get.sources = vec!["10.0.0.0/8".parse().unwrap()];
        allow_lan_get.methods = vec![Method::GET];
        let rules = [deny_admin, allow_svc, allow_lan_get];
        let (get, post) = (Method::GET, Method::POST);

        assert_eq!(
            decide(&rules, &subject(&web, "1.2.3.4", &get, "/admin/x")),
            Some((0, AuthzAction::Deny))
        );
        assert_eq!(
            decide(&rules, &subject(&web, "1.2.3.4", &post, "/api")),
            Some((1, AuthzAction::Allow))
        );
        assert_eq!(
            decide(&rules, &subject(&anonymous, "10.1.2.3", &get, "/api")),
            Some((2, AuthzAction::Allow))
        );
        assert_eq!(
            decide(&rules, &subject(&anonymous, "10.1.2.3", &post, "/api")),
            None
        );
        assert_eq!(
            decide(&rules, &subject(&anonymous, "11.1.2.3", &get, "/api")),
            None
        );
    }
}
