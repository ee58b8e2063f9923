//! HTTP/2 frames (RFC 9113 §4 and §6): decoding with every size and stream
//! rule the RFC puts on the frame itself, and encoding of what a server
//! sends.
//!
//! Pure: bytes in, frames or errors out. Stream states, flow-control
//! windows and SETTINGS semantics belong to the connection; this module
//! only refuses frames that are malformed whatever the state.

use bytes::{Buf, Bytes, BytesMut};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Every frame starts with this many bytes.
pub const HEADER_LEN: usize = 9;
/// The smallest SETTINGS_MAX_FRAME_SIZE, and the default.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
/// The largest flow-control window.
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// Error codes (RFC 9113 §7).
#[allow(
    missing_docs,
    reason = "each variant is the RFC's code of the same name"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Reason {
    NoError = 0x0,
    ProtocolError = 0x1,
    InternalError = 0x2,
    FlowControlError = 0x3,
    StreamClosed = 0x5,
    FrameSizeError = 0x6,
    RefusedStream = 0x7,
    Cancel = 0x8,
    CompressionError = 0x9,
    EnhanceYourCalm = 0xb,
}

/// A frame that breaks the protocol, and how much of the connection it
/// takes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Fatal: GOAWAY with this reason.
    Connection(Reason, &'static str),
    /// Only this stream: RST_STREAM with this reason.
    Stream(u32, Reason, &'static str),
}

/// A decoded frame (RFC 9113 §6; variants and fields follow its names).
/// Payload bytes are slices of the read buffer; padding and priority
/// fields are already stripped.
#[allow(
    missing_docs,
    reason = "variants and fields are the RFC's, named alike"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data {
        stream: u32,
        data: Bytes,
        end_stream: bool,
        /// Bytes that count against flow control (padding included).
        flow_len: u32,
    },
    Headers {
        stream: u32,
        block: Bytes,
        end_stream: bool,
        end_headers: bool,
    },
    Priority {
        stream: u32,
    },
    RstStream {
        stream: u32,
        code: u32,
    },
    Settings {
        ack: bool,
        /// `(identifier, value)` pairs, in order.
        params: Vec<(u16, u32)>,
    },
    PushPromise {
        stream: u32,
    },
    Ping {
        ack: bool,
        data: [u8; 8],
    },
    GoAway {
        last_stream: u32,
        code: u32,
    },
    WindowUpdate {
        stream: u32,
        increment: u32,
    },
    Continuation {
        stream: u32,
        block: Bytes,
        end_headers: bool,
    },
    /// A frame type this endpoint ignores (RFC 9113 §4.1: must ignore).
    Unknown,
}

/// Takes one frame off the front of `buf`, if a whole one is there.
/// `max_frame` is our SETTINGS_MAX_FRAME_SIZE.
pub fn decode(buf: &mut BytesMut, max_frame: u32) -> Result<Option<Frame>, FrameError> {
    let Some(head) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]);
    let kind = head[3];
    let flags = head[4];
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & MAX_WINDOW;
    if len > max_frame {
        return Err(conn(
            Reason::FrameSizeError,
            "frame larger than max frame size",
        ));
    }
    let total = HEADER_LEN + len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    let payload = buf.split_to(len as usize).freeze();
    parse(kind, flags, stream, payload).map(Some)
}

