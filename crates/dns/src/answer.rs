//! The pure core of the DNS interface: query bytes in, response bytes out.
//! No sockets and no clock, so every rule here is tested without a server
//! and fuzzed (`fuzz/fuzz_targets/dns_query.rs`).
//!
//! The order of checks: too short for a header, or a response -> dropped
//! (answering responses invites reflection loops); unreadable body ->
//! FORMERR; opcode other than QUERY -> NOTIMP; not exactly one question ->
//! FORMERR; EDNS version above 0 -> BADVERS; class other than IN/ANY or a
//! name outside the domain -> REFUSED; then the name space of `name.rs`.

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use meshgate_catalog::Directory;

use crate::name::{self, Lookup};
use crate::records;
use crate::settings::DnsSettings;
use crate::stats::{Outcome, QueryResult, QueryType};

/// How the response travels, which bounds its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: a response never exceeds 512 bytes, or, when the query carries
    /// EDNS, the smaller of the client's payload size and `max_size`.
    Udp {
        /// The server's own limit (normally [`DnsSettings::udp_payload`]).
        max_size: u16,
    },
    /// TCP: up to 65,535 bytes (the 2-byte length prefix's limit).
    Tcp,
}

/// The response to one message, and what to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The bytes to send (without TCP's length prefix); `None`: send nothing.
    pub bytes: Option<Vec<u8>>,
    /// What happened, for [`crate::DnsStats::record`].
    pub outcome: Outcome,
}

const HEADER_LEN: usize = 12;

/// Answers one DNS message from `directory`; `None` means drop it. Never
/// panics, whatever the bytes.
pub fn answer(
    query: &[u8],
    directory: &dyn Directory,
    settings: &DnsSettings,
    transport: Transport,
) -> Option<Vec<u8>> {
    respond(query, directory, settings, transport).bytes
}

/// [`answer`], with the outcome to count.
pub fn respond(
    query: &[u8],
    directory: &dyn Directory,
    settings: &DnsSettings,
    transport: Transport,
) -> Response {
    // The QR bit: a response sent to us is never answered.
    if query.len() < HEADER_LEN || query[2] & 0x80 != 0 {
        return Response {
            bytes: None,
            outcome: Outcome::Dropped,
        };
    }
    let Ok(msg) = Message::from_vec(query) else {
        return header_only(query, ResponseCode::FormErr, QueryType::Other);
    };
    if msg.op_code() != OpCode::Query {
        return header_only(query, ResponseCode::NotImp, QueryType::Other);
    }
    let [question] = msg.queries() else {
        return header_only(query, ResponseCode::FormErr, QueryType::Other);
    };
    let qtype = query_type(question.query_type());

    let mut resp = Message::new();
    resp.set_header(Header::response_from_request(msg.header()));
    resp.set_message_type(MessageType::Response);
    resp.add_query(question.clone());
    if msg.extensions().as_ref().is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(settings.udp_payload.max(512));
        edns.set_version(0);
        resp.set_edns(edns);
    }
    let limit = size_limit(&msg, transport);
    let done = |resp: Message, result: QueryResult| finish(query, resp, limit, qtype, result);

    if msg.extensions().as_ref().is_some_and(|e| e.version() != 0) {
        resp.set_response_code(ResponseCode::BADVERS);
        return done(resp, QueryResult::BadVers);
    }
    if !matches!(question.query_class(), DNSClass::IN | DNSClass::ANY) {
        resp.set_response_code(ResponseCode::Refused);
        return done(resp, QueryResult::Refused);
    }
    let qname = question.name();
    let lookup = name::parse(qname.iter(), &settings.domain);
    if lookup == Lookup::Outside {
        resp.set_response_code(ResponseCode::Refused);
        return done(resp, QueryResult::Refused);
    }
    let Ok(domain) = Name::from_ascii(settings.domain.to_string()) else {
        return header_only(query, ResponseCode::ServFail, qtype);
    };
    resp.set_authoritative(true);
    let rotate = usize::from(msg.id());
    let found = records::find(
        &lookup,
        qname,
        question.query_type(),
        directory,
        settings,
        &domain,
        rotate,
    );
    match found {
        None => {
            resp.set_response_code(ResponseCode::NXDomain);
            resp.add_name_server(records::soa(&domain, settings));
            done(resp, QueryResult::NxDomain)
        }
        Some(found) if found.answers.is_empty() => {
            resp.add_name_server(records::soa(&domain, settings));
            done(resp, QueryResult::NoData)
        }
        Some(found) => {
            resp.add_answers(found.answers);
            resp.add_additionals(found.additionals);
            done(resp, QueryResult::Answered)
        }
    }
}

