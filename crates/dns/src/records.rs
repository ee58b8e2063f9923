//! The records a [`Lookup`] yields from a [`Directory`]: A/AAAA for the
//! healthy instances of a service, SRV with the instances' ports and their
//! addresses in the additional section, a node's addresses, the SOA.

use std::collections::BTreeSet;
use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use meshgate_catalog::{Directory, Instance, ServiceName};

use crate::name::{Lookup, addr_label};
use crate::settings::{DnsSettings, ttl_secs};

/// What a name holds for one question type.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// The answer section.
    pub(crate) answers: Vec<Record>,
    /// The additional section (SRV targets' addresses).
    pub(crate) additionals: Vec<Record>,
}

/// Looks `lookup` up for `qtype`. `None` means the name does not exist
/// (NXDOMAIN); `Some` with no answers is NODATA. `rotate` turns the answer
/// order so that clients taking the first record spread over instances.
pub(crate) fn find(
    lookup: &Lookup,
    qname: &Name,
    qtype: RecordType,
    directory: &dyn Directory,
    settings: &DnsSettings,
    domain: &Name,
    rotate: usize,
) -> Option<Found> {
    let node_ttl = ttl_secs(settings.node_ttl);
    match lookup {
        Lookup::Outside | Lookup::Unknown => None,
        Lookup::Empty => Some(Found::default()),
        Lookup::Apex => {
            let mut found = Found::default();
            if matches!(qtype, RecordType::SOA | RecordType::ANY) {
                found.answers.push(soa(domain, settings));
            }
            Some(found)
        }
        Lookup::Addr(ip) => Some(Found {
            answers: addresses(qname, [*ip], qtype, node_ttl),
            additionals: Vec::new(),
        }),
        Lookup::Node(node) => {
            let ips = node_addresses(directory, node);
            if ips.is_empty() {
                return None;
            }
            Some(Found {
                answers: addresses(qname, ips, qtype, node_ttl),
                additionals: Vec::new(),
            })
        }
        Lookup::Service { name, tag } => {
            let found = service(
                directory,
                name,
                tag.as_deref(),
                qname,
                qtype,
                settings,
                domain,
            )?;
            Some(rotated(found, rotate))
        }
    }
}

/// The SOA record of the domain; its TTL and MINIMUM are the negative TTL
/// (RFC 2308 §5 takes the smaller of the two).
pub(crate) fn soa(domain: &Name, settings: &DnsSettings) -> Record {
    let negative = ttl_secs(settings.negative_ttl);
    let mname = domain
        .prepend_label("ns")
        .unwrap_or_else(|_| domain.clone());
    let rname = domain
        .prepend_label("hostmaster")
        .unwrap_or_else(|_| domain.clone());
    // The zone is synthesised on every query and never transferred, so the
    // serial and the secondary-server timers carry no meaning; these are
    // RFC 1912's suggested values.
    let soa = SOA::new(mname, rname, 1, 3600, 600, 86400, negative);
    Record::from_rdata(domain.clone(), negative, RData::SOA(soa))
}

fn service(
    directory: &dyn Directory,
    name: &str,
    tag: Option<&str>,
    qname: &Name,
    qtype: RecordType,
    settings: &DnsSettings,
    domain: &Name,
) -> Option<Found> {
    // Only a valid service name can be in a directory; this also keeps
    // arbitrary bytes away from the Directory implementation.
    ServiceName::try_new(name).ok()?;
    let with_tag: Vec<Instance> = directory
        .instances(name)
        .into_iter()
        .filter(|i| tag.is_none_or(|t| i.tags.iter().any(|it| it.eq_ignore_ascii_case(t))))
        .collect();
    if with_tag.is_empty() {
        return None;
    }
    // An instance bound to 0.0.0.0 or :: tells no client where to go.
    let healthy: Vec<&Instance> = with_tag
        .iter()
        .filter(|i| i.healthy && !i.ip().is_unspecified())
        .collect();
    let service_ttl = ttl_secs(settings.service_ttl);
    let mut found = Found::default();
    match qtype {
        RecordType::SRV => {
            let mut seen = BTreeSet::new();
            let mut targets = BTreeSet::new();
            for instance in healthy {
                let ip = instance.ip().to_canonical();
                if !seen.insert((ip, instance.addr.port())) {
                    continue;
                }
                let Ok(target) = domain
                    .prepend_label("addr")
                    .and_then(|n| n.prepend_label(addr_label(ip)))
                else {
                    continue;
                };
                let srv = SRV::new(1, 1, instance.addr.port(), target.clone());
                found.answers.push(Record::from_rdata(
                    qname.clone(),
                    service_ttl,
                    RData::SRV(srv),
                ));
                if targets.insert(ip) {
                    let node_ttl = ttl_secs(settings.node_ttl);
                    found
                        .additionals
                        .extend(addresses(&target, [ip], RecordType::ANY, node_ttl));
                }
            }
        }
        _ => {
            let ips = healthy.iter().map(|i| i.ip().to_canonical());
            found.answers = addresses(qname, ips, qtype, service_ttl);
        }
    }
    Some(found)
}

/// A and/or AAAA records for `ips` as `qtype` asks (ANY: both), each
/// address once.
fn addresses(
    owner: &Name,
    ips: impl IntoIterator<Item = IpAddr>,
    qtype: RecordType,
    ttl: u32,
) -> Vec<Record> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for ip in ips {
        let ip = ip.to_canonical();
        if !seen.insert(ip) {
            continue;
        }
        let rdata = match (ip, qtype) {
            (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => RData::A(A(v4)),
            (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => RData::AAAA(AAAA(v6)),
            _ => continue,
        };
        out.push(Record::from_rdata(owner.clone(), ttl, rdata));
    }
    out
}

/// The distinct addresses of a node's instances, healthy or not: the node
/// is in the directory, so it is alive.
fn node_addresses(directory: &dyn Directory, node: &str) -> Vec<IpAddr> {
    let mut ips = BTreeSet::new();
    for service in directory.services() {
        for instance in directory.instances(service.as_str()) {
            if instance.node.eq_ignore_ascii_case(node) && !instance.ip().is_unspecified() {
                ips.insert(instance.ip().to_canonical());
            }
        }
    }
    ips.into_iter().collect()
}

fn rotated(mut found: Found, by: usize) -> Found {
    if !found.answers.is_empty() {
        let n = by % found.answers.len();
        found.answers.rotate_left(n);
    }
    found
}
