//! The HTTP/1.1 upstream client, driven inside the request's own task.
//!
//! hyper's client runs each connection as a separate task and talks to it
//! through channels: three task polls and several channel operations per
//! request, about 40% of meshgate's user-space instructions per request.
//! Here the request future writes the head, streams the body and parses the
//! response head itself; [`H1Body`] then reads the body off the socket and
//! returns the connection to the pool (see `docs/architecture.md`).
//!
//! A request carrying `Upgrade` (the pipeline forwards only upgrades it can
//! carry, with no body) takes a `101` as its final response: the connection
//! then leaves HTTP in a [`crate::tunnel::Pending`] extension, never to
//! return to the pool.
//!
//! What it does not do (by design, for now): pipelining, and reading the
//! response while a request body is still being written. An upstream that answers before reading the whole
//! body gets the rest anyway; one that stops reading is bounded by the route
//! timeout.

mod body;
pub(crate) mod codec;
use crate::h1::decode;

use std::sync::Arc;

use bytes::BytesMut;
use http::{Method, Request, Response};
use http_body_util::BodyExt as _;
use meshgate_core::{Error, ErrorKind};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

pub(crate) use body::H1Body;
pub(crate) use codec::parse_head;

use crate::body::RequestBody;
use crate::headers::Added;
use crate::pool::{ConnSlot, EndpointPool};
use crate::stream::Stream;
use crate::upstream_tls::{UpstreamRead, UpstreamStream, UpstreamWrite};

/// How much to read at a time.
const READ_CHUNK: usize = 16 * 1024;

/// An open upstream connection (plain or TLS) and the bytes read but not
/// yet used.
pub(crate) struct Conn {
    pub(crate) io: UpstreamStream,
    pub(crate) buf: BytesMut,
    /// The connection's unit of the cluster's `max_connections`.
    pub(crate) slot: ConnSlot,
}

/// The read side of a connection carrying a response.
pub(crate) enum Reader {
    /// No request body: the whole connection.
    Whole(UpstreamStream),
    /// A request body was sent on the write half, by a separate task.
    Split { rd: UpstreamRead, write: WriteSide },
}

/// The write half while (or after) the request body is written.
pub(crate) enum WriteSide {
    /// The writer task; it hands the write half back with its outcome.
    Pending(Writer),
    /// The whole body went out.
    Done(UpstreamWrite),
}

/// The request-body writer task. Dropped unfinished (the response ended
/// first and the connection is not reused, or the exchange was abandoned),
/// it is aborted, so the upload's socket closes with it instead of lingering
/// past its connection's unit of `max_connections`.
pub(crate) struct Writer(pub(crate) tokio::task::JoinHandle<(UpstreamWrite, Result<(), Error>)>);

impl Drop for Writer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a send failed.
pub(crate) enum SendError {
    /// The connection was dead before the exchange started; the request is
    /// still in its slot, untouched, to be sent on a fresh connection.
    Retry,
    /// The exchange failed.
    Failed(Error),
}

// === impl Conn ===

impl Conn {
    pub(crate) fn new(io: UpstreamStream, slot: ConnSlot) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            slot,
        }
    }

    /// Whether a pooled connection still looks usable, without a syscall:
    /// tokio records readability from epoll, and an idle connection only
    /// becomes readable when the upstream closed it (or broke protocol).
    pub(crate) fn looks_alive(&mut self) -> bool {
        use std::task::Poll;
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match &mut self.io {
            Stream::Tcp(io) => match io.poll_read_ready(&mut cx) {
                Poll::Pending => true,
                // Readable: confirm without blocking; only "would block" is alive.
                Poll::Ready(Ok(())) => {
                    let mut probe = [0u8; 1];
                    matches!(io.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                }
                Poll::Ready(Err(_)) => false,
            },
            Stream::Tls(io) => {
                match io.get_ref().0.poll_read_ready(&mut cx) {
                    Poll::Pending => return true,
                    Poll::Ready(Err(_)) => return false,
                    Poll::Ready(Ok(())) => {}
                }
                // Something arrived: a close_notify or a FIN, or a message
                // that leaves the connection usable (a session ticket, a key
                // update). rustls reads it without waiting: only "nothing for
                // the application yet" is alive; an end, an error or
                // unasked-for data is not.
                let mut probe = [0u8; 1];
                let mut probe = tokio::io::ReadBuf::new(&mut probe);
                let polled = tokio::io::AsyncRead::poll_read(
                    std::pin::Pin::new(&mut **io),
                    &mut cx,
                    &mut probe,
                );
                matches!(polled, Poll::Pending)
            }
        }
    }
}

