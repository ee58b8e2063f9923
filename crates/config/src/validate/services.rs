//! `[[services]]`: the services this node runs and publishes (gossip,
//! etcd, DNS-SD), each checked alone, then together: ids are unique, and
//! with `[discovery]` the whole list must fit in the node's gossip catalog
//! entry, which travels whole in one broadcast.

use std::collections::BTreeMap;

use toml::Spanned;

use super::discovery::node_name;
use super::{Check, Ctx, Reported, health};
use crate::discovery::{Discovery, Service};
use crate::leaf::Leaf;
use crate::path::FieldPath;
use crate::raw::RawService;

/// Checks `[[services]]`: each entry, and no id twice.
pub(super) fn services(
    ctx: &mut Ctx<'_>,
    raw: &[RawService],
    root: &FieldPath,
) -> Check<Vec<Service>> {
    let path = root.key("services");
    let checked: Vec<Check<Service>> = raw
        .iter()
        .enumerate()
        .map(|(i, s)| service(ctx, s, &path.index(i)))
        .collect();
    let mut duplicate = false;
    for (i, s) in checked.iter().enumerate() {
        let Ok(s) = s else { continue };
        let first = checked[..i]
            .iter()
            .position(|o| o.as_ref().is_ok_and(|o| o.id == s.id));
        if let Some(first) = first {
            ctx.at_value(
                &path.index(i),
                format!(
                    "duplicate service id {:?}; {path}[{first}] already has it (set id)",
                    s.id
                ),
            );
            duplicate = true;
        }
    }
    let services = checked.into_iter().collect::<Check<Vec<_>>>()?;
    if duplicate {
        Err(Reported)
    } else {
        Ok(services)
    }
}
/// Checks one `[[services]]` entry.
fn service(ctx: &mut Ctx<'_>, raw: &RawService, path: &FieldPath) -> Check<Service> {
    let name = ctx.required(&raw.name, path, "name", |c, l, p| {
        let text = c.str(l, p)?;
        meshgate_catalog::ServiceName::try_new(text)
            .map(|n| n.as_str().to_owned())
            .map_err(|e| c.at_leaf(l, p, format!("invalid service name {text:?}: {e}")))
    });
    let address = ctx.required(&raw.address, path, "address", |c, l, p| {
        let a = c.address(l, p)?;
        if a.port() == 0 || a.ip().is_unspecified() {
            return Err(c.at_leaf(
                l,
                p,
                format!("invalid address \"{a}\": a service needs a reachable IP and a port other than 0"),
            ));
        }
        Ok(a)
    });
    let id = ctx.optional(&raw.id, path, "id", node_name);
    let tags = ctx.optional(&raw.tags, path, "tags", Ctx::strings);
    let meta = raw
        .meta
        .as_ref()
        .map(|m| meta(ctx, m, &path.key("meta")))
        .transpose();
    let health_check =
        health::health_check(ctx, raw.health_check.as_ref(), &path.key("health_check"));
    let (name, address) = (name?, address?);
    Ok(Service {
        id: id?.unwrap_or_else(|| format!("{name}-{address}")),
        name,
        address,
        tags: tags?.unwrap_or_default(),
        meta: meta?.unwrap_or_default(),
        health_check: health_check?,
    })
}

/// A service's `meta` table: string values only.
fn meta(
    ctx: &mut Ctx<'_>,
    raw: &BTreeMap<String, Spanned<Leaf>>,
    path: &FieldPath,
) -> Check<BTreeMap<String, String>> {
    let checked: Vec<Check<(String, String)>> = raw
        .iter()
        .map(|(k, v)| ctx.string(v, &path.key(k)).map(|v| (k.clone(), v)))
        .collect();
    checked.into_iter().collect()
}

/// The length assumed for a node name that is not configured: the node then
/// uses its host name, which Linux caps at 64 bytes (`HOST_NAME_MAX`).
const HOST_NAME_MAX: usize = 64;

/// With `[discovery]`, reports the first service whose entry pushes the
/// node's gossip catalog entry past its limit: the gossip core would refuse
/// the whole list once the node runs, and the services would not be
/// published at all.
pub(super) fn fit_gossip(
    ctx: &mut Ctx<'_>,
    discovery: &Discovery,
    services: &[Service],
    root: &FieldPath,
) {
    let assumed;
    let node = match &discovery.node_name {
        Some(n) => n.as_str(),
        None => {
            assumed = "x".repeat(HOST_NAME_MAX);
            &assumed
        }
    };
    fn entry(s: &Service) -> meshgate_catalog::EntryService<'_> {
        meshgate_catalog::EntryService {
            service: &s.name,
            id: &s.id,
            addr: s.address,
            tags: &s.tags,
            meta: &s.meta,
        }
    }
    let max = meshgate_catalog::MAX_GOSSIP_ENTRY_BYTES;
    let total = meshgate_catalog::gossip_entry_bound(node, services.iter().map(entry));
    if total <= max {
        return;
    }
    // The first service that does not fit: the bound of the list up to it
    // is over the limit (the whole list is, so there is one).
    let first = (0..services.len())
        .find(|&i| {
            meshgate_catalog::gossip_entry_bound(node, services[..=i].iter().map(entry)) > max
        })
        .unwrap_or(0);
    ctx.at_value(
        &root.key("services").index(first),
        format!(
            "this service does not fit in the node's gossip catalog entry: the {} services take up to {total} bytes, and at most {max} fit (the entry travels whole in one gossip broadcast); shorten ids, tags or meta, or publish fewer services from this node",
            services.len()
        ),
    );
}
