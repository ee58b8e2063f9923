//! Ordered allow/deny rules, compiled for the accept path.
//!
//! The config's rules hold [`Cidr`]s; here each becomes a `(network, mask)`
//! pair of plain integers, split by address family, so matching a
//! connection is a few AND-and-compare steps per network with no branching
//! on the family inside the loop. The first rule whose every part matches
//! decides; the default decides the rest.

use std::net::{IpAddr, SocketAddr};

use meshgate_config::{
    Cidr, Firewall, FirewallAction, FirewallProtocol, FirewallRule, ListenerProtocol,
};
use meshgate_core::cidr::{canonical, mask32, mask128};

/// One connection (or UDP session) as the firewall sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// The kind of listener it arrived on.
    pub protocol: ListenerProtocol,
    /// The client's address: the peer, or the address a PROXY header
    /// carried (IPv4-mapped IPv6 is matched as IPv4).
    pub source: IpAddr,
    /// The local address and port the client connected to.
    pub destination: SocketAddr,
}

/// Which rule decided, and what it decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    /// Allow or deny.
    pub action: FirewallAction,
    /// The index of the deciding rule; `None` for the default.
    pub rule: Option<usize>,
}

/// A compiled rule set: immutable, shared by every accept loop of one
/// config generation.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Compiled>,
    default: FirewallAction,
}

#[derive(Debug, Clone)]
struct Compiled {
    action: FirewallAction,
    protocol: FirewallProtocol,
    sources: Nets,
    destinations: Nets,
    ports: (u16, u16),
}

/// Networks of both families; `any` when the rule named none.
#[derive(Debug, Clone, Default)]
struct Nets {
    any: bool,
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl RuleSet {
    /// Compiles the config's `[firewall]` rules.
    pub fn new(config: &Firewall) -> Self {
        Self {
            rules: config.rules.iter().map(Compiled::new).collect(),
            default: config.default,
        }
    }

    /// Whether every connection is allowed without looking (no rules, and
    /// the default allows): the accept path skips the firewall then.
    pub fn allows_all(&self) -> bool {
        self.rules.is_empty() && self.default == FirewallAction::Allow
    }

    /// Decides `flow`.
    pub fn evaluate(&self, flow: &Flow) -> Matched {
        let source = canonical(flow.source);
        let destination = canonical(flow.destination.ip());
        let port = flow.destination.port();
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.matches(flow.protocol, source, destination, port) {
                return Matched {
                    action: rule.action,
                    rule: Some(i),
                };
            }
        }
        Matched {
            action: self.default,
            rule: None,
        }
    }
}

impl Compiled {
    fn new(rule: &FirewallRule) -> Self {
        Self {
            action: rule.action,
            protocol: rule.protocol,
            sources: Nets::new(&rule.sources),
            destinations: Nets::new(&rule.destinations),
            ports: rule.ports.map_or((0, u16::MAX), |p| (p.first, p.last)),
        }
    }

    fn matches(
        &self,
        protocol: ListenerProtocol,
        source: IpAddr,
        destination: IpAddr,
        port: u16,
    ) -> bool {
        let protocol = match (self.protocol, protocol) {
            (FirewallProtocol::Any, _) => true,
            (FirewallProtocol::Tcp, p) => p == ListenerProtocol::Tcp,
            (FirewallProtocol::Udp, p) => p == ListenerProtocol::Udp,
            (FirewallProtocol::Http, p) => p == ListenerProtocol::Http,
        };
        protocol
            && (self.ports.0..=self.ports.1).contains(&port)
            && self.sources.contains(source)
            && self.destinations.contains(destination)
    }
}

impl Nets {
    fn new(nets: &[Cidr]) -> Self {
        let mut out = Self {
            any: nets.is_empty(),
            ..Self::default()
        };
        for net in nets {
            match net.network() {
                IpAddr::V4(a) => out.v4.push((u32::from(a), mask32(net.prefix()))),
                IpAddr::V6(a) => out.v6.push((u128::from(a), mask128(net.prefix()))),
            }
        }
        out
    }

