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
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::stream::{FuturesUnordered, StreamExt as _};
use http::{Request, Response};
use meshgate_balance::ActiveGuard;
use meshgate_core::{Error, ErrorKind};
use meshgate_resilience::breaker::Permit;
use meshgate_resilience::retry::{self, Attempt};

use super::Run;
use crate::body::{BodyFailure, Guards, RequestBody, UpstreamBody};
use crate::headers::Added;
use crate::pool::{EndpointPool, RouteTimeouts};

/// One attempt: its endpoint's index, active-request count and (for a
/// hedge or retry) unit of `max_retries`, all held until it ends or is
/// cancelled, how the send ended, and the request if it was never sent.
/// `waiting` is up while it waits for a unit of the cluster's
/// `max_connections`.
async fn attempt(
    idx: usize,
    held: Held,
    endpoint: &Arc<EndpointPool>,
    req: Request<RequestBody>,
    timeouts: RouteTimeouts,
    added: &Added,
    waiting: Arc<AtomicBool>,
) -> (usize, Held, Sent) {
    let mut req = Some(req);
    let sent = endpoint.send(&mut req, timeouts, added, &waiting).await;
    (idx, held, (sent, req))
}

/// How a send ended, and the request if it never went out.
type Sent = (
    Result<Response<UpstreamBody>, Error>,
    Option<Request<RequestBody>>,
);

/// What an attempt in flight holds.
struct Held {
    lb: Option<ActiveGuard>,
    _retry: Option<Permit>,
}

/// Sends `req`, hedging on each per-try timeout; see the module doc.
pub(super) async fn send(
    mut run: Run<'_>,
    req: Request<RequestBody>,
    guards: &mut Guards,
) -> Result<Response<UpstreamBody>, Error> {
    let mut req = req;
    run.stamp(&mut req)?;
    let timeouts: RouteTimeouts = run.out.action.into();
    let mut flying = FuturesUnordered::new();
    let (idx, endpoint) = run.pick(guards)?;
    let held = Held {
        lb: guards.lb.take(),
        _retry: None,
    };
    let mut newest_waiting = Arc::new(AtomicBool::new(false));
    flying.push(attempt(
        idx,
        held,
        endpoint,
        req,
        timeouts,
        run.out.added,
        newest_waiting.clone(),
    ));
    run.tried.push(idx);
    let mut newest = idx;
    let mut hedge_at = run.per_try_deadline();
    let mut last: Option<Result<Response<UpstreamBody>, Error>> = None;
    // The first outcome recorded counts the request for the retry budget.
    let mut counted = false;
    loop {
        let hedging = hedge_at < run.deadline;
        // What to start next, and with which unit of `max_retries`.
        let next: (Request<RequestBody>, Permit);
        tokio::select! {
            biased;
            done = flying.next(), if !flying.is_empty() => {
                let Some((idx, held, (sent, unsent))) = done else { continue };
                let (outcome, result) = match run.outcome(sent) {
                    Ok(o) => o,
                    // The client's body failed: nothing can succeed.
                    Err(err) if run.failure.as_deref().and_then(BodyFailure::error).is_some() => {
                        return Err(err);
                    }
                    // Not the endpoint's failure (a breaker's overflow, say):
                    // the attempts still in flight may yet succeed.
                    Err(err) if !flying.is_empty() => {
                        last = Some(Err(err));
                        continue;
                    }
                    Err(err) => return Err(err),
                };
                run.out.cluster.record(idx, outcome, !std::mem::replace(&mut counted, true));
                let wanted = retry::decide(run.policy, outcome, run.idempotent).is_some();
                if !wanted {
                    guards.lb = held.lb;
                    return result;
                }
                if !flying.is_empty() {
                    last = Some(result); // the others may still do better
                    continue;
                }
                // Nothing else in flight: the usual retry, after a backoff.
                let Some((delay, permit)) = run.retry(outcome, &result, unsent.is_some()) else {
                    guards.lb = held.lb;
                    return result;
                };
                drop((result, held));
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let Some(req) = unsent.or_else(|| run.replay_request()) else {
                    return Err(Error::internal("a retry without a request"));
                };
                next = (req, permit);
            }
            () = tokio::time::sleep_until(hedge_at), if hedging => {
                if newest_waiting.load(Ordering::Relaxed) {
                    // Still waiting for a unit of max_connections: not the
                    // endpoint's fault, and a hedge would only wait too.
                    // Its per-try clock starts again, so once it has a
                    // connection a slow endpoint is still hedged.
                    hedge_at = run.per_try_deadline();
                    continue;
                }
                // The newest attempt missed its per-try timeout: that counts
                // against its endpoint, though it keeps going.
                run.out.cluster.record(newest, Attempt::Timeout, !std::mem::replace(&mut counted, true));
                let timed_out = run.timed_out(hedge_at);
                // No more hedges once one is refused: wait for what flies.
                hedge_at = run.deadline;
                let Some((_, permit)) = run.retry(Attempt::Timeout, &timed_out.1, false) else {
                    continue;
                };
                let Some(req) = run.replay_request() else { continue };
                next = (req, permit);
            }
            () = tokio::time::sleep_until(run.deadline) => {
                return last.unwrap_or_else(|| Err(Error::upstream(
                    ErrorKind::UpstreamTimeout,
                    format!("no response within {:?}", run.out.action.timeout),
                )));
            }
        }
        let (mut req, permit) = next;
        run.stamp(&mut req)?;
        run.retries += 1;
        match run.pick(guards) {
            Ok((idx, endpoint)) => {
                let held = Held {
                    lb: guards.lb.take(),
                    _retry: Some(permit),
                };
                newest_waiting = Arc::new(AtomicBool::new(false));
                flying.push(attempt(
                    idx,
                    held,
                    endpoint,
                    req,
                    timeouts,
                    run.out.added,
                    newest_waiting.clone(),
                ));
                run.tried.push(idx);
                newest = idx;
                hedge_at = run.per_try_deadline();
            }
            // No endpoint for a hedge: wait for those in flight.
            Err(err) if !flying.is_empty() => {
                last.get_or_insert(Err(err));
            }
            Err(err) => return Err(err),
        }
    }
}
