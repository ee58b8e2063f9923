//! Rate limiting as a pure core: the generic cell rate algorithm
//! ([`gcra`], as Linkerd and `governor` use it), a keyed table of fixed
//! size ([`keyed`]) so that a flood of distinct keys cannot grow memory, and
//! that table sharded behind mutexes ([`shared`]) so that threads deciding
//! the same key never both spend its last event.
//!
//! No clock: every decision takes `now` as nanoseconds from an origin the
//! caller chose, so tests replay exact schedules; key hashing is injected
//! too. The firewall's per-IP connection rate uses the table at accept
//! time, the proxy's per-route rate limits the shared limiter.
#![warn(missing_docs)]

pub mod gcra;
pub mod keyed;
pub mod shared;

pub use gcra::{Decision, Quota};
pub use keyed::KeyedLimiter;
pub use shared::{Checked, SharedLimiter};
