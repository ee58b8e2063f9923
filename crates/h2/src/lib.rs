//! The HTTP/2 wire format as a pure core: frames ([`frame`]) and header
//! compression ([`hpack`]). No sockets, no clock, no async: the connection
//! driver owns those and feeds bytes in.
//!
//! This is the first part of meshgate's own h2c server, which is to replace
//! hyper's for the same reason `h1_server` replaced hyper's HTTP/1.1 server
//! (see docs/benchmarks.md); the driver is not written yet.
#![warn(missing_docs)]

pub mod frame;
pub mod hpack;
