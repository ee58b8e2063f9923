//! The DNS interface served on 127.0.0.1:0 and queried by `dig`
//! (bind9-dnsutils) and raw sockets; DNS endpoint sources resolving against
//! that same server.

mod dig;
mod source;
mod support;
