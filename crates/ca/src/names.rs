//! The names a certificate carries, parsed before anything is signed: the
//! CA's trust domain, a service name, the SPIFFE ID built from both, and the
//! subject alternative names (`dns:`, `ip:`, `uri:`) a leaf is issued for.
//!
//! Parse, don't validate: every type here is only constructed through its
//! parser, so [`crate::Ca`] never signs a name that a TLS peer (rustls,
//! OpenSSL, curl) would refuse to match against.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use rustls_pki_types::DnsName;

/// The forms `San` accepts, for error messages and `--help`.
pub const SAN_FORMS: &str = "dns:NAME (e.g. dns:api.local or dns:*.api.local), ip:ADDRESS (e.g. ip:127.0.0.1), or uri:URI (e.g. uri:spiffe://example.org/svc/api)";

/// Why a name was refused. Parsing has no side effects, so an error changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A trust domain outside the SPIFFE rules.
    #[error(
        "invalid trust domain {given:?}: {why} (a trust domain is 1-255 of a-z, 0-9, '.', '-', '_', like example.org)"
    )]
    TrustDomain {
        /// What was given.
        given: String,
        /// Which rule it broke.
        why: &'static str,
    },
    /// A service name that is not one SPIFFE path segment.
    #[error(
        "invalid service name {given:?}: {why} (a service name is 1-64 of A-Z, a-z, 0-9, '.', '-', '_', and not '.' or '..')"
    )]
    ServiceName {
        /// What was given.
        given: String,
        /// Which rule it broke.
        why: &'static str,
    },
    /// Text that is not a SPIFFE ID.
    #[error("invalid SPIFFE ID {given:?}: {why} (expected spiffe://TRUST-DOMAIN/PATH)")]
    SpiffeId {
        /// What was given.
        given: String,
        /// Which rule it broke.
        why: &'static str,
    },
    /// A subject alternative name of a kind this CA does not issue.
    #[error("invalid SAN {given:?}: unknown kind; expected {SAN_FORMS}")]
    SanKind {
        /// What was given.
        given: String,
    },
    /// A subject alternative name whose value does not fit its kind.
    #[error("invalid SAN {given:?}: {why}; expected {SAN_FORMS}")]
    SanValue {
        /// What was given.
        given: String,
        /// Which rule it broke.
        why: &'static str,
    },
}

/// A SPIFFE trust domain, e.g. `example.org`: the name of the one root all
/// of a mesh's identities chain to.
///
/// Rules (SPIFFE ID spec, section 2.1): 1 to 255 characters, lowercase
/// letters, digits, `.`, `-` and `_` only. Uppercase is refused rather than
/// folded, because the spec treats `Example.org` as invalid, not as a
/// spelling of `example.org`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Parses a trust domain.
    pub fn try_new(s: &str) -> Result<TrustDomain, NameError> {
        let err = |why| NameError::TrustDomain {
            given: s.to_owned(),
            why,
        };
        if s.is_empty() {
            return Err(err("empty"));
        }
        if s.len() > 255 {
            return Err(err("longer than 255 characters"));
        }
        if !s
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_'))
        {
            return Err(err("a character outside a-z, 0-9, '.', '-', '_'"));
        }
        Ok(TrustDomain(s.to_owned()))
    }

    /// The trust domain as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `spiffe://<trust domain>`: the SPIFFE ID of the trust domain itself,
    /// which the root carries as its URI SAN (X509-SVID spec, section 4.1:
    /// a signing certificate's SPIFFE ID has no path).
    pub fn id_uri(&self) -> String {
        format!("spiffe://{}", self.0)
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TrustDomain {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrustDomain::try_new(s)
    }
}

/// A service's name inside a trust domain, e.g. `api`: one SPIFFE path
/// segment, so `spiffe://<trust domain>/svc/<service>` is a valid SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceName(String);

impl ServiceName {
    /// Parses a service name.
    pub fn try_new(s: &str) -> Result<ServiceName, NameError> {
        let err = |why| NameError::ServiceName {
            given: s.to_owned(),
            why,
        };
        if s.is_empty() {
            return Err(err("empty"));
        }
        // 64 is X.509's upper bound for a common name (RFC 5280, ub-common-name),
        // and a SPIFFE leaf's CN is its service name.
        if s.len() > 64 {
            return Err(err("longer than 64 characters"));
        }
        check_segment(s).map_err(err)?;
        Ok(ServiceName(s.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ServiceName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceName::try_new(s)
    }
}

/// A SPIFFE ID, `spiffe://<trust domain><path>`, as found in (or put into)
/// a certificate's one URI SAN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    trust_domain: TrustDomain,
    /// Empty, or `/seg/seg...` with each segment a valid [`ServiceName`].
    path: String,
}

impl SpiffeId {
    /// The ID meshgate gives a service: `spiffe://<trust domain>/svc/<service>`.
    pub fn for_service(trust_domain: &TrustDomain, service: &ServiceName) -> SpiffeId {
        SpiffeId {
            trust_domain: trust_domain.clone(),
            path: format!("/svc/{service}"),
        }
    }

