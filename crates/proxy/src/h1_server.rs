//! The downstream HTTP/1.1 server: one loop per connection that reads a
//! request head, runs the pipeline inline and writes the response.
//!
//! It replaces hyper's server for HTTP/1.1 for the same reason `h1_client`
//! replaced its client: hyper's dispatcher (parse, encode, a boxed service
//! future, its buffers) was the largest user-space cost per proxied request.
//! Here the pipeline's future lives inside the connection's own task, the
//! response head and a small first body frame leave in one `write`, and no
//! timer is armed per request (`Deadline` is re-armed only when it fires).
//!
//! Timeouts: `idle_timeout` between requests (quiet close), and
//! `header_read_timeout` from the first byte of a head (from accept, for the
//! first request) to its end, answered with `408`. Malformed heads get `400`,
//! heads over the limits `431`, always followed by a close. h2c is served by
//! `h2_server`.

mod body;
mod codec;
mod write;

use std::pin::Pin;
use std::time::Duration;

use http::{Method, Response, StatusCode, Version};
use meshgate_config::HttpLimits;
use meshgate_core::{Error, ErrorKind};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::oneshot;
use tokio::time::Instant;

use self::body::ReadSide;
pub(crate) use self::body::ServerBody;
pub(crate) use self::codec::fuzz_encode_response;
use self::codec::{Delimit, HeadLimits, RequestHead};
use self::write::{FLUSH_AT, write_flushed, write_response};
use crate::body::{ClientBody, ResponseBody};
use crate::date;
use crate::deadline::Deadline;
use crate::downstream::{Stream, WriteHalf};
use crate::h1::Framing;
use crate::h1::decode::Decoder;
use crate::service::ProxyService;
use crate::shutdown::Shutdown;
use crate::tunnel::{Pending, Upgraded};

/// How much to read at a time.
const READ_CHUNK: usize = 8 * 1024;
/// Unread request body we are willing to read and drop to keep a
/// connection (an upstream or direct response that did not want it).
const DISCARD_MAX: u64 = 256 * 1024;
/// How long a closing connection keeps reading so the client sees our last
/// response instead of a reset caused by its unread bytes.
const LINGER: Duration = Duration::from_secs(1);

/// Why the head loop stopped.
enum HeadEnd {
    /// Close without a word: EOF, idle timeout, drain, socket error.
    Close,
    /// Answer with this error, then close.
    Reply(Error),
}

