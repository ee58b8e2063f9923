//! The HAProxy PROXY protocol, versions 1 and 2
//! (<https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>): a header
//! a load balancer writes at the very start of a TCP connection to say which
//! client and which address the connection was really for, since the proxied
//! connection's own peer address is the load balancer's.
//!
//! [`detect`] tells from the first bytes whether a header is there at all;
//! [`parse`] reads one and says how many bytes it took, so the caller can
//! hand the rest of the buffer to the application protocol; [`encode_v1`] and
//! [`encode_v2`] write one for an upstream that expects it.
//!
//! The header is trusted only as far as the peer that sent it: a listener
//! MUST accept it only from addresses it knows to be its load balancers, or
//! any client could claim any source address. That check is the caller's.
//!
//! The parsers are strict where the spec is ("must be rejected") and where
//! leniency would let two readers of the same bytes disagree (a port with a
//! leading `+`, a v1 line ended by a bare LF). They are lenient only where the
//! spec says to ignore: anything after `UNKNOWN` in v1, the address block of a
//! `LOCAL` or `AF_UNSPEC` v2 header, and the contents of v2 TLVs.

use std::net::SocketAddr;

mod v1;
mod v2;

pub use v1::encode_v1;
pub use v2::encode_v2;

/// The longest v1 header, CRLF included (spec §2.1: the worst case, a TCP6
/// line with two full addresses and two five-digit ports, is 104 bytes, and
/// 107 is what a receiver must be able to read). A v1 sender that has not
/// sent its CRLF within this many bytes is refused.
pub const MAX_V1_LEN: usize = 107;

/// The longest v2 header this parser accepts, the fixed 16 bytes included.
///
/// The wire allows 16 + 65,535 bytes, nearly all of it TLVs. The addresses
/// need at most 216 bytes (`AF_UNIX`); the TLVs real load balancers send
/// (ALPN, authority, a VPC endpoint id, a unique id, TLS version and cipher,
/// a client certificate's CN) add up to a few hundred. 4 KiB of TLVs leaves
/// ample room for them while capping what an unauthenticated peer can make a
/// listener buffer before it has decided anything.
pub const MAX_V2_LEN: usize = V2_FIXED_LEN + 4096;

/// The v2 header's fixed part: signature, version/command, family, length.
const V2_FIXED_LEN: usize = 16;

/// The 12 bytes every v2 header starts with (spec §2.2). They contain a NUL
/// and end in "QUIT\n", so no text protocol can start with them by accident.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// What every v1 header starts with.
const V1_PREFIX: &[u8; 6] = b"PROXY ";

/// What the first bytes of a connection say about a PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detect {
    /// The bytes so far are a strict prefix of a v1 or v2 start: read more
    /// before deciding. An empty buffer is `NeedMore`.
    NeedMore,
    /// No PROXY header: the bytes belong to the application protocol.
    Absent,
    /// A v1 header starts here (`"PROXY "`).
    V1,
    /// A v2 header starts here ([`V2_SIGNATURE`]).
    V2,
}

/// A successful [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// The header has started but is not all there: read more and call
    /// [`parse`] again with the longer buffer (nothing is kept in between).
    Incomplete,
    /// A whole header.
    Complete {
        /// What the header says.
        header: Header,
        /// How many bytes of the buffer the header took; the application
        /// protocol starts right after them.
        consumed: usize,
    },
}

/// A parsed PROXY header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// 1 or 2: which version of the protocol the header was written in.
    pub version: u8,
    /// Whether the header speaks for a client ([`Command::Proxy`]) or the
    /// load balancer itself ([`Command::Local`], v2 only, e.g. health checks).
    pub command: Command,
    /// The original endpoints, when the header carries internet addresses.
    /// `None` means "use the connection's own addresses": v1 `UNKNOWN`, v2
    /// `LOCAL`, and v2 `AF_UNSPEC` or `AF_UNIX`, whose addresses have no
    /// `SocketAddr` form.
    pub addresses: Option<Addresses>,
}

/// v2's command nibble. v1 headers are always [`Command::Proxy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// The connection was made by the proxy itself (a health check, say);
    /// the receiver uses the real connection endpoints.
    Local,
    /// The connection is relayed on behalf of another node.
    Proxy,
}

