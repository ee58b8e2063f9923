//! Upstream connection pools, one per endpoint.
//!
//! HTTP/1.1 connections are kept in a LIFO idle list (the most recently used
//! connection is the warmest) with a cap per endpoint and an idle timeout. A
//! connection goes back to the list only after its response body ended
//! cleanly; one whose body was cut short is dropped, since its framing state
//! is unknown. A connection closed by the upstream while it waited is noticed
//! on checkout (`is_closed`), and if the close races the checkout, hyper's
//! `try_send_request` hands the unsent request back and [`EndpointPool::send`]
//! retries it once on a fresh connection, so a dead idle connection never
//! fails a request.
//!
//! HTTP/2 endpoints share one multiplexed connection, replaced when it closes.
//! Every checkout is counted as `created` or `reused`, giving the reuse ratio.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use meshgate_core::{Error, ErrorKind};
use meshgate_telemetry::Counter;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::body::RequestBody;

/// Counters shared by every endpoint of a cluster.
#[derive(Debug, Clone)]
pub(crate) struct PoolMetrics {
    pub(crate) created: Arc<Counter>,
    pub(crate) reused: Arc<Counter>,
}

/// Pool settings resolved from the cluster config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolConfig {
    pub(crate) http2: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_idle: usize,
    pub(crate) idle_timeout: Duration,
}

struct Idle {
    sender: http1::SendRequest<RequestBody>,
    since: Instant,
}

/// The connections to one upstream endpoint.
pub(crate) struct EndpointPool {
    addr: SocketAddr,
    config: PoolConfig,
    metrics: PoolMetrics,
    idle: Mutex<Vec<Idle>>,
    h2: Mutex<Option<http2::SendRequest<RequestBody>>>,
    /// Held while an h2 connection is being established (single flight).
    h2_connecting: tokio::sync::Mutex<()>,
}

/// Returns an HTTP/1.1 connection to its pool once its response has ended.
pub(crate) struct PoolReturn {
    pool: Arc<EndpointPool>,
    sender: http1::SendRequest<RequestBody>,
}

// === impl EndpointPool ===

impl EndpointPool {
    pub(crate) fn new(addr: SocketAddr, config: PoolConfig, metrics: PoolMetrics) -> Self {
        Self {
            addr,
            config,
            metrics,
            idle: Mutex::new(Vec::new()),
            h2: Mutex::new(None),
            h2_connecting: tokio::sync::Mutex::new(()),
        }
    }

