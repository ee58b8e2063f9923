//! `[[clusters]]`: policy, protocol, timeouts, pool and endpoints; the
//! resilience tables are checked in `resilience.rs` and `breakers.rs`,
//! `health_check` in `health.rs`, and priorities, `overprovisioning_factor`
//! and `slow_start` in `failover.rs`, `tls` in `tls.rs`, `sign` in `auth.rs`.

use super::{Check, Ctx, breakers, failover, health, resilience};
use crate::path::FieldPath;
use crate::raw::{RawCluster, RawEndpoint, RawPool};
use crate::types::{
    Cluster, Endpoint, LbPolicy, PoolSettings, ProxyProtocolVersion, UpstreamProtocol,
};

/// The `lb` values, in the order error messages list them.
pub(crate) const LB_POLICIES: &[(&str, LbPolicy)] = &[
    ("round_robin", LbPolicy::RoundRobin),
    ("weighted_round_robin", LbPolicy::WeightedRoundRobin),
    ("random", LbPolicy::Random),
    ("least_request", LbPolicy::LeastRequest),
    ("ring_hash", LbPolicy::RingHash),
    ("maglev", LbPolicy::Maglev),
];

/// The cluster `protocol` values.
const PROTOCOLS: &[(&str, UpstreamProtocol)] = &[
    ("http1", UpstreamProtocol::Http1),
    ("h2", UpstreamProtocol::Http2),
];

/// Checks one `[[clusters]]` entry (its name's uniqueness is checked by the
/// name table).
pub(super) fn cluster(ctx: &mut Ctx<'_>, raw: &RawCluster, path: &FieldPath) -> Check<Cluster> {
    let name = ctx.required(&raw.name, path, "name", Ctx::name);
    let lb = ctx.optional(&raw.lb, path, "lb", |c, l, p| c.choice(l, p, LB_POLICIES));
    let protocol = ctx.optional(&raw.protocol, path, "protocol", |c, l, p| {
        c.choice(l, p, PROTOCOLS)
    });
    let connect_timeout = ctx.optional(&raw.connect_timeout, path, "connect_timeout", Ctx::timeout);
    let pool = match &raw.pool {
        Some(pool) => self::pool(ctx, pool, &path.key("pool")),
        None => Ok(PoolSettings::default()),
    };
    let discovery = raw
        .discovery
        .as_ref()
        .map(|d| super::discovery::cluster_discovery(ctx, d, &path.key("discovery")))
        .transpose();
    let endpoints = match (&raw.endpoints, &raw.discovery) {
        // Discovered endpoints may stand alone, or join static ones.
        (None, Some(_)) => Ok(Vec::new()),
        (e, _) => endpoints(ctx, e.as_deref(), path),
    };
    let panic_threshold = ctx.optional(
        &raw.panic_threshold,
        path,
        "panic_threshold",
        resilience::percent,
    );
    let overprovisioning_factor = ctx.optional(
        &raw.overprovisioning_factor,
        path,
        "overprovisioning_factor",
        failover::overprovisioning_factor,
    );
    let slow_start = failover::slow_start(ctx, raw.slow_start.as_ref(), &path.key("slow_start"));
    let outlier_detection = resilience::outlier_detection(
        ctx,
        raw.outlier_detection.as_ref(),
        &path.key("outlier_detection"),
    );
    let retry_budget =
        resilience::retry_budget(ctx, raw.retry_budget.as_ref(), &path.key("retry_budget"));
    let circuit_breakers = breakers::circuit_breakers(
        ctx,
        raw.circuit_breakers.as_ref(),
        &path.key("circuit_breakers"),
    );
    let health_check =
        health::health_check(ctx, raw.health_check.as_ref(), &path.key("health_check"));
    let send_proxy_protocol = ctx.optional(
        &raw.send_proxy_protocol,
        path,
        "send_proxy_protocol",
        |c, l, p| {
            c.choice(
                l,
                p,
                &[
                    ("v1", ProxyProtocolVersion::V1),
                    ("v2", ProxyProtocolVersion::V2),
                ],
            )
        },
    );
    let sign = raw
        .sign
        .as_ref()
        .map(|s| super::auth::sign(ctx, s, &path.key("sign")));
    let tls = match &raw.tls {
        Some(tls) => super::tls::cluster_tls(ctx, tls, &path.key("tls")).map(Some),
        None => Ok(None),
    };
    Ok(Cluster {
        tls: tls?,
        name: name?,
        lb: lb?.unwrap_or(LbPolicy::RoundRobin),
        protocol: protocol?.unwrap_or(UpstreamProtocol::Http1),
        endpoints: endpoints?,
        connect_timeout: connect_timeout?.unwrap_or(Cluster::DEFAULT_CONNECT_TIMEOUT),
        pool: pool?,
        outlier_detection: outlier_detection?,
        retry_budget: retry_budget?,
        overprovisioning_factor: overprovisioning_factor?
            .unwrap_or(failover::DEFAULT_OVERPROVISIONING_FACTOR),
        slow_start: slow_start?,
        health_check: health_check?,
        circuit_breakers: circuit_breakers?,
        send_proxy_protocol: send_proxy_protocol?,
        panic_threshold: panic_threshold?.unwrap_or(resilience::DEFAULT_PANIC_THRESHOLD),
        sign: sign.transpose()?,
        discovery: discovery?,
    })
}

