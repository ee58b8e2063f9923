//! Resilience policy as pure cores: when to stop sending to an endpoint
//! ([`outlier`]), which endpoints are balanced over ([`hosts`]), whether a
//! failed attempt is retried ([`retry`]), whether the cluster can afford it
//! ([`budget`]) and how long to wait before it ([`backoff`]), and how much
//! a cluster may carry at once ([`breaker`]); and active health checking's
//! state machine ([`health`]).
//!
//! No tokio, no clock, no sockets: every decision takes `now` and, where
//! chance is involved, an [`meshgate_core::Rng`], so the tests replay
//! exact scenarios. The proxy's drivers feed these cores with outcomes and
//! act on their answers.
#![warn(missing_docs)]

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod health;
pub mod hosts;
pub mod outlier;
pub mod retry;
