//! The firewall as a pure core: ordered rules compiled into masks for the
//! accept path ([`rules`]), and the dynamic block list with its state-file
//! format ([`blocklist`]).
//!
//! No sockets and no clock. The proxy's accept loops build a [`Flow`] per
//! connection and ask, in this order: the block list, the per-IP connection
//! rate (`meshgate-ratelimit`), then the rules. The tests compare the
//! compiled rules against a plain reference evaluator over thousands of
//! random rules and flows.
#![warn(missing_docs)]

pub mod blocklist;
pub mod rules;

pub use blocklist::BlockList;
pub use rules::{Flow, Matched, RuleSet};
