//! `[runtime]` and `[[listeners]]`, and the sockets they (and the admin
//! API) bind.

use std::net::SocketAddr;
use std::num::NonZeroUsize;

use super::names::Names;
use super::{Check, Ctx, Reported};
use crate::admin::Admin;
use crate::path::FieldPath;
use crate::raw::{RawLimits, RawListener, RawRuntime, RawSni};
use crate::types::{
    HttpLimits, L4Listener, Listener, ListenerProtocol, ProxyProtocolMode, Runtime, SniRoute,
    UdpListener,
};

/// The most endpoints one TCP connection may try; each try waits up to the
/// cluster's connect timeout.
const MAX_CONNECT_ATTEMPTS: i64 = 10;

/// The most worker threads a config may ask for; far beyond any real core
/// count, low enough that a typo cannot exhaust the process's threads.
const MAX_WORKERS: i64 = 1024;

/// Checks `[runtime]`.
pub(super) fn runtime(ctx: &mut Ctx<'_>, raw: &RawRuntime, path: &FieldPath) -> Check<Runtime> {
    let defaults = Runtime::default();
    let workers = ctx.optional(&raw.workers, path, "workers", |c, l, p| {
        let n = c.int_in(l, p, 1, MAX_WORKERS)?;
        Ok(usize::try_from(n).ok().and_then(NonZeroUsize::new))
    });
    let drain_timeout = ctx.optional(&raw.drain_timeout, path, "drain_timeout", Ctx::duration);
    Ok(Runtime {
        // `int_in` ruled out 0 and anything beyond usize.
        workers: workers?.flatten(),
        drain_timeout: drain_timeout?.unwrap_or(defaults.drain_timeout),
    })
}

/// Checks one `[[listeners]]` entry (its name's uniqueness is checked by
/// the name table).
pub(super) fn listener(
    ctx: &mut Ctx<'_>,
    raw: &RawListener,
    path: &FieldPath,
    clusters: &Names,
) -> Check<Listener> {
    let name = ctx.required(&raw.name, path, "name", Ctx::name);
    let address = ctx.required(&raw.address, path, "address", Ctx::address);
    let protocol = ctx
        .optional(&raw.protocol, path, "protocol", |c, l, p| {
            c.choice(
                l,
                p,
                &[
                    ("http", ListenerProtocol::Http),
                    ("tcp", ListenerProtocol::Tcp),
                    ("udp", ListenerProtocol::Udp),
                ],
            )
        })
        .map(|p| p.unwrap_or(ListenerProtocol::Http));
    let limits = match &raw.limits {
        Some(limits) => self::limits(ctx, limits, &path.key("limits")),
        None => Ok(HttpLimits::default()),
    };
    let forwarding = match protocol {
        Ok(protocol) => self::forwarding(ctx, raw, path, protocol, clusters),
        Err(Reported) => Err(Reported),
    };
    let proxy_protocol = ctx.optional(&raw.proxy_protocol, path, "proxy_protocol", |c, l, p| {
        c.choice(
            l,
            p,
            &[
                ("optional", ProxyProtocolMode::Optional),
                ("required", ProxyProtocolMode::Required),
            ],
        )
    });
    let tls = match (&raw.tls, protocol) {
        (Some(raw), Ok(protocol)) => {
            super::tls::tls(ctx, raw, &path.key("tls"), protocol).map(Some)
        }
        (None, _) => Ok(None),
        (Some(_), Err(Reported)) => Err(Reported),
    };
    if raw.tls.is_some() && raw.sni.is_some() {
        return Err(ctx.at_key(
            &path.key("sni"),
            "sni routes TLS by its server name without terminating it, and tls terminates it: a listener does one or the other",
        ));
    }
    let (l4, udp) = forwarding?;
    Ok(Listener {
        tls: tls?,
        name: name?,
        address: address?,
        protocol: protocol?,
        limits: limits?,
        l4,
        udp,
        proxy_protocol: proxy_protocol?,
    })
}

