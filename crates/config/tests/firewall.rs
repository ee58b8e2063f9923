//! `[firewall]`: what it takes, its defaults, and where the state file
//! lives. The mistakes are in `golden/firewall.toml`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use meshgate_config::{ConnectionRate, FirewallAction, FirewallProtocol, PortRange};

fn parse(text: &str) -> meshgate_config::Config {
    meshgate_config::parse(text, "fw.toml").unwrap_or_else(|e| panic!("{text}\n{e}"))
}

#[test]
fn no_firewall_table_allows_everything() {
    let config = parse("");
    assert_eq!(config.firewall.default, FirewallAction::Allow);
    assert!(config.firewall.rules.is_empty());
    assert!(config.firewall.connection_rate.is_none());
    assert!(config.firewall.state_file.is_none());
}

#[test]
fn rules_parse_in_order_with_their_defaults() {
    let config = parse(
        r#"
[firewall]
default = "deny"
connection_rate = { limit = 20 }

[[firewall.rules]]
name = "blocked-range"
action = "deny"
sources = ["203.0.113.0/24", "2001:db8::/32"]

[[firewall.rules]]
action = "allow"
protocol = "http"
sources = ["10.0.0.0/8", "192.168.1.7"]
destinations = ["127.0.0.1"]
ports = "8000-8100"

[[firewall.rules]]
action = "allow"
protocol = "udp"
ports = 53
"#,
    );
    let fw = &config.firewall;
    assert_eq!(fw.default, FirewallAction::Deny);
    assert_eq!(
        fw.connection_rate,
        Some(ConnectionRate {
            limit: 20,
            per: Duration::from_secs(1),
            burst: 20,
            max_clients: 100_000
        })
    );
    let names: Vec<_> = fw.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["blocked-range", "rules[1]", "rules[2]"]);
    let r = &fw.rules[0];
    assert_eq!(
        (r.action, r.protocol, r.ports),
        (FirewallAction::Deny, FirewallProtocol::Any, None)
    );
    assert_eq!(r.sources[1].to_string(), "2001:db8::/32");
    let r = &fw.rules[1];
    assert_eq!(r.protocol, FirewallProtocol::Http);
    assert_eq!(r.sources[1].to_string(), "192.168.1.7/32");
    assert_eq!(r.destinations[0].to_string(), "127.0.0.1/32");
    assert_eq!(
        r.ports,
        Some(PortRange {
            first: 8000,
            last: 8100
        })
    );
    assert_eq!(
        fw.rules[2].ports,
        Some(PortRange {
            first: 53,
            last: 53
        })
    );
}

#[test]
fn a_relative_state_file_is_next_to_the_config() {
    let dir = std::env::temp_dir().join(format!("meshgate-fw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("meshgate.toml");
    std::fs::write(&file, "[firewall]\nstate_file = \"blocks.txt\"\n").unwrap();
    let config = meshgate_config::load(&file).unwrap();
    assert_eq!(config.firewall.state_file, Some(dir.join("blocks.txt")));
    std::fs::write(&file, "[firewall]\nstate_file = \"/var/lib/x\"\n").unwrap();
    let config = meshgate_config::load(&file).unwrap();
    assert_eq!(config.firewall.state_file, Some("/var/lib/x".into()));
    std::fs::remove_dir_all(&dir).unwrap();
}
