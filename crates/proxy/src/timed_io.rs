//! Downstream connection timeouts that hyper does not give us in the shape we
//! need: a header-read timeout answered with `408` (slowloris), and a
//! keep-alive idle timeout that closes quietly.
//!
//! [`TimedIo`] wraps the client socket and watches the connection's phase:
//!
//! - **Idle**: no request in flight and no byte of the next one yet. After
//!   `idle_timeout` the read side reports EOF and hyper closes the connection.
//! - **Reading**: the first bytes of a request arrived but its headers are not
//!   complete (the service has not been called). After `header_read_timeout`
//!   we write a `408` and fail the read, so hyper closes.
//! - **Busy**: at least one request is in flight (counted by [`ConnActivity`]
//!   from the service and the response body). No timeout here: route timeouts
//!   bound the upstream side.
//!
//! HTTP/2 connections only use Idle and Busy: frames arrive continuously, and
//! "no stream in flight for `idle_timeout`" is the idle rule Envoy users know.
//!
//! The timer is armed lazily: it never fires later than the true deadline,
//! but it is re-armed only when it fires, not per request, so keep-alive
//! traffic costs no timer-wheel operation per request.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The response written when request headers do not arrive in time.
const RESPONSE_408: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 48\r\n\r\n{\"error\":\"request_header_timeout\",\"status\":408}\n";

/// Counts the requests in flight on one downstream connection.
///
/// The service increments it when hyper hands it a request (headers are
/// complete) and the guard in the response body decrements it when the
/// response is finished or dropped.
#[derive(Debug, Default)]
pub(crate) struct ConnActivity {
    in_flight: AtomicUsize,
    /// Requests ever started. A request can start and finish between two
    /// reads (direct responses, quick h2 streams); a changed count tells the
    /// reader one happened even though it never saw `in_flight > 0`.
    started: AtomicUsize,
}

/// Decrements [`ConnActivity`] on drop.
#[derive(Debug)]
pub(crate) struct ActivityGuard(Arc<ConnActivity>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle(Instant),
    Reading(Instant),
    Busy,
}

/// The timeouts a [`TimedIo`] enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) header_read: Duration,
    pub(crate) idle: Duration,
}

pin_project_lite::pin_project! {
    /// A client socket with header-read and idle timeouts; see the module docs.
    pub(crate) struct TimedIo<T> {
        #[pin]
        inner: T,
        activity: Arc<ConnActivity>,
        timeouts: Timeouts,
        phase: Phase,
        http2: bool,
        // `ConnActivity::started` when this reader last looked.
        seen: usize,
        timer: Option<Pin<Box<Sleep>>>,
    }
}

// === impl ConnActivity ===

impl ConnActivity {
    /// Marks a request as started; the guard marks it finished.
    pub(crate) fn start(self: &Arc<Self>) -> ActivityGuard {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        ActivityGuard(self.clone())
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0
    }

    fn started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

// === impl TimedIo ===

impl<T> TimedIo<T> {
    /// Wraps a freshly accepted socket. The header-read clock starts at
    /// `accepted`: a client that connects and sends nothing is treated as a
    /// slow request, and time spent before wrapping (protocol detection)
    /// counts against it.
    pub(crate) fn new(
        inner: T,
        activity: Arc<ConnActivity>,
        timeouts: Timeouts,
        http2: bool,
        accepted: Instant,
    ) -> Self {
        let phase = if http2 {
            Phase::Idle(accepted)
        } else {
            Phase::Reading(accepted)
        };
        let seen = activity.started();
        Self {
            inner,
            activity,
            timeouts,
            phase,
            http2,
            seen,
            timer: None,
        }
    }
}

impl<T: AsyncRead + AsyncWrite> TimedIo<T> {
    fn deadline(phase: Phase, t: Timeouts) -> Option<Instant> {
        match phase {
            Phase::Idle(since) => Some(since + t.idle),
            Phase::Reading(since) => Some(since + t.header_read),
            Phase::Busy => None,
        }
    }
}

impl<T: AsyncRead + AsyncWrite> AsyncRead for TimedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut this = self.project();
        let before = buf.filled().len();
        let busy = this.activity.busy();
        let started = this.activity.started();
        // Learn the phase from the request counters: hyper reads again right
        // after a response completes, so "now" is a faithful idle start.
        if busy {
            *this.phase = Phase::Busy;
        } else if started != *this.seen || *this.phase == Phase::Busy {
            *this.phase = Phase::Idle(Instant::now());
        }
        *this.seen = started;
        match this.inner.as_mut().poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = buf.filled().len() > before;
                if got && !*this.http2 && matches!(*this.phase, Phase::Idle(_)) {
                    *this.phase = Phase::Reading(Instant::now());
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        let Some(deadline) = Self::deadline(*this.phase, *this.timeouts) else {
            return Poll::Pending;
        };
        // Never arm further ahead than the shortest timeout: any later phase
        // starts after now, so its deadline is at least that far away and the
        // timer can only fire early (then we re-arm), never late.
        let horizon = Instant::now() + this.timeouts.header_read.min(this.timeouts.idle);
        loop {
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.min(horizon))));
            ready!(timer.as_mut().poll(cx));
            let now = Instant::now();
            if now < deadline {
                timer
                    .as_mut()
                    .reset(deadline.min(now + this.timeouts.header_read.min(this.timeouts.idle)));
                continue;
            }
            return match *this.phase {
                Phase::Idle(_) => Poll::Ready(Ok(())), // EOF: quiet keep-alive close
                _ => {
                    // Best effort: the socket buffer is empty on a stalled
                    // request, so one write normally takes the whole reply.
                    if let Poll::Ready(Err(e)) = this.inner.as_mut().poll_write(cx, RESPONSE_408) {
                        tracing::debug!(error = %e, "could not write 408");
                    }
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request header read timeout",
                    )))
                }
            };
        }
    }
}

impl<T: AsyncWrite> AsyncWrite for TimedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
