//! The `[firewall]` table: rules, default action, connection rate and the
//! block list's state file.
//!
//! A CIDR with bits set past its prefix (`10.0.0.1/8`) is refused rather
//! than truncated: it is usually a typo for a host or a wider network, and
//! guessing wrong would open or close more than was meant. Rule names must
//! be unique, as they label the per-rule counters.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;

use super::fields::Leafy;
use super::{Check, Ctx};
use crate::firewall::{
    Cidr, ConnectionRate, Firewall, FirewallAction, FirewallProtocol, FirewallRule, PortRange,
};
use crate::leaf::Leaf;
use crate::path::FieldPath;
use crate::raw::{RawConnectionRate, RawFirewall, RawFirewallRule};

/// More rules than this is a generated config gone wrong: each connection
/// walks the list.
const MAX_RULES: usize = 10_000;
/// Default client IPs tracked by `connection_rate` (fixed memory: 16 bytes
/// each).
const DEFAULT_MAX_CLIENTS: usize = 100_000;

const ACTIONS: &[(&str, FirewallAction)] = &[
    ("allow", FirewallAction::Allow),
    ("deny", FirewallAction::Deny),
];

/// Checks `[firewall]`.
pub(super) fn firewall(ctx: &mut Ctx<'_>, raw: &RawFirewall, path: &FieldPath) -> Check<Firewall> {
    let default = ctx.optional(&raw.default, path, "default", |c, l, p| {
        c.choice(l, p, ACTIONS)
    });
    let rules_path = path.key("rules");
    let raw_rules = raw.rules.as_deref().unwrap_or_default();
    let rules: Vec<Check<FirewallRule>> = raw_rules
        .iter()
        .enumerate()
        .map(|(i, r)| rule(ctx, r, i, &rules_path.index(i)))
        .collect();
    if raw_rules.len() > MAX_RULES {
        ctx.at_value(
            &rules_path,
            format!(
                "at most {MAX_RULES} firewall rules, got {}",
                raw_rules.len()
            ),
        );
    }
    unique_names(ctx, raw_rules, &rules_path);
    let connection_rate = raw
        .connection_rate
        .as_ref()
        .map(|r| connection_rate(ctx, r, &path.key("connection_rate")))
        .transpose();
    let state_file = ctx.optional(&raw.state_file, path, "state_file", |c, l, p| {
        let text = c.str(l, p)?;
        if text.is_empty() {
            return Err(c.at_leaf(
                l,
                p,
                "state_file must not be empty; leave it out to keep the block list in memory",
            ));
        }
        Ok(PathBuf::from(text))
    });
    Ok(Firewall {
        default: default?.unwrap_or(FirewallAction::Allow),
        rules: rules.into_iter().collect::<Check<_>>()?,
        connection_rate: connection_rate?,
        state_file: state_file?,
    })
}

fn rule(
    ctx: &mut Ctx<'_>,
    raw: &RawFirewallRule,
    i: usize,
    path: &FieldPath,
) -> Check<FirewallRule> {
    let name = ctx.optional(&raw.name, path, "name", |c, l, p| c.name(l, p));
    let action = ctx.required(&raw.action, path, "action", |c, l, p| {
        c.choice(l, p, ACTIONS)
    });
    let protocol = ctx.optional(&raw.protocol, path, "protocol", |c, l, p| {
        c.choice(
            l,
            p,
            &[
                ("any", FirewallProtocol::Any),
                ("tcp", FirewallProtocol::Tcp),
                ("udp", FirewallProtocol::Udp),
                ("http", FirewallProtocol::Http),
            ],
        )
    });
    let sources = ctx.optional(&raw.sources, path, "sources", networks);
    let destinations = ctx.optional(&raw.destinations, path, "destinations", networks);
    let ports = ctx.optional(&raw.ports, path, "ports", ports);
    Ok(FirewallRule {
        name: name?.unwrap_or_else(|| format!("rules[{i}]")),
        action: action?,
        protocol: protocol?.unwrap_or(FirewallProtocol::Any),
        sources: sources?.unwrap_or_default(),
        destinations: destinations?.unwrap_or_default(),
        ports: ports?,
    })
}

