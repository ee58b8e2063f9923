//! `[discovery]` and a cluster's `discovery` table (`[[services]]` are in
//! `services.rs`).
//!
//! Cross-checks live here too: a cluster's `catalog` source needs
//! `[discovery]`, an `etcd` source needs `[discovery.etcd]`, and a gossip
//! node that binds an unspecified address needs `advertise`.

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::fields::Leafy;
use super::{Check, Ctx, Reported};
use crate::discovery::{ClusterDiscovery, Discovery, Etcd, GossipProfile};
use crate::leaf::Leaf;
use crate::path::FieldPath;
use crate::raw::{RawCluster, RawClusterDiscovery, RawDiscovery, RawEtcd};
use crate::secret::ENCRYPTED_PREFIX;
use crate::types::Cluster;

const PROFILES: &[(&str, GossipProfile)] = &[
    ("lan", GossipProfile::Lan),
    ("wan", GossipProfile::Wan),
    ("local", GossipProfile::Local),
];

/// Checks `[discovery]`.
pub(super) fn discovery(
    ctx: &mut Ctx<'_>,
    raw: &RawDiscovery,
    path: &FieldPath,
) -> Check<Discovery> {
    let node_name = ctx.optional(&raw.node_name, path, "node_name", node_name);
    let bind = ctx.optional(&raw.bind, path, "bind", Ctx::address);
    let advertise = ctx.optional(&raw.advertise, path, "advertise", Ctx::address);
    let join = ctx.optional(&raw.join, path, "join", addresses);
    let keys = ctx.required(&raw.keys, path, "keys", keys);
    let profile = ctx.optional(&raw.profile, path, "profile", |c, l, p| {
        c.choice(l, p, PROFILES)
    });
    let dns = ctx.optional(&raw.dns, path, "dns", |c, l, p| match l.get_ref() {
        Leaf::Boolean(false) => Ok(None),
        _ => c.address(l, p).map(Some),
    });
    let dns_domain = ctx.optional(&raw.dns_domain, path, "dns_domain", domain);
    let dns_ttl = ctx.optional(&raw.dns_ttl, path, "dns_ttl", Ctx::duration);
    let resolvers = ctx.optional(&raw.resolvers, path, "resolvers", addresses);
    let lan = ctx.optional(&raw.lan, path, "lan", Ctx::boolean);
    let interfaces = ctx.optional(&raw.interfaces, path, "interfaces", interfaces);
    let etcd = raw
        .etcd
        .as_ref()
        .map(|e| etcd(ctx, e, &path.key("etcd")))
        .transpose();
    let bind = bind?.unwrap_or_else(|| default_addr(Discovery::DEFAULT_BIND));
    let advertise = advertise?;
    Ok(Discovery {
        node_name: node_name?,
        bind,
        advertise,
        join: join?.unwrap_or_default(),
        keys: keys?,
        profile: profile?.unwrap_or(GossipProfile::Lan),
        dns: dns?.unwrap_or_else(|| Some(default_addr(Discovery::DEFAULT_DNS))),
        dns_domain: dns_domain?.unwrap_or_else(|| Discovery::DEFAULT_DNS_DOMAIN.to_owned()),
        dns_ttl: dns_ttl?.unwrap_or(Discovery::DEFAULT_DNS_TTL),
        resolvers: resolvers?.unwrap_or_default(),
        lan: lan?.unwrap_or(false),
        interfaces: interfaces?.unwrap_or_default(),
        etcd: etcd?,
    })
}

