//! The upgrade protocol's wire format, as pure functions over bytes.
//!
//! A frame is an 8-byte header and a JSON body:
//!
//! ```text
//! "MGU" | version (1 byte, = 1) | body length (u32, big-endian, <= 64 KiB) | JSON
//! ```
//!
//! The magic lets a peer that is not meshgate (or a stray `nc`) be turned
//! away at its first byte; the version is in the header, outside the JSON,
//! so a future format can change the body freely and still be refused
//! cleanly by this one. Unknown JSON fields are ignored, so a v1 message
//! can grow optional fields without a version bump.
//!
//! Everything here runs on bytes from another process, so nothing panics:
//! every malformed input is a [`DecodeError`].

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The first three bytes of every frame.
pub(crate) const MAGIC: &[u8; 3] = b"MGU";
/// The protocol version this build speaks.
pub(crate) const VERSION: u8 = 1;
/// Magic, version and length.
pub(crate) const HEADER_LEN: usize = 8;
/// Largest body accepted. A listener list is a few hundred bytes; the cap
/// bounds what a misbehaving peer can make us buffer.
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// Most listeners (and so file descriptors) one message may carry. Well
/// below Linux's `SCM_MAX_FD` (253), so one `sendmsg` always carries them.
pub(crate) const MAX_LISTENERS: usize = 64;
/// Longest listener name accepted.
pub(crate) const MAX_NAME: usize = 256;

/// One message of the hand-over. The exchange is always, in order:
/// successor `Request`, running `Listeners` (with the sockets), successor
/// `Ready`, running `Released`. Either side may send `Error` instead and
/// close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Message {
    /// Successor to running process: send me your listening sockets.
    Request {
        /// The successor's process id, for the logs.
        pid: u32,
    },
    /// Running process to successor: its listening sockets. The file
    /// descriptors travel with this frame (`SCM_RIGHTS`), one per entry,
    /// in the same order.
    Listeners {
        /// The running process's id.
        pid: u32,
        /// What each socket is.
        listeners: Vec<Offered>,
    },
    /// Successor to running process: I am serving on the sockets; stop
    /// accepting and drain.
    Ready {
        /// The successor's process id.
        pid: u32,
    },
    /// Running process to successor: it no longer accepts, has let go of
    /// the upgrade socket's path, and is draining.
    Released {
        /// The running process's id.
        pid: u32,
    },
    /// Either side: the exchange cannot go on, and why.
    Error {
        /// A human-readable reason, logged by the other side.
        message: String,
    },
}

/// A listening socket on offer, described so that the successor can match
/// it against its own config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Offered {
    /// Whether it is a gateway listener or the admin API.
    pub(crate) kind: Kind,
    /// The listener's name in the running config (`admin` for the admin API).
    pub(crate) name: String,
    /// The address the running config asked for (port 0 stays 0).
    pub(crate) configured: SocketAddr,
    /// The address the socket is bound to.
    pub(crate) bound: SocketAddr,
}

/// What a listening socket serves.
///
/// A process that does not know a kind refuses the whole message (an
/// unknown variant is malformed JSON), so a successor older than `Udp` (or,
/// with `[discovery]`, than `Gossip`) fails its takeover cleanly and the
/// running process keeps serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// A TCP `[[listeners]]` entry (`http`: HTTP/1.1 and h2c, or `tcp`).
    Http,
    /// The admin API.
    Admin,
    /// A `udp` listener's socket: bound, not listening.
    Udp,
    /// The gossip node's UDP socket (`[discovery] bind`).
    Gossip,
    /// The DNS interface's UDP socket (`[discovery] dns`).
    DnsUdp,
    /// The DNS interface's listening TCP socket, on the same port.
    DnsTcp,
}

// === impl Kind ===

impl Kind {
    /// The kind of a `[[listeners]]` entry with this protocol.
    pub(crate) fn of(protocol: meshgate_config::ListenerProtocol) -> Self {
        if protocol.is_datagram() {
            Self::Udp
        } else {
            Self::Http
        }
    }

    /// Whether the socket is a UDP one (else a listening TCP socket).
    pub(crate) fn is_datagram(self) -> bool {
        matches!(self, Self::Udp | Self::Gossip | Self::DnsUdp)
    }

