//! Resilience policy as pure cores: when to stop sending to an endpoint
//! ([`outlier`]), whether a retry may happen at all ([`budget`]) and how
//! long to wait before it ([`backoff`]).
//!
//! No tokio, no clock, no sockets: every decision takes `now` and, where
//! chance is involved, an [`meshgate_core::Rng`], so the tests replay
//! exact scenarios. The proxy's drivers feed these cores with outcomes and
//! act on their answers (issue 3; not wired into the proxy yet).
#![warn(missing_docs)]

pub mod backoff;
pub mod budget;
pub mod outlier;