/// The constants above always parse.
fn default_addr(text: &str) -> SocketAddr {
    text.parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Checks `[discovery.etcd]`.
fn etcd(ctx: &mut Ctx<'_>, raw: &RawEtcd, path: &FieldPath) -> Check<Etcd> {
    let endpoints = ctx.required(&raw.endpoints, path, "endpoints", |c, l, p| {
        let urls = c.strings(l, p)?;
        let items = match l.get_ref() {
            Leaf::Array(items) => items.as_slice(),
            _ => std::slice::from_ref(l),
        };
        let mut bad = false;
        for (i, url) in urls.iter().enumerate() {
            if url.starts_with("https://") {
                let at = items.get(i).unwrap_or(l);
                c.at_leaf(at, &p.index(i), format!("invalid etcd endpoint {url:?}: TLS to etcd is not supported yet; use http:// on a trusted network"));
                bad = true;
                continue;
            }
            // `host:port` as etcdctl's --endpoints takes it, or an http URL.
            let bare = url.strip_prefix("http://").unwrap_or(url);
            let port_ok = bare
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.trim_end_matches('/').parse::<u16>().is_ok_and(|p| p != 0));
            if !port_ok || bare.contains("://") {
                let at = items.get(i).unwrap_or(l);
                c.at_leaf(
                    at,
                    &p.index(i),
                    format!("invalid etcd endpoint {url:?}: expected host:port or a URL like \"http://127.0.0.1:2379\""),
                );
                bad = true;
            }
        }
        if urls.is_empty() {
            return Err(c.at_leaf(l, p, "endpoints must name at least one etcd URL"));
        }
        if bad { Err(Reported) } else { Ok(urls) }
    });
    let prefix = ctx.optional(&raw.prefix, path, "prefix", |c, l, p| {
        let text = c.str(l, p)?;
        if !text.starts_with('/') || text.len() < 2 || text.ends_with('/') {
            return Err(c.at_leaf(
                l,
                p,
                format!("invalid prefix {text:?}: expected a key path like \"/meshgate/services\" (leading '/', no trailing '/')"),
            ));
        }
        Ok(text.to_owned())
    });
    let lease_ttl = ctx.optional(&raw.lease_ttl, path, "lease_ttl", |c, l, p| {
        let d = c.duration(l, p)?;
        if d.as_secs() < 2 {
            return Err(c.at_leaf(
                l,
                p,
                "lease_ttl must be at least 2s (it is kept alive at a third of it)",
            ));
        }
        Ok(d)
    });
    Ok(Etcd {
        endpoints: endpoints?,
        prefix: prefix?.unwrap_or_else(|| Etcd::DEFAULT_PREFIX.to_owned()),
        lease_ttl: lease_ttl?.unwrap_or(Etcd::DEFAULT_LEASE_TTL),
    })
}

/// A node name: 1 to 128 printable ASCII bytes without spaces.
pub(super) fn node_name(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<String> {
    let text = ctx.str(leaf, path)?;
    if text.is_empty() || text.len() > 128 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ctx.at_leaf(
            leaf,
            path,
            format!("invalid node_name {text:?}: use 1 to 128 printable characters without spaces"),
        ));
    }
    Ok(text.to_owned())
}

/// A DNS domain; a missing trailing dot is added.
fn domain(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<String> {
    let text = ctx.str(leaf, path)?.to_ascii_lowercase();
    let bare = text.strip_suffix('.').unwrap_or(&text);
    let ok = !bare.is_empty()
        && bare.len() <= 200
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        return Err(ctx.at_leaf(
            leaf,
            path,
            format!(
                "invalid dns_domain {text:?}: expected a domain like \"meshgate.\" or \"consul.\""
            ),
        ));
    }
    Ok(format!("{bare}."))
}