/// Sends the request in `req` on `conn` and returns the response, whose
/// body owns the connection. `reused` says whether `conn` came from the
/// pool, which allows one safe retry when it turns out dead.
///
/// The request is lent, not moved: it stays where the attempt loop keeps it
/// (each move of it copied ~330 bytes). It is taken out once it has gone
/// out; what is left in `req` on return was never sent, or was sent to a
/// pooled connection that turned out dead and may be replayed as it is.
///
/// A request body is written by a separate task on the socket's write half
/// while this task reads the response: an upstream may answer before it has
/// read the whole upload (and may or may not want the rest), and the upload
/// must keep flowing either way.
pub(crate) async fn send(
    mut conn: Conn,
    req: &mut Option<Request<RequestBody>>,
    added: &Added,
    reused: bool,
    pool: &Arc<EndpointPool>,
) -> Result<Response<H1Body>, SendError> {
    let Some(lent) = req.as_ref() else {
        return Err(SendError::Failed(Error::internal("no request to send")));
    };
    let method = lent.method().clone();
    let body_empty = http_body::Body::is_end_stream(lent.body());
    let declared: Option<u64> = lent
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse().ok());
    let chunked = !body_empty && declared.is_none();
    // From the thread's free list of write buffers (shared with the
    // downstream server's responses): no allocation per request.
    let mut head = crate::buffers::take_out(512);
    let upgrade = codec::encode_head(lent, added, chunked, &mut head);
    let mut written = conn.io.write_all(&head).await;
    if written.is_ok() && conn.io.is_tls() {
        // rustls may hold encrypted bytes back while the socket is full.
        written = conn.io.flush().await;
    }
    crate::buffers::give_back_out(head);
    if let Err(e) = written {
        if reused {
            return Err(SendError::Retry);
        }
        drop(spent(req));
        return Err(SendError::Failed(
            reset("writing the request head").with_cause(e),
        ));
    }
    if body_empty {
        let Conn {
            mut io,
            mut buf,
            slot,
        } = conn;
        return match read_head(&mut io, &mut buf, &method, upgrade).await {
            Ok(head) if head.status == http::StatusCode::SWITCHING_PROTOCOLS => {
                drop(spent(req));
                Ok(switched(head, crate::tunnel::Upgraded { io, buf, slot }))
            }
            Ok(head) => {
                drop(spent(req));
                Ok(respond(head, Reader::Whole(io), buf, slot, pool))
            }
            // A pooled connection the upstream closed just as we used it:
            // nothing came back, and replaying an idempotent request is safe.
            Err(HeadError::Closed) if reused && idempotent(&method) => Err(SendError::Retry),
            Err(e) => {
                drop(spent(req));
                Err(SendError::Failed(e.into_error()))
            }
        };
    }
    let Some(body) = spent(req) else {
        return Err(SendError::Failed(Error::internal(
            "no request body to send",
        )));
    };
    let Conn { io, mut buf, slot } = conn;
    let (mut rd, mut wr) = io.into_split();
    // Owned by a `Writer` at once: if this exchange is cancelled (a per-try
    // timeout, a hedge that lost), the upload stops with it.
    let mut writer = Writer(tokio::spawn(async move {
        let written = write_body(&mut wr, body, declared).await;
        (wr, written)
    }));
    // Read the head while the body goes out. If the upload fails first (its
    // size cap, the client going away, the upstream closing), stop waiting:
    // the upstream may be waiting for the rest of a body that will not come.
    let mut written = None;
    let head = loop {
        if written.is_some() {
            break read_head(&mut rd, &mut buf, &method, false).await;
        }
        tokio::select! {
            biased;
            head = read_head(&mut rd, &mut buf, &method, false) => break head,
            joined = &mut writer.0 => match joined {
                Ok((wr, Ok(()))) => written = Some(wr),
                Ok((_, Err(e))) => return Err(SendError::Failed(e)),
                Err(e) => {
                    return Err(SendError::Failed(
                        Error::internal("request body writer failed").with_cause(e),
                    ));
                }
            },
        }
    };
    let write = match written {
        Some(wr) => WriteSide::Done(wr),
        None => WriteSide::Pending(writer),
    };
    match head {
        Ok(head) => Ok(respond(head, Reader::Split { rd, write }, buf, slot, pool)),
        Err(e) => Err(SendError::Failed(e.into_error())),
    }
}

/// Takes a request that has gone out of its slot: its header map goes
/// back to the thread's free list, and its body is what is left to write.
fn spent(req: &mut Option<Request<RequestBody>>) -> Option<RequestBody> {
    let (parts, body) = req.take()?.into_parts();
    crate::maps::give_back(parts.headers);
    Some(body)
}

fn respond(
    head: codec::Head,
    reader: Reader,
    buf: BytesMut,
    slot: ConnSlot,
    pool: &Arc<EndpointPool>,
) -> Response<H1Body> {
    let body = H1Body::new(
        reader,
        buf,
        slot,
        head.framing,
        head.keep_alive,
        pool.clone(),
        head.lines,
    );
    let mut resp = Response::new(body);
    *resp.status_mut() = head.status;
    *resp.version_mut() = head.version;
    *resp.headers_mut() = head.headers;
    resp
}

/// The response to an upgrade the upstream accepted: no body, and the
/// connection in the extension that takes it to the downstream server.
fn switched(head: codec::Head, upgraded: crate::tunnel::Upgraded) -> Response<H1Body> {
    let mut resp = Response::new(H1Body::finished());
    *resp.status_mut() = head.status;
    *resp.version_mut() = head.version;
    *resp.headers_mut() = head.headers;
    resp.extensions_mut()
        .insert(crate::tunnel::Pending::new(upgraded));
    resp
}

