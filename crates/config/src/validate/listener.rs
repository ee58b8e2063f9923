//! `[runtime]`, `[admin]` and `[[listeners]]`, and the sockets they bind.

use std::net::SocketAddr;
use std::num::NonZeroUsize;

use super::{Check, Ctx};
use crate::path::FieldPath;
use crate::raw::{RawAdmin, RawLimits, RawListener, RawRuntime};
use crate::types::{Admin, HttpLimits, Listener, ListenerProtocol, Runtime};

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

/// Checks `[admin]`.
pub(super) fn admin(ctx: &mut Ctx<'_>, raw: &RawAdmin, path: &FieldPath) -> Check<Admin> {
    let address = ctx.required(&raw.address, path, "address", Ctx::address)?;
    Ok(Admin { address })
}

/// Checks one `[[listeners]]` entry (its name's uniqueness is checked by
/// the name table).
pub(super) fn listener(ctx: &mut Ctx<'_>, raw: &RawListener, path: &FieldPath) -> Check<Listener> {
    let name = ctx.required(&raw.name, path, "name", Ctx::name);
    let address = ctx.required(&raw.address, path, "address", Ctx::address);
    let protocol = ctx.optional(&raw.protocol, path, "protocol", |c, l, p| {
        c.choice(l, p, &[("http", ListenerProtocol::Http)])
    });
    let limits = match &raw.limits {
        Some(limits) => self::limits(ctx, limits, &path.key("limits")),
        None => Ok(HttpLimits::default()),
    };
    Ok(Listener {
        name: name?,
        address: address?,
        protocol: protocol?.unwrap_or(ListenerProtocol::Http),
        limits: limits?,
    })
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
/// socket: the same address, or the same port where one side is the
/// unspecified address (`0.0.0.0`, `[::]`) of the same family. Port 0 asks
/// the OS for a fresh port, so it never clashes.
pub(super) fn check_addresses(
    ctx: &mut Ctx<'_>,
    listeners: &[Check<Listener>],
    admin: Option<&Admin>,
) {
    let section = FieldPath::root().key("listeners");
    let mut bound: Vec<(SocketAddr, usize)> = Vec::new();
    for (i, listener) in listeners.iter().enumerate() {
        let Ok(listener) = listener else { continue };
        if let Some((other, first)) = bound.iter().find(|(a, _)| clash(*a, listener.address)) {
            let path = section.index(i).key("address");
            let message = if *other == listener.address {
                format!(
                    "duplicate listener address {}; {section}[{first}] already uses it",
                    listener.address
                )
            } else {
                format!(
                    "listener address {} overlaps {other} of {section}[{first}]",
                    listener.address
                )
            };
            ctx.at_value(&path, message);
            continue;
        }
        bound.push((listener.address, i));
    }
    let Some(admin) = admin else { return };
    if let Some((other, i)) = bound.iter().find(|(a, _)| clash(*a, admin.address)) {
        let path = FieldPath::root().key("admin").key("address");
        let message = if *other == admin.address {
            format!("admin address {other} is already used by {section}[{i}]")
        } else {
            format!(
                "admin address {} overlaps {other} of {section}[{i}]",
                admin.address
            )
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
