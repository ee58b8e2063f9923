//! The per-request pipeline, in pingora's phases:
//!
//! 1. **request filter**: route the request; direct responses, redirects,
//!    "no route", request limits and the route's rate limit (429, in
//!    [`crate::rate_limit`]) answer here, before any upstream work;
//!    authentication and authorization run here too, and a signed
//!    request's body is read whole and checked against its signature;
//! 2. **upstream peer**: pick an available endpoint of the route's cluster;
//! 3. **upstream request filter**: rewrite the head for the upstream
//!    (hop-by-hop, forwarded headers, request id, rewrites); done once,
//!    before the first pick, since retries reuse it;
//! 4. **send**: through the endpoint's pool, bounded by the route timeout,
//!    retried as the route's policy and the cluster's budget allow (phases
//!    2 and 4 repeat per attempt, in [`crate::attempts`]);
//! 5. **response filter**: strip hop-by-hop headers from the response;
//! 6. **logging**: metrics by route, cluster and status class.
//!
//! Every failure is a [`meshgate_core::Error`] rendered by [`crate::respond`].

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::uri::{Authority, Scheme};
use http::{Response, Uri, Version};
use meshgate_config::{ProxyAction, RouteAction};
use meshgate_core::{Error, ErrorKind, FastRng};
use meshgate_router::RequestView;

use crate::attempts;
use crate::auth::Denied;
use crate::body::{ClientBody, Guards, ResponseBody};
use crate::caller::Caller;
use crate::deadline::Deadline;
use crate::headers;
use crate::rate_limit;
use crate::request::{authority_of, hash_of, malformed, rewritten_path};
use crate::respond;
use crate::state::{ClusterState, Live, ProxyState, RouteState};

thread_local! {
    // Per-thread generator for balancing and request ids: no contention, and
    // the seed differs per thread and per process.
    static RNG: RefCell<FastRng> = RefCell::new(FastRng::seeded(seed()));
}

/// A per-thread seed from std's randomly keyed hasher (seeded by the OS).
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

pub(crate) fn with_rng<T>(f: impl FnOnce(&mut FastRng) -> T) -> T {
    RNG.with(|r| f(&mut r.borrow_mut()))
}

/// Boxes a future, allocating before it is built: with the heap slot
/// already there, the compiler can build the (several KiB) future in place
/// instead of on the stack and then copying it.
#[inline(always)]
pub(crate) fn boxed<F: std::future::Future>(make: impl FnOnce() -> F) -> std::pin::Pin<Box<F>> {
    let slot = Box::<F>::new_uninit();
    Box::into_pin(Box::write(slot, make()))
}

/// The pipeline for one downstream connection, driven inline by our
/// HTTP/1.1 and h2c servers.
#[derive(Clone)]
pub(crate) struct ProxyService {
    /// The running config generation; each request starts on the current
    /// one and finishes on it, whatever a reload does meanwhile.
    pub(crate) live: Arc<Live>,
    /// The listener's name, its identity across generations.
    pub(crate) listener: Arc<str>,
    pub(crate) client: SocketAddr,
    /// The client IP as a header value, rendered once per connection.
    pub(crate) client_ip: HeaderValue,
    pub(crate) scheme: &'static str,
    /// The identity of the client's verified TLS certificate, if any.
    pub(crate) peer_identity: Option<Arc<str>>,
}

// === impl ProxyService ===