fn query_type(t: RecordType) -> QueryType {
    match t {
        RecordType::A => QueryType::A,
        RecordType::AAAA => QueryType::Aaaa,
        RecordType::SRV => QueryType::Srv,
        RecordType::SOA => QueryType::Soa,
        RecordType::ANY => QueryType::Any,
        _ => QueryType::Other,
    }
}

/// The largest response the client takes (RFC 1035 §4.2.1, RFC 6891 §6.2.3).
fn size_limit(msg: &Message, transport: Transport) -> usize {
    match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp { max_size } => match msg.extensions().as_ref() {
            None => 512,
            Some(edns) => usize::from(edns.max_payload().min(max_size).max(512)),
        },
    }
}

/// Encodes `resp` within `limit`: whole if it fits; else without the
/// additional section (RFC 2181 §9: no TC, the client can look the targets
/// up); else with as many answers as fit and TC set, so the client retries
/// over TCP.
fn finish(
    query: &[u8],
    mut resp: Message,
    limit: usize,
    qtype: QueryType,
    result: QueryResult,
) -> Response {
    let answered = |bytes: Vec<u8>, truncated: bool| Response {
        bytes: Some(bytes),
        outcome: Outcome::Answered {
            qtype,
            result,
            truncated,
        },
    };
    let Ok(whole) = resp.to_vec() else {
        return header_only(query, ResponseCode::ServFail, qtype);
    };
    if whole.len() <= limit {
        return answered(whole, false);
    }
    resp.take_additionals();
    match resp.to_vec() {
        Ok(bytes) if bytes.len() <= limit => return answered(bytes, false),
        Ok(_) => {}
        Err(_) => return header_only(query, ResponseCode::ServFail, qtype),
    }
    let answers = resp.take_answers();
    resp.set_truncated(true);
    // Binary search for the most answers that fit: `lo` always fits (zero
    // answers: header, question and OPT are far below 512 bytes).
    let (mut lo, mut hi) = (0, answers.len());
    let mut best = None;
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let mut trial = resp.clone();
        trial.add_answers(answers[..mid].iter().cloned());
        match trial.to_vec() {
            Ok(bytes) if bytes.len() <= limit => {
                lo = mid;
                best = Some(bytes);
            }
            _ => hi = mid - 1,
        }
    }
    match best.or_else(|| resp.to_vec().ok()) {
        Some(bytes) => answered(bytes, true),
        None => header_only(query, ResponseCode::ServFail, qtype),
    }
}

/// A response of just a header: the query's ID, opcode and RD bit, the
/// given code, no sections. Used where the question cannot be trusted.
fn header_only(query: &[u8], code: ResponseCode, qtype: QueryType) -> Response {
    let Some(head) = query.get(..HEADER_LEN) else {
        return Response {
            bytes: None,
            outcome: Outcome::Dropped,
        };
    };
    let result = match code {
        ResponseCode::FormErr => QueryResult::FormErr,
        ResponseCode::NotImp => QueryResult::NotImp,
        _ => QueryResult::ServFail,
    };
    let mut bytes = vec![0u8; HEADER_LEN];
    bytes[..2].copy_from_slice(&head[..2]);
    // QR=1, the opcode (bits 3-6) and RD (bit 0) copied; AA, TC clear.
    bytes[2] = 0x80 | (head[2] & 0x79);
    bytes[3] = code.low();
    Response {
        bytes: Some(bytes),
        outcome: Outcome::Answered {
            qtype,
            result,
            truncated: false,
        },
    }
}

#[cfg(test)]
mod tests;
