//! Pipeline phases 2 and 4 with retries: pick an endpoint, send, classify
//! what came back, and retry when the route's policy, the method, the
//! request body and the cluster's retry budget all allow it.
//!
//! - A connect failure hands the request back untouched (`pool::Failed`),
//!   so it is retried as it is, whatever its method and body.
//! - Any other retry replays a copy of the head, so only requests without a
//!   body are retried after they may have reached the upstream, and only
//!   when the method is idempotent or the route allows otherwise. The copy
//!   is made only when such a retry is possible under the route's policy.
//! - Each retry avoids the endpoints already tried, waits a fully jittered
//!   backoff (or the upstream's `Retry-After`, capped), and fits inside the
//!   route's `timeout`, which bounds all attempts together; `per_try_timeout`
//!   bounds each.
//! - Every attempt's outcome feeds outlier detection.

use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::{Request, Response};
use meshgate_config::{HttpLimits, ProxyAction};
use meshgate_core::{Error, ErrorKind};
use meshgate_resilience::backoff::Backoff;
use meshgate_resilience::retry::{self, Attempt};
use tokio::time::Instant;

use crate::body::{BodyFailure, ClientBody, Guards, RequestBody};
use crate::cluster::ClusterState;
use crate::pool::{Failed, UpstreamBody};
use crate::service::with_rng;

/// What the attempts share.
pub(crate) struct Outgoing<'a> {
    pub(crate) cluster: &'a ClusterState,
    pub(crate) action: &'a ProxyAction,
    pub(crate) hash: Option<u64>,
    pub(crate) limits: &'a HttpLimits,
}

/// Sends the request, retrying as the policy allows. The response's
/// endpoint keeps its active-request count raised through `guards`.
pub(crate) async fn send(
    out: Outgoing<'_>,
    parts: Parts,
    body: ClientBody,
    guards: &mut Guards,
) -> Result<Response<UpstreamBody>, Error> {
    let Outgoing {
        cluster,
        action,
        hash,
        limits,
    } = out;
    let Some(admitted) = cluster.admit() else {
        return Err(Error::upstream(
            ErrorKind::Overloaded,
            format!("cluster {} at max_requests", cluster.name),
        ));
    };
    guards.admitted = Some(admitted);
    let policy = &action.retry;
    let idempotent = parts.method.is_idempotent();
    let on = policy.retry_on;
    // A replay after the request may have reached the upstream needs its
    // head again, and is only possible without a body.
    let replay = (matches!(body, ClientBody::Empty)
        && policy.num_retries > 0
        && (on.reset || on.gateway_error || on.server_error || on.retriable_status_codes)
        && (idempotent || policy.retry_non_idempotent))
        .then(|| copy_head(&parts));
    let failure = Arc::new(BodyFailure::default());
    let body = RequestBody::new(body, limits.max_body_bytes, failure.clone());
    let mut req = Some(Request::from_parts(parts, body));
    let deadline = Instant::now() + action.timeout;
    let backoff = Backoff {
        base: policy.backoff_base,
        max: policy.backoff_max,
        retry_after_cap: policy.retry_after_cap,
    };
    let mut tried: Vec<usize> = Vec::new();
    let mut retries = 0u32;
    // The retry in flight holds a unit of `max_retries` until it ends.
    let mut _retrying = None;
    loop {
        let Some((idx, lb)) = with_rng(|r| cluster.pick(hash, &tried, r)) else {
            return Err(Error::upstream(
                ErrorKind::NoEndpoint,
                format!("cluster {} has no endpoint", cluster.name),
            ));
        };
        guards.lb = Some(lb);
        let (Some(endpoint), Some(this)) = (cluster.endpoints.get(idx), req.take()) else {
            return Err(Error::internal("attempt without an endpoint or a request"));
        };
        let per_try = policy
            .per_try_timeout
            .map_or(deadline, |t| deadline.min(Instant::now() + t));
        let sent = endpoint.send(this, action.into());
        let (attempt, result) = match tokio::time::timeout_at(per_try, sent).await {
            Ok(Ok(resp)) => (Attempt::Response(resp.status().as_u16()), Ok(resp)),
            Ok(Err(Failed { error, unsent })) => {
                // A failed request body is the client's doing, whatever the
                // upstream client made of it (h2 reports a stream reset):
                // no retry, and no mark against the endpoint.
                if let Some(err) = failure.error() {
                    return Err(err);
                }
                req = unsent;
                match classify(&error) {
                    Some(attempt) => (attempt, Err(error)),
                    None => return Err(error),
                }
            }
            Err(_) => {
                let limit = if per_try < deadline {
                    policy.per_try_timeout.unwrap_or(action.timeout)
                } else {
                    action.timeout
                };
                let err = Error::upstream(
                    ErrorKind::UpstreamTimeout,
                    format!("no response within {limit:?}"),
                );
                (Attempt::Timeout, Err(err))
            }
        };
        cluster.record(idx, attempt, retries == 0);
        let Some(reason) = retry::decide(policy, attempt, idempotent) else {
            return result;
        };
        if retries >= policy.num_retries || (req.is_none() && replay.is_none()) {
            return result;
        }
        let after = result.as_ref().ok().and_then(|r| retry_after(r.headers()));
        let delay = with_rng(|r| backoff.delay(retries, after, r));
        if Instant::now() + delay >= deadline {
            return result;
        }
        let Some(permit) = cluster.try_retry(reason) else {
            return result;
        };
        _retrying = Some(permit);
        // The failed response (and its connection) is dropped here.
        drop(result);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if req.is_none()
            && let Some(head) = &replay
        {
            let body = RequestBody::new(ClientBody::Empty, limits.max_body_bytes, failure.clone());
            req = Some(Request::from_parts(copy_head(head), body));
        }
        tried.push(idx);
        retries += 1;
    }
}

/// What an upstream error means for retries and outlier detection; `None`
/// for errors that are not the endpoint's (ours, or the client's).
fn classify(error: &Error) -> Option<Attempt> {
    match error.kind() {
        ErrorKind::ConnectRefused | ErrorKind::ConnectTimeout => Some(Attempt::ConnectFailure),
        ErrorKind::UpstreamReset | ErrorKind::UpstreamProtocol => Some(Attempt::Reset),
        ErrorKind::UpstreamTimeout => Some(Attempt::Timeout),
        _ => None,
    }
}

/// A copy of a request head for a replay (extensions are not carried).
fn copy_head(parts: &Parts) -> Parts {
    let mut req = Request::new(());
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = parts.uri.clone();
    *req.version_mut() = parts.version;
    *req.headers_mut() = parts.headers.clone();
    req.into_parts().0
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = http::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static(" 3 "),
        );
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "a past date: now");
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("soon"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn only_upstream_errors_count_against_an_endpoint() {
        let up = |k| Error::upstream(k, "x");
        assert_eq!(
            classify(&up(ErrorKind::ConnectRefused)),
            Some(Attempt::ConnectFailure)
        );
        assert_eq!(
            classify(&up(ErrorKind::UpstreamReset)),
            Some(Attempt::Reset)
        );
        assert_eq!(
            classify(&up(ErrorKind::UpstreamTimeout)),
            Some(Attempt::Timeout)
        );
        assert_eq!(classify(&Error::internal("x")), None);
    }
}