impl ProxyService {
    /// Runs the pipeline for `req`. `timer` is the connection's timer when
    /// requests on it run one at a time (HTTP/1.1): the route timeout then
    /// costs no timer of its own (see `crate::deadline`).
    ///
    /// `service` is borrowed by HTTP/1.1 connections (one request at a time:
    /// no clone of the service's `Arc`s per request) and owned by h2 streams,
    /// whose futures outlive any borrow. Generic rather than a wrapping
    /// `async move`, which copied the whole pipeline future into its own.
    ///
    /// Not an `async fn`: one moves each argument from its own slot in the
    /// future into a second one when first polled, so the request's head
    /// would be stored (and copied) twice. The block below uses `parts` and
    /// `body` where they were captured, and the stages after it borrow them.
    /// (Moving the block's body into an `async fn` that borrows them, to
    /// flatten it, was measured: two more copies of 64+ bytes and ~150 more
    /// instructions per request.)
    #[allow(clippy::manual_async_fn, reason = "see above: one copy of the request")]
    pub(crate) fn handle<S: std::borrow::Borrow<Self>>(
        service: S,
        mut parts: Parts,
        mut body: ClientBody,
        timer: Option<&mut Deadline>,
    ) -> impl Future<Output = Result<Response<ResponseBody>, Infallible>> {
        async move {
            let this = service.borrow();
            let start = Instant::now();
            let mut guards = Guards::default();
            let state = this.live.current();
            let state = &*state;
            let Some(listener) = state.listener(&this.listener) else {
                // A reload removed this listener: its open connections drain. The
                // request gets a clear 503 and the connection closes after it
                // (`respond::error` marks it), so the client reconnects.
                let id = with_rng(|r| headers::request_id(&http::HeaderMap::new(), r));
                let err = Error::downstream(
                    ErrorKind::ListenerRemoved,
                    format!("listener {} was removed by a reload", this.listener),
                );
                return Ok(respond::error(&err, &id, guards));
            };

            // Phase 1: request filter.
            let found = listener.router.find(&RequestView::from_parts(&parts));
            let Some(found) = found else {
                listener.no_route.inc();
                let id = with_rng(|r| headers::request_id(&parts.headers, r));
                let err = Error::downstream(
                    ErrorKind::NoRoute,
                    format!("no route for {} {}", parts.method, parts.uri.path()),
                );
                return Ok(respond::error(&err, &id, guards));
            };
            let (Some(route), Some(route_state)) = (
                state.config.routes.get(found.route),
                state.routes.get(found.route),
            ) else {
                let id = with_rng(|r| headers::request_id(&parts.headers, r));
                return Ok(respond::error(
                    &Error::internal("route missing from state"),
                    &id,
                    guards,
                ));
            };
            // The route's policies, on a well-formed request, before its action:
            // who the caller is (authentication), whether it may (authorization),
            // then the rate limit, keyed by what authentication found.
            let mut caller = Caller {
                peer_identity: this.peer_identity.clone(),
                ..Caller::default()
            };
            let mut limit_stamp = None;
            let mut body_check = None;
            let mut refused = match malformed(&parts) {
                Some(error) => Some(Denied {
                    error,
                    challenges: Vec::new(),
                }),
                None => match this.admit(route_state, &mut parts, &mut caller) {
                    Err(denied) => Some(denied),
                    Ok(check) => {
                        body_check = check;
                        let (refused, stamp) = rate_limit::check(
                            route_state.rate_limit.as_deref(),
                            &parts,
                            this.client.ip(),
                            &caller,
                            start,
                        );
                        limit_stamp = stamp;
                        refused.map(|error| Denied {
                            error,
                            challenges: Vec::new(),
                        })
                    }
                },
            };
            if refused.is_none()
                && let Some(check) = body_check
            {
                // A signed request's body is read whole and checked before
                // anything goes upstream; the checked bytes are what is sent.
                let timeout = match &route.action {
                    RouteAction::Proxy(action) => action.timeout,
                    _ => crate::auth::hmac::NO_UPSTREAM_BODY_TIMEOUT,
                };
                let deadline = tokio::time::Instant::now() + timeout;
                // Boxed: only signed requests carry the body read's state.
                let unchecked = std::mem::replace(&mut body, ClientBody::Empty);
                match Box::pin(check.run(&mut parts, unchecked, deadline)).await {
                    Ok(checked) => body = checked,
                    Err(denied) => {
                        refused = Some(denied);
                        body = ClientBody::Empty;
                    }
                }
            }
            let mut resp = match (refused, &route.action) {
                (Some(denied), _) => {
                    let id = with_rng(|r| headers::request_id(&parts.headers, r));
                    let mut resp = respond::error(&denied.error, &id, guards);
                    denied.decorate(&mut resp);
                    resp
                }
                (None, RouteAction::Direct(d)) => respond::direct(d, guards),
                (None, RouteAction::Redirect(r)) => {
                    // The full authority, port included, so the client comes back
                    // to the same listener (RequestView's host drops the port).
                    let host = authority_of(&parts);
                    respond::redirect(r, &parts.uri, host.as_deref(), this.scheme, guards)
                }
                (None, RouteAction::Proxy(action)) => {
                    let id = with_rng(|r| headers::request_id(&parts.headers, r));
                    let prefix = match &route.matcher.path {
                        Some(meshgate_config::PathMatch::Prefix(p)) => Some(p.as_str()),
                        _ => None,
                    };
                    match this
                        .proxy(
                            state,
                            action,
                            prefix,
                            &id,
                            &mut parts,
                            &mut body,
                            &listener.limits,
                            &mut guards,
                            timer,
                        )
                        .await
                    {
                        Ok(resp) => resp,
                        Err(err) => {
                            tracing::debug!(error = %err, request_id = ?id, "request failed");
                            respond::error(&err, &id, guards)
                        }
                    }
                }
            };

            if let Some(stamp) = limit_stamp {
                // Its headers replace any of the same names from the upstream,
                // so lines kept as they came join the map first.
                if let Some(lines) = resp.body_mut().take_lines() {
                    crate::h1::lines::into_map(&lines, resp.headers_mut());
                }
                stamp.write(resp.headers_mut());
            }

            // Phase 6: logging.
            let class = (resp.status().as_u16() / 100).clamp(1, 5) as usize - 1;
            if let Some(c) = route_state.by_class.get(class) {
                c.inc();
            }
            route_state.duration.observe(start.elapsed());
            Ok(resp)
        }
    }

