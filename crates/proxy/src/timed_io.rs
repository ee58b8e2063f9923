//! The idle timeout of an h2c connection, which hyper's h2 server does not
//! give us in the shape we need: "no stream in flight for `idle_timeout`"
//! closes quietly, the rule Envoy users know. (HTTP/1.1 connections are
//! served by `h1_server`, which keeps its own clocks.)
//!
//! [`TimedIo`] wraps the client socket and watches the connection's phase:
//!
//! - **Idle**: no stream in flight. After `idle_timeout` the read side
//!   reports EOF and hyper closes the connection.
//! - **Busy**: at least one stream is in flight (counted by [`ConnActivity`]
//!   from the service and the response body). No timeout here: route
//!   timeouts bound the upstream side.
//!
//! The timer is armed lazily: it never fires later than the true deadline,
//! but it is re-armed only when it fires, not per request, so traffic costs
//! no timer-wheel operation per stream.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

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
    Busy,
}

/// Bytes read during protocol detection, replayed before the socket's own.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Prefix {
    pub(crate) buf: [u8; 4],
    pub(crate) len: usize,
}

pin_project_lite::pin_project! {
    /// A client socket with the h2c idle timeout; see the module docs.
    pub(crate) struct TimedIo<T> {
        #[pin]
        inner: T,
        activity: Arc<ConnActivity>,
        idle: Duration,
        phase: Phase,
        // `ConnActivity::started` when this reader last looked.
        seen: usize,
        // Detection bytes not yet handed to hyper, and how many were.
        prefix: Prefix,
        replayed: usize,
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
    /// Wraps a freshly accepted socket; the idle clock starts at `accepted`,
    /// so time spent on protocol detection counts against it.
    pub(crate) fn new(
        inner: T,
        activity: Arc<ConnActivity>,
        idle: Duration,
        accepted: Instant,
        prefix: Prefix,
    ) -> Self {
        let seen = activity.started();
        Self {
            inner,
            activity,
            idle,
            phase: Phase::Idle(accepted),
            seen,
            prefix,
            replayed: 0,
            timer: None,
        }
    }
}

impl<T: AsyncRead> AsyncRead for TimedIo<T> {
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
        let busy = this.activity.busy();
        let started = this.activity.started();
        // Learn the phase from the stream counters: a changed count means
        // streams came and went since we last looked, so idleness starts now.
        if busy {
            *this.phase = Phase::Busy;
        } else if started != *this.seen || *this.phase == Phase::Busy {
            *this.phase = Phase::Idle(Instant::now());
        }
        *this.seen = started;
        if let Poll::Ready(r) = this.inner.as_mut().poll_read(cx, buf) {
            return Poll::Ready(r);
        }
        let Phase::Idle(since) = *this.phase else {
            if this.activity.park(cx.waker()) {
                return Poll::Pending;
            }
            // The last stream ended just now: re-run as idle.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        };
        let deadline = since + *this.idle;
        // Never armed further ahead than one idle period: any later idle
        // phase starts after now, so the timer can only fire early (then we
        // re-arm), never late.
        let horizon = Instant::now() + *this.idle;
        loop {
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.min(horizon))));
            ready!(timer.as_mut().poll(cx));
            let now = Instant::now();
            if now >= deadline {
                return Poll::Ready(Ok(())); // EOF: quiet close
            }
            timer.as_mut().reset(deadline.min(now + *this.idle));
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
