//! Upstream connection pools, one per endpoint.
//!
//! HTTP/1.1 connections ([`Conn`]) are kept in a LIFO idle list (the most
//! recently used connection is the warmest) with a cap per endpoint and an
//! idle timeout. A connection goes back to the list only when its response
//! body ended cleanly with nothing extra buffered (`H1Body`); one whose body
//! was cut short is dropped, since its framing state is unknown. A connection
//! the upstream closed while it waited is noticed on checkout without a
//! syscall (`Conn::looks_alive`); if the close races the checkout, the unsent
//! (or safely replayable) request comes back and is retried once on a fresh
//! connection, so a dead idle connection does not fail a request.
//!
//! HTTP/2 endpoints share one multiplexed hyper connection (`h2`), replaced when it
//! closes. Every request is counted as sent on a `created` or a `reused`
//! connection, giving the reuse ratio.
//!
//! A route may override the cluster's connect timeout and give response
//! bodies an idle timeout ([`RouteTimeouts`]); both travel with each send,
//! so pools stay per endpoint, not per route.
//!
//! A cluster with `tls` makes TLS connections ([`crate::upstream_tls`]):
//! the handshake is part of connecting (within the same connect timeout),
//! so everything pooled or shared is already TLS, and a handshake that
//! fails is a connect failure (`upstream_tls_failed`) that hands the
//! request back unsent. A plain cluster's pool holds no TLS state; its
//! requests allocate nothing more, and pay one branch per read or write
//! (the TCP-or-TLS enum) and one after writing the head (TLS flushes).

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::client::conn::http2;
use hyper::{Request, Response};
use meshgate_config::ProxyAction;
use meshgate_core::{Error, ErrorKind};
use meshgate_telemetry::Counter;
use tokio::net::TcpStream;
use tokio::time::Instant;

pub(crate) use crate::body::UpstreamBody;
use crate::body::{RequestBody, UpstreamKind};
use crate::h1_client::{self, Conn, SendError};
use crate::headers::Added;
use crate::stream::Stream;
use crate::upstream_tls::{Alpn, UpstreamStream, UpstreamTls};

mod h2;
mod limits;
use limits::Got;
pub(crate) use limits::{ConnLimits, ConnSlot};

/// Counters shared by every endpoint of a cluster.
#[derive(Debug, Clone)]
pub(crate) struct PoolMetrics {
    pub(crate) created: Arc<Counter>,
    pub(crate) reused: Arc<Counter>,
    /// Response bodies cut by their route's `idle_timeout`.
    pub(crate) idle_timeouts: Arc<Counter>,
}

/// Pool settings resolved from the cluster config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolConfig {
    pub(crate) http2: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_idle: usize,
    pub(crate) idle_timeout: Duration,
}

/// A route's overrides of its cluster's timeouts, for one request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RouteTimeouts {
    /// Replaces the cluster's `connect_timeout`.
    pub(crate) connect: Option<Duration>,
    /// The response body's idle timeout.
    pub(crate) idle: Option<Duration>,
}