    /// Phase 1b: the route's authentication, then its authorization
    /// rules. Routes with neither pay two `None` checks. A signed
    /// request's body check comes back, to run before the upstream phases.
    fn admit(
        &self,
        route: &RouteState,
        parts: &mut http::request::Parts,
        caller: &mut Caller,
    ) -> Result<Option<crate::auth::hmac::BodyCheck>, Denied> {
        let mut body_check = None;
        if let Some(auth) = &route.auth {
            body_check = auth.authenticate(parts, caller, crate::auth::unix_now())?;
        }
        if let Some(authz) = &route.authz {
            let subject = crate::authz::Subject {
                caller,
                client: self.client.ip(),
                method: &parts.method,
                path: parts.uri.path(),
            };
            authz.check(&subject).map_err(|error| Denied {
                error,
                challenges: Vec::new(),
            })?;
        }
        Ok(body_check)
    }

    /// Phases 2 to 5 for a route that proxies. It borrows the request and
    /// the guards from `handle`'s future (an `async fn` stores each argument
    /// twice, see [`ProxyService::handle`]; references cost 8 bytes each).
    #[allow(clippy::too_many_arguments, reason = "the pipeline's parts, borrowed")]
    async fn proxy(
        &self,
        state: &ProxyState,
        action: &ProxyAction,
        prefix: Option<&str>,
        request_id: &HeaderValue,
        parts: &mut Parts,
        body: &mut ClientBody,
        limits: &meshgate_config::HttpLimits,
        guards: &mut Guards,
        timer: Option<&mut Deadline>,
    ) -> Result<Response<ResponseBody>, Error> {
        if let Some(max) = limits.max_body_bytes {
            let declared = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if declared.is_some_and(|len| len > max) {
                return Err(Error::downstream(
                    ErrorKind::RequestBodyTooLarge,
                    "content-length exceeds max_body_bytes",
                ));
            }
        }
        let Some(cluster) = state.clusters.get(action.cluster) else {
            return Err(Error::internal("cluster missing from state"));
        };

        // Stripped with the other hop-by-hop headers below, then restored:
        // only an upgrade meshgate can carry is forwarded.
        let upgrade = crate::tunnel::requested(parts, !matches!(body, ClientBody::Empty));
        if upgrade.is_some() && cluster.http2 {
            return Err(Error::downstream(
                ErrorKind::NotImplemented,
                format!(
                    "protocol upgrades need an HTTP/1.1 cluster; {} speaks h2",
                    cluster.name
                ),
            ));
        }

        let hash = action
            .hash_key
            .as_ref()
            .and_then(|k| hash_of(k, parts, self.client));

        // Phase 3 (before the peer: it does not depend on the endpoint, and
        // retries reuse it): upstream request filter.
        let added = match self.rewrite_head(action, prefix, parts, cluster, request_id) {
            Ok(added) => added,
            Err(err) => return Err(err),
        };
        if let Some(protocol) = &upgrade {
            crate::tunnel::restore(&mut parts.headers, protocol.clone());
        }

        // Phases 2 and 4: upstream peer and send, with retries, bounded by
        // the route timeout.
        let out = attempts::Outgoing {
            cluster,
            action,
            hash,
            limits,
            added: &added,
        };
        let resp = match attempts::send(out, parts, body, guards, timer).await {
            Ok(resp) => resp,
            Err(err) => return Err(err),
        };

        // Phase 5: response filter.
        let (mut head, body) = resp.into_parts();
        // A 101 keeps the protocol it switched to (`Connection: upgrade` is
        // written by the downstream server).
        let switched = if head.status == http::StatusCode::SWITCHING_PROTOCOLS {
            let to = head.headers.get(header::UPGRADE);
            // Only a request with an upgrade gets a 101 (h1_client skips
            // any other as interim).
            if !upgrade
                .as_ref()
                .is_some_and(|asked| crate::tunnel::answers(asked, to))
            {
                let err = Error::upstream(
                    ErrorKind::UpstreamProtocol,
                    "the upstream switched to a protocol the client did not ask for",
                );
                return Err(err);
            }
            to.cloned()
        } else {
            None
        };
        headers::strip_hop_by_hop(&mut head.headers, false);
        if let Some(protocol) = switched {
            head.headers.insert(header::UPGRADE, protocol);
        }
        Ok(Response::from_parts(
            head,
            ResponseBody::upstream(body, std::mem::take(guards)),
        ))
    }