/// The forwarding side of a `tcp` or `udp` listener: its cluster and
/// limits. Each field is refused (at its key) on the kinds of listener it
/// does not apply to, so a misplaced limit is never silently ignored.
fn forwarding(
    ctx: &mut Ctx<'_>,
    raw: &RawListener,
    path: &FieldPath,
    protocol: ListenerProtocol,
    clusters: &Names,
) -> Check<(Option<L4Listener>, Option<UdpListener>)> {
    let misplaced = misplaced(ctx, raw, path, protocol);
    let forwarding = match protocol {
        ListenerProtocol::Http => Ok((None, None)),
        ListenerProtocol::Tcp => l4(ctx, raw, path, clusters).map(|l4| (Some(l4), None)),
        ListenerProtocol::Udp => udp(ctx, raw, path, clusters).map(|udp| (None, Some(udp))),
    };
    if misplaced {
        return Err(Reported);
    }
    forwarding
}

/// Reports every present field that does not apply to a `protocol`
/// listener; returns whether there was one.
fn misplaced(
    ctx: &mut Ctx<'_>,
    raw: &RawListener,
    path: &FieldPath,
    protocol: ListenerProtocol,
) -> bool {
    use ListenerProtocol::{Http, Tcp, Udp};
    // Which protocols each field applies to, and how to say so.
    let fields: [(&str, bool, &[ListenerProtocol], &str); 9] = [
        ("limits", raw.limits.is_some(), &[Http], "\"http\""),
        (
            "cluster",
            raw.cluster.is_some(),
            &[Tcp, Udp],
            "\"tcp\" or \"udp\"",
        ),
        (
            "idle_timeout",
            raw.idle_timeout.is_some(),
            &[Tcp, Udp],
            "\"tcp\" or \"udp\"",
        ),
        (
            "max_connections",
            raw.max_connections.is_some(),
            &[Tcp],
            "\"tcp\"",
        ),
        (
            "max_connect_attempts",
            raw.max_connect_attempts.is_some(),
            &[Tcp],
            "\"tcp\"",
        ),
        ("sni", raw.sni.is_some(), &[Tcp], "\"tcp\""),
        // A PROXY header starts a connection; datagrams have none.
        (
            "proxy_protocol",
            raw.proxy_protocol.is_some(),
            &[Http, Tcp],
            "\"http\" or \"tcp\"",
        ),
        (
            "max_sessions",
            raw.max_sessions.is_some(),
            &[Udp],
            "\"udp\"",
        ),
        (
            "max_datagram_size",
            raw.max_datagram_size.is_some(),
            &[Udp],
            "\"udp\"",
        ),
    ];
    let (kind, own) = match protocol {
        Http => ("an http", "an http listener forwards by its routes"),
        Tcp => (
            "a tcp",
            "a tcp listener's own limits are max_connections, max_connect_attempts and idle_timeout",
        ),
        Udp => (
            "a udp",
            "a udp listener's own limits are max_sessions, max_datagram_size and idle_timeout",
        ),
    };
    let mut misplaced = false;
    for (key, _, _, applies) in fields
        .iter()
        .filter(|(_, present, to, _)| *present && !to.contains(&protocol))
    {
        ctx.at_key(
            &path.key(key),
            format!(
                "{key} does not apply to {kind} listener; it applies to protocol = {applies} listeners, and {own}"
            ),
        );
        misplaced = true;
    }
    misplaced
}

