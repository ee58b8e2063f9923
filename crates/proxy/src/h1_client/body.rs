//! The upstream response body: reads the socket directly, undoes the
//! framing, and hands the connection back to its pool after a clean end.
//!
//! Data frames are split off the read buffer (`BytesMut::split_to`), so body
//! bytes are never copied on their way to the client.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncReadExt as _;

use super::codec::Framing;
use super::{Conn, READ_CHUNK, Reader, WriteSide};
use crate::pool::EndpointPool;

/// Longest chunk-size line (with extensions) or trailer line we accept.
const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `remaining` body bytes to go.
    Length(u64),
    /// Expecting a chunk-size line.
    ChunkSize,
    /// Inside a chunk with this many bytes left.
    ChunkData(u64),
    /// Expecting the CRLF that ends a chunk.
    ChunkEnd,
    /// Reading trailer lines until the empty line.
    Trailers,
    /// Until the upstream closes.
    UntilClose,
    Done,
}

/// An HTTP/1.1 response body read straight off the upstream socket.
pub(crate) struct H1Body {
    /// The connection's read side and its buffer; `None` once it must not
    /// be reused (framing lost) or has been handed back.
    conn: Option<(Reader, BytesMut)>,
    state: State,
    keep_alive: bool,
    pool: Option<Arc<EndpointPool>>,
}

/// A broken upstream body.
#[derive(Debug)]
pub(crate) struct BodyError(&'static str);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BodyError {}

// === impl H1Body ===

impl H1Body {
    pub(super) fn new(
        reader: Reader,
        buf: BytesMut,
        framing: Framing,
        keep_alive: bool,
        pool: Arc<EndpointPool>,
    ) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        let mut body = Self {
            conn: Some((reader, buf)),
            state,
            keep_alive,
            pool: Some(pool),
        };
        if state == State::Done {
            body.finish();
        }
        body
    }

    /// The exchange is complete: pool the connection if it can carry more.
    fn finish(&mut self) {
        self.state = State::Done;
        let (Some((reader, buf)), Some(pool)) = (self.conn.take(), self.pool.take()) else {
            return;
        };
        // Bytes past the end of the body mean the upstream broke framing.
        if !self.keep_alive || !buf.is_empty() {
            return;
        }
        match reader {
            Reader::Whole(io) => pool.checkin_h1(Conn { io, buf }),
            // The request body may still be on its way: the connection is
            // reusable only once the writer is done, and done cleanly.
            Reader::Split {
                rd,
                write: WriteSide::Done(wr),
            } => match rd.reunite(wr) {
                Ok(io) => pool.checkin_h1(Conn { io, buf }),
                Err(e) => tracing::debug!(error = %e, "halves of different sockets"),
            },
            Reader::Split {
                rd,
                write: WriteSide::Pending(writer),
            } => {
                tokio::spawn(async move {
                    if let Ok((wr, Ok(()))) = writer.await {
                        match rd.reunite(wr) {
                            Ok(io) => pool.checkin_h1(Conn { io, buf }),
                            Err(e) => tracing::debug!(error = %e, "halves of different sockets"),
                        }
                    }
                });
            }
        }
    }

    /// Reads more bytes into the buffer. `Ok(0)` is end of stream.
    fn poll_fill(
        reader: &mut Reader,
        buf: &mut BytesMut,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        buf.reserve(READ_CHUNK);
        // A fresh read future per poll is cheap (two references), and tokio's
        // read clears readiness on a short read, keeping idle checks cheap.
        match reader {
            Reader::Whole(io) => std::pin::pin!(io.read_buf(buf)).poll(cx),
            Reader::Split { rd, .. } => std::pin::pin!(rd.read_buf(buf)).poll(cx),
        }
    }

    /// Takes one CRLF-terminated line off the buffer, without the CRLF.
    fn take_line(buf: &mut BytesMut) -> Result<Option<Bytes>, BodyError> {
        match buf.windows(2).position(|w| w == b"\r\n") {
            Some(at) => {
                let line = buf.split_to(at).freeze();
                buf.advance(2);
                Ok(Some(line))
            }
            None if buf.len() > MAX_LINE => Err(BodyError("chunk line too long")),
            None => Ok(None),
        }
    }
}

impl Body for H1Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            if this.state == State::Done {
                return Poll::Ready(None);
            }
            let Some((reader, buf)) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            // Decode what is buffered before reading more.
            let step: Result<Option<Bytes>, BodyError> = match this.state {
                State::Length(n) | State::ChunkData(n) if !buf.is_empty() => {
                    let take = usize::try_from(n).unwrap_or(usize::MAX).min(buf.len());
                    let data = buf.split_to(take).freeze();
                    let left = n - take as u64;
                    this.state = match (this.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), l) => State::Length(l),
                        (_, 0) => State::ChunkEnd,
                        (_, l) => State::ChunkData(l),
                    };
                    Ok(Some(data))
                }
                State::UntilClose if !buf.is_empty() => Ok(Some(buf.split().freeze())),
                State::ChunkSize => match Self::take_line(buf) {
                    Ok(Some(line)) => {
                        let hex = line.split(|&b| b == b';').next().unwrap_or_default();
                        let hex = std::str::from_utf8(hex).map(str::trim).unwrap_or("");
                        match u64::from_str_radix(hex, 16) {
                            Ok(0) => this.state = State::Trailers,
                            Ok(n) => this.state = State::ChunkData(n),
                            Err(_) => {
                                return Poll::Ready(Some(Err(BodyError("invalid chunk size"))));
                            }
                        }
                        continue;
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                },
                State::ChunkEnd if buf.len() >= 2 => {
                    if &buf[..2] != b"\r\n" {
                        return Poll::Ready(Some(Err(BodyError("missing CRLF after chunk"))));
                    }
                    buf.advance(2);
                    this.state = State::ChunkSize;
                    continue;
                }
                // Trailers are dropped: an HTTP/1.1 upstream has no gRPC
                // semantics to carry, and none of our clients need them.
                State::Trailers => match Self::take_line(buf) {
                    Ok(Some(line)) if line.is_empty() => {
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                },
                _ => Ok(None),
            };
            match step {
                Ok(Some(data)) => {
                    if this.state == State::Done {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Err(e) => {
                    this.conn = None; // framing is lost: never reuse
                    return Poll::Ready(Some(Err(e)));
                }
                Ok(None) => {}
            }
            match ready!(Self::poll_fill(reader, buf, cx)) {
                Ok(0) if this.state == State::UntilClose => {
                    this.conn = None;
                    this.state = State::Done;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(BodyError("upstream closed mid-body"))));
                }
                Ok(_) => {}
                Err(_) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(BodyError("upstream read failed mid-body"))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}
