//! Outgoing responses: the HEADERS block, then the body as DATA frames
//! within the client's flow-control windows, then trailers or END_STREAM.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::{Response, StatusCode};
use http_body::Body as _;
use meshgate_h2::frame::{self, Reason};
use meshgate_h2::hpack::Encoder;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{Conn, Sending, WRITE_HIGH};
use crate::body::ResponseBody;
use crate::h1::lines::{Lines, Role};

/// Fields HTTP/2 forbids (RFC 9113 §8.2.2); the pipeline strips hop-by-hop
/// headers already, this is the last guard.
fn connection_specific(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// Encodes `headers`, then the upstream's `lines` if it kept them as they
/// came. Returns whether there was a `Date`.
fn encode_fields(headers: &HeaderMap, lines: Option<&Lines>, block: &mut Vec<u8>) -> bool {
    let mut has_date = false;
    for (name, value) in headers {
        if connection_specific(name) {
            continue;
        }
        has_date |= name == header::DATE;
        Encoder::field(name.as_str().as_bytes(), value.as_bytes(), block);
    }
    let Some(lines) = lines else {
        return has_date;
    };
    for (name, value, role) in lines.iter() {
        if role.is_hop_by_hop() {
            continue;
        }
        has_date |= role == Role::Date;
        // HTTP/2 names are lowercase; HTTP/1.1 lines may be in any case.
        let mut short = [0u8; 64];
        let long;
        let lower: &[u8] = match short.get_mut(..name.len()) {
            Some(buf) => {
                buf.copy_from_slice(name);
                buf.make_ascii_lowercase();
                buf
            }
            None => {
                long = name.to_ascii_lowercase();
                &long
            }
        };
        Encoder::field(lower, value, block);
    }
    has_date
}

impl Conn {
    /// The pipeline answered stream `id`: send its head.
    pub(super) fn start_response(&mut self, id: u32, resp: Response<ResponseBody>) {
        let Some(s) = self.streams.get_mut(&id) else {
            return; // reset meanwhile
        };
        s.abort = None;
        let (parts, mut body) = resp.into_parts();
        let block = &mut self.block;
        block.clear();
        Encoder::status(parts.status.as_u16(), block);
        let lines = body.take_lines();
        if !encode_fields(&parts.headers, lines.as_deref(), block) {
            Encoder::field(b"date", &crate::date::now(), block);
        }
        crate::maps::give_back(parts.headers);
        let bodiless = parts.status == StatusCode::NO_CONTENT
            || parts.status == StatusCode::NOT_MODIFIED
            || s.head;
        let end = bodiless || body.is_end_stream();
        frame::headers(id, &self.block, end, self.peer_max_frame, &mut self.wbuf);
        if end {
            s.send = Sending::Done;
            self.maybe_close(id);
        } else {
            s.send = Sending::Body {
                body,
                pending: None,
            };
        }
    }

    /// Moves response bodies into DATA frames while windows and the write
    /// buffer allow. Returns whether anything moved.
    pub(super) fn pump_bodies(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        let mut finished = Vec::new();
        let mut failed = Vec::new();
        for (&id, s) in &mut self.streams {
            let Sending::Body { body, pending } = &mut s.send else {
                continue;
            };
            loop {
                let window = self.conn_send.min(s.send_window);
                if self.wbuf.len() >= WRITE_HIGH || (window <= 0 && pending.is_some()) {
                    break;
                }
                let chunk = match pending.take() {
                    Some(chunk) => chunk,
                    // Only take more from the body when it could be sent:
                    // that is the backpressure to the upstream.
                    None if window <= 0 => break,
                    None => match Pin::new(&mut *body).poll_frame(cx) {
                        Poll::Pending => break,
                        Poll::Ready(None) => {
                            frame::data_head(id, 0, true, &mut self.wbuf);
                            finished.push(id);
                            progress = true;
                            break;
                        }
                        Poll::Ready(Some(Err(e))) => {
                            tracing::debug!(stream = id, error = %e, "response body failed");
                            failed.push(id);
                            progress = true;
                            break;
                        }
                        Poll::Ready(Some(Ok(f))) => {
                            progress = true;
                            match f.into_data() {
                                Ok(data) => data,
                                Err(f) => {
                                    if let Ok(trailers) = f.into_trailers() {
                                        let mut block = Vec::with_capacity(64);
                                        encode_fields(&trailers, None, &mut block);
                                        frame::headers(
                                            id,
                                            &block,
                                            true,
                                            self.peer_max_frame,
                                            &mut self.wbuf,
                                        );
                                        finished.push(id);
                                        break;
                                    }
                                    continue;
                                }
                            }
                        }
                    },
                };
                if chunk.is_empty() {
                    continue;
                }
                let n = chunk
                    .len()
                    .min(usize::try_from(window.max(0)).unwrap_or(usize::MAX))
                    .min(self.peer_max_frame as usize);
                if n == 0 {
                    *pending = Some(chunk);
                    break;
                }
                let mut chunk: Bytes = chunk;
                let rest = chunk.split_off(n);
                let end = rest.is_empty() && body.is_end_stream();
                frame::data_head(id, n, end, &mut self.wbuf);
                self.wbuf.extend_from_slice(&chunk);
                self.conn_send -= n as i64;
                s.send_window -= n as i64;
                progress = true;
                if !rest.is_empty() {
                    *pending = Some(rest);
                }
                if end {
                    finished.push(id);
                    break;
                }
            }
        }
        for id in finished {
            if let Some(s) = self.streams.get_mut(&id) {
                s.send = Sending::Done;
            }
            self.maybe_close(id);
        }
        for id in failed {
            self.reset(id, Reason::InternalError);
        }
        progress
    }
}

/// How long a connection that said GOAWAY waits for its last bytes to leave
/// and for the client to stop sending, and how much it reads meanwhile.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;

impl Conn {
    /// Ends the connection. After our GOAWAY, closing at once with client
    /// bytes unread would make the kernel answer with RST, which can destroy
    /// the GOAWAY before the client reads it: so the rest of the write
    /// buffer goes out, the write side is shut, and reads are drained
    /// (bounded in time and bytes) until the client closes too.
    pub(super) async fn close(mut self) {
        // Stream futures still running are abandoned with the connection.
        drop(std::mem::take(&mut self.futures));
        if !self.goaway || self.read_closed {
            return;
        }
        let Self { mut io, wbuf, .. } = self;
        let _ = tokio::time::timeout(LINGER, async {
            if io.write_all(&wbuf).await.is_err() || io.shutdown().await.is_err() {
                return;
            }
            let mut scratch = [0u8; 4096];
            let mut left = LINGER_BYTES;
            while let Ok(n @ 1..) = io.read(&mut scratch).await {
                left = left.saturating_sub(n);
                if left == 0 {
                    break;
                }
            }
        })
        .await;
    }
}

/// See `crate::fuzzing::parse_response_head`: the fields sent for an
/// upstream's lines decode again, all lowercase, none connection-specific.
pub(crate) fn fuzz_encode_response(lines: &Lines) {
    let mut block = Vec::new();
    encode_fields(&HeaderMap::new(), Some(lines), &mut block);
    let mut ok = true;
    let decoded = meshgate_h2::hpack::Decoder::new(4096).decode(&block, usize::MAX, |n, _| {
        ok &= !n.iter().any(u8::is_ascii_uppercase)
            && HeaderName::from_bytes(&n).is_ok_and(|n| !connection_specific(&n));
    });
    assert!(
        decoded.is_ok() && ok,
        "the fields we send decode, lowercase"
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bytes::BytesMut;
    use meshgate_h2::hpack::Decoder;

    use super::*;

    #[test]
    fn an_upstream_heads_lines_go_out_lowercase_without_connection_fields() {
        let mut raw = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\
               Transfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\nX-A-Really-Long-Header-Name-That-Does-Not-Fit-In-Sixty-Four-Bytes: 1\r\n\r\n"[..],
        );
        let head = crate::h1_client::codec::parse_head(&mut raw, &http::Method::GET)
            .unwrap()
            .unwrap();
        let mut ours = HeaderMap::new();
        ours.insert("x-ours", "1".parse().unwrap());
        let mut block = Vec::new();
        let has_date = encode_fields(&ours, head.lines.as_deref(), &mut block);
        assert!(!has_date);
        let mut fields = Vec::new();
        Decoder::new(4096)
            .decode(&block, 1 << 16, |n, v| fields.push((n, v)))
            .unwrap();
        let fields: Vec<(&[u8], &[u8])> = fields.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        assert_eq!(
            fields,
            [
                (&b"x-ours"[..], &b"1"[..]),
                (b"server", b"nginx"),
                (b"content-length", b"2"),
                (
                    b"x-a-really-long-header-name-that-does-not-fit-in-sixty-four-bytes",
                    b"1"
                ),
            ]
        );
    }
}
