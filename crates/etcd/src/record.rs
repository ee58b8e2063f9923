//! The registry's key layout and JSON value, both ways.
//!
//! An instance lives at `PREFIX/SERVICE/ID` and its value is a JSON object:
//! `{"service","id","node","address","port","tags","meta","healthy"}`.
//! Decoding is strict about what it needs (a valid service name, an IP
//! address, a non-zero port, a key that agrees with the value) and lenient
//! about the rest (unknown fields are ignored, `tags`/`meta` may be
//! missing, `healthy` defaults to true), so another writer's extra fields
//! never hide an instance. Whatever fails is reported, never panics: these
//! bytes come from the network and from anyone with write access to etcd.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use meshgate_catalog::{Instance, Origin, ServiceName};
use serde::{Deserialize, Serialize};

/// The JSON value stored under an instance's key.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    service: String,
    id: String,
    #[serde(default)]
    node: String,
    address: IpAddr,
    port: u16,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    meta: BTreeMap<String, String>,
    #[serde(default = "healthy_by_default")]
    healthy: bool,
}

fn healthy_by_default() -> bool {
    true
}

/// Why a value under the prefix was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// The key is not `PREFIX/SERVICE/ID` with a non-empty ID.
    Key,
    /// The value is not the JSON object above.
    Json(String),
    /// The value's service is not a valid service name.
    Service,
    /// Port 0 cannot be connected to.
    Port,
    /// An unspecified, multicast or broadcast address: nothing a balancer
    /// should connect to (and `0.0.0.0` reaches this very host on Linux).
    Address,
    /// The key's service or id disagrees with the value's.
    Mismatch,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key => f.write_str("the key is not PREFIX/SERVICE/ID"),
            Self::Json(e) => write!(f, "the value is not an instance record: {e}"),
            Self::Service => f.write_str("the service is not a valid service name"),
            Self::Port => f.write_str("the port is 0"),
            Self::Address => f.write_str("the address is unspecified, multicast or broadcast"),
            Self::Mismatch => f.write_str("the key's service or id differs from the value's"),
        }
    }
}

/// The key of `instance`: `BASE/SERVICE/ID` (`base` has no trailing `/`).
pub(crate) fn key(base: &str, instance: &Instance) -> String {
    format!("{base}/{}/{}", instance.service, instance.id)
}

/// The JSON value of `instance`. `node` fills in an empty `instance.node`.
pub(crate) fn encode(instance: &Instance, node: &str) -> Vec<u8> {
    let record = Record {
        service: instance.service.as_str().to_owned(),
        id: instance.id.clone(),
        node: if instance.node.is_empty() {
            node.to_owned()
        } else {
            instance.node.clone()
        },
        address: instance.addr.ip(),
        port: instance.addr.port(),
        tags: instance.tags.clone(),
        meta: instance.meta.clone(),
        healthy: instance.healthy,
    };
    // Serializing plain strings, numbers and maps with string keys cannot
    // fail; should it ever, an empty value is skipped as malformed by
    // every reader rather than crashing the registry.
    serde_json::to_vec(&record).unwrap_or_default()
}

/// The instance stored at `key` (which starts with `BASE/`), or why not.
pub(crate) fn decode(base: &str, key: &[u8], value: &[u8]) -> Result<Instance, Malformed> {
    let rest = key
        .strip_prefix(base.as_bytes())
        .and_then(|r| r.strip_prefix(b"/"))
        .ok_or(Malformed::Key)?;
    let rest = std::str::from_utf8(rest).map_err(|_| Malformed::Key)?;
    let (key_service, key_id) = rest.split_once('/').ok_or(Malformed::Key)?;
    if key_id.is_empty() {
        return Err(Malformed::Key);
    }
    let record: Record =
        serde_json::from_slice(value).map_err(|e| Malformed::Json(e.to_string()))?;
    let service = ServiceName::try_new(&record.service).map_err(|_| Malformed::Service)?;
    if record.port == 0 {
        return Err(Malformed::Port);
    }
    let bad_ip = match record.address {
        std::net::IpAddr::V4(v4) => v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
        std::net::IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    };
    if bad_ip {
        return Err(Malformed::Address);
    }
    if key_service != record.service || key_id != record.id {
        return Err(Malformed::Mismatch);
    }
    Ok(Instance {
        service,
        id: record.id,
        node: record.node,
        addr: SocketAddr::new(record.address, record.port),
        tags: record.tags,
        meta: record.meta,
        healthy: record.healthy,
        origin: Origin::Etcd,
    })
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
