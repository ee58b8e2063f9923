//! The resolved instances of one browsed service type: a bounded map from
//! instance name to where it listens and what its TXT record says.
//!
//! Pure: the browse driver feeds it mdns-sd's events already converted to
//! plain values, so the bounds and the address rules are tested without a
//! socket. Everything in it came off the LAN, so nothing is trusted: names
//! are length-capped, addresses filtered, the entry count capped.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;

use crate::txt::Txt;

/// Most instances kept per browsed service type; later ones are ignored
/// until others leave.
pub const MAX_INSTANCES: usize = 512;
/// Most addresses kept per instance.
pub const MAX_ADDRS: usize = 16;
/// Longest instance or host name kept (a DNS name's limit).
const MAX_NAME: usize = 255;

/// One resolved instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// `INSTANCE._type._proto.local.`, as received.
    pub(crate) fullname: String,
    /// The SRV target (`host.local.`).
    pub(crate) host: String,
    /// Where it listens: its addresses with the SRV port, sorted.
    pub(crate) addrs: Vec<SocketAddr>,
    /// Its TXT record.
    pub(crate) txt: Txt,
}

/// An address as mdns-sd reports it: the IP, and for IPv6 the index of the
/// interface it was seen on (0 when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeenIp {
    pub(crate) ip: IpAddr,
    pub(crate) if_index: u32,
}

/// Why a resolved instance was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Port 0, or a name longer than a DNS name.
    Invalid,
    /// No address left after filtering.
    NoAddress,
    /// The table holds [`MAX_INSTANCES`] others.
    Full,
}

/// Builds a [`Resolved`] from an event's parts, or says why not. Addresses
/// that no one can connect to (unspecified, multicast, broadcast, IPv6
/// link-local without an interface) are dropped.
pub(crate) fn resolve(
    fullname: &str,
    host: &str,
    port: u16,
    ips: impl IntoIterator<Item = SeenIp>,
    txt: Txt,
) -> Result<Resolved, Refused> {
    if port == 0 || fullname.is_empty() || fullname.len() > MAX_NAME || host.len() > MAX_NAME {
        return Err(Refused::Invalid);
    }
    let mut addrs: Vec<SocketAddr> = ips
        .into_iter()
        .filter_map(|seen| usable(seen, port))
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    addrs.truncate(MAX_ADDRS);
    if addrs.is_empty() {
        return Err(Refused::NoAddress);
    }
    Ok(Resolved {
        fullname: fullname.to_owned(),
        host: host.to_owned(),
        addrs,
        txt,
    })
}

/// `seen` with `port`, if something could connect to it.
fn usable(seen: SeenIp, port: u16) -> Option<SocketAddr> {
    match seen.ip {
        IpAddr::V4(v4) => {
            let bad = v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast();
            (!bad).then(|| SocketAddr::new(seen.ip, port))
        }
        IpAddr::V6(v6) => {
            if v6.is_unspecified() || v6.is_multicast() {
                return None;
            }
            if let Some(v4) = v6.to_ipv4_mapped() {
                return usable(
                    SeenIp {
                        ip: IpAddr::V4(v4),
                        if_index: 0,
                    },
                    port,
                );
            }
            if is_link_local(&v6) {
                // Without its interface a link-local address is ambiguous.
                if seen.if_index == 0 {
                    return None;
                }
                return Some(SocketAddr::V6(SocketAddrV6::new(
                    v6,
                    port,
                    0,
                    seen.if_index,
                )));
            }
            Some(SocketAddr::new(seen.ip, port))
        }
    }
}

fn is_link_local(v6: &Ipv6Addr) -> bool {
    (v6.segments()[0] & 0xffc0) == 0xfe80
}

/// The instances of one service type, keyed by lowercased instance name
/// (DNS names compare case-insensitively).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Table {
    entries: BTreeMap<String, Arc<Resolved>>,
}

// === impl Table ===

impl Table {
    /// Adds or replaces an instance. Returns whether the table changed.
    pub(crate) fn upsert(&mut self, resolved: Resolved) -> Result<bool, Refused> {
        let key = resolved.fullname.to_ascii_lowercase();
        match self.entries.get(&key) {
            Some(old) if **old == resolved => return Ok(false),
            None if self.entries.len() >= MAX_INSTANCES => return Err(Refused::Full),
            _ => {}
        }
        self.entries.insert(key, Arc::new(resolved));
        Ok(true)
    }

    /// Removes an instance (goodbye or expiry). Returns whether it was there.
    pub(crate) fn remove(&mut self, fullname: &str) -> bool {
        self.entries
            .remove(&fullname.to_ascii_lowercase())
            .is_some()
    }

    /// The instances, by name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Resolved> {
        self.entries.values().map(|r| &**r)
    }

    /// How many instances it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The sorted, deduplicated addresses of `entries` that `keep` accepts.
pub(crate) fn addresses<'a>(
    entries: impl IntoIterator<Item = &'a Resolved>,
    keep: impl Fn(&Resolved, &SocketAddr) -> bool,
) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = entries
        .into_iter()
        .flat_map(|r| {
            r.addrs
                .iter()
                .filter(|a| keep(r, a))
                .copied()
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