/// `interfaces`: each an interface's IP address, or a name as Linux takes
/// one (1 to 15 bytes, no `/`, `:` or spaces), so a typo fails here rather
/// than when the mDNS responder starts.
fn interfaces(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<Vec<String>> {
    let names = ctx.strings(leaf, path)?;
    let items = match leaf.get_ref() {
        Leaf::Array(items) => items.as_slice(),
        _ => std::slice::from_ref(leaf),
    };
    let mut bad = false;
    for (i, name) in names.iter().enumerate() {
        let ok = match name.parse::<std::net::IpAddr>() {
            Ok(ip) => !ip.is_unspecified() && !ip.is_multicast(),
            Err(_) => {
                !name.is_empty()
                    && name.len() <= 15
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
            }
        };
        if !ok {
            let at = items.get(i).unwrap_or(leaf);
            ctx.at_leaf(
                at,
                &path.index(i),
                format!("invalid interface {name:?}: expected an interface name (1 to 15 characters, no '/', ':' or spaces) or one of its IP addresses"),
            );
            bad = true;
        }
    }
    if bad { Err(Reported) } else { Ok(names) }
}

/// One address or an array of them.
fn addresses(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<Vec<SocketAddr>> {
    if let Leaf::String(_) = leaf.get_ref() {
        return ctx.address(leaf, path).map(|a| vec![a]);
    }
    let items = ctx.array(leaf, path)?;
    let checked: Vec<Check<SocketAddr>> = items
        .iter()
        .enumerate()
        .map(|(i, item)| ctx.address(item, &path.index(i)))
        .collect();
    checked.into_iter().collect()
}

/// The cluster keys: each base64 of 32 bytes (what `meshgate keygen`
/// prints), plain or as an `enc:` secret; at least one.
fn keys(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<Vec<[u8; 32]>> {
    let items: Vec<(Leafy<'_>, FieldPath)> = match leaf.get_ref() {
        Leaf::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, l)| (l, path.index(i)))
            .collect(),
        _ => {
            return Err(ctx.expected(leaf, path, "an array of base64 keys from `meshgate keygen`"));
        }
    };
    if items.is_empty() {
        return Err(ctx.at_leaf(
            leaf,
            path,
            "keys must hold at least one key: every gossip datagram is sealed (run `meshgate keygen`)",
        ));
    }
    let checked: Vec<Check<[u8; 32]>> = items.iter().map(|(l, p)| key(ctx, l, p)).collect();
    let keys = checked.into_iter().collect::<Check<Vec<_>>>()?;
    for (i, k) in keys.iter().enumerate() {
        if let Some(first) = keys[..i].iter().position(|o| o == k) {
            return Err(ctx.at_leaf(
                items[i].0,
                &items[i].1,
                format!("duplicate key; {path}[{first}] is the same key"),
            ));
        }
    }
    Ok(keys)
}

/// One cluster key.
fn key(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<[u8; 32]> {
    let text = match leaf.get_ref() {
        Leaf::String(t) if t.starts_with(ENCRYPTED_PREFIX) => {
            let (secret, _) = ctx.secret(leaf, path, "write the base64 key itself")?;
            String::from_utf8_lossy(secret.expose()).trim().to_owned()
        }
        Leaf::String(t) => t.trim().to_owned(),
        _ => return Err(ctx.expected(leaf, path, "a base64 key string from `meshgate keygen`")),
    };
    let bytes = STANDARD.decode(text.as_bytes()).ok();
    match bytes.as_deref().map(<[u8; 32]>::try_from) {
        Some(Ok(key)) => Ok(key),
        _ => Err(ctx.at_leaf(
            leaf,
            path,
            "invalid key: expected 32 bytes in base64 (44 characters), as `meshgate keygen` prints",
        )),
    }
}

/// Reports clusters whose discovery source needs a section that is not
/// there: `catalog` needs `[discovery]`, `etcd` needs `[discovery.etcd]`.
pub(super) fn sources_configured(
    ctx: &mut Ctx<'_>,
    clusters: &[Check<Cluster>],
    raw: &[(&RawCluster, FieldPath)],
    discovery: Option<&Option<Discovery>>,
) {
    // A broken [discovery] is reported already; say nothing more.
    let Some(discovery) = discovery else { return };
    for (cluster, (_, path)) in clusters.iter().zip(raw) {
        let Ok(cluster) = cluster else { continue };
        let at = path.key("discovery");
        match &cluster.discovery {
            Some(ClusterDiscovery::Catalog(s)) if discovery.is_none() => {
                ctx.at_key(
                    &at.key("catalog"),
                    format!("catalog = {s:?} needs a [discovery] section: the catalog is the gossip cluster's"),
                );
            }
            Some(ClusterDiscovery::Etcd(s))
                if discovery.as_ref().is_none_or(|d| d.etcd.is_none()) =>
            {
                ctx.at_key(
                    &at.key("etcd"),
                    format!(
                        "etcd = {s:?} needs a [discovery.etcd] section with the etcd endpoints"
                    ),
                );
            }
            _ => {}
        }
    }
}

/// Checks a cluster's `discovery` table: exactly one source.
pub(super) fn cluster_discovery(
    ctx: &mut Ctx<'_>,
    raw: &RawClusterDiscovery,
    path: &FieldPath,
) -> Check<ClusterDiscovery> {
    let present: Vec<&str> = [
        ("catalog", raw.catalog.is_some()),
        ("dns", raw.dns.is_some()),
        ("etcd", raw.etcd.is_some()),
        ("mdns", raw.mdns.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, p)| p.then_some(k))
    .collect();
    ctx.at_most_one(path, &present, "a cluster's discovery names one source")?;
    let service = |c: &mut Ctx<'_>, l: Leafy<'_>, p: &FieldPath| {
        let text = c.str(l, p)?;
        meshgate_catalog::ServiceName::try_new(text)
            .map(|n| n.as_str().to_owned())
            .map_err(|e| c.at_leaf(l, p, format!("invalid service name {text:?}: {e}")))
    };
    let port = ctx.optional(&raw.port, path, "port", |c, l, p| c.int_in(l, p, 1, 65535));
    let port = port?.map(|p| u16::try_from(p).unwrap_or(u16::MAX));
    if raw.dns.is_none() && raw.port.is_some() {
        return Err(ctx.at_key(&path.key("port"), "port applies only to a dns source"));
    }
    if let Some(c) = ctx.optional(&raw.catalog, path, "catalog", service)? {
        return Ok(ClusterDiscovery::Catalog(c));
    }
    if let Some(e) = ctx.optional(&raw.etcd, path, "etcd", service)? {
        return Ok(ClusterDiscovery::Etcd(e));
    }
    if let Some(m) = ctx.optional(&raw.mdns, path, "mdns", service_type)? {
        return Ok(ClusterDiscovery::Mdns(m));
    }
    if let Some(name) = ctx.optional(&raw.dns, path, "dns", dns_name)? {
        if port.is_none() && !name.starts_with('_') {
            return Err(ctx.at_key(
                &path.key("dns"),
                format!("a dns source for A/AAAA records needs a port (discovery = {{ dns = {name:?}, port = 80 }}), or an SRV name starting with '_'"),
            ));
        }
        return Ok(ClusterDiscovery::Dns { name, port });
    }
    Err(ctx.at_value(
        path,
        "discovery needs one source: catalog, dns, etcd or mdns",
    ))
}

/// A DNS-SD service type: `_name._tcp` or `_name._udp`.
fn service_type(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<String> {
    let text = ctx.str(leaf, path)?;
    let t = text
        .strip_suffix(".local.")
        .or_else(|| text.strip_suffix(".local"))
        .unwrap_or(text);
    let ok = match t.split_once('.') {
        Some((name, proto)) => {
            // RFC 6763 section 7.2: 1 to 15 letters, digits and hyphens,
            // at least one letter, no hyphen at either end or twice in a row.
            let label = name.strip_prefix('_').unwrap_or("");
            (1..=15).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && label.bytes().any(|b| b.is_ascii_alphabetic())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && !label.contains("--")
                && matches!(proto, "_tcp" | "_udp")
        }
        None => false,
    };
    if !ok {
        return Err(ctx.at_leaf(
            leaf,
            path,
            format!("invalid mdns service type {text:?}: expected one like \"_http._tcp\""),
        ));
    }
    Ok(t.to_owned())
}

/// A DNS name to resolve.
fn dns_name(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<String> {
    let text = ctx.str(leaf, path)?;
    let bare = text.strip_suffix('.').unwrap_or(text);
    let ok = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !ok {
        return Err(ctx.at_leaf(
            leaf,
            path,
            format!("invalid DNS name {text:?}: expected a name like \"users.example.org\""),
        ));
    }
    Ok(bare.to_ascii_lowercase())
}
