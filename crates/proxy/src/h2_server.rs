//! The downstream h2c server: one task per connection drives the frame
//! codec and HPACK of `meshgate-h2`, and runs every stream's pipeline
//! future inline (a `FuturesUnordered`), with no task per stream.
//!
//! Flow control both ways: a request body's credit goes back to the client
//! (WINDOW_UPDATE) only as the pipeline reads it (`recv`), so one window per
//! stream bounds what is buffered; response bodies are sent within the
//! client's windows, and a body is only polled while there is room.
//!
//! Connection errors end with GOAWAY, stream errors with RST_STREAM. With no
//! stream open for `idle_timeout` the connection says GOAWAY and closes; a
//! drain says GOAWAY, finishes the open streams and closes. Floods are
//! bounded: 256 concurrent streams, header blocks capped by the listener's
//! `max_header_bytes`, and a budget of client resets (rapid reset).

mod frames;
mod recv;
mod request;
mod send;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::downstream::Stream as Downstream;
use bytes::{Bytes, BytesMut};
use futures_util::future::{AbortHandle, Abortable};
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use http::Response;
use meshgate_config::HttpLimits;
use meshgate_core::{Error, ErrorKind};
use meshgate_h2::frame::{self, FrameError, Reason};
use meshgate_h2::hpack;
use tokio::io::AsyncWrite as _;
use tokio::time::Instant;

pub(crate) use self::recv::H2Body;
pub(crate) use self::send::fuzz_encode_response;
use crate::body::{ClientBody, ResponseBody};
use crate::deadline::Deadline;
use crate::service::ProxyService;
use crate::shutdown::Shutdown;

/// Our per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE).
const STREAM_WINDOW: u32 = 1 << 20;
/// Our connection receive window.
const CONN_WINDOW: u32 = 8 << 20;
const MAX_STREAMS: usize = 256;
/// Client resets tolerated before they must stay under half the streams
/// that completed: a reset costs us a pipeline start, and a flood of them
/// (CVE-2023-44487, "rapid reset") must end the connection.
const RESET_BUDGET: u64 = 1000;
const READ_CHUNK: usize = 16 * 1024;
/// Stop producing frames while this much waits to be written.
const WRITE_HIGH: usize = 256 * 1024;
/// Work done per poll before yielding to other tasks.
const ROUNDS: usize = 32;

type StreamFuture = Abortable<Tagged>;

/// A stream's pipeline future, boxed as it comes from `handle` (wrapping it
/// in another async block first would copy its multi-KiB state twice), and
/// the stream it answers.
struct Tagged {
    id: u32,
    fut: Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>,
}

impl Future for Tagged {
    type Output = (u32, Response<ResponseBody>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id;
        match self.fut.as_mut().poll(cx) {
            Poll::Ready(Ok(resp)) => Poll::Ready((id, resp)),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => Poll::Pending,
        }
    }
}

enum Sending {
    /// The pipeline is still working on the response.
    Waiting,
    /// Streaming the body; `pending` is what the windows did not allow yet.
    Body {
        body: ResponseBody,
        pending: Option<Bytes>,
    },
    Done,
}

struct Stream {
    /// The request body, while the client may still send DATA.
    recv: Option<Arc<recv::Shared>>,
    recv_window: i64,
    expect_len: Option<u64>,
    received: u64,
    send_window: i64,
    send: Sending,
    abort: Option<AbortHandle>,
    head: bool,
}

/// Maps keyed by stream id. Ids are small integers, so a multiplicative
/// hash replaces SipHash (several lookups per request). A client picking
/// colliding ids gains little: at most `MAX_STREAMS` entries exist.
type IdMap<V> = HashMap<u32, V, std::hash::BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        // Fold the well-mixed high half into the low bits hashbrown indexes by.
        let x = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = x ^ (x >> 32);
    }
}

