//! The resolver's wire side, pure: the query it sends and what a reply
//! means. Replies are untrusted bytes (any host can send a datagram to our
//! port), so a reply counts only when its ID, QR bit and question match the
//! query; everything else is [`Reply::Ignore`], and the exchange keeps
//! waiting for the real one.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// The EDNS payload size we offer (DNS Flag Day 2020).
const PAYLOAD: u16 = 1232;
/// CNAME chains longer than this are treated as loops.
const MAX_CNAMES: usize = 8;

/// A query for `name`/`qtype` with ID `id`, recursion desired, EDNS.
pub(crate) fn query(id: u16, name: &Name, qtype: RecordType) -> Option<Vec<u8>> {
    let mut msg = Message::new();
    msg.set_id(id);
    msg.set_recursion_desired(true);
    msg.add_query(Query::query(name.clone(), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(PAYLOAD);
    msg.set_edns(edns);
    msg.to_vec().ok()
}

/// What one reply says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Not the reply to our query (wrong ID, not a response, other
    /// question) or not DNS at all: keep waiting.
    Ignore,
    /// TC set: ask again over TCP.
    Truncated,
    /// The server failed (SERVFAIL, REFUSED, ...): try the next one.
    Failed(ResponseCode),
    /// NXDOMAIN: the name does not exist. `ttl`: how long that may be
    /// believed (the SOA's, RFC 2308), if the server said.
    NoName {
        /// Negative TTL in seconds.
        ttl: Option<u32>,
    },
    /// NOERROR: the records found (possibly none: NODATA).
    Found(Found),
}

/// The useful content of a NOERROR reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Found {
    /// A/AAAA of the name asked (through any CNAMEs).
    pub(crate) addrs: Vec<IpAddr>,
    /// SRV records of the name asked: (target, port).
    pub(crate) srv: Vec<(Name, u16)>,
    /// Addresses of other names given in the additional section (SRV
    /// targets), by name.
    pub(crate) glue: BTreeMap<Name, Vec<IpAddr>>,
    /// The smallest TTL among the records used, or for NODATA the SOA's
    /// negative TTL; `None` when nothing carried one.
    pub(crate) ttl: Option<u32>,
}

/// Reads `bytes` as the reply to the query (`id`, `name`, `qtype`).
pub(crate) fn read(bytes: &[u8], id: u16, name: &Name, qtype: RecordType) -> Reply {
    let Ok(msg) = Message::from_vec(bytes) else {
        return Reply::Ignore;
    };
    let question_matches =
        matches!(msg.queries(), [q] if q.name() == name && q.query_type() == qtype);
    if msg.id() != id || msg.message_type() != MessageType::Response || !question_matches {
        return Reply::Ignore;
    }
    if msg.truncated() {
        return Reply::Truncated;
    }
    match msg.response_code() {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => {
            return Reply::NoName {
                ttl: negative_ttl(msg.name_servers()),
            };
        }
        other => return Reply::Failed(other),
    }
    let mut found = Found::default();
    let mut ttl: Option<u32> = None;
    let mut use_ttl = |t: u32| ttl = Some(ttl.map_or(t, |x| x.min(t)));

    // Follow CNAMEs from the name asked; every owner on the chain counts.
    let mut owners = vec![name.clone()];
    for _ in 0..MAX_CNAMES {
        let Some(last) = owners.last() else { break };
        let next = msg.answers().iter().find_map(|r| match r.data() {
            RData::CNAME(c) if r.name() == last => Some((c.0.clone(), r.ttl())),
            _ => None,
        });
        match next {
            Some((target, t)) if !owners.contains(&target) => {
                use_ttl(t);
                owners.push(target);
            }
            _ => break,
        }
    }
    for r in msg.answers().iter().filter(|r| owners.contains(r.name())) {
        match (r.data(), qtype) {
            (RData::A(a), RecordType::A) => found.addrs.push(IpAddr::V4(a.0)),
            (RData::AAAA(a), RecordType::AAAA) => found.addrs.push(IpAddr::V6(a.0)),
            (RData::SRV(s), RecordType::SRV) => found.srv.push((s.target().clone(), s.port())),
            _ => continue,
        }
        use_ttl(r.ttl());
    }
    if found.addrs.is_empty() && found.srv.is_empty() {
        ttl = negative_ttl(msg.name_servers());
    }
    for r in msg.additionals() {
        let ip = match r.data() {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        // Glue is only believed for the targets asked about.
        if found.srv.iter().any(|(t, _)| t == r.name()) {
            found.glue.entry(r.name().clone()).or_default().push(ip);
            use_glue_ttl(&mut ttl, r);
        }
    }
    found.ttl = ttl;
    Reply::Found(found)
}

fn use_glue_ttl(ttl: &mut Option<u32>, r: &Record) {
    *ttl = Some(ttl.map_or(r.ttl(), |x| x.min(r.ttl())));
}

/// RFC 2308 §5: the negative TTL is the smaller of the SOA record's TTL and
/// its MINIMUM field.
fn negative_ttl(authority: &[Record]) -> Option<u32> {
    authority.iter().find_map(|r| match r.data() {
        RData::SOA(soa) => Some(r.ttl().min(soa.minimum())),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
