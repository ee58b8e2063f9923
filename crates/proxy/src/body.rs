//! Body types of the data path. Both stream frame by frame: nothing here
//! buffers a whole body, so memory per request stays bounded whatever the
//! body size, and backpressure flows through hyper's own polling.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::pool::PoolReturn;
use crate::timed_io::ActivityGuard;

/// The error a [`RequestBody`] yields when the client sends more than allowed.
///
/// The service finds it in the upstream error's source chain to answer `413`.
#[derive(Debug)]
pub(crate) struct BodyTooLarge;

impl std::fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body exceeds the listener's max_body_bytes")
    }
}

impl std::error::Error for BodyTooLarge {}

pin_project_lite::pin_project! {
    /// The client's request body on its way upstream, with an optional size cap.
    pub(crate) struct RequestBody {
        #[pin]
        inner: Incoming,
        remaining: Option<u64>,
    }
}

impl RequestBody {
    pub(crate) fn new(inner: Incoming, limit: Option<u64>) -> Self {
        Self {
            inner,
            remaining: limit,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(remaining), Some(data)) = (this.remaining.as_mut(), frame.data_ref()) {
                    let len = data.len() as u64;
                    if len > *remaining {
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge))));
                    }
                    *remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What a response body streams from.
enum Source {
    /// A body produced by meshgate (direct responses, errors); taken once.
    Full(Option<Bytes>),
    /// The upstream's response body.
    Upstream(Incoming),
}

/// Everything a response keeps alive until its last byte is written.
#[derive(Default)]
pub(crate) struct Guards {
    /// Keeps the downstream connection "busy" for the idle timeout.
    #[allow(dead_code, reason = "held only for its Drop")]
    pub(crate) activity: Option<ActivityGuard>,
    /// Hands the upstream connection back to its pool on a clean end.
    pub(crate) pool: Option<PoolReturn>,
    /// Keeps the endpoint's active-request count (least_request) raised.
    pub(crate) lb: Option<meshgate_balance::ActiveGuard>,
}

/// The response body sent to the client.
pub struct ResponseBody {
    source: Source,
    guards: Guards,
}

impl ResponseBody {
    pub(crate) fn full(bytes: Bytes, guards: Guards) -> Self {
        Self {
            source: Source::Full(Some(bytes)),
            guards,
        }
    }

    pub(crate) fn upstream(body: Incoming, guards: Guards) -> Self {
        Self {
            source: Source::Upstream(body),
            guards,
        }
    }

    /// Called once the body has ended cleanly: the upstream connection, if
    /// any, has delivered a complete response and may be reused.
    fn finish(&mut self) {
        if let Some(ret) = self.guards.pool.take() {
            ret.release();
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        // Every field is Unpin, so the body can be polled through &mut.
        let this = self.get_mut();
        match &mut this.source {
            Source::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Source::Upstream(body) => {
                let polled = Pin::new(body).poll_frame(cx);
                match &polled {
                    Poll::Ready(None) => this.finish(),
                    Poll::Ready(Some(Ok(_))) if this.is_end_stream() => this.finish(),
                    _ => {}
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Full(b) => b.is_none(),
            Source::Upstream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Source::Full(None) => SizeHint::with_exact(0),
            Source::Upstream(body) => body.size_hint(),
        }
    }
}