impl From<&ProxyAction> for RouteTimeouts {
    fn from(action: &ProxyAction) -> Self {
        Self {
            connect: action.connect_timeout,
            idle: action.idle_timeout,
        }
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// The connections to one upstream endpoint.
pub(crate) struct EndpointPool {
    addr: SocketAddr,
    config: PoolConfig,
    metrics: PoolMetrics,
    limits: Arc<ConnLimits>,
    /// TLS origination, for a cluster with `tls`.
    tls: Option<Arc<UpstreamTls>>,
    idle: Mutex<Vec<Idle>>,
    h2: Mutex<Option<http2::SendRequest<RequestBody>>>,
    /// Held while an h2 connection is being established (single flight).
    h2_connecting: tokio::sync::Mutex<()>,
}

// === impl EndpointPool ===

impl EndpointPool {
    pub(crate) fn new(
        addr: SocketAddr,
        config: PoolConfig,
        metrics: PoolMetrics,
        limits: Arc<ConnLimits>,
        tls: Option<Arc<UpstreamTls>>,
    ) -> Self {
        Self {
            addr,
            config,
            metrics,
            limits,
            tls,
            idle: Mutex::new(Vec::new()),
            h2: Mutex::new(None),
            h2_connecting: tokio::sync::Mutex::new(()),
        }
    }

    /// The endpoint's address.
    pub(crate) fn address(&self) -> SocketAddr {
        self.addr
    }

    /// The connection limits this pool shares with its cluster.
    pub(crate) fn limits(&self) -> &Arc<ConnLimits> {
        &self.limits
    }

    /// The cluster's TLS origination, if it has `tls`.
    pub(crate) fn tls(&self) -> Option<&Arc<UpstreamTls>> {
        self.tls.as_ref()
    }

    /// Sends the request in `req` on a pooled or new connection (made
    /// within `route`'s connect timeout, else the cluster's) and returns the
    /// response; its body owns (HTTP/1.1) or shares (h2) the connection, and
    /// is cut if it idles for `route`'s idle timeout. `waiting` is up while
    /// the request waits for a unit of the cluster's `max_connections`.
    ///
    /// The request is lent (see [`h1_client::send`]): whatever is left in
    /// `req` on return never reached the upstream, and may be sent again as
    /// it is, whatever its method and body.
    pub(crate) async fn send(
        self: &Arc<Self>,
        req: &mut Option<Request<RequestBody>>,
        route: RouteTimeouts,
        added: &Added,
        waiting: &AtomicBool,
    ) -> Result<Response<UpstreamBody>, Error> {
        if self.config.http2 {
            // Boxed: keeps the h2 path's state out of every h1 request's future.
            return Box::pin(self.send_h2(req, route, added, waiting)).await;
        }
        let mut pooled = self.checkout_h1();
        let slot = loop {
            // A pooled connection that turns out dead leaves the request
            // unsent, or safe to replay; each pass uses up one.
            if let Some(conn) = pooled.take() {
                match h1_client::send(conn, req, added, true, self).await {
                    Ok(resp) => {
                        self.metrics.reused.inc();
                        return Ok(resp.map(|b| self.body(UpstreamKind::H1(b), route)));
                    }
                    Err(SendError::Retry) => {}
                    Err(SendError::Failed(e)) => return Err(e),
                }
            }
            match self.limits.acquire(|| self.checkout_h1(), waiting).await {
                Ok(Got::Slot(slot)) => break slot,
                Ok(Got::Idle(conn)) => pooled = Some(conn),
                Err(error) => return Err(error),
            }
        };
        // Boxed: connecting is the cold path, and its state machine would
        // otherwise be copied with every request's future.
        let stream = Box::pin(self.connect(route.connect, &[], Alpn::Http1)).await?;
        match h1_client::send(Conn::new(stream, slot), req, added, false, self).await {
            Ok(resp) => Ok(resp.map(|b| self.body(UpstreamKind::H1(b), route))),
            // Retry is only offered for reused connections.
            Err(SendError::Retry) => {
                *req = None;
                Err(Error::upstream(
                    ErrorKind::UpstreamReset,
                    "new connection failed",
                ))
            }
            Err(SendError::Failed(e)) => Err(e),
        }
    }

    /// A new connection for a tcp listener, with its unit of the
    /// cluster's `max_connections` (waiting as a pending request when they
    /// are all taken, bounded by the connect timeout like the connect).
    ///
    /// `first` goes on the new socket before anything else, in the clear:
    /// on a TLS cluster, before the handshake (a PROXY header, as HAProxy
    /// sends `send-proxy` with `ssl`). A plain cluster's caller sends such
    /// bytes with the client's first ones instead, in one write.
    pub(crate) async fn connect_l4(
        &self,
        first: &[u8],
    ) -> Result<(UpstreamStream, ConnSlot), Error> {
        let timeout = self.config.connect_timeout;
        let waiting = AtomicBool::new(false);
        let acquire = self.limits.acquire(|| None, &waiting);
        let slot = match tokio::time::timeout(timeout, acquire).await {
            Ok(Ok(Got::Slot(slot))) => slot,
            // `acquire` hands out pooled connections only from `idle`.
            Ok(Ok(Got::Idle(_))) => {
                return Err(Error::upstream(ErrorKind::Overloaded, "no connection unit"));
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(Error::upstream(
                    ErrorKind::Overloaded,
                    format!("cluster at max_connections for {timeout:?}"),
                ));
            }
        };
        let stream = self.connect(None, first, Alpn::None).await?;
        Ok((stream, slot))
    }

    fn checkout_h1(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let mut now = None;
        while let Some(mut entry) = idle.pop() {
            let now = *now.get_or_insert_with(Instant::now);
            if now.duration_since(entry.since) > self.config.idle_timeout {
                // LIFO: everything below this one is older still.
                idle.clear();
                return None;
            }
            if entry.conn.looks_alive() {
                return Some(entry.conn);
            }
            // The upstream closed it while it waited: drop and try the next.
        }
        None
    }

    /// The response body as the pipeline streams it.
    fn body(&self, kind: UpstreamKind, route: RouteTimeouts) -> UpstreamBody {
        UpstreamBody::new(kind, route.idle, &self.metrics.idle_timeouts)
    }

    /// Connects within `timeout`, or the cluster's connect timeout; on a
    /// TLS cluster, writes `first` and completes the handshake (offering
    /// `alpn`) within the same time.
    async fn connect(
        &self,
        timeout: Option<Duration>,
        first: &[u8],
        alpn: Alpn,
    ) -> Result<UpstreamStream, Error> {
        let timeout = timeout.unwrap_or(self.config.connect_timeout);
        let until = Instant::now() + timeout;
        let stream = match tokio::time::timeout_at(until, TcpStream::connect(self.addr)).await {
            Ok(Ok(s)) => s,
            // Refused, unreachable or reset during connect: the request
            // never reached the upstream, so all are a retryable 502.
            Ok(Err(e)) => {
                return Err(Error::upstream(
                    ErrorKind::ConnectRefused,
                    format!("connect {}", self.addr),
                )
                .with_cause(e));
            }
            Err(_) => {
                return Err(Error::upstream(
                    ErrorKind::ConnectTimeout,
                    format!("connect {} within {timeout:?}", self.addr),
                ));
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed; continuing with Nagle");
        }
        let stream = match &self.tls {
            None => Stream::Tcp(stream),
            Some(tls) => Stream::Tls(Box::new(
                tls.secure(stream, self.addr, first, alpn, until).await?,
            )),
        };
        self.metrics.created.inc();
        Ok(stream)
    }

    /// Takes back a connection whose exchange completed cleanly.
    pub(crate) fn checkin_h1(&self, conn: Conn) {
        if self.config.max_idle == 0 {
            return; // pooling is off: dropping the connection closes it
        }
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() >= self.config.max_idle {
            // Full: first drop dead or expired entries; if none, the oldest
            // (front of the LIFO list) makes room for this warmer one.
            self.retain_live(&mut idle, now);
            if idle.len() >= self.config.max_idle {
                idle.remove(0);
            }
        }
        idle.push(Idle { conn, since: now });
        drop(idle);
        self.limits.wake();
    }

    /// Closes this endpoint's oldest idle connection, if it has one, giving
    /// its unit of `max_connections` back.
    pub(crate) fn close_idle(&self) -> bool {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.is_empty() {
            return false;
        }
        let oldest = idle.remove(0);
        drop(idle);
        drop(oldest); // its slot wakes the waiters
        true
    }

    /// Closes idle connections older than the idle timeout, and forgets
    /// closed ones. Called periodically, so the timeout holds without traffic.
    pub(crate) fn evict_expired(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        self.retain_live(&mut idle, Instant::now());
    }

    fn retain_live(&self, idle: &mut Vec<Idle>, now: Instant) {
        let timeout = self.config.idle_timeout;
        idle.retain_mut(|c| now.duration_since(c.since) <= timeout && c.conn.looks_alive());
    }
}
