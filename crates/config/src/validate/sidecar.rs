//! `[sidecar]`: the listeners of one application's sidecar, written the
//! way Linkerd and Istio users think of them, expanded into the ordinary
//! listeners, routes and clusters the rest of meshgate already runs.
//!
//! - `inbound = { address, app, protocol }` becomes a cluster
//!   `sidecar.inbound` whose one endpoint is the application, and a
//!   listener of the same name in front of it (with a catch-all route when
//!   it speaks http).
//! - each `[[sidecar.outbound]]` with an `address` becomes a listener
//!   `sidecar.outbound.<cluster>` (and for http a catch-all route) that
//!   reaches the named cluster, so the application talks to localhost.
//! - `transparent = { address, passthrough }` becomes a tcp listener
//!   `sidecar.transparent` for connections an iptables REDIRECT sent there:
//!   each goes to the cluster whose outbound lists its original destination
//!   in `destinations`, or, with `passthrough`, to that destination as is.
//!
//! The generated entries are checked by the same checkers as written ones,
//! with paths under `sidecar`, so a mistake is reported at the field the
//! user wrote (`sidecar.outbound[0].cluster`). Each direction is its own
//! listener, route and cluster, so their metrics are separate.

use std::net::SocketAddr;

use toml::Spanned;

use super::fields::is_valid_name;
use super::names::Names;
use super::{Check, Ctx, Reported};
use crate::leaf::Leaf;
use crate::path::FieldPath;
use crate::raw::{Field, RawCluster, RawEndpoint, RawListener, RawRoute, RawSidecar};
use crate::types::{HttpLimits, L4Listener, Listener, ListenerProtocol, OriginalDst};

/// The name of the inbound listener, route and cluster.
const INBOUND: &str = "sidecar.inbound";
/// The name of the transparent capture listener.
const TRANSPARENT: &str = "sidecar.transparent";

/// What a `[sidecar]` section expands to, each entry with the path its
/// errors are reported under.
#[derive(Default)]
pub(super) struct Expanded {
    pub(super) listeners: Vec<(RawListener, FieldPath)>,
    pub(super) routes: Vec<(RawRoute, FieldPath)>,
    pub(super) clusters: Vec<(RawCluster, FieldPath)>,
    pub(super) transparent: Option<Transparent>,
}

/// `sidecar.transparent`, checked; its destinations' clusters are resolved
/// with the other references.
pub(super) struct Transparent {
    pub(super) address: SocketAddr,
    pub(super) passthrough: bool,
    pub(super) path: FieldPath,
    /// The listener's name, spanned at its table, for the name table.
    pub(super) name: Field,
    /// Each original destination with its outbound's `cluster` and path.
    pub(super) destinations: Vec<(SocketAddr, Spanned<Leaf>, FieldPath)>,
}

/// A generated string value, positioned at `span` (the field it came from).
fn string(span: std::ops::Range<usize>, value: &str) -> Field {
    Some(Spanned::new(span, Leaf::String(value.to_owned())))
}

/// The span of the first field present, for generated values.
fn span_of(fields: &[&Field]) -> std::ops::Range<usize> {
    fields
        .iter()
        .find_map(|f| f.as_ref().map(Spanned::span))
        .unwrap_or(0..0)
}

/// Whether a `protocol` leaf names a listener that takes a `cluster` (tcp
/// or udp) rather than routes. Anything else is left to the listener's own
/// check.
fn forwards(protocol: &Field) -> bool {
    matches!(protocol.as_ref().map(Spanned::get_ref), Some(Leaf::String(p)) if p == "tcp" || p == "udp")
}

/// Expands `raw` (at `path`, normally `sidecar`).
pub(super) fn expand(ctx: &mut Ctx<'_>, raw: &RawSidecar, path: &FieldPath) -> Expanded {
    let mut out = Expanded::default();
    if let Some(inbound) = &raw.inbound {
        let p = path.key("inbound");
        let span = span_of(&[&inbound.address, &inbound.app, &inbound.protocol]);
        // Without a valid app there is nothing to put the listener in
        // front of; its own address is still checked.
        if ctx.required(&inbound.app, &p, "app", Ctx::address).is_err() {
            let _ = ctx.required(&inbound.address, &p, "address", Ctx::address);
        } else {
            let endpoint = RawEndpoint {
                address: inbound.app.clone(),
                ..RawEndpoint::default()
            };
            let cluster = RawCluster {
                name: string(span.clone(), INBOUND),
                endpoints: Some(vec![endpoint]),
                ..RawCluster::default()
            };
            out.clusters.push((cluster, p.clone()));
            out.add(
                &p,
                string(span.clone(), INBOUND),
                &inbound.address,
                &inbound.protocol,
                &string(span, INBOUND),
            );
        }
    }
    let outbound = raw.outbound.as_deref().unwrap_or_default();
    let mut destinations = Vec::new();
    for (i, o) in outbound.iter().enumerate() {
        let p = path.key("outbound").index(i);
        let Some(cluster_leaf) = &o.cluster else {
            ctx.missing(&p, "cluster");
            continue;
        };
        let Ok(cluster) = ctx.str(cluster_leaf, &p.key("cluster")) else {
            continue;
        };
        let name = if is_valid_name(cluster) {
            format!("sidecar.outbound.{cluster}")
        } else {
            format!("sidecar.outbound.{i}") // the cluster's resolution reports it
        };
        if o.address.is_none() && o.destinations.is_none() {
            ctx.at_value(
                &p,
                "an outbound needs an address (a local listener for the application), destinations (for transparent capture), or both",
            );
            continue;
        }
        if o.address.is_some() {
            let span = span_of(&[&o.address, &o.cluster]);
            out.add(&p, string(span, &name), &o.address, &o.protocol, &o.cluster);
        }
        let Some(list) = &o.destinations else {
            continue;
        };
        let list_path = p.key("destinations");
        let Ok(items) = ctx.array(list, &list_path) else {
            continue;
        };
        for (j, item) in items.iter().enumerate() {
            if let Ok(addr) = ctx.address(item, &list_path.index(j)) {
                destinations.push((addr, item, cluster_leaf.clone(), p.key("cluster")));
            }
        }
    }
    out.transparent = transparent(ctx, raw, path, destinations);
    out
}

