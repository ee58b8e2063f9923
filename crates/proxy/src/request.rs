//! Pure helpers of the request pipeline: validating what may be forwarded,
//! reading the request's authority and hash key, and rewriting its path.
//! They only look at the request head; `service` decides what to do.

use std::net::SocketAddr;

use http::Version;
use http::header;
use http::uri::{PathAndQuery, Uri};
use meshgate_config::{HashKey, ProxyAction};
use meshgate_core::{Error, ErrorKind};

/// The path and query to send upstream, after any prefix rewrite.
pub(crate) fn rewritten_path(
    action: &ProxyAction,
    prefix: Option<&str>,
    uri: &Uri,
) -> Result<PathAndQuery, Error> {
    let original = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let (Some(new_prefix), Some(matched)) = (&action.prefix_rewrite, prefix) else {
        return Ok(original);
    };
    let rest = original.path().get(matched.len()..).unwrap_or("");
    let mut path = String::with_capacity(new_prefix.len() + rest.len() + 1);
    path.push_str(new_prefix);
    // Keep exactly one slash at the seam: "/users" + "/42", "/" + "42".
    match (path.ends_with('/'), rest.starts_with('/')) {
        (true, true) => path.push_str(&rest[1..]),
        (false, false) if !rest.is_empty() => {
            path.push('/');
            path.push_str(rest);
        }
        _ => path.push_str(rest),
    }
    if path.is_empty() {
        path.push('/');
    }
    if let Some(q) = original.query() {
        path.push('?');
        path.push_str(q);
    }
    PathAndQuery::try_from(path)
        .map_err(|e| Error::downstream(ErrorKind::BadRequest, "rewritten path").with_cause(e))
}

/// Rejects requests meshgate must not forward: ambiguous or missing Host
/// (RFC 9112 §3.2: 400), and CONNECT tunnels, which it cannot carry yet
/// (501). Protocol upgrades are recognised by `tunnel::requested`.
pub(crate) fn malformed(parts: &http::request::Parts) -> Option<Error> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Some(Error::downstream(
            ErrorKind::BadRequest,
            "more than one Host header",
        ));
    }
    if first.is_none() && parts.version == Version::HTTP_11 && parts.uri.authority().is_none() {
        return Some(Error::downstream(
            ErrorKind::BadRequest,
            "HTTP/1.1 request without Host",
        ));
    }
    if parts.method == http::Method::CONNECT {
        return Some(Error::downstream(
            ErrorKind::NotImplemented,
            "CONNECT is not supported yet",
        ));
    }
    None
}

/// The request's authority, port included: the target's (h2 `:authority`
/// or absolute form), else the `Host` header.
pub(crate) fn authority_of(parts: &http::request::Parts) -> Option<std::borrow::Cow<'_, str>> {
    match parts.uri.authority() {
        // Drop any userinfo: it is never part of the host a client addresses.
        Some(a) => Some(std::borrow::Cow::Owned(
            a.as_str()
                .rsplit_once('@')
                .map_or(a.as_str(), |(_, h)| h)
                .to_owned(),
        )),
        None => parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(std::borrow::Cow::Borrowed),
    }
}

/// The consistent-hash key for this request, if its source is present.
pub(crate) fn hash_of(
    key: &HashKey,
    parts: &http::request::Parts,
    client: SocketAddr,
) -> Option<u64> {
    match key {
        HashKey::Header(name) => parts
            .headers
            .get(name)
            .map(|v| meshgate_balance::hash_key(v.as_bytes())),
        HashKey::Cookie(name) => parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| k == name)
            .map(|(_, v)| meshgate_balance::hash_key(v.as_bytes())),
        HashKey::SourceIp => Some(ip_hash(client.ip())),
    }
}

/// The consistent-hash key of a client address: routes hashing on
/// `source_ip`, and every tcp and udp listener.
pub(crate) fn ip_hash(ip: std::net::IpAddr) -> u64 {
    match ip {
        std::net::IpAddr::V4(ip) => meshgate_balance::hash_key(&ip.octets()),
        std::net::IpAddr::V6(ip) => meshgate_balance::hash_key(&ip.octets()),
    }
}