/// A list of networks: every bad entry is reported at itself.
pub(super) fn networks(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<Vec<Cidr>> {
    let items = ctx.array(leaf, path)?;
    if items.is_empty() {
        let field = path.field_name();
        return Err(ctx.at_leaf(
            leaf,
            path,
            format!("{field} must list at least one network; leave it out to match any address"),
        ));
    }
    let nets: Vec<Check<Cidr>> = items
        .iter()
        .enumerate()
        .map(|(j, item)| cidr(ctx, item, &path.index(j)))
        .collect();
    nets.into_iter().collect()
}

/// One network: `10.0.0.0/8`, `2001:db8::/32` or a bare address.
pub(super) fn cidr(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<Cidr> {
    let text = ctx.str(leaf, path)?;
    text.parse().map_err(|e| {
        ctx.at_leaf(
            leaf,
            path,
            format!(r#"invalid network {text:?}: {e}; write an address ("10.1.2.3") or a CIDR ("10.0.0.0/8")"#),
        )
    })
}

/// A port (`443`) or an inclusive range (`"8000-8100"`).
fn ports(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<PortRange> {
    const EXPECTED: &str =
        r#"expected a port (443) or a range ("8000-8100") of ports from 1 to 65535"#;
    let parse = |s: &str| s.trim().parse::<u16>().ok().filter(|p| *p > 0);
    let range = match leaf.get_ref() {
        Leaf::Integer(n) => u16::try_from(*n)
            .ok()
            .filter(|p| *p > 0)
            .map(|p| PortRange { first: p, last: p }),
        Leaf::String(s) => match s.split_once('-') {
            Some((a, b)) => parse(a)
                .zip(parse(b))
                .map(|(first, last)| PortRange { first, last }),
            None => parse(s).map(|p| PortRange { first: p, last: p }),
        },
        _ => return Err(ctx.expected(leaf, path, EXPECTED.trim_start_matches("expected "))),
    };
    match range {
        Some(r) if r.first <= r.last => Ok(r),
        Some(r) => Err(ctx.at_leaf(
            leaf,
            path,
            format!(
                "port range {}-{} runs backwards; write {}-{}",
                r.first, r.last, r.last, r.first
            ),
        )),
        None => Err(ctx.at_leaf(
            leaf,
            path,
            format!("invalid ports {}: {EXPECTED}", leaf.get_ref()),
        )),
    }
}

fn connection_rate(
    ctx: &mut Ctx<'_>,
    raw: &RawConnectionRate,
    path: &FieldPath,
) -> Check<ConnectionRate> {
    let positive = |c: &mut Ctx<'_>, l: Leafy<'_>, p: &FieldPath| {
        c.int_in(l, p, 1, i64::from(u32::MAX))
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let limit = ctx.required(&raw.limit, path, "limit", positive);
    let per = ctx.optional(&raw.per, path, "per", |c, l, p| c.timeout(l, p));
    let burst = ctx.optional(&raw.burst, path, "burst", positive);
    let max_clients = ctx.optional(&raw.max_clients, path, "max_clients", |c, l, p| {
        c.int_in(l, p, 1, 10_000_000)
            .map(|n| usize::try_from(n).unwrap_or(DEFAULT_MAX_CLIENTS))
    });
    let limit = limit?;
    Ok(ConnectionRate {
        limit,
        per: per?.unwrap_or(std::time::Duration::from_secs(1)),
        burst: burst?.unwrap_or(limit),
        max_clients: max_clients?.unwrap_or(DEFAULT_MAX_CLIENTS),
    })
}

/// Rule names label counters, so two rules must not share one. Checked on
/// the names as written, so a rule with other mistakes still counts.
fn unique_names(ctx: &mut Ctx<'_>, rules: &[RawFirewallRule], path: &FieldPath) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, rule) in rules.iter().enumerate() {
        let Some(Leaf::String(name)) = rule.name.as_ref().map(|l| l.get_ref()) else {
            continue;
        };
        match seen.entry(name) {
            Entry::Occupied(first) => {
                let first = *first.get();
                ctx.at_value(
                    &path.index(i).key("name"),
                    format!("duplicate firewall rule name {name:?} (first used by rules[{first}])"),
                );
            }
            Entry::Vacant(v) => {
                v.insert(i);
            }
        }
    }
}