/// Why no response head was read.
enum HeadError {
    /// The upstream closed (or reset) before sending a single byte.
    Closed,
    Other(Error),
}

impl HeadError {
    fn into_error(self) -> Error {
        match self {
            HeadError::Closed => reset("upstream closed before responding"),
            HeadError::Other(e) => e,
        }
    }
}

/// Reads until a final (non-1xx) response head is complete; `101` is final
/// when the request asked for an `upgrade`. Cancel-safe: bytes read so far
/// stay in `buf`, and parsing restarts from them.
async fn read_head<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    method: &Method,
    upgrade: bool,
) -> Result<codec::Head, HeadError> {
    let mut seen_any = !buf.is_empty();
    loop {
        match codec::parse_head(buf, method) {
            // Interim responses (100 Continue) are consumed, not forwarded.
            Ok(Some(head)) if upgrade && head.status == http::StatusCode::SWITCHING_PROTOCOLS => {
                return Ok(head);
            }
            Ok(Some(head)) if head.status.is_informational() => continue,
            Ok(Some(head)) => return Ok(head),
            Ok(None) => {}
            Err(e) => return Err(HeadError::Other(e)),
        }
        buf.reserve(READ_CHUNK);
        match reader.read_buf(buf).await {
            Ok(0) | Err(_) if !seen_any => return Err(HeadError::Closed),
            Ok(0) => return Err(HeadError::Other(reset("upstream closed mid-head"))),
            Ok(_) => seen_any = true,
            Err(e) => {
                return Err(HeadError::Other(
                    reset("reading the response").with_cause(e),
                ));
            }
        }
    }
}

/// Streams the request body upstream: exactly `declared` bytes when the
/// length is known, else re-chunked until the body ends.
///
/// With a known length the writer stops at the last byte instead of waiting
/// for end-of-stream: after an early response the client's body may not
/// report its end until more bytes (or the close) arrive, and the finished
/// upload must not hold the upstream connection.
async fn write_body(
    wr: &mut UpstreamWrite,
    mut body: RequestBody,
    declared: Option<u64>,
) -> Result<(), Error> {
    let chunked = declared.is_none();
    let mut left = declared.unwrap_or(u64::MAX);
    while left > 0 {
        let Some(frame) = body.frame().await else {
            break;
        };
        // The pipeline reports the body's own failure (413, 400) from the
        // failure slot; this error only ends the exchange.
        let frame = frame
            .map_err(|e| Error::downstream(ErrorKind::BadRequest, "request body").with_cause(e))?;
        let Ok(data) = frame.into_data() else {
            continue;
        }; // request trailers are dropped
        if data.is_empty() {
            continue;
        }
        if !chunked {
            // Our servers enforce the declared length, so more cannot
            // arrive; guard anyway rather than corrupt the upstream framing.
            left = left.checked_sub(data.len() as u64).ok_or_else(|| {
                Error::downstream(
                    ErrorKind::BadRequest,
                    "request body longer than its content-length",
                )
            })?;
        }
        let written = if chunked {
            let size = format!("{:x}\r\n", data.len());
            let mut chain =
                bytes::Buf::chain(bytes::Buf::chain(size.as_bytes(), data), &b"\r\n"[..]);
            wr.write_all_buf(&mut chain).await
        } else {
            wr.write_all(&data).await
        };
        written.map_err(|e| reset("writing the request body").with_cause(e))?;
        // TLS: out of rustls before waiting for the next piece (a no-op on
        // TCP).
        wr.flush()
            .await
            .map_err(|e| reset("writing the request body").with_cause(e))?;
    }
    if chunked {
        wr.write_all(b"0\r\n\r\n")
            .await
            .map_err(|e| reset("ending the request body").with_cause(e))?;
        wr.flush()
            .await
            .map_err(|e| reset("ending the request body").with_cause(e))?;
    }
    Ok(())
}

/// See `crate::fuzzing::decode_body`.
pub(crate) fn fuzz_decode(bytes: &[u8]) {
    let Some((&ctl, wire)) = bytes.split_first() else {
        return;
    };
    let framing = match ctl % 3 {
        0 => crate::h1::Framing::Chunked,
        1 => crate::h1::Framing::Length(u64::from(ctl) * 7),
        _ => crate::h1::Framing::UntilClose,
    };
    let step = usize::from(ctl / 3).max(1);
    let mut decoder = decode::Decoder::new(framing);
    let mut buf = BytesMut::new();
    let mut out = 0usize;
    for piece in wire.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(decode::Step::Data(d)) => out += d.len(),
                Ok(decode::Step::NeedMore) => break,
                Ok(decode::Step::Done) | Err(_) => {
                    assert!(out <= wire.len(), "decoded more than was received");
                    return;
                }
            }
        }
    }
    let _ = decoder.eof(); // either outcome is fine; it must not panic
    assert!(out <= wire.len(), "decoded more than was received");
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

fn reset(context: &'static str) -> Error {
    Error::upstream(ErrorKind::UpstreamReset, context)
}
