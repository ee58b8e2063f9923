//! Hedged attempts (`hedge_on_per_try_timeout`, as in Envoy): when an
//! attempt's per-try timeout passes, another attempt starts on another
//! endpoint and the first one keeps going. The first response that is not
//! worth a retry wins and the others are cancelled (their connections are
//! dropped, not pooled). A response that is worth a retry while others are
//! still in flight is dropped in favour of them; when none is left, the
//! usual retry rules apply. Every hedge is a retry: it needs retries left,
//! a replayable request and a unit of the cluster's retry budget.
//!
//! The in-flight attempts are polled inline (a `FuturesUnordered`), so no
//! task is spawned; each holds its endpoint's active-request count until
//! it ends, and the winner's moves to the response.

use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt as _};
use http::{Request, Response};
use meshgate_balance::ActiveGuard;
use meshgate_core::{Error, ErrorKind};
use meshgate_resilience::retry::{self, Attempt};
use tokio::time::Instant;

use super::Run;
use crate::body::{Guards, RequestBody, UpstreamBody};
use crate::pool::{EndpointPool, Failed, RouteTimeouts};

/// One attempt: its endpoint's index and active-request count, and how the
/// send ended.
async fn attempt(
    idx: usize,
    lb: Option<ActiveGuard>,
    endpoint: &Arc<EndpointPool>,
    req: Request<RequestBody>,
    timeouts: RouteTimeouts,
) -> (
    usize,
    Option<ActiveGuard>,
    Result<Response<UpstreamBody>, Failed>,
) {
    let sent = endpoint.send(req, timeouts).await;
    (idx, lb, sent)
}

/// Sends `req`, hedging on each per-try timeout; see the module doc.
pub(super) async fn send(
    mut run: Run<'_>,
    req: Request<RequestBody>,
    guards: &mut Guards,
) -> Result<Response<UpstreamBody>, Error> {
    let timeouts: RouteTimeouts = run.out.action.into();
    let mut flying = FuturesUnordered::new();
    let (idx, endpoint) = run.pick(guards)?;
    flying.push(attempt(idx, guards.lb.take(), endpoint, req, timeouts));
    run.tried.push(idx);
    let mut hedge_at = run.per_try_deadline();
    let mut last: Option<Result<Response<UpstreamBody>, Error>> = None;
    // The first outcome recorded counts the request for the retry budget.
    let mut counted = false;
    loop {
        let hedging = hedge_at < run.deadline;
        tokio::select! {
            biased;
            done = flying.next(), if !flying.is_empty() => {
                let Some((idx, lb, sent)) = done else { continue };
                let mut unsent = None;
                let (outcome, result) = run.outcome(sent, &mut unsent)?;
                run.out.cluster.record(idx, outcome, !std::mem::replace(&mut counted, true));
                let wanted = retry::decide(run.policy, outcome, run.idempotent).is_some();
                if !wanted {
                    guards.lb = lb;
                    return result;
                }
                if !flying.is_empty() {
                    last = Some(result); // the others may still do better
                    continue;
                }
                // Nothing else in flight: the usual retry, after a backoff.
                let Some(delay) = run.retry(outcome, &result, unsent.is_some()) else {
                    guards.lb = lb;
                    return result;
                };
                drop((result, lb));
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let Some(req) = unsent.or_else(|| run.replay.as_ref().map(|r| r.request(run.out.limits, &run.failure))) else {
                    return Err(Error::internal("a retry without a request"));
                };
                run.retries += 1;
                let (idx, endpoint) = run.pick(guards)?;
                flying.push(attempt(idx, guards.lb.take(), endpoint, req, timeouts));
                run.tried.push(idx);
                hedge_at = run.per_try_deadline();
            }
            () = tokio::time::sleep_until(hedge_at), if hedging => {
                let timed_out = run.timed_out(hedge_at);
                // No more hedges once one is refused: wait for what flies.
                hedge_at = run.deadline;
                if run.retry(Attempt::Timeout, &timed_out.1, false).is_none() {
                    continue;
                }
                let Some(req) = run.replay.as_ref().map(|r| r.request(run.out.limits, &run.failure)) else {
                    continue;
                };
                run.retries += 1;
                let (idx, endpoint) = run.pick(guards)?;
                flying.push(attempt(idx, guards.lb.take(), endpoint, req, timeouts));
                run.tried.push(idx);
                hedge_at = run.per_try_deadline();
            }
            () = tokio::time::sleep_until(run.deadline) => {
                return last.unwrap_or_else(|| Err(Error::upstream(
                    ErrorKind::UpstreamTimeout,
                    format!("no response within {:?}", run.out.action.timeout),
                )));
            }
        }
        if flying.is_empty() && Instant::now() >= run.deadline {
            return last
                .unwrap_or_else(|| Err(Error::internal("hedging ended without an attempt")));
        }
    }
}
