//! Pipeline phases 2 and 4 with retries: pick an endpoint, send, classify
//! what came back, and retry when the route's policy, the method, the
//! request body and the cluster's retry budget all allow it.
//!
//! - A connect failure leaves the request untouched where it is kept (the
//!   pool only borrows it), so it is retried as it is, whatever its method
//!   and body.
//! - Any other retry sends a [`Replay`]: a copy of the head, and the body
//!   if it was small enough to read whole first (`max_buffered_body`), and
//!   only when the method is idempotent or the route allows otherwise. The
//!   copy is made only when such a retry is possible under the route's
//!   policy.
//! - Each retry avoids the endpoints already tried, waits a fully jittered
//!   backoff (or the upstream's `Retry-After`, capped), and fits inside the
//!   route's `timeout`, which bounds all attempts together; `per_try_timeout`
//!   bounds each, or, with `hedge_on_per_try_timeout`, starts another
//!   attempt beside it (`hedge`).
//! - To a cluster that signs (`sign`), the body is read whole before the
//!   first attempt and every attempt is signed afresh just before it is
//!   sent ([`crate::sign`]): a new date and a new nonce each time.
//! - Every attempt's outcome feeds outlier detection, except a timeout
//!   that fires while the attempt still waits for a unit of the cluster's
//!   `max_connections`: that is the cluster's congestion, and holding it
//!   against a healthy endpoint could eject it.

mod hedge;
mod replay;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use http::request::Parts;
use http::{Request, Response};
use meshgate_config::{HttpLimits, ProxyAction, RetryPolicy};
use meshgate_core::{Error, ErrorKind};
use meshgate_resilience::backoff::Backoff;
use meshgate_resilience::breaker::Permit;
use meshgate_resilience::retry::{self, Attempt};
use tokio::time::Instant;

use self::replay::Replay;
use crate::body::{BodyFailure, ClientBody, Guards, RequestBody, UpstreamBody};
use crate::cluster::ClusterState;
use crate::deadline::Deadline;
use crate::pool::EndpointPool;
use crate::service::with_rng;

/// What the attempts share.
pub(crate) struct Outgoing<'a> {
    pub(crate) cluster: &'a ClusterState,
    pub(crate) action: &'a ProxyAction,
    pub(crate) hash: Option<u64>,
    pub(crate) limits: &'a HttpLimits,
    /// The lines every attempt adds to the head (`X-Forwarded-*`, the id).
    pub(crate) added: &'a crate::headers::Added,
}

