//! Route authorization: ordered allow and deny rules on the caller's mTLS
//! identity, its address, the path and the method, evaluated after
//! authentication.
//!
//! The first rule whose every named part matches decides. A route with no
//! rules allows everything; once it has rules, a request that no rule
//! matches is denied (`no_matching_rule`), as Consul intentions and Envoy
//! RBAC do. A denial is a 403 with its reason code, counted per route.

use std::net::IpAddr;
use std::sync::Arc;

use http::Method;
use meshgate_config::auth::{AuthzAction, AuthzRule};
use meshgate_core::{Error, ErrorKind};
use meshgate_telemetry::{Counter, Registry};

use crate::caller::Caller;

/// What a request looks like to the rules.
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
        match decide(&self.rules, subject) {
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
        && rule
            .path_prefix
            .as_deref()
            .is_none_or(|p| s.path.starts_with(p))
        && (rule.methods.is_empty() || rule.methods.contains(s.method))
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
