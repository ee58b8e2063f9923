//! Writing a response on an HTTP/1.1 connection: the head and small body
//! frames gathered in the connection's buffer and sent in one `write`,
//! large frames by `writev` beside it without a copy, and the framing
//! (length, chunked, or close for HTTP/1.0) chosen from what the body knows.

use std::io::IoSlice;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use tokio::io::AsyncWriteExt as _;

use super::codec::{self, Delimit};
use crate::body::ResponseBody;
use crate::date;
use crate::downstream::WriteHalf;

/// Body frames up to this size are copied behind the head (one `write`);
/// bigger ones go out by `writev` without a copy.
const COPY_MAX: usize = 8 * 1024;
/// Flush the write buffer once it holds this much.
pub(super) const FLUSH_AT: usize = 32 * 1024;

/// Writes one response. Returns whether the connection may carry another
/// request (the head says `connection: close` otherwise); `Err` means the
/// response could not be completed and the connection must close.
pub(super) async fn write_response(
    wr: &mut WriteHalf,
    out: &mut Vec<u8>,
    resp: Response<ResponseBody>,
    head_only: bool,
    http10: bool,
    keep_alive: bool,
) -> Result<bool, ()> {
    let (parts, mut body) = resp.into_parts();
    let status = parts.status;
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    // The body knows its exact length when it has one (an upstream's
    // declared length, enforced by its decoder, or our own bytes); chunked
    // for the rest, or close for HTTP/1.0. Only a HEAD response, whose body
    // is empty, needs the upstream's header.
    let delimit = if bodiless {
        Delimit::None
    } else if head_only {
        // The length a GET would have: the upstream's, or our own body's.
        crate::h1::content_length(&parts.headers)
            .ok()
            .flatten()
            .or_else(|| body.own_length())
            .map_or(Delimit::None, Delimit::Length)
    } else if let Some(n) = body.size_hint().exact() {
        Delimit::Length(n)
    } else if body.is_end_stream() {
        Delimit::Length(0)
    } else if http10 {
        Delimit::Close
    } else {
        Delimit::Chunked
    };
    let keep_alive = keep_alive && delimit != Delimit::Close;
    let connection: Option<&[u8]> = match (keep_alive, http10) {
        (false, _) => Some(b"close"),
        (true, true) => Some(b"keep-alive"),
        (true, false) => None,
    };
    out.clear();
    let lines = body.take_lines();
    codec::encode_response_head(
        status,
        &parts.headers,
        lines.as_deref(),
        delimit,
        connection,
        &date::now(),
        out,
    );
    crate::maps::give_back(parts.headers);
    if bodiless || head_only {
        drop(body);
        return flush(wr, out, None).await.map(|()| keep_alive);
    }
    let mut sent = 0u64;
    loop {
        // Take what the body has ready; only when it must wait, send what we
        // have first, so the client is never kept waiting on our buffer.
        let frame = match poll_now(&mut body) {
            Some(frame) => frame,
            None => {
                flush(wr, out, None).await?;
                body.frame().await
            }
        };
        let data = match frame {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                _ => continue, // trailers are dropped; empty frames skipped
            },
            Some(Err(e)) => {
                tracing::debug!(error = %e, "response body failed; closing");
                let _ = flush(wr, out, None).await;
                return Err(());
            }
        };
        sent += data.len() as u64;
        match delimit {
            Delimit::Length(n) if sent > n => {
                tracing::debug!("response body longer than its length; closing");
                return Err(());
            }
            Delimit::Chunked => {
                codec::encode_chunk_size(data.len(), out);
                push(wr, out, data).await?;
                out.extend_from_slice(b"\r\n");
            }
            _ => push(wr, out, data).await?,
        }
    }
    match delimit {
        Delimit::Length(n) if sent != n => {
            let _ = flush(wr, out, None).await;
            return Err(()); // short body: the client must see the cut
        }
        Delimit::Chunked => out.extend_from_slice(b"0\r\n\r\n"),
        _ => {}
    }
    flush(wr, out, None).await?;
    Ok(keep_alive)
}

/// Polls `body` once: `Some` if it had something (or its end) ready.
fn poll_now(
    body: &mut ResponseBody,
) -> Option<Option<Result<http_body::Frame<Bytes>, crate::body::BoxError>>> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::Pin::new(body).poll_frame(&mut cx) {
        std::task::Poll::Ready(frame) => Some(frame),
        std::task::Poll::Pending => None,
    }
}

/// Queues `data` behind `out`: copied if small, else written with it.
async fn push(wr: &mut WriteHalf, out: &mut Vec<u8>, data: Bytes) -> Result<(), ()> {
    if data.len() <= COPY_MAX {
        out.extend_from_slice(&data);
        if out.len() >= FLUSH_AT {
            flush(wr, out, None).await?;
        }
        return Ok(());
    }
    flush(wr, out, Some(&data)).await
}

/// Writes `out` (then `extra`) in full and clears `out`.
async fn flush(wr: &mut WriteHalf, out: &mut Vec<u8>, extra: Option<&[u8]>) -> Result<(), ()> {
    let mut slices = [IoSlice::new(out), IoSlice::new(extra.unwrap_or_default())];
    let mut bufs: &mut [IoSlice<'_>] = &mut slices;
    while bufs.iter().any(|b| !b.is_empty()) {
        match wr.write_vectored(bufs).await {
            Ok(0) | Err(_) => return Err(()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
        }
    }
    out.clear();
    // TLS may hold back encrypted bytes the socket had no room for.
    wr.flush().await.map_err(|_| ())
}

/// Writes `bytes` in full and flushes them.
pub(super) async fn write_flushed(wr: &mut WriteHalf, bytes: &[u8]) -> std::io::Result<()> {
    wr.write_all(bytes).await?;
    wr.flush().await
}