/// A `tcp` listener's cluster (or `sni` routes) and limits.
fn l4(
    ctx: &mut Ctx<'_>,
    raw: &RawListener,
    path: &FieldPath,
    clusters: &Names,
) -> Check<L4Listener> {
    let sni = match &raw.sni {
        Some(entries) => self::sni(ctx, entries, &path.key("sni"), clusters),
        None => Ok(Vec::new()),
    };
    // With `sni`, the cluster is the fallback and may be left out.
    let cluster = if raw.sni.is_some() {
        ctx.optional(&raw.cluster, path, "cluster", |c, l, p| {
            clusters.resolve(c, l, p)
        })
    } else {
        ctx.required(&raw.cluster, path, "cluster", |c, l, p| {
            clusters.resolve(c, l, p)
        })
        .map(Some)
    };
    let max_connections = ctx.optional(&raw.max_connections, path, "max_connections", |c, l, p| {
        c.count(l, p, 1)
    });
    let idle_timeout = ctx.optional(&raw.idle_timeout, path, "idle_timeout", Ctx::timeout);
    let attempts = ctx.optional(
        &raw.max_connect_attempts,
        path,
        "max_connect_attempts",
        |c, l, p| {
            let n = c.int_in(l, p, 1, MAX_CONNECT_ATTEMPTS)?;
            Ok(u32::try_from(n).unwrap_or(1))
        },
    );
    let mut l4 = L4Listener::defaults(cluster?);
    l4.sni = sni?;
    if let Some(n) = max_connections? {
        l4.max_connections = n;
    }
    if let Some(t) = idle_timeout? {
        l4.idle_timeout = t;
    }
    if let Some(n) = attempts? {
        l4.max_connect_attempts = n;
    }
    Ok(l4)
}

/// A `udp` listener's cluster and limits.
fn udp(
    ctx: &mut Ctx<'_>,
    raw: &RawListener,
    path: &FieldPath,
    clusters: &Names,
) -> Check<UdpListener> {
    let cluster = ctx.required(&raw.cluster, path, "cluster", |c, l, p| {
        clusters.resolve(c, l, p)
    });
    let idle_timeout = ctx.optional(&raw.idle_timeout, path, "idle_timeout", Ctx::timeout);
    let max_sessions = ctx.optional(&raw.max_sessions, path, "max_sessions", |c, l, p| {
        c.count(l, p, 1)
    });
    let max_datagram_size = ctx.optional(
        &raw.max_datagram_size,
        path,
        "max_datagram_size",
        |c, l, p| {
            let n = c.size(l, p)?;
            match usize::try_from(n) {
                Ok(n) if (1..=UdpListener::MAX_DATAGRAM).contains(&n) => Ok(n),
                _ => Err(c.at_leaf(
                    l,
                    p,
                    format!(
                        "max_datagram_size must be between 1 and {} bytes (the largest UDP payload), got {n}",
                        UdpListener::MAX_DATAGRAM
                    ),
                )),
            }
        },
    );
    let mut udp = UdpListener::defaults(cluster?);
    if let Some(t) = idle_timeout? {
        udp.idle_timeout = t;
    }
    if let Some(n) = max_sessions? {
        udp.max_sessions = n;
    }
    if let Some(n) = max_datagram_size? {
        udp.max_datagram_size = n;
    }
    Ok(udp)
}

/// Checks a tcp listener's `sni` list.
fn sni(
    ctx: &mut Ctx<'_>,
    entries: &[RawSni],
    path: &FieldPath,
    clusters: &Names,
) -> Check<Vec<SniRoute>> {
    if entries.is_empty() {
        return Err(ctx.at_value(
            path,
            "sni must not be empty; leave it out to send every connection to cluster",
        ));
    }
    let routes: Vec<Check<SniRoute>> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let path = path.index(i);
            let names = ctx.required(&e.server_names, &path, "server_names", |c, l, p| {
                let items = c.array(l, p)?;
                if items.is_empty() {
                    return Err(c.at_leaf(l, p, "server_names must list at least one name"));
                }
                let names: Vec<_> = items
                    .iter()
                    .enumerate()
                    .map(|(j, n)| super::matcher::host(c, n, &p.index(j)))
                    .collect();
                names.into_iter().collect()
            });
            let cluster = ctx.required(&e.cluster, &path, "cluster", |c, l, p| {
                clusters.resolve(c, l, p)
            });
            Ok(SniRoute {
                server_names: names?,
                cluster: cluster?,
            })
        })
        .collect();
    routes.into_iter().collect()
}

