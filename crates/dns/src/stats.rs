//! Counters of the DNS interface, as plain atomics the caller reads with
//! [`DnsStats::snapshot`] and registers wherever it keeps metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// The question type a counter is kept under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryType {
    /// A
    A,
    /// AAAA
    Aaaa,
    /// SRV
    Srv,
    /// SOA
    Soa,
    /// ANY (answered with A and AAAA)
    Any,
    /// Anything else (answered NODATA when the name exists)
    Other,
}

impl QueryType {
    /// Every type, in the order of [`DnsSnapshot::queries`].
    pub const ALL: [Self; 6] = [
        Self::A,
        Self::Aaaa,
        Self::Srv,
        Self::Soa,
        Self::Any,
        Self::Other,
    ];

    /// A label value: `a`, `aaaa`, `srv`, `soa`, `any`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "a",
            Self::Aaaa => "aaaa",
            Self::Srv => "srv",
            Self::Soa => "soa",
            Self::Any => "any",
            Self::Other => "other",
        }
    }
}

/// How a query was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryResult {
    /// NOERROR with at least one answer.
    Answered,
    /// NOERROR without answers (the name exists, not with that type, or no
    /// healthy instance).
    NoData,
    /// NXDOMAIN.
    NxDomain,
    /// REFUSED: outside the domain, or a class other than IN/ANY.
    Refused,
    /// FORMERR: a readable header but a malformed or multi-question body.
    FormErr,
    /// NOTIMP: an opcode other than QUERY.
    NotImp,
    /// BADVERS: an EDNS version other than 0.
    BadVers,
    /// SERVFAIL: the response could not be encoded.
    ServFail,
}

impl QueryResult {
    /// Every result, in the order of [`DnsSnapshot::queries`]' rows.
    pub const ALL: [Self; 8] = [
        Self::Answered,
        Self::NoData,
        Self::NxDomain,
        Self::Refused,
        Self::FormErr,
        Self::NotImp,
        Self::BadVers,
        Self::ServFail,
    ];

    /// A label value: `answered`, `nodata`, `nxdomain`, `refused`,
    /// `formerr`, `notimp`, `badvers`, `servfail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::NoData => "nodata",
            Self::NxDomain => "nxdomain",
            Self::Refused => "refused",
            Self::FormErr => "formerr",
            Self::NotImp => "notimp",
            Self::BadVers => "badvers",
            Self::ServFail => "servfail",
        }
    }
}

/// What [`crate::respond`] did with one datagram or TCP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered with this result. `qtype` is `Other` when no question could
    /// be read.
    Answered {
        /// The question's type.
        qtype: QueryType,
        /// The response code.
        result: QueryResult,
        /// Whether the response was cut to fit and has TC set.
        truncated: bool,
    },
    /// Dropped: too short for a header, or itself a response.
    Dropped,
}

const TYPES: usize = QueryType::ALL.len();
const RESULTS: usize = QueryResult::ALL.len();

/// The interface's counters. Shared by the UDP and TCP paths of one server.
#[derive(Debug, Default)]
pub struct DnsStats {
    queries: [[AtomicU64; RESULTS]; TYPES],
    truncated: AtomicU64,
    dropped: AtomicU64,
    tcp_refused: AtomicU64,
    tcp_idle_closed: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSnapshot {
    /// Queries by type and result: every pair of [`QueryType::ALL`] x
    /// [`QueryResult::ALL`], zeros included.
    pub queries: Vec<(QueryType, QueryResult, u64)>,
    /// UDP responses cut to the client's size, with TC set.
    pub truncated: u64,
    /// Messages dropped unanswered: shorter than a header, or responses.
    pub dropped_malformed: u64,
    /// TCP connections closed at accept because `max_tcp_connections` were
    /// open.
    pub tcp_refused: u64,
    /// TCP connections closed after `tcp_idle_timeout` without a query.
    pub tcp_idle_closed: u64,
}

impl DnsSnapshot {
    /// The count of one (type, result) pair.
    pub fn count(&self, qtype: QueryType, result: QueryResult) -> u64 {
        self.queries
            .iter()
            .find(|(t, r, _)| *t == qtype && *r == result)
            .map_or(0, |(_, _, n)| *n)
    }

    /// Every query answered, whatever its type and result.
    pub fn total(&self) -> u64 {
        self.queries.iter().map(|(_, _, n)| n).sum()
    }
}

// === impl DnsStats ===

impl DnsStats {
    /// Counts one outcome.
    pub fn record(&self, outcome: &Outcome) {
        match *outcome {
            Outcome::Answered {
                qtype,
                result,
                truncated,
            } => {
                let t = QueryType::ALL.iter().position(|x| *x == qtype).unwrap_or(0);
                let r = QueryResult::ALL
                    .iter()
                    .position(|x| *x == result)
                    .unwrap_or(0);
                self.queries[t][r].fetch_add(1, Ordering::Relaxed);
                if truncated {
                    self.truncated.fetch_add(1, Ordering::Relaxed);
                }
            }
            Outcome::Dropped => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn tcp_refused(&self) {
        self.tcp_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn tcp_idle_closed(&self) {
        self.tcp_idle_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> DnsSnapshot {
        let mut queries = Vec::with_capacity(TYPES * RESULTS);
        for (t, qtype) in QueryType::ALL.iter().enumerate() {
            for (r, result) in QueryResult::ALL.iter().enumerate() {
                queries.push((*qtype, *result, self.queries[t][r].load(Ordering::Relaxed)));
            }
        }
        DnsSnapshot {
            queries,
            truncated: self.truncated.load(Ordering::Relaxed),
            dropped_malformed: self.dropped.load(Ordering::Relaxed),
            tcp_refused: self.tcp_refused.load(Ordering::Relaxed),
            tcp_idle_closed: self.tcp_idle_closed.load(Ordering::Relaxed),
        }
    }
}
