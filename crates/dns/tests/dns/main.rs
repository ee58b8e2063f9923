//! The DNS interface served on 127.0.0.1:0 and queried by `dig`
//! (bind9-dnsutils) and raw sockets; DNS endpoint sources resolving against
//! that same server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

mod dig;
mod source;
mod support;