    /// Parses a SPIFFE ID by the SPIFFE ID spec: scheme `spiffe`, a trust
    /// domain, then path segments of `[A-Za-z0-9._-]` that are neither empty
    /// nor `.`/`..`; no port, user info, query, fragment or trailing slash.
    pub fn parse(s: &str) -> Result<SpiffeId, NameError> {
        let err = |why| NameError::SpiffeId {
            given: s.to_owned(),
            why,
        };
        if s.len() > 2048 {
            return Err(err("longer than 2048 bytes"));
        }
        let rest = s
            .strip_prefix("spiffe://")
            .ok_or_else(|| err("the scheme is not spiffe://"))?;
        let (domain, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let trust_domain =
            TrustDomain::try_new(domain).map_err(|_| err("the trust domain is invalid"))?;
        if !path.is_empty() {
            for segment in path[1..].split('/') {
                check_segment(segment).map_err(err)?;
            }
        }
        Ok(SpiffeId {
            trust_domain,
            path: path.to_owned(),
        })
    }

    /// The trust domain part.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The path part: empty for a trust domain's own ID, else starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{}{}", self.trust_domain, self.path)
    }
}

impl FromStr for SpiffeId {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpiffeId::parse(s)
    }
}

impl serde::Serialize for SpiffeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A subject alternative name to issue a leaf for: what a TLS client
/// compares with the name it connected to.
///
/// Written `dns:NAME`, `ip:ADDRESS` or `uri:URI` (the same text [`fmt::Display`]
/// prints and `meshgate cert inspect` shows).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum San {
    /// A DNS name, possibly a leftmost wildcard (`*.api.local`).
    Dns(String),
    /// An IP address (clients connecting to an IP literal match this).
    Ip(IpAddr),
    /// A URI, e.g. a SPIFFE ID.
    Uri(String),
}

impl San {
    /// Parses `dns:..`, `ip:..` or `uri:..`.
    pub fn parse(s: &str) -> Result<San, NameError> {
        let bad = |why| NameError::SanValue {
            given: s.to_owned(),
            why,
        };
        let Some((kind, value)) = s.split_once(':') else {
            return Err(NameError::SanKind {
                given: s.to_owned(),
            });
        };
        match kind {
            "dns" => {
                check_dns(value).map_err(bad)?;
                Ok(San::Dns(value.to_ascii_lowercase()))
            }
            "ip" => value
                .parse()
                .map(San::Ip)
                .map_err(|_| bad("not an IPv4 or IPv6 address")),
            "uri" => {
                check_uri(value).map_err(bad)?;
                Ok(San::Uri(value.to_owned()))
            }
            _ => Err(NameError::SanKind {
                given: s.to_owned(),
            }),
        }
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(name) => write!(f, "dns:{name}"),
            San::Ip(ip) => write!(f, "ip:{ip}"),
            San::Uri(uri) => write!(f, "uri:{uri}"),
        }
    }
}

impl FromStr for San {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        San::parse(s)
    }
}

/// One SPIFFE path segment (SPIFFE ID spec, section 2.2).
fn check_segment(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("an empty path segment (or a trailing slash)");
    }
    if s == "." || s == ".." {
        return Err("a relative path segment ('.' or '..')");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err("a character outside A-Z, a-z, 0-9, '.', '-', '_'");
    }
    Ok(())
}

/// A DNS name as rustls accepts a server name (pki-types' own check), plus
/// an optional leftmost `*.` wildcard label, which certificates may carry
/// but clients never ask for. A trailing dot is refused: webpki does not
/// match presented names that end in one.
fn check_dns(value: &str) -> Result<(), &'static str> {
    let name = value.strip_prefix("*.").unwrap_or(value);
    if name.ends_with('.') {
        return Err("a DNS name must not end with '.'");
    }
    if name.contains('*') {
        return Err("a wildcard is only allowed as the whole leftmost label ('*.')");
    }
    if value.parse::<IpAddr>().is_ok() {
        return Err("an IP address; write it as ip:ADDRESS");
    }
    DnsName::try_from(name).map_err(|_| "not a valid DNS name")?;
    Ok(())
}

/// A URI: an RFC 3986 scheme, a colon, then visible ASCII (what an IA5String
/// SAN can hold, without spaces). `spiffe:` URIs must be valid SPIFFE IDs,
/// so a malformed identity is caught here rather than by the peer.
fn check_uri(value: &str) -> Result<(), &'static str> {
    let Some((scheme, rest)) = value.split_once(':') else {
        return Err("a URI needs a scheme, like spiffe: or https:");
    };
    let mut chars = scheme.bytes();
    let scheme_ok = chars.next().is_some_and(|b| b.is_ascii_alphabetic())
        && chars.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err("a URI scheme is a letter followed by letters, digits, '+', '-' or '.'");
    }
    if rest.is_empty() {
        return Err("nothing after the URI scheme");
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a URI holds visible ASCII only, without spaces");
    }
    if scheme.eq_ignore_ascii_case("spiffe") && SpiffeId::parse(value).is_err() {
        return Err("not a valid SPIFFE ID (spiffe://TRUST-DOMAIN/PATH)");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
