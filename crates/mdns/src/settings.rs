//! What an mDNS responder runs with, and which interfaces it may use.
//!
//! mdns-sd, left alone, joins the mDNS group and answers on *every*
//! interface, loopback included. [`InterfaceSelection`] is the one place that
//! turns the operator's list into mdns-sd's enable/disable commands, applied
//! before any query or announcement is queued.

use std::net::{IpAddr, SocketAddr};

use mdns_sd::IfKind;

/// How a node takes part in DNS-SD on its LAN. The lead maps `[discovery]`
/// onto this; nothing here reads config files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdnsSettings {
    /// The interfaces mDNS may use, each an interface name (`eth0`) or an
    /// address on it (`192.168.1.10`, `fe80::1`; an address selects its
    /// interface for that address family). Empty means every interface that
    /// is up except loopback ones. Listing `lo` (or `127.0.0.1`) is how nodes
    /// on one host find each other.
    pub interfaces: Vec<String>,
    /// This node's gossip member name. It is the DNS-SD instance name of the
    /// node's `_meshgate._udp` advertisement and goes in every TXT record as
    /// `node=`. Node names must be unique on the LAN (gossip needs that too):
    /// a peer whose TXT names this node is taken to be this node.
    pub node: String,
    /// Where this node's gossip socket listens. A specific address is
    /// advertised as it is; an unspecified one (`0.0.0.0`, `[::]`) is
    /// advertised as the addresses of the selected interfaces.
    pub gossip_addr: SocketAddr,
}

impl MdnsSettings {
    /// Settings for `node` gossiping on `gossip_addr`, on every non-loopback
    /// interface.
    pub fn new(node: impl Into<String>, gossip_addr: SocketAddr) -> Self {
        Self {
            interfaces: Vec::new(),
            node: node.into(),
            gossip_addr,
        }
    }
}

/// One entry of [`MdnsSettings::interfaces`], parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InterfaceSpec {
    /// An interface by name.
    Name(String),
    /// The interface that holds this address (for its family).
    Addr(IpAddr),
}

/// The interface policy in the form mdns-sd takes: disable these kinds, then
/// enable those. mdns-sd applies selections in order, later ones winning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InterfaceSelection {
    /// Whether to start from "nothing" (an explicit list) or from
    /// "everything but loopback" (an empty list).
    pub(crate) explicit: bool,
    /// The interfaces to enable when `explicit`.
    pub(crate) enable: Vec<InterfaceSpec>,
}

// === impl InterfaceSelection ===

impl InterfaceSelection {
    /// Parses the settings' list. An entry is an address when it parses as
    /// one, else a name; names are checked the way Linux checks them (1 to
    /// 15 bytes, no `/`, no whitespace, no `:`) so a typo fails here rather
    /// than silently selecting nothing.
    pub(crate) fn parse(interfaces: &[String]) -> Result<Self, String> {
        let mut enable = Vec::with_capacity(interfaces.len());
        for entry in interfaces {
            let entry = entry.trim();
            if let Ok(ip) = entry.parse::<IpAddr>() {
                if ip.is_unspecified() || ip.is_multicast() {
                    return Err(format!(
                        "interface address {ip} is not an interface's address"
                    ));
                }
                enable.push(InterfaceSpec::Addr(ip));
                continue;
            }
            let valid = !entry.is_empty()
                && entry.len() <= 15
                && entry
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
            if !valid {
                return Err(format!(
                    "{entry:?} is neither an IP address nor an interface name (1-15 bytes, no '/', ':' or spaces)"
                ));
            }
            enable.push(InterfaceSpec::Name(entry.to_owned()));
        }
        Ok(Self {
            explicit: !enable.is_empty(),
            enable,
        })
    }

    /// The kinds to disable, applied first.
    pub(crate) fn disable_kinds(&self) -> Vec<IfKind> {
        if self.explicit {
            vec![IfKind::All]
        } else {
            vec![IfKind::LoopbackV4, IfKind::LoopbackV6]
        }
    }

    /// The kinds to enable, applied after [`Self::disable_kinds`].
    pub(crate) fn enable_kinds(&self) -> Vec<IfKind> {
        self.enable
            .iter()
            .map(|spec| match spec {
                InterfaceSpec::Name(name) => IfKind::Name(name.clone()),
                InterfaceSpec::Addr(ip) => IfKind::Addr(*ip),
            })
            .collect()
    }

    /// Whether a loopback interface may be in use (for the warning about
    /// advertising loopback addresses nobody else can reach).
    pub(crate) fn may_use_loopback(&self) -> bool {
        self.enable.iter().any(|spec| match spec {
            InterfaceSpec::Name(name) => name == "lo" || name.starts_with("lo"),
            InterfaceSpec::Addr(ip) => ip.is_loopback(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<InterfaceSelection, String> {
        InterfaceSelection::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn an_empty_list_means_everything_but_loopback() {
        let sel = parse(&[]).unwrap();
        assert!(!sel.explicit);
        assert!(matches!(
            sel.disable_kinds().as_slice(),
            [IfKind::LoopbackV4, IfKind::LoopbackV6]
        ));
        assert!(sel.enable_kinds().is_empty());
        assert!(!sel.may_use_loopback());
    }

    #[test]
    fn a_list_disables_everything_then_enables_only_its_entries() {
        let sel = parse(&["eth0", " 10.0.0.1 ", "fe80::1"]).unwrap();
        assert!(matches!(sel.disable_kinds().as_slice(), [IfKind::All]));
        assert_eq!(
            sel.enable,
            vec![
                InterfaceSpec::Name("eth0".into()),
                InterfaceSpec::Addr("10.0.0.1".parse().unwrap()),
                InterfaceSpec::Addr("fe80::1".parse().unwrap()),
            ]
        );
        assert!(parse(&["lo"]).unwrap().may_use_loopback());
        assert!(parse(&["127.0.0.1"]).unwrap().may_use_loopback());
    }

    #[test]
    fn typos_and_non_interface_addresses_are_refused() {
        assert!(parse(&[""]).is_err());
        assert!(parse(&["eth 0"]).is_err());
        assert!(parse(&["a-very-long-interface"]).is_err());
        assert!(parse(&["eth0/24"]).is_err());
        assert!(parse(&["0.0.0.0"]).is_err());
        assert!(parse(&["224.0.0.251"]).is_err());
    }
}