fn parse(kind: u8, flags: u8, stream: u32, mut p: Bytes) -> Result<Frame, FrameError> {
    let on_stream = |what: &'static str| {
        if stream == 0 {
            Err(conn(Reason::ProtocolError, what))
        } else {
            Ok(())
        }
    };
    let on_connection = |what: &'static str| {
        if stream != 0 {
            Err(conn(Reason::ProtocolError, what))
        } else {
            Ok(())
        }
    };
    match kind {
        0x0 => {
            on_stream("DATA on stream 0")?;
            let flow_len = p.len() as u32;
            let data = unpad(flags, &mut p)?;
            Ok(Frame::Data {
                stream,
                data,
                end_stream: flags & END_STREAM != 0,
                flow_len,
            })
        }
        0x1 => {
            on_stream("HEADERS on stream 0")?;
            let mut block = unpad(flags, &mut p)?;
            if flags & PRIORITY != 0 {
                if block.len() < 5 {
                    return Err(conn(Reason::FrameSizeError, "HEADERS priority truncated"));
                }
                let dep = u32::from_be_bytes([block[0], block[1], block[2], block[3]]) & MAX_WINDOW;
                if dep == stream {
                    return Err(FrameError::Stream(
                        stream,
                        Reason::ProtocolError,
                        "depends on itself",
                    ));
                }
                block.advance(5);
            }
            Ok(Frame::Headers {
                stream,
                block,
                end_stream: flags & END_STREAM != 0,
                end_headers: flags & END_HEADERS != 0,
            })
        }
        0x2 => {
            on_stream("PRIORITY on stream 0")?;
            if p.len() != 5 {
                return Err(FrameError::Stream(
                    stream,
                    Reason::FrameSizeError,
                    "PRIORITY size",
                ));
            }
            let dep = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & MAX_WINDOW;
            if dep == stream {
                return Err(FrameError::Stream(
                    stream,
                    Reason::ProtocolError,
                    "depends on itself",
                ));
            }
            Ok(Frame::Priority { stream })
        }
        0x3 => {
            on_stream("RST_STREAM on stream 0")?;
            let code = four(&p, "RST_STREAM size")?;
            Ok(Frame::RstStream { stream, code })
        }
        0x4 => {
            on_connection("SETTINGS on a stream")?;
            let ack = flags & ACK != 0;
            if ack && !p.is_empty() {
                return Err(conn(Reason::FrameSizeError, "SETTINGS ack with a payload"));
            }
            if p.len() % 6 != 0 {
                return Err(conn(Reason::FrameSizeError, "SETTINGS size"));
            }
            let params = p
                .chunks_exact(6)
                .map(|c| {
                    (
                        u16::from_be_bytes([c[0], c[1]]),
                        u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                    )
                })
                .collect();
            Ok(Frame::Settings { ack, params })
        }
        // A client must not push; the connection decides (PROTOCOL_ERROR).
        0x5 => Ok(Frame::PushPromise { stream }),
        0x6 => {
            on_connection("PING on a stream")?;
            let data = <[u8; 8]>::try_from(&p[..])
                .map_err(|_| conn(Reason::FrameSizeError, "PING size"))?;
            Ok(Frame::Ping {
                ack: flags & ACK != 0,
                data,
            })
        }
        0x7 => {
            on_connection("GOAWAY on a stream")?;
            if p.len() < 8 {
                return Err(conn(Reason::FrameSizeError, "GOAWAY size"));
            }
            Ok(Frame::GoAway {
                last_stream: u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & MAX_WINDOW,
                code: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            })
        }
        0x8 => {
            let increment = four(&p, "WINDOW_UPDATE size")? & MAX_WINDOW;
            if increment == 0 {
                return Err(if stream == 0 {
                    conn(Reason::ProtocolError, "zero window increment")
                } else {
                    FrameError::Stream(stream, Reason::ProtocolError, "zero window increment")
                });
            }
            Ok(Frame::WindowUpdate { stream, increment })
        }
        0x9 => {
            on_stream("CONTINUATION on stream 0")?;
            Ok(Frame::Continuation {
                stream,
                block: p,
                end_headers: flags & END_HEADERS != 0,
            })
        }
        _ => Ok(Frame::Unknown),
    }
}