/// Checks `sidecar.transparent`, and that destinations are unique and have
/// a transparent listener to arrive at.
fn transparent(
    ctx: &mut Ctx<'_>,
    raw: &RawSidecar,
    path: &FieldPath,
    destinations: Vec<(SocketAddr, &Spanned<Leaf>, Spanned<Leaf>, FieldPath)>,
) -> Option<Transparent> {
    let Some(t) = &raw.transparent else {
        if let Some((_, item, _, _)) = destinations.first() {
            ctx.at_leaf(
                item,
                &path.key("outbound").key("destinations"),
                "destinations are original destinations of redirected connections; they need [sidecar.transparent] to arrive at",
            );
        }
        return None;
    };
    let p = path.key("transparent");
    let address = ctx.required(&t.address, &p, "address", Ctx::address);
    let passthrough = ctx.optional(&t.passthrough, &p, "passthrough", Ctx::boolean);
    let mut seen: Vec<SocketAddr> = Vec::new();
    let mut unique = Vec::new();
    for (addr, item, cluster, cluster_path) in destinations {
        if seen.contains(&addr) {
            ctx.at_leaf(
                item,
                &path.key("outbound").key("destinations"),
                format!("destination {addr} is listed by two outbounds; each original destination means one cluster"),
            );
            continue;
        }
        seen.push(addr);
        unique.push((addr, cluster, cluster_path));
    }
    let address: Check<SocketAddr> = address;
    Some(Transparent {
        address: address.ok()?,
        passthrough: passthrough.ok()?.unwrap_or(true),
        name: string(span_of(&[&t.address]), TRANSPARENT),
        path: p,
        destinations: unique,
    })
}

impl Expanded {
    /// The listeners mesh mTLS terminates on: the inbound, unless it is
    /// udp (no TLS there).
    pub(super) fn mesh_listeners(&self) -> Vec<String> {
        self.listeners
            .iter()
            .filter(|(l, _)| !matches!(l.protocol.as_ref().map(|p| p.get_ref()), Some(Leaf::String(p)) if p == "udp"))
            .filter_map(|(l, _)| match l.name.as_ref().map(|n| n.get_ref()) {
                Some(Leaf::String(n)) if n == INBOUND => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    /// A listener called `name` at `address` reaching `cluster`: a tcp or
    /// udp listener names the cluster itself, an http one gets a catch-all
    /// route to it.
    fn add(
        &mut self,
        path: &FieldPath,
        name: Field,
        address: &Field,
        protocol: &Field,
        cluster: &Field,
    ) {
        let forwarding = forwards(protocol);
        let listener = RawListener {
            name: name.clone(),
            address: address.clone(),
            protocol: protocol.clone(),
            cluster: if forwarding { cluster.clone() } else { None },
            ..RawListener::default()
        };
        self.listeners.push((listener, path.clone()));
        if !forwarding {
            let route = RawRoute {
                name: name.clone(),
                listener: name,
                cluster: cluster.clone(),
                ..RawRoute::default()
            };
            self.routes.push((route, path.clone()));
        }
    }
}

/// The typed `sidecar.transparent` listener: a tcp listener with no
/// cluster of its own, whose connections go where their original
/// destination says.
pub(super) fn transparent_listener(
    ctx: &mut Ctx<'_>,
    t: &Transparent,
    clusters: &Names,
) -> Check<Listener> {
    let mut destinations = Vec::new();
    let mut failed = false;
    for (addr, cluster, path) in &t.destinations {
        match clusters.resolve(ctx, cluster, path) {
            Ok(index) => destinations.push((*addr, index)),
            Err(_) => failed = true,
        }
    }
    if failed {
        return Err(Reported);
    }
    Ok(Listener {
        name: TRANSPARENT.to_owned(),
        address: t.address,
        protocol: ListenerProtocol::Tcp,
        limits: HttpLimits::default(),
        l4: Some(L4Listener {
            original_dst: Some(OriginalDst {
                destinations,
                passthrough: t.passthrough,
            }),
            ..L4Listener::defaults(None)
        }),
        udp: None,
        proxy_protocol: None,
        tls: None,
    })
}
