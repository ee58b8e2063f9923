//! The client's HTTP/1.1 request body, read straight off the socket.
//!
//! The connection lends its read side (socket half, buffer, decoder) to the
//! body for the length of one request. The body gives it back through a
//! oneshot channel as soon as the body ends, or when it is dropped early
//! (a direct response that never read it): the connection then decides
//! whether the rest can be discarded or the connection must close. A body
//! whose framing broke never gives it back, so that connection closes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncReadExt as _;
use tokio::sync::oneshot;

use super::READ_CHUNK;
use crate::h1::Framing;
use crate::h1::decode::{BodyError, Decoder, Step};

/// A connection's read side: the socket half, bytes read but not yet used,
/// and where the current request body stands.
pub(crate) struct ReadSide {
    pub(crate) rd: crate::downstream::ReadHalf,
    pub(crate) buf: BytesMut,
    pub(crate) decoder: Decoder,
}

/// An HTTP/1.1 request body; see the module docs.
pub(crate) struct ServerBody {
    side: Option<ReadSide>,
    back: Option<oneshot::Sender<ReadSide>>,
}

// === impl ReadSide ===

impl ReadSide {
    /// Reads more bytes. `Ok(0)` is end of stream.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        self.buf.reserve(READ_CHUNK);
        // A fresh read future per poll is cheap (two references).
        std::pin::pin!(self.rd.read_buf(&mut self.buf)).poll(cx)
    }
}

// === impl ServerBody ===

impl ServerBody {
    /// Lends `side` to a body framed by `framing`; it comes back on `back`.
    pub(crate) fn new(
        mut side: ReadSide,
        framing: Framing,
        back: oneshot::Sender<ReadSide>,
    ) -> Self {
        side.decoder = Decoder::new(framing);
        Self {
            side: Some(side),
            back: Some(back),
        }
    }

    fn give_back(&mut self) {
        if let (Some(side), Some(back)) = (self.side.take(), self.back.take()) {
            // The connection may have gone already; then so has the socket.
            let _ = back.send(side);
        }
    }

    fn fail(&mut self, e: BodyError) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.side = None; // framing lost: the connection must close
        self.back = None;
        Poll::Ready(Some(Err(e)))
    }
}

impl Body for ServerBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            let Some(side) = this.side.as_mut() else {
                return Poll::Ready(None);
            };
            match side.decoder.decode(&mut side.buf) {
                Ok(Step::Data(data)) => {
                    if side.decoder.is_done() {
                        this.give_back();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Step::Done) => {
                    this.give_back();
                    return Poll::Ready(None);
                }
                Ok(Step::NeedMore) => {}
                Err(e) => return this.fail(e),
            }
            match ready!(side.poll_fill(cx)) {
                Ok(0) => return this.fail(BodyError("client closed mid-body")),
                Ok(_) => {}
                Err(_) => return this.fail(BodyError("client read failed mid-body")),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.side.as_ref().is_none_or(|s| s.decoder.is_done())
    }

    fn size_hint(&self) -> SizeHint {
        self.side
            .as_ref()
            .and_then(|s| s.decoder.remaining())
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

impl Drop for ServerBody {
    fn drop(&mut self) {
        // Dropped before its end (nobody read it): the connection decides
        // whether the rest can be skipped.
        self.give_back();
    }
}
