//! Fuzzes what the firewall reads from outside: CIDR text (config rules and
//! the admin API), the block list's state file, and the admin API's block
//! requests' IPs; then evaluates flows against rules built from the input.
//! Beyond "no panic": a parsed CIDR prints back to itself and contains its
//! own network; a decoded block list re-encodes to the same entries; the
//! compiled rules agree with `Cidr::contains` on the first network.
#![no_main]

use std::net::{IpAddr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use meshgate_config::{Cidr, Firewall, FirewallAction, FirewallProtocol, FirewallRule, ListenerProtocol};
use meshgate_firewall::{BlockList, Flow, RuleSet};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut nets = Vec::new();
    for line in text.lines() {
        if let Ok(net) = line.parse::<Cidr>() {
            assert_eq!(net.to_string().parse::<Cidr>(), Ok(net));
            assert!(net.contains(net.network()));
            nets.push(net);
        }
        let _ = line.parse::<IpAddr>();
    }
    let (list, _problems) = BlockList::decode(text, 64, 1_000);
    let (again, problems) = BlockList::decode(&list.encode(1_000), 64, 1_000);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(again.entries(1_000), list.entries(1_000));

    let Some(first) = nets.first().copied() else { return };
    let rules = RuleSet::new(&Firewall {
        default: FirewallAction::Allow,
        rules: vec![FirewallRule {
            name: "fuzz".into(),
            action: FirewallAction::Deny,
            protocol: FirewallProtocol::Any,
            sources: vec![first],
            destinations: Vec::new(),
            ports: None,
        }],
        ..Firewall::default()
    });
    for net in &nets {
        let flow = Flow {
            protocol: ListenerProtocol::Tcp,
            source: net.network(),
            destination: SocketAddr::from(([127, 0, 0, 1], 80)),
        };
        let denied = rules.evaluate(&flow).action == FirewallAction::Deny;
        assert_eq!(denied, first.contains(net.network()));
    }
});