/// Sends the request, retrying as the policy allows. The response's
/// endpoint keeps its active-request count raised through `guards`.
///
/// The request's head and body are borrowed from the pipeline's future,
/// which owns them, and moved out only once, into the request the attempts
/// lend to the pool: moving them through each stage copied ~300 bytes per
/// stage. `parts` and `body` are left empty.
///
/// `timer` bounds each attempt when the caller lends its connection's timer
/// (one wheel entry re-armed lazily, instead of one armed and removed per
/// request); without one the attempts time themselves.
pub(crate) async fn send(
    out: Outgoing<'_>,
    parts: &mut Parts,
    body: &mut ClientBody,
    guards: &mut Guards,
    timer: Option<&mut Deadline>,
) -> Result<Response<UpstreamBody>, Error> {
    let Some(admitted) = out.cluster.admit() else {
        return Err(Error::upstream(
            ErrorKind::Overloaded,
            format!("cluster {} at max_requests", out.cluster.name),
        ));
    };
    guards.admitted = Some(admitted);
    let policy = &out.action.retry;
    let idempotent = parts.method.is_idempotent();
    let deadline = Instant::now() + out.action.timeout;
    let signing = match out.cluster.signer.as_deref() {
        None => None,
        Some(signer) => {
            let unsigned = std::mem::replace(body, ClientBody::Empty);
            // Boxed: only signed clusters carry the body read's state.
            let (signed, signing) = Box::pin(signer.prepare(parts, unsigned, deadline)).await?;
            *body = signed;
            Some(signing)
        }
    };
    let replay = if Replay::possible(policy, idempotent) {
        Replay::prepare(policy, parts, body, deadline).await?
    } else {
        None
    };
    // An empty body can neither fail nor overrun: no slot to allocate.
    let failure = (!matches!(body, ClientBody::Empty)).then(Arc::<BodyFailure>::default);
    // The request stays here; each attempt lends it to the pool, which
    // takes it once it goes out, and leaves it if it could not be sent.
    let mut req = Some(Request::from_parts(
        std::mem::replace(parts, vacant_head()),
        RequestBody::new(
            std::mem::replace(body, ClientBody::Empty),
            out.limits.max_body_bytes,
            failure.clone(),
        ),
    ));
    let mut run = Run {
        out,
        policy,
        idempotent,
        deadline,
        failure,
        replay,
        signing,
        tried: Vec::new(),
        retries: 0,
    };
    if policy.hedge_on_per_try_timeout
        && run.replay.is_some()
        && let Some(req) = req.take()
    {
        // Boxed: hedging is opt-in, and inline its ~2.9 KiB state would
        // grow every request's future (and each move of it).
        return Box::pin(hedge::send(run, req, guards)).await;
    }
    let mut own;
    let timer = match timer {
        Some(timer) => timer,
        None => {
            own = Deadline::new(out_horizon(&run));
            &mut own
        }
    };
    let mut _retrying = None;
    loop {
        let (idx, endpoint) = run.pick(guards)?;
        let Some(this) = req.as_mut() else {
            return Err(Error::internal("an attempt without a request"));
        };
        run.stamp(this)?;
        // A route that hedges never cuts an attempt at the per-try timeout;
        // here the request cannot be replayed, so there is no hedge either.
        let per_try = if policy.hedge_on_per_try_timeout {
            run.deadline
        } else {
            run.per_try_deadline()
        };
        let waiting = AtomicBool::new(false);
        let mut cut = false;
        let (attempt, result) = {
            // Pinned where it is built and polled beside the timer: no
            // wrapper future to move it into (each move copies its state).
            // The block drops an attempt cut by the timer here, with its
            // connection, before any backoff.
            let mut sent = std::pin::pin!(endpoint.send(
                &mut req,
                run.out.action.into(),
                run.out.added,
                &waiting
            ));
            let within = std::future::poll_fn(|cx| {
                if let Poll::Ready(sent) = sent.as_mut().poll(cx) {
                    return Poll::Ready(Some(sent));
                }
                timer.poll_until(per_try, cx).map(|()| None)
            });
            match within.await {
                Some(sent) => run.outcome(sent)?,
                None if waiting.load(Ordering::Relaxed) => return Err(run.congested(per_try)),
                None => {
                    cut = true;
                    run.timed_out(per_try)
                }
            }
        };
        if cut {
            // Cut mid-exchange: what is left of the request may be partly sent.
            req = None;
        }
        run.out.cluster.record(idx, attempt, run.retries == 0);
        let Some((delay, permit)) = run.retry(attempt, &result, req.is_some()) else {
            return result;
        };
        // The retry holds a unit of `max_retries` until it ends.
        _retrying = Some(permit);
        // The failed response (and its connection) is dropped here.
        drop(result);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if req.is_none() {
            req = run.replay_request();
        }
        run.tried.push(idx);
        run.retries += 1;
    }
}

/// What is left where the request's head was moved out: no allocation.
fn vacant_head() -> Parts {
    Request::new(()).into_parts().0
}

/// The horizon of a request's own timer: its shortest timeout.
fn out_horizon(run: &Run<'_>) -> Duration {
    run.policy
        .per_try_timeout
        .map_or(run.out.action.timeout, |t| t.min(run.out.action.timeout))
}

/// One request's attempts so far.
struct Run<'a> {
    out: Outgoing<'a>,
    policy: &'a RetryPolicy,
    idempotent: bool,
    /// The route timeout, over all attempts.
    deadline: Instant,
    failure: Option<Arc<BodyFailure>>,
    replay: Option<Replay>,
    /// The cluster's signing of this request, if it signs.
    signing: Option<crate::sign::Signing<'a>>,
    tried: Vec<usize>,
    retries: u32,
}

impl<'a> Run<'a> {
    /// Picks the next endpoint (avoiding those tried) and makes the response
    /// hold its active-request count.
    fn pick(&self, guards: &mut Guards) -> Result<(usize, &'a Arc<EndpointPool>), Error> {
        let cluster = self.out.cluster;
        let picked = with_rng(|r| cluster.pick(self.out.hash, &self.tried, r));
        let Some((idx, lb)) = picked else {
            return Err(Error::upstream(
                ErrorKind::NoEndpoint,
                format!("cluster {} has no endpoint", cluster.name),
            ));
        };
        guards.lb = Some(lb);
        let endpoint = cluster
            .endpoints
            .get(idx)
            .ok_or_else(|| Error::internal("picked an endpoint that does not exist"))?;
        Ok((idx, endpoint))
    }

    /// Signs an attempt about to be sent, when the cluster signs.
    fn stamp(&self, req: &mut Request<RequestBody>) -> Result<(), Error> {
        match &self.signing {
            Some(signing) => signing.stamp(req),
            None => Ok(()),
        }
    }

