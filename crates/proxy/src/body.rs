//! Body types of the data path. Both stream frame by frame: nothing here
//! buffers a whole body, so memory per request stays bounded whatever the
//! body size, and backpressure flows from whoever polls them.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use meshgate_telemetry::Counter;

use crate::h1::lines::Lines;
use crate::h1_client::H1Body;
use crate::h1_server::ServerBody;
use crate::h2_server::H2Body;

mod idle;
pub(crate) mod whole;
use idle::IdleWatch;

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

/// How a [`RequestBody`] failed, shared with the request that sent it.
///
/// The upstream client's error does not always carry our body error (an h2
/// client resets the stream instead), so the pipeline reads the failure here
/// rather than from the error chain.
#[derive(Debug, Default)]
pub(crate) struct BodyFailure(std::sync::atomic::AtomicU8);

impl BodyFailure {
    const TOO_LARGE: u8 = 1;
    const CLIENT: u8 = 2;

    /// The client-side error, if the request body failed.
    pub(crate) fn error(&self) -> Option<meshgate_core::Error> {
        use meshgate_core::{Error, ErrorKind};
        match self.0.load(std::sync::atomic::Ordering::Acquire) {
            Self::TOO_LARGE => Some(Error::downstream(
                ErrorKind::RequestBodyTooLarge,
                "request body exceeds max_body_bytes",
            )),
            Self::CLIENT => Some(Error::downstream(
                ErrorKind::BadRequest,
                "the client's request body failed",
            )),
            _ => None,
        }
    }

    fn set(&self, v: u8) {
        self.0.store(v, std::sync::atomic::Ordering::Release);
    }
}

/// The boxed error every body of the data path yields.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body as the downstream connection delivers it.
pub(crate) enum ClientBody {
    /// The request had no body.
    Empty,
    /// Read off an HTTP/1.1 connection by our own server.
    H1(ServerBody),
    /// An h2c stream, read by our own h2 server.
    H2(H2Body),
    /// A body read whole beforehand and kept for replays (`attempts`).
    Buffered(http_body_util::Full<Bytes>),
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ClientBody::Empty => Poll::Ready(None),
            ClientBody::Buffered(b) => Pin::new(b).poll_frame(cx).map_err(|never| match never {}),
            ClientBody::H1(b) => Pin::new(b)
                .poll_frame(cx)
                .map_err(|e| Box::new(e) as BoxError),
            ClientBody::H2(b) => Pin::new(b)
                .poll_frame(cx)
                .map_err(|e| Box::new(e) as BoxError),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Empty => true,
            ClientBody::Buffered(b) => b.is_end_stream(),
            ClientBody::H1(b) => b.is_end_stream(),
            ClientBody::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Empty => SizeHint::with_exact(0),
            ClientBody::Buffered(b) => b.size_hint(),
            ClientBody::H1(b) => b.size_hint(),
            ClientBody::H2(b) => b.size_hint(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The client's request body on its way upstream, with an optional size cap.
    pub(crate) struct RequestBody {
        #[pin]
        inner: ClientBody,
        remaining: Option<u64>,
        // `None` for an empty body, which can neither fail nor overrun.
        failure: Option<std::sync::Arc<BodyFailure>>,
    }
}

impl RequestBody {
    pub(crate) fn new(
        inner: ClientBody,
        limit: Option<u64>,
        failure: Option<std::sync::Arc<BodyFailure>>,
    ) -> Self {
        Self {
            inner,
            remaining: limit,
            failure,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let polled: Poll<Option<Result<Frame<Bytes>, Self::Error>>> = match this
            .inner
            .poll_frame(cx)
        {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(remaining), Some(data)) = (this.remaining.as_mut(), frame.data_ref()) {
                    let len = data.len() as u64;
                    if len > *remaining {
                        if let Some(f) = this.failure {
                            f.set(BodyFailure::TOO_LARGE);
                        }
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge))));
                    }
                    *remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(f) = this.failure {
                    f.set(BodyFailure::CLIENT);
                }
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        };
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body from either kind of upstream connection.
pub(crate) struct UpstreamBody {
    kind: UpstreamKind,
    /// The route's `idle_timeout`; `None` (nothing to do) without one.
    idle: Option<Pin<Box<Stall>>>,
}

/// Who reads the body.
pub(crate) enum UpstreamKind {
    /// Our own HTTP/1.1 client.
    H1(H1Body),
    /// hyper's h2 client.
    H2(Incoming),
}

