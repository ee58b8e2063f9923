//! Zero-config discovery on a LAN over DNS-SD / mDNS (RFC 6762, RFC 6763).
//!
//! Three uses of one mDNS responder ([`Mdns`], on the `mdns-sd` crate):
//!
//! - **Bootstrap** ([`lan_bootstrap`]): each node advertises its gossip
//!   address as `NODE._meshgate._udp.local.` and browses that type; the
//!   other nodes' addresses become the gossip driver's seeds, so
//!   `discovery.lan = true` needs no `join` list.
//! - **Advertisement** ([`Mdns::advertise`]): each local service is
//!   announced as `NODE._NAME._tcp.local.` with its tags and metadata in
//!   TXT, so `avahi-browse` and python-zeroconf see it.
//! - **Import** ([`mdns_source`]): the instances of a service type that
//!   anything on the LAN advertises (printers, avahi, python-zeroconf,
//!   other meshgate nodes) become a cluster's endpoint set and catalog
//!   [`Instance`](meshgate_catalog::Instance)s of origin `Mdns`.
//!
//! # Interfaces
//!
//! mdns-sd joins the mDNS group on every interface, loopback included,
//! unless told otherwise. [`Mdns::start`] queues the interface selection of
//! [`MdnsSettings::interfaces`] as its first commands, before any query or
//! announcement exists, so no mDNS packet ever leaves on an interface
//! outside the selection (the daemon thread does join the group on every
//! interface when it starts, then leaves the ones deselected: that IGMP/MLD
//! membership report is the only packet other interfaces may see).
//!
//! # Untrusted input
//!
//! mdns-sd parses the packets (this crate parses no packet bytes). What it
//! hands over is still whatever a LAN device chose to say, so: names and
//! TXT values are length-capped, unusable addresses are dropped, imports
//! never include loopback addresses (a device could otherwise aim the
//! gateway at its own admin port), and each browsed type holds at most
//! [`MAX_INSTANCES`] instances.
//!
//! Tokio drivers around mdns-sd's own thread; no other meshgate crate but
//! `meshgate-catalog`. Never depends on the proxy, the config crate or the
//! app: the lead maps typed config onto [`MdnsSettings`].

#![warn(missing_docs)]

mod advertise;
mod bootstrap;
mod browse;
mod daemon;
mod names;
mod settings;
mod source;
mod table;
mod txt;

pub use advertise::AdvertiseReport;
pub use bootstrap::lan_bootstrap;
pub use daemon::Mdns;
pub use names::{BOOTSTRAP_TYPE, parse_service_type};
pub use settings::MdnsSettings;
pub use source::{MdnsSource, mdns_source};
pub use table::{MAX_ADDRS, MAX_INSTANCES};
pub use txt::BOOTSTRAP_VERSION;

/// What can go wrong starting or using the responder.
#[derive(Debug, thiserror::Error)]
pub enum MdnsError {
    /// The settings are unusable (an interface entry, the node name, a
    /// service type). Nothing was started.
    #[error("mdns settings: {0}")]
    Settings(String),
    /// mdns-sd refused a command or its thread is gone.
    #[error("mdns daemon: {0}")]
    Daemon(String),
    /// The call spawns a task and was made outside a tokio runtime.
    #[error("{0} must be called within a tokio runtime")]
    NoRuntime(&'static str),
}

impl From<mdns_sd::Error> for MdnsError {
    fn from(e: mdns_sd::Error) -> Self {
        Self::Daemon(e.to_string())
    }
}
