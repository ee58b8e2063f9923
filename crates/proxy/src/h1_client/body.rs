//! The upstream response body: reads the socket directly, undoes the
//! framing with the pure [`Decoder`], and hands the connection back to its
//! pool after a clean end.
//!
//! Data frames are split off the read buffer (`BytesMut::split_to`), so body
//! bytes are never copied on their way to the client.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncReadExt as _;

use super::{Conn, READ_CHUNK, Reader, WriteSide};
use crate::h1::Framing;
pub(crate) use crate::h1::decode::BodyError;
use crate::h1::decode::{Decoder, Step};
use crate::h1::lines::Lines;
use crate::pool::{ConnSlot, EndpointPool};

/// How long a finished exchange waits for its request body to finish
/// uploading before the connection is given up.
const UPLOAD_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// An HTTP/1.1 response body read straight off the upstream socket.
pub(crate) struct H1Body {
    /// The connection's read side and its buffer; `None` once it must not
    /// be reused (framing lost) or has been handed back.
    conn: Option<(Reader, BytesMut)>,
    /// The connection's unit of `max_connections`, returned with it.
    slot: Option<ConnSlot>,
    decoder: Decoder,
    /// Where the connection goes back at a clean end; `None` when it cannot
    /// carry another exchange (no keep-alive). No separate flag: a
    /// response's size decides whether moving it costs a `memcpy` call.
    pool: Option<Arc<EndpointPool>>,
    /// The response's header lines, when they were kept as they came
    /// (`crate::h1::lines`): the downstream server takes them.
    lines: Option<Box<Lines>>,
}

// === impl H1Body ===

impl H1Body {
    pub(super) fn new(
        reader: Reader,
        buf: BytesMut,
        slot: ConnSlot,
        framing: Framing,
        keep_alive: bool,
        pool: Arc<EndpointPool>,
        lines: Option<Box<Lines>>,
    ) -> Self {
        let decoder = Decoder::new(framing);
        let done = decoder.is_done();
        let mut body = Self {
            conn: Some((reader, buf)),
            slot: Some(slot),
            decoder,
            pool: keep_alive.then_some(pool),
            lines,
        };
        if done {
            body.finish();
        }
        body
    }

    /// An empty body with no connection behind it (a `101`, whose
    /// connection left HTTP).
    pub(super) fn finished() -> Self {
        Self {
            conn: None,
            slot: None,
            decoder: Decoder::new(Framing::Empty),
            pool: None,
            lines: None,
        }
    }

    /// The response's header lines, if they were kept as they came.
    pub(crate) fn lines(&self) -> Option<&Lines> {
        self.lines.as_deref()
    }

    /// Takes the response's header lines, if they were kept as they came.
    pub(crate) fn take_lines(&mut self) -> Option<Box<Lines>> {
        self.lines.take()
    }

    /// The exchange is complete: pool the connection if it can carry more.
    fn finish(&mut self) {
        let (Some((reader, buf)), Some(pool), Some(slot)) =
            (self.conn.take(), self.pool.take(), self.slot.take())
        else {
            return;
        };
        // Bytes past the end of the body mean the upstream broke framing.
        if !buf.is_empty() {
            return;
        }
        match reader {
            Reader::Whole(io) => pool.checkin_h1(Conn { io, buf, slot }),
            // The request body may still be on its way: the connection is
            // reusable only once the writer is done, and done cleanly.
            Reader::Split {
                rd,
                write: WriteSide::Done(wr),
            } => match rd.reunite(wr) {
                Some(io) => pool.checkin_h1(Conn { io, buf, slot }),
                None => tracing::debug!("halves of different sockets"),
            },
            Reader::Split {
                rd,
                write: WriteSide::Pending(mut writer),
            } => {
                // The upload may still be on its way; the connection waits
                // for it only so long (a client that stops sending must not
                // hold a connection and its unit of max_connections).
                tokio::spawn(async move {
                    let done = tokio::time::timeout(UPLOAD_GRACE, &mut writer.0).await;
                    if let Ok(Ok((wr, Ok(())))) = done {
                        match rd.reunite(wr) {
                            Some(io) => pool.checkin_h1(Conn { io, buf, slot }),
                            None => tracing::debug!("halves of different sockets"),
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
            let Some((reader, buf)) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            // Decode what is buffered before reading more.
            match this.decoder.decode(buf) {
                Ok(Step::Data(data)) => {
                    if this.decoder.is_done() {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Step::Done) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Step::NeedMore) => {}
                Err(e) => {
                    this.conn = None; // framing is lost: never reuse
                    return Poll::Ready(Some(Err(e)));
                }
            }
            match ready!(Self::poll_fill(reader, buf, cx)) {
                Ok(0) => {
                    // A close-delimited body ends here; anything else broke.
                    this.conn = None;
                    return Poll::Ready(this.decoder.eof().err().map(Err));
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
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        self.decoder
            .remaining()
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}