    /// The name a discovery socket is offered under (listeners go by their
    /// own names).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Gossip => "gossip",
            Self::DnsUdp | Self::DnsTcp => "dns",
            Self::Admin => "admin",
            Self::Http | Self::Udp => "listener",
        }
    }

    /// Whether the socket belongs to discovery (gossip, DNS) rather than to
    /// a listener or the admin API: those are matched by kind alone, never
    /// adopted by a listener that happens to want their address.
    pub(crate) fn is_discovery(self) -> bool {
        matches!(self, Self::Gossip | Self::DnsUdp | Self::DnsTcp)
    }
}

/// Why bytes are not a valid frame. The connection they came on is of no
/// further use: the stream has lost its framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// The bytes do not start with `MGU`: not a meshgate peer.
    #[error("not an upgrade frame (starts with {0:?})")]
    BadMagic(String),
    /// Another version of the protocol.
    #[error("upgrade protocol version {0}; this meshgate speaks version {VERSION}")]
    Version(u8),
    /// A body over [`MAX_BODY`].
    #[error("frame body of {0} bytes; at most {MAX_BODY} are accepted")]
    TooLong(usize),
    /// The body is not a message.
    #[error("malformed message: {0}")]
    Json(String),
    /// A well-formed message with values out of bounds.
    #[error("invalid message: {0}")]
    Invalid(&'static str),
}

/// Why a message could not be encoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EncodeError {
    /// Serialization failed (not expected for these types).
    #[error("encoding an upgrade message: {0}")]
    Json(#[from] serde_json::Error),
    /// The body would exceed [`MAX_BODY`], which the peer would refuse.
    #[error("upgrade message of {0} bytes exceeds the {MAX_BODY}-byte limit")]
    TooLong(usize),
}

/// Encodes one frame.
pub(crate) fn encode(msg: &Message) -> Result<Vec<u8>, EncodeError> {
    let body = serde_json::to_vec(msg)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&n| n as usize <= MAX_BODY)
        .ok_or(EncodeError::TooLong(body.len()))?;
    let mut frame = Vec::with_capacity(HEADER_LEN + body.len());
    frame.extend_from_slice(MAGIC);
    frame.push(VERSION);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Decodes the frame at the start of `buf`: the message and how many bytes
/// it used, or `None` if `buf` holds only part of a frame so far.
///
/// Garbage is refused as early as it can be told apart: a wrong first byte
/// fails at once, without waiting for a whole header.
pub(crate) fn decode(buf: &[u8]) -> Result<Option<(Message, usize)>, DecodeError> {
    let seen = buf.len().min(MAGIC.len());
    if buf[..seen] != MAGIC[..seen] {
        return Err(DecodeError::BadMagic(
            String::from_utf8_lossy(&buf[..seen]).into_owned(),
        ));
    }
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    if header[3] != VERSION {
        return Err(DecodeError::Version(header[3]));
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if len > MAX_BODY {
        return Err(DecodeError::TooLong(len));
    }
    let Some(body) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    let msg: Message =
        serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    validate(&msg)?;
    Ok(Some((msg, HEADER_LEN + len)))
}

/// Bounds JSON cannot express.
fn validate(msg: &Message) -> Result<(), DecodeError> {
    if let Message::Listeners { listeners, .. } = msg {
        if listeners.len() > MAX_LISTENERS {
            return Err(DecodeError::Invalid(
                "more listeners than one message may carry",
            ));
        }
        if listeners
            .iter()
            .any(|l| l.name.is_empty() || l.name.len() > MAX_NAME)
        {
            return Err(DecodeError::Invalid("a listener name is empty or too long"));
        }
    }
    Ok(())
}

/// The fuzz target's body: decoding never panics, never claims more bytes
/// than it was given, and whatever decodes encodes back to a frame that
/// decodes to the same message.
pub(crate) fn fuzz(bytes: &[u8]) {
    let Ok(Some((msg, used))) = decode(bytes) else {
        return;
    };
    assert!(
        (HEADER_LEN..=bytes.len()).contains(&used),
        "decode used {used} of {} bytes",
        bytes.len()
    );
    // Re-encoding may legitimately grow past the limit (JSON escapes can
    // lengthen a string); only a frame that encodes must round-trip.
    let Ok(frame) = encode(&msg) else {
        return;
    };
    assert_eq!(decode(&frame), Ok(Some((msg, frame.len()))), "round trip");
}

#[cfg(test)]
mod tests;
