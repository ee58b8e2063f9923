//! The compiled rule set against a plain reference evaluator: 1,000 random
//! rules × 10,000 random flows per seed, 0 mismatches (issue 5).
//!
//! The reference reads the config's rules directly: `Cidr::contains`,
//! `PortRange::contains` and a protocol table, first match wins. The
//! generator aims at the edges: networks of every prefix length, both
//! families, IPv4-mapped sources, ports at range ends, and flows drawn
//! mostly from inside the rules' own networks so that rules do match.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use meshgate_config::{
    Cidr, Firewall, FirewallAction, FirewallProtocol, FirewallRule, ListenerProtocol, PortRange,
};
use meshgate_core::{FastRng, Rng};
use meshgate_firewall::{Flow, RuleSet};

const RULES: usize = 1_000;
const FLOWS: usize = 10_000;

fn reference(config: &Firewall, flow: &Flow) -> (FirewallAction, Option<usize>) {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    let (src, dst) = (canon(flow.source), canon(flow.destination.ip()));
    for (i, rule) in config.rules.iter().enumerate() {
        let protocol = matches!(
            (rule.protocol, flow.protocol),
            (FirewallProtocol::Any, _)
                | (FirewallProtocol::Tcp, ListenerProtocol::Tcp)
                | (FirewallProtocol::Udp, ListenerProtocol::Udp)
                | (FirewallProtocol::Http, ListenerProtocol::Http)
        );
        let sources = rule.sources.is_empty() || rule.sources.iter().any(|n| n.contains(src));
        let dests =
            rule.destinations.is_empty() || rule.destinations.iter().any(|n| n.contains(dst));
        let port = rule
            .ports
            .is_none_or(|p| p.contains(flow.destination.port()));
        if protocol && sources && dests && port {
            return (rule.action, Some(i));
        }
    }
    (config.default, None)
}

struct Gen(FastRng);

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n
    }

    fn ip(&mut self) -> IpAddr {
        // A small address space, so random networks and flows overlap.
        if self.below(4) == 0 {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                self.below(4) as u16,
                self.below(256) as u16,
            ))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                10,
                self.below(4) as u8,
                self.below(4) as u8,
                self.below(256) as u8,
            ))
        }
    }

    fn cidr(&mut self) -> Cidr {
        let ip = self.ip();
        let prefix = match ip {
            IpAddr::V4(_) if self.below(40) == 0 => self.below(33) as u8,
            IpAddr::V4(_) => 20 + self.below(13) as u8,
            IpAddr::V6(_) if self.below(40) == 0 => [0, 16, 32][self.below(3) as usize],
            IpAddr::V6(_) => [100, 112, 120, 127, 128][self.below(5) as usize],
        };
        // Zero the host bits so the text parses as a network.
        let net = match ip {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        format!("{net}/{prefix}").parse().unwrap()
    }

    fn nets(&mut self) -> Vec<Cidr> {
        // Mostly specific rules: with 1,000 of them, a few "any source"
        // ones would decide every flow and leave the rest untested.
        let n = if self.below(50) == 0 {
            0
        } else {
            1 + self.below(3)
        };
        (0..n).map(|_| self.cidr()).collect()
    }

    fn port(&mut self) -> u16 {
        [1, 79, 80, 81, 443, 8000, 8080, 65535][self.below(8) as usize]
    }

    fn rule(&mut self, i: usize) -> FirewallRule {
        let ports = match self.below(10) {
            0 => None,
            _ => {
                let (a, b) = (self.port(), self.port());
                Some(PortRange {
                    first: a.min(b),
                    last: a.max(b),
                })
            }
        };
        let sources = self.nets();
        // A rule for any source stays narrow (one protocol, two ports), or
        // one such rule early in the list would decide nearly every flow.
        let (protocol, ports) = if sources.is_empty() {
            (
                FirewallProtocol::Tcp,
                Some(PortRange {
                    first: 80,
                    last: 81,
                }),
            )
        } else {
            let protocols = [
                FirewallProtocol::Any,
                FirewallProtocol::Tcp,
                FirewallProtocol::Udp,
                FirewallProtocol::Http,
            ];
            (protocols[self.below(4) as usize], ports)
        };
        FirewallRule {
            name: format!("r{i}"),
            action: if self.below(2) == 0 {
                FirewallAction::Allow
            } else {
                FirewallAction::Deny
            },
            protocol,
            sources,
            destinations: if self.below(4) == 0 {
                self.nets()
            } else {
                Vec::new()
            },
            ports,
        }
    }

    fn flow(&mut self) -> Flow {
        // Some sources from outside every rule's usual space.
        let mut source = match self.below(5) {
            0 => IpAddr::V4(Ipv4Addr::new(
                172,
                16,
                self.below(256) as u8,
                self.below(256) as u8,
            )),
            _ => self.ip(),
        };
        if let (IpAddr::V4(v4), 0) = (source, self.below(5)) {
            source = IpAddr::V6(v4.to_ipv6_mapped());
        }
        Flow {
            protocol: [
                ListenerProtocol::Tcp,
                ListenerProtocol::Udp,
                ListenerProtocol::Http,
            ][self.below(3) as usize],
            source,
            destination: SocketAddr::new(self.ip(), self.port()),
        }
    }
}

#[test]
fn compiled_rules_agree_with_the_reference_on_every_flow() {
    for seed in [1, 2, 3] {
        let mut g = Gen(FastRng::seeded(seed));
        let config = Firewall {
            default: if seed % 2 == 0 {
                FirewallAction::Allow
            } else {
                FirewallAction::Deny
            },
            rules: (0..RULES).map(|i| g.rule(i)).collect(),
            ..Firewall::default()
        };
        let set = RuleSet::new(&config);
        let (mut mismatches, mut by_rule) = (0, 0);
        for _ in 0..FLOWS {
            let flow = g.flow();
            let got = set.evaluate(&flow);
            let want = reference(&config, &flow);
            if (got.action, got.rule) != want {
                mismatches += 1;
                eprintln!("seed {seed}: {flow:?}: got {got:?}, want {want:?}");
            }
            by_rule += usize::from(want.1.is_some());
        }
        assert_eq!(mismatches, 0, "seed {seed}");
        // The generator must exercise both paths, or agreement means little.
        assert!(
            by_rule > FLOWS / 10 && by_rule < FLOWS * 99 / 100,
            "seed {seed}: {by_rule} flows matched a rule"
        );
    }
}
