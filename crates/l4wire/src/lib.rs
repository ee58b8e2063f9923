//! Pure parsers of the first bytes a layer-4 connection carries, before any
//! application protocol starts:
//!
//! - [`proxy_protocol`]: the HAProxy PROXY protocol, v1 (text) and v2
//!   (binary), which a load balancer in front of meshgate uses to say who the
//!   real client is; and its encoders, for when meshgate is the one in front.
//! - [`client_hello`]: a peek at a TLS ClientHello (SNI and ALPN) without
//!   terminating TLS, so a TCP listener can route by server name and forward
//!   the untouched bytes.
//!
//! Both read untrusted bytes from the network. They take a byte slice and
//! answer "need more", "here it is" or an error; they never panic, never
//! allocate more than their documented caps, and keep no state between calls,
//! so the caller may simply call again with a longer buffer.
//!
//! This crate MUST never depend on tokio, sockets or a clock: the connection
//! driver in `meshgate-proxy` owns reads and timeouts (a client that never
//! finishes its header is the driver's timeout, not a parser state). Its only
//! dependency is `thiserror`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client_hello;
pub mod proxy_protocol;
mod reader;
