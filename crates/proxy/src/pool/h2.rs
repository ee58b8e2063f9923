//! HTTP/2 upstreams: every request to an endpoint goes on one shared,
//! multiplexed hyper connection, made on demand by one request of a burst
//! (single flight) and replaced when it closes. A shared connection that
//! died unnoticed hands the unsent request back, and it is retried once on
//! a fresh connection, as for HTTP/1.1.

use std::sync::PoisonError;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use hyper::client::conn::http2;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use meshgate_core::{Error, ErrorKind};

use super::limits::Got;
use super::{EndpointPool, RouteTimeouts, UpstreamBody};
use crate::body::{RequestBody, UpstreamKind};
use crate::headers::Added;
use crate::upstream_tls::Alpn;

/// A failed h2 send. `unsent` holds the request when it never reached the
/// upstream (no connection could be made), so it can be retried as it is,
/// body and all, whatever its method.
struct Failed {
    error: Error,
    unsent: Option<Request<RequestBody>>,
}

impl Failed {
    /// The request never left: it comes back with the error.
    fn unsent(error: Error, req: Request<RequestBody>) -> Self {
        Self {
            error,
            unsent: Some(req),
        }
    }
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Self {
            error,
            unsent: None,
        }
    }
}

// === impl EndpointPool (h2) ===

impl EndpointPool {
    /// [`EndpointPool::send`] for an h2 endpoint, with the same lending:
    /// what is left in `req` on return never reached the upstream. The
    /// headers meshgate adds go into the request's map (h2 has no
    /// HTTP/1.1 head to write them into).
    pub(super) async fn send_h2(
        &self,
        req: &mut Option<Request<RequestBody>>,
        route: RouteTimeouts,
        added: &Added,
        waiting: &AtomicBool,
    ) -> Result<Response<UpstreamBody>, Error> {
        let Some(mut owned) = req.take() else {
            return Err(Error::internal("no request to send"));
        };
        added.insert_into(owned.headers_mut());
        self.exchange(owned, route, waiting)
            .await
            .map_err(|Failed { error, unsent }| {
                *req = unsent;
                error
            })
    }

    async fn exchange(
        &self,
        req: Request<RequestBody>,
        route: RouteTimeouts,
        waiting: &AtomicBool,
    ) -> Result<Response<UpstreamBody>, Failed> {
        let mut req = req;
        if self.tls.is_some() {
            crate::upstream_tls::to_https(req.uri_mut());
        }
        // As for HTTP/1.1: a shared connection that died unnoticed hands the
        // unsent request back, and it is retried once on a fresh connection.
        if let Some(mut sender) = self.live_h2() {
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    self.metrics.reused.inc();
                    return Ok(resp.map(|b| self.body(UpstreamKind::H2(b), route)));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(classify_send(e.into_error()).into()),
                },
            }
        }
        let mut sender = match self.shared_h2(route.connect, waiting).await {
            Ok(sender) => sender,
            Err(error) => return Err(Failed::unsent(error, req)),
        };
        match sender.send_request(req).await {
            Ok(resp) => Ok(resp.map(|b| self.body(UpstreamKind::H2(b), route))),
            Err(e) => Err(classify_send(e).into()),
        }
    }

    /// The live shared h2 connection, or a new one. Single flight: of a
    /// burst that finds no connection, one request connects (within its own
    /// `connect_timeout`) and the others wait for it, then share it.
    async fn shared_h2(
        &self,
        connect_timeout: Option<Duration>,
        waiting: &AtomicBool,
    ) -> Result<http2::SendRequest<RequestBody>, Error> {
        // Waiting behind another request's connect is waiting for the
        // cluster's connection too (it may be the one waiting for a unit).
        waiting.store(true, std::sync::atomic::Ordering::Relaxed);
        let _connecting = self.h2_connecting.lock().await;
        waiting.store(false, std::sync::atomic::Ordering::Relaxed);
        if let Some(s) = self.live_h2() {
            self.metrics.reused.inc();
            return Ok(s);
        }
        let sender = self.connect_h2(connect_timeout, waiting).await?;
        *self.h2.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender.clone());
        Ok(sender)
    }

    fn live_h2(&self) -> Option<http2::SendRequest<RequestBody>> {
        let slot = self.h2.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    async fn connect_h2(
        &self,
        connect_timeout: Option<Duration>,
        waiting: &AtomicBool,
    ) -> Result<http2::SendRequest<RequestBody>, Error> {
        let slot = match self.limits.acquire(|| None, waiting).await? {
            Got::Slot(slot) => slot,
            Got::Idle(_) => return Err(Error::internal("an idle h1 connection for an h2 pool")),
        };
        let io = TokioIo::new(self.connect(connect_timeout, &[], Alpn::H2).await?);
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await
            .map_err(|e| {
                Error::upstream(ErrorKind::UpstreamProtocol, "h2 handshake").with_cause(e)
            })?;
        let addr = self.addr;
        tokio::spawn(async move {
            // The connection holds its unit of max_connections while it lives.
            let _slot = slot;
            if let Err(e) = conn.await {
                tracing::debug!(upstream = %addr, error = %e, "upstream h2 connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// Maps a hyper client error to the data-path error model.
///
/// A failure of the *request* body (our size cap, or the client's own
/// connection breaking) also surfaces here, as whatever the upstream client
/// made of it; the pipeline replaces it with the failure `RequestBody`
/// recorded, so it is blamed on the client.
fn classify_send(e: hyper::Error) -> Error {
    let kind = if e.is_timeout() {
        ErrorKind::UpstreamTimeout
    } else if e.is_parse() || e.is_parse_status() {
        ErrorKind::UpstreamProtocol
    } else {
        ErrorKind::UpstreamReset
    };
    Error::upstream(kind, "upstream request").with_cause(e)
}