/// A connection error: GOAWAY with this reason, then close.
struct Fatal(Reason, &'static str);

struct Conn {
    io: Downstream,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    decoder: hpack::Decoder,
    /// Scratch space reused per header block: decoded fields in, encoded
    /// response fields out.
    fields: Vec<(Bytes, Bytes)>,
    block: Vec<u8>,
    streams: IdMap<Stream>,
    futures: FuturesUnordered<StreamFuture>,
    signal: Arc<recv::Signal>,
    service: ProxyService,
    max_list: usize,
    last_id: u32,
    conn_send: i64,
    conn_recv: i64,
    conn_release: u32,
    stream_release: IdMap<u32>,
    peer_window: u32,
    peer_max_frame: u32,
    /// A header block waiting for CONTINUATION: stream, bytes, END_STREAM.
    partial: Option<(u32, BytesMut, bool)>,
    preface: bool,
    settings: bool,
    read_closed: bool,
    /// We said GOAWAY: no new streams.
    goaway: bool,
    /// The client said GOAWAY: it opens no new streams.
    peer_goaway: bool,
    /// Streams the client reset, and streams that completed.
    resets: u64,
    completed: u64,
    idle_since: Instant,
}

/// Serves h2c on `stream` until the client leaves, an error, the idle
/// timeout or the drain ends it. `prefix` holds bytes already read.
pub(crate) async fn serve(
    stream: Downstream,
    prefix: &[u8],
    service: ProxyService,
    limits: &HttpLimits,
    accepted: Instant,
    shutdown: Shutdown,
) {
    let mut conn = Conn::new(stream, prefix, service, limits, accepted);
    let mut deadline = Deadline::new(limits.idle_timeout.min(limits.header_read_timeout));
    let mut shutdown = shutdown;
    let signalled = shutdown.signalled();
    tokio::pin!(signalled);
    let mut draining = false;
    let idle = limits.idle_timeout;
    let first = limits.header_read_timeout;
    std::future::poll_fn(|cx| {
        if !draining && signalled.as_mut().poll(cx).is_ready() {
            draining = true;
            conn.send_goaway(Reason::NoError);
        }
        let done = conn.poll(cx);
        if done.is_ready() {
            return Poll::Ready(());
        }
        // The preface must arrive within the header-read timeout; after
        // that, a connection with no stream closes after the idle timeout.
        if conn.streams.is_empty() && conn.futures.is_empty() {
            let at = if conn.settings {
                conn.idle_since + idle
            } else {
                accepted + first
            };
            if deadline.poll_until(at, cx).is_ready() {
                conn.send_goaway(Reason::NoError);
                let _ = conn.poll_flush(cx);
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await;
    conn.close().await;
}

impl Conn {
    fn new(
        io: Downstream,
        prefix: &[u8],
        service: ProxyService,
        limits: &HttpLimits,
        accepted: Instant,
    ) -> Self {
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        rbuf.extend_from_slice(prefix);
        let mut wbuf = Vec::with_capacity(1024);
        let max_list = u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX);
        frame::settings(
            &[
                (0x3, MAX_STREAMS as u32),
                (0x4, STREAM_WINDOW),
                (0x6, max_list),
            ],
            &mut wbuf,
        );
        frame::window_update(0, CONN_WINDOW - 65_535, &mut wbuf);
        Self {
            io,
            rbuf,
            wbuf,
            decoder: hpack::Decoder::new(4096),
            fields: Vec::with_capacity(16),
            block: Vec::with_capacity(256),
            streams: IdMap::default(),
            futures: FuturesUnordered::new(),
            signal: Arc::new(recv::Signal::default()),
            service,
            max_list: limits.max_header_bytes,
            last_id: 0,
            conn_send: 65_535,
            conn_recv: i64::from(CONN_WINDOW),
            conn_release: 0,
            stream_release: IdMap::default(),
            peer_window: 65_535,
            peer_max_frame: frame::DEFAULT_MAX_FRAME,
            partial: None,
            preface: false,
            settings: false,
            read_closed: false,
            goaway: false,
            peer_goaway: false,
            resets: 0,
            completed: 0,
            idle_since: accepted,
        }
    }

    /// Does all the work there is; `Ready` when the connection is over.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.signal.register(cx.waker());
        for _ in 0..ROUNDS {
            let mut progress = false;
            if !self.read_closed && self.wbuf.len() < WRITE_HIGH {
                match self.poll_read(cx) {
                    Poll::Ready(Ok(0)) => {
                        self.read_closed = true;
                        progress = true;
                    }
                    Poll::Ready(Ok(_)) => progress = true,
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => {}
                }
            }
            match self.read_frames() {
                Ok(p) => progress |= p,
                Err(Fatal(reason, why)) => {
                    tracing::debug!(reason = ?reason, why, "h2 connection error");
                    self.send_goaway(reason);
                    let _ = self.poll_flush(cx);
                    return Poll::Ready(());
                }
            }
            while let Poll::Ready(Some(done)) = self.futures.poll_next_unpin(cx) {
                progress = true;
                if let Ok((id, resp)) = done {
                    if resp
                        .extensions()
                        .get::<crate::respond::CloseAfter>()
                        .is_some()
                    {
                        self.send_goaway(Reason::NoError);
                    }
                    self.start_response(id, resp);
                }
            }
            self.grant_credit();
            progress |= self.pump_bodies(cx);
            // Flushed means written out, TLS included (rustls may still
            // hold bytes when `wbuf` is empty).
            let flushed = match self.poll_flush(cx) {
                Poll::Ready(Err(())) => return Poll::Ready(()),
                Poll::Ready(Ok(())) => true,
                Poll::Pending => false,
            };
            let quiet = self.streams.is_empty() && self.futures.is_empty();
            if quiet && flushed && (self.read_closed || self.goaway || self.peer_goaway) {
                return Poll::Ready(());
            }
            if !progress {
                return Poll::Pending;
            }
        }
        // Plenty done: let other connections run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        self.io.poll_read_buf(cx, &mut self.rbuf, READ_CHUNK)
    }

    /// Writes what is queued; `Ready(Ok)` when all of it went out.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        while !self.wbuf.is_empty() {
            match std::task::ready!(self.io.poll_write_some(cx, &self.wbuf)) {
                Ok(0) | Err(_) => return Poll::Ready(Err(())),
                Ok(n) => {
                    self.wbuf.drain(..n);
                }
            }
        }
        // TLS may hold back encrypted bytes; plain TCP is ready at once.
        std::pin::Pin::new(&mut self.io)
            .poll_flush(cx)
            .map_err(|_| ())
    }

    fn send_goaway(&mut self, reason: Reason) {
        if !self.goaway {
            self.goaway = true;
            frame::goaway(self.last_id, reason, &mut self.wbuf);
        }
    }

    fn reset(&mut self, id: u32, reason: Reason) {
        frame::rst_stream(id, reason, &mut self.wbuf);
        if let Some(s) = self.streams.remove(&id) {
            if let Some(a) = s.abort {
                a.abort();
            }
            if let Some(r) = s.recv {
                r.finish(Some("stream reset"));
            }
        }
        if self.streams.is_empty() {
            self.idle_since = Instant::now();
        }
    }

    /// Removes a stream whose both directions are over.
    fn maybe_close(&mut self, id: u32) {
        let Some(s) = self.streams.get(&id) else {
            return;
        };
        if !matches!(s.send, Sending::Done) {
            return;
        }
        match &s.recv {
            None => {
                self.streams.remove(&id);
                self.completed += 1;
            }
            // The response is complete and nobody reads the rest of the
            // upload: stop it (RFC 9113 §8.1).
            Some(r) if r.dropped() => self.reset(id, Reason::NoError),
            Some(_) => return,
        }
        if self.streams.is_empty() {
            self.idle_since = Instant::now();
        }
    }
}

/// A pipeline future for one stream, and the handle that cancels it.
fn stream_future(
    id: u32,
    service: ProxyService,
    parts: http::request::Parts,
    body: ClientBody,
) -> (StreamFuture, AbortHandle) {
    abortable(Tagged {
        id,
        // Streams run side by side: each times itself, and owns its clone
        // of the service.
        fut: crate::service::boxed(|| ProxyService::handle(service, parts, body, None)),
    })
}

/// A ready response for a stream refused before the pipeline (431).
fn local_error(id: u32, kind: ErrorKind, why: &'static str) -> (StreamFuture, AbortHandle) {
    let request_id = http::HeaderValue::from_static("-");
    let resp = crate::respond::error(
        &Error::downstream(kind, why),
        &request_id,
        crate::body::Guards::default(),
    );
    abortable(Tagged {
        id,
        fut: Box::pin(std::future::ready(Ok(resp))),
    })
}

fn abortable(fut: Tagged) -> (StreamFuture, AbortHandle) {
    let (handle, registration) = AbortHandle::new_pair();
    (Abortable::new(fut, registration), handle)
}

/// Whether `e` ends the connection or only a stream.
fn split(e: FrameError) -> Result<(u32, Reason), Fatal> {
    match e {
        FrameError::Connection(reason, why) => Err(Fatal(reason, why)),
        FrameError::Stream(id, reason, _) => Ok((id, reason)),
    }
}
