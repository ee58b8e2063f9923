//! The HTTP/2 wire format as a pure core: frames ([`frame`]) and header
//! compression ([`hpack`]). No sockets, no clock, no async: the connection
//! driver owns those and feeds bytes in.
//!
//! The connection driver is `h2_server` in `meshgate-proxy`; it replaced
//! hyper's h2 server for the same reason `h1_server` replaced hyper's
//! HTTP/1.1 server (see docs/benchmarks.md).
#![warn(missing_docs)]

pub mod frame;
pub mod hpack;