/// The original connection's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    /// The client: where the original connection came from.
    pub source: SocketAddr,
    /// Where the client connected to (the load balancer's listener).
    pub destination: SocketAddr,
    /// TCP or UDP. v1 only describes TCP, so its headers are always
    /// [`Transport::Stream`].
    pub transport: Transport,
}

/// The original connection's transport, v2's low family nibble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `SOCK_STREAM`: TCP.
    Stream,
    /// `SOCK_DGRAM`: UDP.
    Datagram,
}

/// Why a header was refused. Any error means the connection cannot be
/// trusted to say who its client is; the caller closes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes start with neither `"PROXY "` nor the v2 signature.
    #[error("no PROXY protocol header: the connection starts with other bytes")]
    Absent,
    /// No CRLF within [`MAX_V1_LEN`] bytes.
    #[error("PROXY v1 header longer than 107 bytes")]
    V1TooLong,
    /// The line ended in a bare LF.
    #[error("PROXY v1 header ends in LF without CR")]
    V1BareLf,
    /// The line does not have the v1 shape; the message says which part.
    #[error("PROXY v1: {0}")]
    V1Syntax(&'static str),
    /// The protocol field is not `TCP4`, `TCP6` or `UNKNOWN`.
    #[error("PROXY v1: unknown protocol (expected TCP4, TCP6 or UNKNOWN)")]
    V1Protocol,
    /// An address that is not an address of the line's family.
    #[error("PROXY v1: {field} address is not a valid {family} address")]
    V1Address {
        /// `"source"` or `"destination"`.
        field: &'static str,
        /// `"TCP4"` or `"TCP6"`.
        family: &'static str,
    },
    /// A port that is not plain decimal in 0..=65535.
    #[error("PROXY v1: {0} port is not a decimal number in 0..=65535")]
    V1Port(&'static str),
    /// The version nibble is not 2.
    #[error("PROXY v2: unsupported version {0}")]
    V2Version(u8),
    /// The command nibble is neither LOCAL (0) nor PROXY (1).
    #[error("PROXY v2: unknown command {0:#x}")]
    V2Command(u8),
    /// The declared length would make the header longer than [`MAX_V2_LEN`].
    #[error("PROXY v2: header of {0} bytes is longer than the 4112-byte limit")]
    V2TooLong(usize),
    /// A family/transport byte outside the spec's table; the spec says such
    /// headers "must be rejected as invalid by receivers".
    #[error("PROXY v2: unknown address family and transport {0:#04x}")]
    V2Family(u8),
    /// The declared length is too short for the family's address block.
    #[error("PROXY v2: {family} needs {needed} address bytes, the header has {got}")]
    V2ShortAddresses {
        /// `"AF_INET"`, `"AF_INET6"` or `"AF_UNIX"`.
        family: &'static str,
        /// What the family's address block takes.
        needed: usize,
        /// What the header's length left for it.
        got: usize,
    },
    /// The TLVs after the addresses do not tile the rest of the header.
    #[error("PROXY v2: a TLV runs past the end of the header")]
    V2Tlv,
}

/// Says whether `buf`, the first bytes of a connection, starts a PROXY
/// header, and which version.
///
/// Cheap (at most 12 byte comparisons), so a listener that accepts the
/// header optionally can call it on every read until it answers.
pub fn detect(buf: &[u8]) -> Detect {
    for (start, found) in [
        (&V1_PREFIX[..], Detect::V1),
        (&V2_SIGNATURE[..], Detect::V2),
    ] {
        if buf.starts_with(start) {
            return found;
        }
        // The two starts share no first byte, so at most one can match.
        if start.starts_with(buf) {
            return Detect::NeedMore;
        }
    }
    Detect::Absent
}

/// Parses the v1 or v2 header at the start of `buf`.
///
/// `Ok(Parsed::Incomplete)` asks for more bytes; the caller's read timeout
/// bounds how long that may go on, and the size caps ([`MAX_V1_LEN`],
/// [`MAX_V2_LEN`]) bound how many bytes it may take. A buffer that starts
/// with something else is [`Error::Absent`].
pub fn parse(buf: &[u8]) -> Result<Parsed, Error> {
    match detect(buf) {
        Detect::NeedMore => Ok(Parsed::Incomplete),
        Detect::Absent => Err(Error::Absent),
        Detect::V1 => v1::parse(buf),
        Detect::V2 => v2::parse(buf),
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