    fn contains(&self, ip: IpAddr) -> bool {
        if self.any {
            return true;
        }
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().any(|&(net, mask)| a & mask == net)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().any(|&(net, mask)| a & mask == net)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use meshgate_config::PortRange;

    use super::*;

    fn rule(action: FirewallAction, sources: &[&str], ports: Option<(u16, u16)>) -> FirewallRule {
        FirewallRule {
            name: "r".into(),
            action,
            protocol: FirewallProtocol::Any,
            sources: sources.iter().map(|s| s.parse().unwrap()).collect(),
            destinations: Vec::new(),
            ports: ports.map(|(first, last)| PortRange { first, last }),
        }
    }

    fn flow(protocol: ListenerProtocol, source: &str, destination: &str) -> Flow {
        Flow {
            protocol,
            source: source.parse().unwrap(),
            destination: destination.parse().unwrap(),
        }
    }

    #[test]
    fn the_first_matching_rule_decides_and_the_default_the_rest() {
        let config = Firewall {
            default: FirewallAction::Deny,
            rules: vec![
                rule(FirewallAction::Deny, &["10.0.0.66"], None),
                rule(FirewallAction::Allow, &["10.0.0.0/8"], Some((8000, 8100))),
            ],
            ..Firewall::default()
        };
        let set = RuleSet::new(&config);
        assert!(!set.allows_all());
        let decide = |src, dst| set.evaluate(&flow(ListenerProtocol::Tcp, src, dst));
        assert_eq!(decide("10.0.0.66", "127.0.0.1:8000").rule, Some(0));
        assert_eq!(
            decide("10.0.0.66", "127.0.0.1:8000").action,
            FirewallAction::Deny
        );
        assert_eq!(
            decide("10.9.9.9", "127.0.0.1:8100").action,
            FirewallAction::Allow
        );
        assert_eq!(decide("10.9.9.9", "127.0.0.1:8101").rule, None);
        assert_eq!(
            decide("11.0.0.1", "127.0.0.1:8000").action,
            FirewallAction::Deny
        );
    }

    #[test]
    fn protocol_and_destination_narrow_a_rule() {
        let mut r = rule(FirewallAction::Deny, &[], None);
        r.protocol = FirewallProtocol::Udp;
        r.destinations = vec!["127.0.0.2".parse().unwrap(), "fd00::/8".parse().unwrap()];
        let set = RuleSet::new(&Firewall {
            rules: vec![r],
            ..Firewall::default()
        });
        let deny = |f: Flow| set.evaluate(&f).action == FirewallAction::Deny;
        assert!(deny(flow(ListenerProtocol::Udp, "1.2.3.4", "127.0.0.2:53")));
        assert!(deny(flow(ListenerProtocol::Udp, "::1", "[fd12::1]:53")));
        assert!(
            deny(flow(
                ListenerProtocol::Udp,
                "1.2.3.4",
                "[::ffff:127.0.0.2]:53"
            )),
            "mapped destinations are IPv4"
        );
        assert!(!deny(flow(
            ListenerProtocol::Tcp,
            "1.2.3.4",
            "127.0.0.2:53"
        )));
        assert!(!deny(flow(
            ListenerProtocol::Http,
            "1.2.3.4",
            "127.0.0.2:53"
        )));
        assert!(!deny(flow(
            ListenerProtocol::Udp,
            "1.2.3.4",
            "127.0.0.3:53"
        )));
    }

    #[test]
    fn no_rules_and_allow_means_no_work() {
        assert!(RuleSet::new(&Firewall::default()).allows_all());
        let deny_all = Firewall {
            default: FirewallAction::Deny,
            ..Firewall::default()
        };
        assert!(!RuleSet::new(&deny_all).allows_all());
    }
}