/// Checks a listener's `limits`.
fn limits(ctx: &mut Ctx<'_>, raw: &RawLimits, path: &FieldPath) -> Check<HttpLimits> {
    let defaults = HttpLimits::default();
    let max_header_bytes = ctx.optional(
        &raw.max_header_bytes,
        path,
        "max_header_bytes",
        |c, l, p| {
            let n = c.size(l, p)?;
            if n == 0 {
                return Err(c.at_leaf(l, p, "max_header_bytes must be at least 1 byte"));
            }
            usize::try_from(n).map_err(|_| {
                c.at_leaf(
                    l,
                    p,
                    format!("max_header_bytes is too large for this platform, got {n}"),
                )
            })
        },
    );
    let max_headers = ctx.optional(&raw.max_headers, path, "max_headers", |c, l, p| {
        c.count(l, p, 1)
    });
    let max_body_bytes = ctx.optional(&raw.max_body_bytes, path, "max_body_bytes", Ctx::size);
    let header_read_timeout = ctx.optional(
        &raw.header_read_timeout,
        path,
        "header_read_timeout",
        Ctx::timeout,
    );
    let idle_timeout = ctx.optional(&raw.idle_timeout, path, "idle_timeout", Ctx::timeout);
    let tunnel_idle_timeout = ctx.optional(
        &raw.tunnel_idle_timeout,
        path,
        "tunnel_idle_timeout",
        Ctx::timeout,
    );
    Ok(HttpLimits {
        max_header_bytes: max_header_bytes?.unwrap_or(defaults.max_header_bytes),
        max_headers: max_headers?.unwrap_or(defaults.max_headers),
        max_body_bytes: max_body_bytes?,
        header_read_timeout: header_read_timeout?.unwrap_or(defaults.header_read_timeout),
        idle_timeout: idle_timeout?.unwrap_or(defaults.idle_timeout),
        tunnel_idle_timeout: tunnel_idle_timeout?.unwrap_or(defaults.tunnel_idle_timeout),
    })
}

/// Reports listeners (and the admin listener) that would bind the same
/// socket: the same transport (TCP for http and tcp listeners and the
/// admin API, UDP for udp listeners: their ports are separate, so DNS can
/// take `:53` twice) and the same address, or the same port where one side
/// is the unspecified address (`0.0.0.0`, `[::]`) of the same family. Port
/// 0 asks the OS for a fresh port, so it never clashes.
pub(super) fn check_addresses(
    ctx: &mut Ctx<'_>,
    listeners: &[Check<Listener>],
    paths: &[FieldPath],
    admin: Option<&Admin>,
) {
    let section = |i: usize| {
        paths
            .get(i)
            .cloned()
            .unwrap_or_else(|| FieldPath::root().key("listeners").index(i))
    };
    let mut bound: Vec<(SocketAddr, usize, bool)> = Vec::new();
    for (i, listener) in listeners.iter().enumerate() {
        let Ok(listener) = listener else { continue };
        let datagram = listener.protocol.is_datagram();
        if let Some((other, first, _)) = bound
            .iter()
            .find(|(a, _, d)| *d == datagram && clash(*a, listener.address))
        {
            let path = section(i).key("address");
            let first = section(*first);
            let message = if *other == listener.address {
                format!(
                    "duplicate listener address {}; {first} already uses it",
                    listener.address
                )
            } else {
                format!(
                    "listener address {} overlaps {other} of {first}",
                    listener.address
                )
            };
            ctx.at_value(&path, message);
            continue;
        }
        bound.push((listener.address, i, datagram));
    }
    let Some(admin) = admin else { return };
    if let Some((other, i, _)) = bound
        .iter()
        .find(|(a, _, d)| !*d && clash(*a, admin.address))
    {
        let path = FieldPath::root().key("admin").key("address");
        let user = section(*i);
        let message = if *other == admin.address {
            format!("admin address {other} is already used by {user}")
        } else {
            format!("admin address {} overlaps {other} of {user}", admin.address)
        };
        ctx.at_value(&path, message);
    }
}

/// Whether binding both addresses would fail with "address in use".
fn clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}