/// Serves HTTP/1.1 on `stream` until the client leaves, a timeout fires or
/// the drain ends it. `prefix` holds bytes already read (protocol detection).
pub(crate) async fn serve(
    stream: Stream,
    prefix: &[u8],
    service: ProxyService,
    limits: &HttpLimits,
    accepted: Instant,
    shutdown: Shutdown,
) {
    let (rd, mut wr) = stream.into_split();
    let mut buf = crate::buffers::take_read(READ_CHUNK);
    buf.extend_from_slice(prefix);
    let mut side = Some(ReadSide {
        rd,
        buf,
        decoder: Decoder::new(Framing::Empty),
    });
    let head_limits = HeadLimits {
        max_bytes: limits.max_header_bytes,
        max_headers: limits.max_headers,
    };
    // Taken from the thread's free list when a response is written.
    let mut out: Vec<u8> = Vec::new();
    let mut deadline = Deadline::new(limits.header_read_timeout.min(limits.idle_timeout));
    let draining = shutdown.clone();
    let mut shutdown = shutdown;
    let signalled = shutdown.signalled();
    tokio::pin!(signalled);
    // The first request's clock runs from accept: a client that connects
    // and says nothing is a slow request (408), not an idle one.
    let mut waiting = Waiting::Head(accepted);
    loop {
        let Some(mut s) = side.take() else { return };
        let head = read_head(
            &mut s,
            &mut out,
            head_limits,
            limits,
            waiting,
            &mut deadline,
            signalled.as_mut(),
        )
        .await;
        let head = match head {
            Ok(head) => head,
            Err(HeadEnd::Close) => return,
            Err(HeadEnd::Reply(err)) => {
                tracing::debug!(error = %err, "refusing a request head");
                let reply = crate::respond::raw_error(err.kind());
                if write_flushed(&mut wr, &reply).await.is_ok() {
                    linger(&mut wr, s).await;
                }
                return;
            }
        };
        let RequestHead {
            parts,
            framing,
            keep_alive,
            expect_continue,
        } = head;
        let head_only = parts.method == Method::HEAD;
        let http10 = parts.version == Version::HTTP_10;
        let (body, mut lent) = if framing == Framing::Empty {
            side = Some(s);
            (ClientBody::Empty, None)
        } else {
            let within = match (framing, limits.max_body_bytes) {
                (Framing::Length(n), Some(max)) => n <= max,
                _ => true,
            };
            if expect_continue && within && write_flushed(&mut wr, CONTINUE).await.is_err() {
                return;
            }
            let (tx, rx) = oneshot::channel();
            (ClientBody::H1(ServerBody::new(s, framing, tx)), Some(rx))
        };

        // Boxed: the pipeline's future lives only while a request does, so
        // an idle keep-alive connection's task does not carry its ~2.5 KiB.
        // The connection's timer serves the route timeout too: nothing
        // else waits on it while the pipeline runs.
        let resp = match crate::service::boxed(|| {
            ProxyService::handle(&service, parts, body, Some(&mut deadline))
        })
        .await
        {
            Ok(resp) => resp,
            Err(never) => match never {},
        };

        // The upstream switched protocols: the connection leaves HTTP.
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS
            && let Some(up) = resp.extensions().get::<Pending>().and_then(Pending::take)
        {
            // Upgrades carry no request body, so the read side is here.
            if let Some(s) = side.take() {
                // Boxed: the tunnel's state is not every connection's.
                Box::pin(switch(
                    wr,
                    s,
                    resp,
                    up,
                    &mut out,
                    limits.tunnel_idle_timeout,
                ))
                .await;
            }
            return;
        }

        // A body nobody read (or only partly) is back already: keep the
        // connection only if what is left is small enough to skip.
        if let Some(Ok(back)) = lent.as_mut().map(oneshot::Receiver::try_recv) {
            side = Some(back);
            lent = None;
        }
        let reusable = side
            .as_ref()
            .is_none_or(|s| s.decoder.remaining().is_none_or(|r| r <= DISCARD_MAX));
        let keep_alive = keep_alive
            && reusable
            && !draining.is_signalled()
            && resp
                .extensions()
                .get::<crate::respond::CloseAfter>()
                .is_none();
        if out.capacity() == 0 {
            out = crate::buffers::take_out(1024); // given up while waiting
        }
        let Ok(keep_alive) =
            write_response(&mut wr, &mut out, resp, head_only, http10, keep_alive).await
        else {
            return;
        };
        if out.capacity() > 4 * FLUSH_AT {
            out = Vec::with_capacity(1024);
        }

        // Get the read side back and past the end of the request body.
        if let Some(rx) = lent {
            match tokio::time::timeout(limits.header_read_timeout, rx).await {
                Ok(Ok(back)) => side = Some(back),
                _ => return, // still streaming, or its framing broke
            }
        }
        let Some(s) = side.as_mut() else { return };
        if !keep_alive {
            if let Some(s) = side.take() {
                linger(&mut wr, s).await;
            }
            return;
        }
        if !s.decoder.is_done() && !skip_body(s, limits.header_read_timeout).await {
            return;
        }
        waiting = Waiting::Idle(Instant::now());
    }
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Writes the upstream's `101` and joins the client to the upgraded
/// upstream connection until the tunnel ends.
async fn switch(
    mut wr: WriteHalf,
    side: ReadSide,
    resp: Response<ResponseBody>,
    upstream: Upgraded,
    out: &mut Vec<u8>,
    idle: Duration,
) {
    // The empty body holds the request's guards: a tunnel stays an active
    // request (`max_requests`, least_request's count) until it ends, as a
    // WebSocket stream does in Envoy.
    let (parts, guards) = resp.into_parts();
    out.clear();
    codec::encode_response_head(
        parts.status,
        &parts.headers,
        None,
        Delimit::None,
        Some(b"upgrade"),
        &date::now(),
        out,
    );
    crate::maps::give_back(parts.headers);
    if write_flushed(&mut wr, out).await.is_err() {
        return;
    }
    let ReadSide { rd, buf, .. } = side;
    match rd.reunite(wr) {
        Some(client) => crate::tunnel::tunnel(client, &buf, upstream, idle).await,
        None => tracing::debug!("halves of different sockets"),
    }
    drop(guards);
}

/// What the connection is waiting for, and since when.
#[derive(Debug, Clone, Copy)]
enum Waiting {
    /// The next request's first byte (idle keep-alive).
    Idle(Instant),
    /// The rest of a head whose first bytes arrived (or the first request).
    Head(Instant),
}

/// Reads until a whole request head is buffered and parses it. While
/// nothing is buffered it waits for the socket holding no buffer at all:
/// the read buffer and the response buffer `out` go back to the thread's
/// free list (`buffers`), so a keep-alive connection between requests pins
/// no buffer memory.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
async fn read_head(
    side: &mut ReadSide,
    out: &mut Vec<u8>,
    head_limits: HeadLimits,
    limits: &HttpLimits,
    mut waiting: Waiting,
    deadline: &mut Deadline,
    mut signalled: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Result<RequestHead, HeadEnd> {
    loop {
        if !side.buf.is_empty() {
            match codec::parse_request(&mut side.buf, head_limits) {
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => return Err(HeadEnd::Reply(e)),
            }
            // A head has begun and the header read timeout runs. The clock
            // is read only here, for a head that did not arrive whole.
            if let Waiting::Idle(_) = waiting {
                waiting = Waiting::Head(Instant::now());
            }
        }
        let until = match waiting {
            Waiting::Idle(since) => since + limits.idle_timeout,
            Waiting::Head(since) => since + limits.header_read_timeout,
        };
        let idle = matches!(waiting, Waiting::Idle(_));
        let empty = side.buf.is_empty();
        if empty {
            crate::buffers::give_back_read(std::mem::take(&mut side.buf));
            crate::buffers::give_back_out(std::mem::take(out));
        }
        let read = tokio::select! {
            biased; // the socket is the busy branch
            read = read_some(side, empty) => read,
            () = deadline.until(until) => {
                return Err(if idle {
                    HeadEnd::Close
                } else {
                    HeadEnd::Reply(Error::downstream(
                        ErrorKind::RequestHeaderTimeout,
                        "request head not received in time",
                    ))
                });
            }
            // Draining: an idle connection has nothing in flight; close it.
            // A half-received head is let through to be answered.
            () = signalled.as_mut(), if side.buf.is_empty() => return Err(HeadEnd::Close),
        };
        match read {
            Ok(0) | Err(_) => return Err(HeadEnd::Close),
            Ok(_) => {}
        }
    }
}

/// Reads what the socket has into `side.buf`. With an `empty` buffer it
/// holds a buffer only while the socket is polled: the buffer comes from
/// the thread's free list for the poll and goes back to it when the socket
/// has nothing, so the connection waits for readability holding none.
///
/// Polling the read half (rather than trying a read, then awaiting
/// `readable()`) keeps the wait on the socket's own reader waker: tokio's
/// `readable()` future queues a waiter node under the socket's lock and
/// unlinks it again, about 1k instructions per request.
async fn read_some(side: &mut ReadSide, empty: bool) -> std::io::Result<usize> {
    if empty {
        return std::future::poll_fn(|cx| {
            if side.buf.capacity() == 0 {
                side.buf = crate::buffers::take_read(READ_CHUNK);
            }
            // A read that must wait leaves the buffer untouched (plain TCP
            // and rustls alike), so it can go back to the free list.
            let read = tokio_util::io::poll_read_buf(Pin::new(&mut side.rd), cx, &mut side.buf);
            if read.is_pending() {
                crate::buffers::give_back_read(std::mem::take(&mut side.buf));
            }
            read
        })
        .await;
    }
    side.buf.reserve(READ_CHUNK);
    side.rd.read_buf(&mut side.buf).await
}

/// Reads and drops the rest of a request body nobody wanted, within
/// [`DISCARD_MAX`] and `timeout`. Returns whether the connection is usable.
async fn skip_body(side: &mut ReadSide, timeout: Duration) -> bool {
    let skip = async {
        let mut skipped = 0u64;
        loop {
            match side.decoder.decode(&mut side.buf) {
                Ok(crate::h1::decode::Step::Data(d)) => {
                    skipped += d.len() as u64;
                    if skipped > DISCARD_MAX {
                        return false;
                    }
                }
                Ok(crate::h1::decode::Step::Done) => return true,
                Ok(crate::h1::decode::Step::NeedMore) => {
                    side.buf.reserve(READ_CHUNK);
                    if !matches!(side.rd.read_buf(&mut side.buf).await, Ok(n) if n > 0) {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
    };
    tokio::time::timeout(timeout, skip).await.unwrap_or(false)
}

/// Closes our side, then reads and drops what the client still sends for a
/// moment: closing with unread bytes makes the kernel send a reset, which
/// can destroy the response we just wrote before the client reads it.
async fn linger(wr: &mut WriteHalf, mut side: ReadSide) {
    if wr.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut left = DISCARD_MAX;
        // On the heap: an array here would size every connection's task.
        let mut scratch = vec![0u8; 4096];
        while let Ok(n @ 1..) = side.rd.read(&mut scratch).await {
            left = left.saturating_sub(n as u64);
            if left == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// See `crate::fuzzing::parse_request_head`.
pub(crate) fn fuzz_parse(bytes: &[u8]) {
    let split = bytes
        .first()
        .map_or(0, |b| usize::from(*b))
        .min(bytes.len());
    for limits in [
        HeadLimits {
            max_bytes: 256,
            max_headers: 4,
        },
        HeadLimits {
            max_bytes: 64 * 1024,
            max_headers: 200, // beyond the stack slots: the heap path
        },
    ] {
        let mut buf = bytes::BytesMut::from(&bytes[..split]);
        let mut parsed = codec::parse_request(&mut buf, limits);
        if let Ok(None) = parsed {
            buf.extend_from_slice(&bytes[split..]);
            parsed = codec::parse_request(&mut buf, limits);
        }
        if let Ok(Some(head)) = parsed {
            let used = bytes.len() - buf.len();
            assert!(
                used > 0 && used <= limits.max_bytes,
                "head size {used} vs limits"
            );
            assert!(head.parts.headers.len() <= limits.max_headers);
        }
    }
}