    /// Sends `req` on a pooled or new connection and returns the response
    /// head, plus the pool return to attach to the body (HTTP/1.1 only).
    pub(crate) async fn send(
        self: &Arc<Self>,
        req: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, Option<PoolReturn>), Error> {
        if self.config.http2 {
            // Boxed: keeps the h2 path's state out of every h1 request's future.
            return Box::pin(self.send_h2(req)).await;
        }
        let mut req = req;
        // At most one retry, and only for a request the dead connection never sent.
        if let Some(mut sender) = self.checkout_h1() {
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    self.metrics.reused.inc();
                    return Ok((
                        resp,
                        Some(PoolReturn {
                            pool: self.clone(),
                            sender,
                        }),
                    ));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(classify_send(e.into_error())),
                },
            }
        }
        // Boxed: connecting is the cold path, and its large state machine
        // would otherwise be copied with every request's future.
        let mut sender = Box::pin(self.connect_h1()).await?;
        match sender.send_request(req).await {
            Ok(resp) => Ok((
                resp,
                Some(PoolReturn {
                    pool: self.clone(),
                    sender,
                }),
            )),
            Err(e) => Err(classify_send(e)),
        }
    }

    fn checkout_h1(&self) -> Option<http1::SendRequest<RequestBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let mut now = None;
        while let Some(conn) = idle.pop() {
            if conn.sender.is_closed() {
                continue; // the upstream closed it while it waited
            }
            let now = *now.get_or_insert_with(Instant::now);
            if now.duration_since(conn.since) > self.config.idle_timeout {
                // LIFO: everything below this one is older still.
                idle.clear();
                return None;
            }
            if conn.sender.is_ready() {
                return Some(conn.sender);
            }
        }
        None
    }

    async fn connect(&self) -> Result<TokioIo<TcpStream>, Error> {
        let stream =
            match tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(self.addr))
                .await
            {
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
                        format!("connect {}", self.addr),
                    ));
                }
            };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed; continuing with Nagle");
        }
        self.metrics.created.inc();
        Ok(TokioIo::new(stream))
    }

    async fn connect_h1(&self) -> Result<http1::SendRequest<RequestBody>, Error> {
        let io = self.connect().await?;
        let (sender, conn) = http1::Builder::new()
            .max_buf_size(256 * 1024)
            .handshake(io)
            .await
            .map_err(|e| {
                Error::upstream(ErrorKind::UpstreamProtocol, "http/1.1 handshake").with_cause(e)
            })?;
        let addr = self.addr;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(upstream = %addr, error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    async fn send_h2(
        &self,
        req: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, Option<PoolReturn>), Error> {
        let mut req = req;
        // As for HTTP/1.1: a shared connection that died unnoticed hands the
        // unsent request back, and it is retried once on a fresh connection.
        if let Some(mut sender) = self.live_h2() {
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    self.metrics.reused.inc();
                    return Ok((resp, None));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(classify_send(e.into_error())),
                },
            }
        }
        let mut sender = self.shared_h2().await?;
        match sender.send_request(req).await {
            Ok(resp) => Ok((resp, None)),
            Err(e) => Err(classify_send(e)),
        }
    }

    /// The live shared h2 connection, or a new one. Single flight: of a
    /// burst that finds no connection, one request connects and the others
    /// wait for it, then share it.
    async fn shared_h2(&self) -> Result<http2::SendRequest<RequestBody>, Error> {
        let _connecting = self.h2_connecting.lock().await;
        if let Some(s) = self.live_h2() {
            self.metrics.reused.inc();
            return Ok(s);
        }
        let sender = self.connect_h2().await?;
        *self.h2.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender.clone());
        Ok(sender)
    }

    fn live_h2(&self) -> Option<http2::SendRequest<RequestBody>> {
        let slot = self.h2.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    async fn connect_h2(&self) -> Result<http2::SendRequest<RequestBody>, Error> {
        let io = self.connect().await?;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await
            .map_err(|e| {
                Error::upstream(ErrorKind::UpstreamProtocol, "h2 handshake").with_cause(e)
            })?;
        let addr = self.addr;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(upstream = %addr, error = %e, "upstream h2 connection ended with an error");
            }
        });
        Ok(sender)
    }

    fn checkin(&self, sender: http1::SendRequest<RequestBody>) {
        if self.config.max_idle == 0 {
            return; // pooling is off: dropping the sender closes the connection
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
        idle.push(Idle { sender, since: now });
    }

    /// Closes idle connections older than the idle timeout, and forgets
    /// closed ones. Called periodically, so the timeout holds without traffic.
    pub(crate) fn evict_expired(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        self.retain_live(&mut idle, Instant::now());
    }

    fn retain_live(&self, idle: &mut Vec<Idle>, now: Instant) {
        let timeout = self.config.idle_timeout;
        idle.retain(|c| !c.sender.is_closed() && now.duration_since(c.since) <= timeout);
    }
}

// === impl PoolReturn ===

impl PoolReturn {
    /// Puts the connection back once hyper is ready to send on it again.
    pub(crate) fn release(self) {
        let PoolReturn { pool, mut sender } = self;
        if sender.is_ready() {
            pool.checkin(sender);
            return;
        }
        if sender.is_closed() {
            return;
        }
        // The connection task has not yet noticed the end of the exchange
        // (or the request body is still being written): wait for it off the
        // data path, bounded so a stuck exchange cannot pin the connection.
        let wait = pool.config.idle_timeout;
        tokio::spawn(async move {
            if let Ok(Ok(())) = tokio::time::timeout(wait, sender.ready()).await {
                pool.checkin(sender);
            }
        });
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
