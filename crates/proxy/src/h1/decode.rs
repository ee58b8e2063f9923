//! The HTTP/1.1 body decoder (requests and responses): undoes length, chunked or
//! close-delimited framing (RFC 9112 §6–7) over a byte buffer.
//!
//! Pure and incremental: feed it whatever bytes have arrived, take out data
//! as it becomes available. The socket sides live in `h1_client/body.rs` and `h1_server/body.rs`; keeping the
//! parser apart lets the fuzz target drive it with arbitrary splits.

use bytes::{Buf, Bytes, BytesMut};

use super::Framing;

/// Longest chunk-size line (with extensions) or trailer line we accept.
const MAX_LINE: usize = 4096;

/// A broken body (framing errors, or the peer closing mid-body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyError(pub(crate) &'static str);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BodyError {}

/// What one decoding step produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Body bytes, split off the buffer without copying.
    Data(Bytes),
    /// Nothing more can be decoded until more bytes arrive.
    NeedMore,
    /// The body is complete; bytes left in the buffer are not part of it.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

/// Decodes one response body.
#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
}

// === impl Decoder ===

impl Decoder {
    pub(crate) fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        Self { state }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Exact bytes left, when the framing says.
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Done => Some(0),
            State::Length(n) => Some(n),
            _ => None,
        }
    }

    /// Decodes as far as the buffered bytes allow.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Step, BodyError> {
        loop {
            match self.state {
                State::Done => return Ok(Step::Done),
                State::Length(n) | State::ChunkData(n) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let take = usize::try_from(n).unwrap_or(usize::MAX).min(buf.len());
                    let data = buf.split_to(take).freeze();
                    let left = n - take as u64;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), l) => State::Length(l),
                        (_, 0) => State::ChunkEnd,
                        (_, l) => State::ChunkData(l),
                    };
                    return Ok(Step::Data(data));
                }
                State::UntilClose if buf.is_empty() => return Ok(Step::NeedMore),
                State::UntilClose => return Ok(Step::Data(buf.split().freeze())),
                State::ChunkSize => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Step::NeedMore);
                    };
                    self.state = match chunk_size(&line)? {
                        0 => State::Trailers,
                        n => State::ChunkData(n),
                    };
                }
                State::ChunkEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(BodyError("missing CRLF after chunk"));
                    }
                    buf.advance(2);
                    self.state = State::ChunkSize;
                }
                // Trailers are dropped: an HTTP/1.1 peer has no gRPC
                // semantics to carry, and none of our clients need them.
                State::Trailers => match take_line(buf)? {
                    None => return Ok(Step::NeedMore),
                    Some(line) if line.is_empty() => self.state = State::Done,
                    Some(_) => {}
                },
            }
        }
    }

    /// The peer closed the connection: fine only for a close-delimited
    /// body (which it ends), an error anywhere else.
    pub(crate) fn eof(&mut self) -> Result<(), BodyError> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(BodyError("connection closed mid-body")),
        }
    }
}

/// Takes one CRLF-terminated line off the buffer, without the CRLF.
fn take_line(buf: &mut BytesMut) -> Result<Option<Bytes>, BodyError> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(at) if at > MAX_LINE => Err(BodyError("chunk line too long")),
        Some(at) => {
            let line = buf.split_to(at).freeze();
            buf.advance(2);
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(BodyError("chunk line too long")),
        None => Ok(None),
    }
}

/// Parses `1*HEXDIG [ ";" extensions ]` strictly: no sign, no blank size,
/// at most 16 digits. Leniency here is how request smuggling starts.
fn chunk_size(line: &[u8]) -> Result<u64, BodyError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = digits.strip_suffix(b" ").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 16 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(BodyError("invalid chunk size"));
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        let v = (d as char)
            .to_digit(16)
            .ok_or(BodyError("invalid chunk size"))?;
        Ok((acc << 4) | u64::from(v))
    })
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
