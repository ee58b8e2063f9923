//! An h2 request body and its flow-control credit.
//!
//! The connection pushes DATA into a stream's queue; whoever reads the body
//! (often the upstream client's writer task) pops it. Each pop hands the
//! bytes' credit back through the connection's [`Signal`], which turns it
//! into WINDOW_UPDATE frames: the client can only send as fast as the
//! upstream takes, and at most one window per stream is ever buffered.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http_body::{Body, Frame, SizeHint};

/// Credit handed back by bodies, and the connection's waker.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    waker: AtomicWaker,
    released: Mutex<Vec<(u32, u32)>>,
}

impl Signal {
    /// The connection task polls with `waker`.
    pub(crate) fn register(&self, waker: &Waker) {
        self.waker.register(waker);
    }

    /// Hands back `n` bytes of credit (0: only wakes the connection, as a
    /// dropped body does so the stream can be reset).
    fn release(&self, stream: u32, n: u32) {
        if n > 0 {
            self.released
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((stream, n));
        }
        self.waker.wake();
    }

    /// Takes the credit released since the last call.
    pub(crate) fn take(&self) -> Vec<(u32, u32)> {
        std::mem::take(&mut *self.released.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Why a request body failed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecvError(pub(crate) &'static str);

impl std::fmt::Display for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for RecvError {}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Bytes>,
    queued: u32,
    end: bool,
    failed: Option<&'static str>,
    waker: Option<Waker>,
    dropped: bool,
}

/// The side the connection keeps.
#[derive(Debug)]
pub(crate) struct Shared {
    stream: u32,
    state: Mutex<State>,
    signal: Arc<Signal>,
}

impl Shared {
    pub(crate) fn new(stream: u32, signal: Arc<Signal>) -> Arc<Self> {
        Arc::new(Self {
            stream,
            state: Mutex::new(State::default()),
            signal,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues data for the reader; `false` if nobody will read it (the
    /// caller then releases its credit at once).
    pub(crate) fn push(&self, data: Bytes) -> bool {
        let mut s = self.lock();
        if s.dropped {
            return false;
        }
        s.queued += u32::try_from(data.len()).unwrap_or(u32::MAX);
        s.queue.push_back(data);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
        true
    }

    /// The client ended the body (END_STREAM), or it failed.
    pub(crate) fn finish(&self, failed: Option<&'static str>) {
        let mut s = self.lock();
        s.end = true;
        s.failed = failed;
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }

    /// Marks the body as having no reader: its data is credit at once.
    pub(crate) fn abandon(&self) {
        self.lock().dropped = true;
    }

    /// Whether the reader is gone.
    pub(crate) fn dropped(&self) -> bool {
        self.lock().dropped
    }
}

/// The request body handed to the pipeline.
#[derive(Debug)]
pub(crate) struct H2Body {
    shared: Arc<Shared>,
    /// Bytes left per `content-length`, for an exact size hint.
    remaining: Option<u64>,
}

impl H2Body {
    pub(crate) fn new(shared: Arc<Shared>, length: Option<u64>) -> Self {
        Self {
            shared,
            remaining: length,
        }
    }
}

impl Body for H2Body {
    type Data = Bytes;
    type Error = RecvError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RecvError>>> {
        let this = self.get_mut();
        let mut s = this.shared.lock();
        if let Some(data) = s.queue.pop_front() {
            let n = u32::try_from(data.len()).unwrap_or(u32::MAX);
            s.queued -= n.min(s.queued);
            drop(s);
            this.shared.signal.release(this.shared.stream, n);
            if let Some(r) = this.remaining.as_mut() {
                *r = r.saturating_sub(data.len() as u64);
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some(why) = s.failed {
            return Poll::Ready(Some(Err(RecvError(why))));
        }
        if s.end {
            return Poll::Ready(None);
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        let s = self.shared.lock();
        s.end && s.failed.is_none() && s.queue.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        self.remaining
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

impl Drop for H2Body {
    fn drop(&mut self) {
        // Unread bytes still hold credit: give it back so the connection's
        // window does not shrink for good.
        let queued = {
            let mut s = self.shared.lock();
            s.dropped = true;
            s.queue.clear();
            std::mem::take(&mut s.queued)
        };
        self.shared.signal.release(self.shared.stream, queued);
    }
}