    /// When the attempt starting now gives up waiting for response headers.
    fn per_try_deadline(&self) -> Instant {
        self.policy
            .per_try_timeout
            .map_or(self.deadline, |t| self.deadline.min(Instant::now() + t))
    }

    /// What an attempt that ended came to. An unsent request is still in
    /// the slot it was lent from; a failed request body ends everything (it
    /// is the client's doing, whatever the upstream client made of it: h2
    /// reports a stream reset), with no mark against the endpoint.
    fn outcome(
        &self,
        sent: Result<Response<UpstreamBody>, Error>,
    ) -> Result<(Attempt, Result<Response<UpstreamBody>, Error>), Error> {
        match sent {
            Ok(resp) => Ok((Attempt::Response(resp.status().as_u16()), Ok(resp))),
            Err(error) => {
                if let Some(err) = self.failure.as_deref().and_then(BodyFailure::error) {
                    return Err(err);
                }
                match classify(&error) {
                    Some(attempt) => Ok((attempt, Err(error))),
                    None => Err(error),
                }
            }
        }
    }

    /// The outcome of an attempt cut at `per_try`.
    fn timed_out(&self, per_try: Instant) -> (Attempt, Result<Response<UpstreamBody>, Error>) {
        let err = Error::upstream(
            ErrorKind::UpstreamTimeout,
            format!("no response within {:?}", self.limit_at(per_try)),
        );
        (Attempt::Timeout, Err(err))
    }

    /// Which limit an attempt cut at `per_try` ran into.
    fn limit_at(&self, per_try: Instant) -> Duration {
        if per_try < self.deadline {
            self.policy
                .per_try_timeout
                .unwrap_or(self.out.action.timeout)
        } else {
            self.out.action.timeout
        }
    }

    /// The error for an attempt cut at `per_try` while it still waited for
    /// a unit of `max_connections`. Not recorded and not retried: every
    /// endpoint of the cluster shares those units.
    fn congested(&self, per_try: Instant) -> Error {
        Error::upstream(
            ErrorKind::UpstreamTimeout,
            format!(
                "no response within {:?}: still waiting for a connection (cluster {} at max_connections)",
                self.limit_at(per_try),
                self.out.cluster.name
            ),
        )
        .with_retryable(false)
    }

    /// A copy of the request to send again, if it can be replayed.
    fn replay_request(&self) -> Option<Request<RequestBody>> {
        let replay = self.replay.as_ref()?;
        Some(replay.request(self.out.limits, &self.failure))
    }

    /// Whether to retry after `attempt` (`have_req`: the request came back
    /// unsent), and after what delay. A yes spends the cluster's retry
    /// budget and returns the unit of `max_retries` the retry holds.
    fn retry(
        &self,
        attempt: Attempt,
        result: &Result<Response<UpstreamBody>, Error>,
        have_req: bool,
    ) -> Option<(Duration, Permit)> {
        let reason = retry::decide(self.policy, attempt, self.idempotent)?;
        if self.retries >= self.policy.num_retries || (!have_req && self.replay.is_none()) {
            return None;
        }
        let after = result.as_ref().ok().and_then(|r| {
            // In the map, or in the lines a 2xx or 3xx kept as they came.
            retry_after(r.headers()).or_else(|| {
                let lines = r.body().lines()?;
                retry_after_value(lines.get("retry-after")?)
            })
        });
        let backoff = Backoff {
            base: self.policy.backoff_base,
            max: self.policy.backoff_max,
            retry_after_cap: self.policy.retry_after_cap,
        };
        let delay = with_rng(|r| backoff.delay(self.retries, after, r));
        if Instant::now() + delay >= self.deadline {
            return None;
        }
        let permit = self.out.cluster.try_retry(reason)?;
        Some((delay, permit))
    }
}

/// What an upstream error means for retries and outlier detection; `None`
/// for errors that are not the endpoint's (ours, or the client's).
fn classify(error: &Error) -> Option<Attempt> {
    match error.kind() {
        ErrorKind::ConnectRefused | ErrorKind::ConnectTimeout | ErrorKind::UpstreamTls => {
            Some(Attempt::ConnectFailure)
        }
        ErrorKind::UpstreamReset | ErrorKind::UpstreamProtocol => Some(Attempt::Reset),
        ErrorKind::UpstreamTimeout => Some(Attempt::Timeout),
        _ => None,
    }
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    retry_after_value(headers.get(http::header::RETRY_AFTER)?.as_bytes())
}

/// [`retry_after`] of one value.
fn retry_after_value(v: &[u8]) -> Option<Duration> {
    let v = std::str::from_utf8(v).ok()?.trim();
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
            classify(&up(ErrorKind::UpstreamTls)),
            Some(Attempt::ConnectFailure),
            "a failed handshake sent nothing"
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
