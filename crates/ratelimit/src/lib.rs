//! Rate limiting as a pure core: the generic cell rate algorithm
//! ([`gcra`], as Linkerd and `governor` use it) and a keyed table of fixed
//! size ([`keyed`]) so that a flood of distinct keys cannot grow memory.
//!
//! No clock and no locks: every decision takes `now` as nanoseconds from an
//! origin the caller chose, so tests replay exact schedules. The firewall's
//! per-IP connection rate uses it at accept time.
#![warn(missing_docs)]

pub mod gcra;
pub mod keyed;

pub use gcra::{Decision, Quota};
pub use keyed::KeyedLimiter;