/// Checks a cluster's `pool`.
fn pool(ctx: &mut Ctx<'_>, raw: &RawPool, path: &FieldPath) -> Check<PoolSettings> {
    let defaults = PoolSettings::default();
    let max_idle = ctx.optional(
        &raw.max_idle_per_endpoint,
        path,
        "max_idle_per_endpoint",
        |c, l, p| c.count(l, p, 0),
    );
    let idle_timeout = ctx.optional(&raw.idle_timeout, path, "idle_timeout", Ctx::timeout);
    Ok(PoolSettings {
        max_idle_per_endpoint: max_idle?.unwrap_or(defaults.max_idle_per_endpoint),
        idle_timeout: idle_timeout?.unwrap_or(defaults.idle_timeout),
    })
}

/// Checks `endpoints`: present, not empty, each valid, no address twice.
fn endpoints(
    ctx: &mut Ctx<'_>,
    raw: Option<&[RawEndpoint]>,
    cluster: &FieldPath,
) -> Check<Vec<Endpoint>> {
    let Some(raw) = raw else {
        return Err(ctx.missing(cluster, "endpoints"));
    };
    let path = cluster.key("endpoints");
    if raw.is_empty() {
        return Err(ctx.at_value(
            &path,
            "endpoints must not be empty; a cluster needs at least one endpoint",
        ));
    }
    let checked: Vec<Check<Endpoint>> = raw
        .iter()
        .enumerate()
        .map(|(i, e)| endpoint(ctx, e, &path.index(i)))
        .collect();
    let mut duplicates = false;
    for (i, endpoint) in checked.iter().enumerate() {
        let Ok(endpoint) = endpoint else { continue };
        let first = checked[..i]
            .iter()
            .position(|e| e.as_ref().is_ok_and(|e| e.address == endpoint.address));
        if let Some(first) = first {
            let at = path.index(i).key("address");
            let address = endpoint.address;
            ctx.at_value(
                &at,
                format!("duplicate endpoint address {address}; {path}[{first}] already has it"),
            );
            duplicates = true;
        }
    }
    let endpoints = checked.into_iter().collect::<Check<Vec<_>>>()?;
    if duplicates {
        Err(super::Reported)
    } else {
        Ok(endpoints)
    }
}

/// Checks one endpoint.
fn endpoint(ctx: &mut Ctx<'_>, raw: &RawEndpoint, path: &FieldPath) -> Check<Endpoint> {
    let address = ctx.required(&raw.address, path, "address", |c, l, p| {
        let address = c.address(l, p)?;
        if address.port() == 0 {
            return Err(c.at_leaf(
                l,
                p,
                format!("invalid address \"{address}\": an endpoint needs a port other than 0"),
            ));
        }
        Ok(address)
    });
    let weight = ctx.optional(&raw.weight, path, "weight", |c, l, p| {
        c.int_in(l, p, 1, 1000)
    });
    let priority = ctx.optional(&raw.priority, path, "priority", failover::priority);
    Ok(Endpoint {
        address: address?,
        // 1..=1000 always fits a u32.
        weight: weight?.map_or(1, |w| u32::try_from(w).unwrap_or(1)),
        priority: priority?.unwrap_or(0),
    })
}
