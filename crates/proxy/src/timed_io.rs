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

/// The raw `408` reply, rendered once from the error model (so its status
/// and code come from `ErrorKind`, like every other error).
fn response_408() -> &'static [u8] {
    static REPLY: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        crate::respond::raw_error(meshgate_core::ErrorKind::RequestHeaderTimeout)
    });
    &REPLY
}

/// Whether a write call left some of the offered bytes unwritten.
fn left_bytes_behind(polled: &Poll<io::Result<usize>>, offered: usize) -> bool {
    match polled {
        Poll::Ready(Ok(n)) => *n < offered,
        Poll::Pending => true,
        Poll::Ready(Err(_)) => false,
    }
}

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
    /// The reader parked while requests were in flight. hyper does not read
    /// again after a response unless woken, so the last request to finish
    /// wakes it, and the idle clock starts then.
    parked: std::sync::Mutex<Option<std::task::Waker>>,
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

/// Bytes read during protocol detection, replayed before the socket's own.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Prefix {
    pub(crate) buf: [u8; 4],
    pub(crate) len: usize,
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
        // Detection bytes not yet handed to hyper, and how many were.
        prefix: Prefix,
        replayed: usize,
        // The last write left bytes behind (hyper still holds part of a
        // response): a 408 written now would land inside it, so we only close.
        write_blocked: bool,
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
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// Parks the reader until the last in-flight request ends. Returns
    /// whether requests are still in flight (if not, the caller re-checks).
    fn park(&self, waker: &std::task::Waker) -> bool {
        let mut parked = self
            .parked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match parked.as_ref() {
            Some(w) if w.will_wake(waker) => {}
            _ => *parked = Some(waker.clone()),
        }
        drop(parked);
        // A guard dropped between the caller's check and the store above
        // found no waker: look again so that wake-up is never lost.
        self.busy()
    }

    fn started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let parked = self
                .0
                .parked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(waker) = parked {
                waker.wake();
            }
        }
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
        prefix: Prefix,
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
            prefix,
            replayed: 0,
            write_blocked: false,
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
        if *this.replayed < this.prefix.len {
            let rest = &this.prefix.buf[*this.replayed..this.prefix.len];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            *this.replayed += n;
            return Poll::Ready(Ok(()));
        }
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
            if this.activity.park(cx.waker()) {
                return Poll::Pending;
            }
            // The last request ended just now: re-run as idle.
            cx.waker().wake_by_ref();
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
                    // Answer 408 only on a clean slate: never after part of a
                    // response hyper has yet to write. Best effort: the socket
                    // buffer is empty on a stalled request, so one write
                    // normally takes the whole reply; if not, the client sees
                    // a short reply and the close, which is still honest.
                    if !*this.write_blocked {
                        let reply = response_408();
                        if let Poll::Ready(Err(e)) = this.inner.as_mut().poll_write(cx, reply) {
                            tracing::debug!(error = %e, "could not write 408");
                        }
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
        let this = self.project();
        let polled = this.inner.poll_write(cx, buf);
        *this.write_blocked = left_bytes_behind(&polled, buf.len());
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.inner.poll_write_vectored(cx, bufs);
        let offered = bufs.iter().map(|b| b.len()).sum();
        *this.write_blocked = left_bytes_behind(&polled, offered);
        polled
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
