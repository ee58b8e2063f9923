//! Whether a failed attempt is retried: the route's `retry_on`, the
//! method's idempotency, and what the attempt came to.
//!
//! Pure: the proxy classifies each attempt ([`Attempt`]) and asks
//! [`decide`]; the budget ([`crate::budget`]) and the retry count are
//! checked by the caller, which also owns the clock.

use meshgate_config::RetryPolicy;

use crate::outlier::Outcome;

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The upstream answered with this status.
    Response(u16),
    /// No connection: refused, unreachable, connect timeout. The request
    /// never left.
    ConnectFailure,
    /// The connection broke before a response head arrived.
    Reset,
    /// The per-try timeout passed without a response head.
    Timeout,
}

/// Why a retry happens (the `reason` label of the retry metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `connect-failure`.
    ConnectFailure,
    /// `reset`.
    Reset,
    /// A per-try timeout (`gateway-error` or `5xx`).
    Timeout,
    /// A retried status (`gateway-error`, `5xx` or `retriable-status-codes`).
    Status,
}

impl Reason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ConnectFailure => "connect_failure",
            Reason::Reset => "reset",
            Reason::Timeout => "per_try_timeout",
            Reason::Status => "status",
        }
    }
}

impl Attempt {
    /// The attempt as outlier detection counts it: 502, 503 and 504 are
    /// gateway errors (as in Envoy), like failures to get any response.
    pub fn outcome(self) -> Outcome {
        match self {
            Attempt::Response(502..=504) => Outcome::GatewayError,
            Attempt::Response(500..) => Outcome::ServerError,
            Attempt::Response(_) => Outcome::Success,
            Attempt::ConnectFailure | Attempt::Reset | Attempt::Timeout => Outcome::GatewayError,
        }
    }
}

/// Whether `attempt` is retried under `policy`, ignoring the count and the
/// budget. `idempotent`: the request's method is (RFC 9110 §9.2.2), so it
/// may be replayed even though the upstream may have acted on it; a connect
/// failure is always replayable, since nothing was sent.
pub fn decide(policy: &RetryPolicy, attempt: Attempt, idempotent: bool) -> Option<Reason> {
    let on = policy.retry_on;
    let any_gateway = on.gateway_error || on.server_error;
    let (wanted, reason) = match attempt {
        Attempt::ConnectFailure => {
            return (on.connect_failure || any_gateway).then_some(Reason::ConnectFailure);
        }
        Attempt::Reset => (on.reset || any_gateway, Reason::Reset),
        Attempt::Timeout => (any_gateway, Reason::Timeout),
        Attempt::Response(status) => {
            let listed = on.retriable_status_codes
                && policy
                    .retriable_status_codes
                    .iter()
                    .any(|s| s.as_u16() == status);
            let by_class = match status {
                502..=504 => any_gateway,
                500..=599 => on.server_error,
                _ => false,
            };
            (listed || by_class, Reason::Status)
        }
    };
    (wanted && (idempotent || policy.retry_non_idempotent)).then_some(reason)
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use meshgate_config::RetryOn;

    use super::*;

    fn policy(on: RetryOn) -> RetryPolicy {
        RetryPolicy {
            retry_on: on,
            retriable_status_codes: vec![StatusCode::TOO_MANY_REQUESTS],
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn each_retry_on_value_covers_its_failures() {
        let connect = policy(RetryOn {
            connect_failure: true,
            ..RetryOn::default()
        });
        assert_eq!(
            decide(&connect, Attempt::ConnectFailure, false),
            Some(Reason::ConnectFailure),
            "nothing was sent: even a POST is retried"
        );
        assert_eq!(decide(&connect, Attempt::Reset, true), None);
        assert_eq!(decide(&connect, Attempt::Response(503), true), None);

        let gateway = policy(RetryOn {
            gateway_error: true,
            ..RetryOn::default()
        });
        for a in [
            Attempt::ConnectFailure,
            Attempt::Reset,
            Attempt::Timeout,
            Attempt::Response(502),
            Attempt::Response(503),
            Attempt::Response(504),
        ] {
            assert!(decide(&gateway, a, true).is_some(), "{a:?}");
        }
        assert_eq!(decide(&gateway, Attempt::Response(500), true), None);
        assert_eq!(decide(&gateway, Attempt::Response(200), true), None);

        let server = policy(RetryOn {
            server_error: true,
            ..RetryOn::default()
        });
        assert_eq!(
            decide(&server, Attempt::Response(500), true),
            Some(Reason::Status)
        );
        assert_eq!(decide(&server, Attempt::Response(429), true), None);

        let listed = policy(RetryOn {
            retriable_status_codes: true,
            ..RetryOn::default()
        });
        assert_eq!(
            decide(&listed, Attempt::Response(429), true),
            Some(Reason::Status)
        );
        assert_eq!(decide(&listed, Attempt::Response(503), true), None);
    }

    #[test]
    fn non_idempotent_requests_are_replayed_only_when_allowed() {
        let mut p = policy(RetryOn {
            reset: true,
            gateway_error: true,
            ..RetryOn::default()
        });
        assert_eq!(decide(&p, Attempt::Reset, false), None);
        assert_eq!(decide(&p, Attempt::Response(503), false), None);
        assert!(decide(&p, Attempt::ConnectFailure, false).is_some());
        p.retry_non_idempotent = true;
        assert_eq!(decide(&p, Attempt::Reset, false), Some(Reason::Reset));
    }

    #[test]
    fn outlier_outcomes_follow_envoy() {
        assert_eq!(Attempt::Response(200).outcome(), Outcome::Success);
        assert_eq!(Attempt::Response(404).outcome(), Outcome::Success);
        assert_eq!(Attempt::Response(500).outcome(), Outcome::ServerError);
        assert_eq!(Attempt::Response(503).outcome(), Outcome::GatewayError);
        assert_eq!(Attempt::Reset.outcome(), Outcome::GatewayError);
        assert_eq!(Attempt::ConnectFailure.outcome(), Outcome::GatewayError);
    }
}