pin_project_lite::pin_project! {
    /// An upstream body's idle watch, and the counter of cuts.
    struct Stall {
        #[pin]
        watch: IdleWatch,
        cuts: Arc<Counter>,
    }
}

// === impl UpstreamBody ===

impl UpstreamBody {
    /// The response's header lines, when they were kept as they came
    /// (`crate::h1::lines`) instead of going into its header map.
    pub(crate) fn lines(&self) -> Option<&Lines> {
        match &self.kind {
            UpstreamKind::H1(body) => body.lines(),
            UpstreamKind::H2(_) => None,
        }
    }

    fn take_lines(&mut self) -> Option<Box<Lines>> {
        match &mut self.kind {
            UpstreamKind::H1(body) => body.take_lines(),
            UpstreamKind::H2(_) => None,
        }
    }

    /// `kind`'s body, cut (with an `upstream_timeout` error, counted in
    /// `cuts`) if its source sends nothing for `idle_timeout` while it is
    /// waited on. MUST be called inside a tokio runtime when there is a
    /// timeout.
    pub(crate) fn new(
        kind: UpstreamKind,
        idle_timeout: Option<Duration>,
        cuts: &Arc<Counter>,
    ) -> Self {
        let idle = idle_timeout.map(|t| {
            Box::pin(Stall {
                watch: IdleWatch::new(t),
                cuts: cuts.clone(),
            })
        });
        Self { kind, idle }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        // Every field is Unpin. The bodies return their connection to the
        // pool themselves; one dropped before its end (after a cut) is closed.
        let this = self.get_mut();
        let polled = match &mut this.kind {
            UpstreamKind::H1(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|e| Box::new(e) as BoxError),
            UpstreamKind::H2(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|e| Box::new(e) as BoxError),
        };
        let Some(stall) = this.idle.as_mut() else {
            return polled;
        };
        let mut stall = stall.as_mut().project();
        if polled.is_ready() {
            stall.watch.progress();
            return polled;
        }
        ready!(stall.watch.as_mut().poll_stalled(cx));
        stall.cuts.inc();
        let timeout = stall.watch.timeout();
        let error = meshgate_core::Error::upstream(
            meshgate_core::ErrorKind::UpstreamTimeout,
            format!("the response body sent nothing for the route's idle_timeout ({timeout:?})"),
        );
        Poll::Ready(Some(Err(Box::new(error))))
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            UpstreamKind::H1(body) => body.is_end_stream(),
            UpstreamKind::H2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            UpstreamKind::H1(body) => body.size_hint(),
            UpstreamKind::H2(body) => body.size_hint(),
        }
    }
}

/// What a response body streams from.
enum Source {
    /// A body produced by meshgate (direct responses, errors); taken once.
    Full(Option<Bytes>),
    /// The upstream's response body.
    Upstream(UpstreamBody),
}

/// Everything a response keeps alive until its last byte is written.
#[derive(Default)]
pub(crate) struct Guards {
    /// Keeps the endpoint's active-request count (least_request) raised.
    pub(crate) lb: Option<meshgate_balance::ActiveGuard>,
    /// The request's unit of the cluster's `max_requests`.
    pub(crate) admitted: Option<meshgate_resilience::breaker::Permit>,
}

/// The response body sent to the client.
pub struct ResponseBody {
    source: Source,
    #[allow(dead_code, reason = "held only for its Drop")]
    guards: Guards,
}

impl ResponseBody {
    pub(crate) fn full(bytes: Bytes, guards: Guards) -> Self {
        Self {
            source: Source::Full(Some(bytes)),
            guards,
        }
    }

    /// The length of a body meshgate produced itself (not an upstream's,
    /// whose length to a HEAD request only its headers can tell).
    pub(crate) fn own_length(&self) -> Option<u64> {
        match &self.source {
            Source::Full(b) => Some(b.as_ref().map_or(0, |b| b.len() as u64)),
            Source::Upstream(_) => None,
        }
    }

    /// Takes the upstream response's header lines, when they were kept as
    /// they came: whoever writes the head writes them after the map's.
    pub(crate) fn take_lines(&mut self) -> Option<Box<Lines>> {
        match &mut self.source {
            Source::Full(_) => None,
            Source::Upstream(body) => body.take_lines(),
        }
    }

    pub(crate) fn upstream(body: UpstreamBody, guards: Guards) -> Self {
        Self {
            source: Source::Upstream(body),
            guards,
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        // Every field is Unpin, so the body can be polled through &mut.
        let this = self.get_mut();
        match &mut this.source {
            Source::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Source::Upstream(body) => Pin::new(body).poll_frame(cx),
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