/// Strips padding (RFC 9113 §6.1): the pad length must leave room.
fn unpad(flags: u8, p: &mut Bytes) -> Result<Bytes, FrameError> {
    if flags & PADDED == 0 {
        return Ok(std::mem::take(p));
    }
    let Some(&pad) = p.first() else {
        return Err(conn(
            Reason::FrameSizeError,
            "padded frame without pad length",
        ));
    };
    let pad = usize::from(pad);
    if pad + 1 > p.len() {
        return Err(conn(Reason::ProtocolError, "padding exceeds the payload"));
    }
    let end = p.len() - pad;
    Ok(p.slice(1..end))
}

fn four(p: &[u8], what: &'static str) -> Result<u32, FrameError> {
    let b: [u8; 4] = p
        .try_into()
        .map_err(|_| conn(Reason::FrameSizeError, what))?;
    Ok(u32::from_be_bytes(b))
}

fn conn(reason: Reason, what: &'static str) -> FrameError {
    FrameError::Connection(reason, what)
}

// === encoding ===

fn put_header(len: usize, kind: u8, flags: u8, stream: u32, out: &mut Vec<u8>) {
    let len = (len as u32).to_be_bytes();
    out.extend_from_slice(&len[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & MAX_WINDOW).to_be_bytes());
}

/// A SETTINGS frame with these parameters.
pub fn settings(params: &[(u16, u32)], out: &mut Vec<u8>) {
    put_header(params.len() * 6, 0x4, 0, 0, out);
    for (id, value) in params {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// Acknowledges the peer's SETTINGS.
pub fn settings_ack(out: &mut Vec<u8>) {
    put_header(0, 0x4, ACK, 0, out);
}

/// Answers a PING.
pub fn ping_ack(data: [u8; 8], out: &mut Vec<u8>) {
    put_header(8, 0x6, ACK, 0, out);
    out.extend_from_slice(&data);
}

/// Grants `increment` more bytes on `stream` (0: the connection).
pub fn window_update(stream: u32, increment: u32, out: &mut Vec<u8>) {
    put_header(4, 0x8, 0, stream, out);
    out.extend_from_slice(&(increment & MAX_WINDOW).to_be_bytes());
}

/// Ends a stream abnormally.
pub fn rst_stream(stream: u32, reason: Reason, out: &mut Vec<u8>) {
    put_header(4, 0x3, 0, stream, out);
    out.extend_from_slice(&(reason as u32).to_be_bytes());
}

/// Tells the peer no stream above `last_stream` will be processed.
pub fn goaway(last_stream: u32, reason: Reason, out: &mut Vec<u8>) {
    put_header(8, 0x7, 0, 0, out);
    out.extend_from_slice(&(last_stream & MAX_WINDOW).to_be_bytes());
    out.extend_from_slice(&(reason as u32).to_be_bytes());
}

/// A header block as HEADERS plus as many CONTINUATION frames as
/// `max_frame` (the peer's SETTINGS_MAX_FRAME_SIZE) requires.
pub fn headers(stream: u32, block: &[u8], end_stream: bool, max_frame: u32, out: &mut Vec<u8>) {
    let max = (max_frame as usize).max(1);
    let mut chunks = block.chunks(max).peekable();
    let first = chunks.next().unwrap_or_default();
    let mut flags = if end_stream { END_STREAM } else { 0 };
    if chunks.peek().is_none() {
        flags |= END_HEADERS;
    }
    put_header(first.len(), 0x1, flags, stream, out);
    out.extend_from_slice(first);
    while let Some(chunk) = chunks.next() {
        let flags = if chunks.peek().is_none() {
            END_HEADERS
        } else {
            0
        };
        put_header(chunk.len(), 0x9, flags, stream, out);
        out.extend_from_slice(chunk);
    }
}

/// The 9-byte head of a DATA frame carrying `len` bytes (the caller writes
/// the payload, possibly without copying it).
pub fn data_head(stream: u32, len: usize, end_stream: bool, out: &mut Vec<u8>) {
    put_header(
        len,
        0x0,
        if end_stream { END_STREAM } else { 0 },
        stream,
        out,
    );
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