    /// Phase 3: the upstream request head (hop-by-hop headers stripped,
    /// `Host`, path and version set), and the lines meshgate adds to it.
    fn rewrite_head(
        &self,
        action: &ProxyAction,
        prefix: Option<&str>,
        parts: &mut http::request::Parts,
        cluster: &ClusterState,
        request_id: &HeaderValue,
    ) -> Result<headers::Added, Error> {
        // The client-facing host, before any rewrite: the target's authority
        // (h2 :authority, or an absolute-form HTTP/1.1 target, which RFC 9112
        // §3.2.2 says overrides Host), else the Host header.
        let from_target = parts.uri.authority().is_some();
        let original_host: Option<HeaderValue> = if from_target {
            authority_of(parts).and_then(|a| HeaderValue::from_str(&a).ok())
        } else {
            parts.headers.get(header::HOST).cloned()
        };
        let mut added = headers::for_upstream(
            &mut parts.headers,
            headers::Origin {
                client_ip: &self.client_ip,
                proto: self.scheme,
                request_id: request_id.clone(),
            },
        );
        if let Some(h) = &action.host_rewrite {
            let v = HeaderValue::from_str(h)
                .map_err(|_| Error::internal("host_rewrite is not a valid header"))?;
            parts.headers.insert(header::HOST, v);
        } else if let (true, Some(h)) = (
            from_target || !parts.headers.contains_key(header::HOST),
            &original_host,
        ) {
            // The upstream gets the host the client addressed: h2 clients
            // send only :authority, an absolute-form target beats Host, and a
            // Host named in `Connection` (stripped above) is restored.
            parts.headers.insert(header::HOST, h.clone());
        }
        added.forwarded_host = original_host;

        let path_and_query = rewritten_path(action, prefix, &parts.uri)?;
        let mut uri = http::uri::Parts::default();
        uri.path_and_query = Some(path_and_query);
        if cluster.http2 {
            // h2 carries the host as :authority and needs a scheme.
            let host = parts.headers.remove(header::HOST);
            let authority = host
                .as_ref()
                .and_then(|h| Authority::try_from(h.as_bytes()).ok())
                .or_else(|| parts.uri.authority().cloned());
            uri.scheme = Some(Scheme::HTTP);
            uri.authority = Some(authority.unwrap_or_else(|| Authority::from_static("upstream")));
            parts.version = Version::HTTP_2;
        } else {
            parts.version = Version::HTTP_11;
        }
        parts.uri = Uri::from_parts(uri)
            .map_err(|e| Error::internal("rebuilding the upstream uri").with_cause(e))?;
        Ok(added)
    }
}
