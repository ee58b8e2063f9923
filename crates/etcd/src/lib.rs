//! The etcd registry: discovery past one LAN, on a real distributed store.
//!
//! - [`Registry::start`] puts this node's local instances under
//!   `PREFIX/SERVICE/ID` with a JSON value, attached to a lease that a
//!   keepalive refreshes every third of its TTL. It re-puts what changes,
//!   re-registers after losing etcd or the lease (an etcd restart, with or
//!   without its data), and [`RegistryHandle::shutdown`] revokes the lease
//!   so the instances disappear at once.
//! - [`etcd_source`] is the `{ etcd = "users" }` endpoint source: one
//!   service's healthy addresses, from a GET then a WATCH from the next
//!   revision, resynced after any loss, compaction included.
//! - [`EtcdDirectory`] watches every service under the prefix and serves
//!   them through the catalog's [`meshgate_catalog::Directory`] seam.
//!
//! Settings arrive as plain values ([`EtcdSettings`]); the application maps
//! its config onto them. Counters are plain numbers ([`EtcdCounts`]).
//! Values read from etcd are untrusted: a malformed one is skipped, counted
//! and logged, never a panic.
//!
//! Depends on etcd-client (tonic) without TLS features: it must never pull
//! aws-lc or openssl. Never depends on meshgate's config, proxy or app.

#![warn(missing_docs)]

mod backoff;
mod directory;
mod record;
mod registry;
mod settings;
mod source;
mod stats;
mod watcher;

#[cfg(test)]
mod tests;

use std::fmt;

pub use directory::EtcdDirectory;
pub use registry::{Registry, RegistryHandle, RegistryState};
pub use settings::EtcdSettings;
pub use source::etcd_source;
pub use stats::{EtcdCounts, EtcdStats};

/// Why a session with etcd ended; logged, then the session starts over.
#[derive(Debug)]
pub(crate) enum Failure {
    /// etcd (or the connection to it) answered an error.
    Etcd(&'static str, etcd_client::Error),
    /// No answer within `request_timeout`.
    Timeout(&'static str),
    /// The session cannot go on (stream closed, lease expired, ...).
    Lost(&'static str),
    /// etcd cancelled the watch for a reason of its own.
    Cancelled(String),
    /// The watch's start revision was compacted away (etcd's oldest kept
    /// revision is given).
    Compacted(i64),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Etcd(what, e) => write!(f, "{what}: {e}"),
            Self::Timeout(what) => write!(f, "{what}: no answer in time"),
            Self::Lost(why) => f.write_str(why),
            Self::Cancelled(reason) => write!(f, "etcd cancelled the watch: {reason}"),
            Self::Compacted(rev) => write!(f, "the watch's revision was compacted (now {rev})"),
        }
    }
}
