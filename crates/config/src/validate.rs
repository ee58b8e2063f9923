//! Raw → typed: checks every field and collects every mistake.
//!
//! Each section's checker returns [`Check<T>`]: the typed value, or
//! [`Reported`] once the problem has been recorded in the [`Ctx`]. Checkers
//! evaluate *all* of a struct's fields before combining them with `?`, so
//! one bad field never hides the next. Cross-references (a route's listener
//! and cluster) are resolved against name tables built from the raw
//! sections, so a cluster with a bad weight still counts as defined and does
//! not cause a second, misleading "no cluster named" error.

mod admin;
mod auth;
mod breakers;
mod cluster;
mod discovery;
mod failover;
mod fields;
mod firewall;
mod health;
mod listener;
mod matcher;
mod mesh;
mod names;
mod rate_limit;
mod resilience;
mod route;
mod secrets;
mod services;
mod sidecar;
mod tls;

use std::ops::Range;

use toml::Spanned;

use crate::env::Environment;
use crate::error::ConfigError;
use crate::leaf::Leaf;
use crate::locate::{LineIndex, Locator};
use crate::path::FieldPath;
use crate::raw::{RawCluster, RawConfig, RawListener, RawRoute};
use crate::suggest;
use crate::types::Config;
use crate::unknown;

use self::names::Names;
use self::secrets::MasterKeySlot;

/// Marker: the problem has been recorded in the [`Ctx`]; the caller only
/// needs to know there is no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reported;

/// A checked value, or [`Reported`].
pub(crate) type Check<T> = Result<T, Reported>;

/// Everything a checker needs to report an error with a position.
pub(crate) struct Ctx<'a> {
    file: &'a str,
    lines: LineIndex<'a>,
    locator: Locator<'a>,
    errors: Vec<ConfigError>,
    /// Things allowed but unwise, positioned like errors.
    warnings: Vec<ConfigError>,
    /// Environment variables and the base directory for relative files.
    env: &'a Environment,
    /// The master key for `enc:` values, once `[secrets]` was checked.
    master_key: MasterKeySlot,
}

/// Validates a whole raw config. `Err` means at least one error is in `ctx`.
pub(crate) fn config(ctx: &mut Ctx<'_>, raw: &RawConfig) -> Check<Config> {
    let root = FieldPath::root();
    // First: fields anywhere below may hold `enc:` values.
    secrets::master_key(ctx, raw.secrets.as_ref(), &root.key("secrets"));
    let (no_listeners, no_routes, no_clusters) = (Vec::new(), Vec::new(), Vec::new());
    let raw_listeners = raw.listeners.as_ref().unwrap_or(&no_listeners);
    let raw_routes = raw.routes.as_ref().unwrap_or(&no_routes);
    let raw_clusters = raw.clusters.as_ref().unwrap_or(&no_clusters);

    let runtime = match &raw.runtime {
        Some(r) => listener::runtime(ctx, r, &root.key("runtime")),
        None => Ok(Default::default()),
    };
    let firewall = match &raw.firewall {
        Some(f) => firewall::firewall(ctx, f, &root.key("firewall")),
        None => Ok(crate::firewall::Firewall::default()),
    };
    let admin = raw
        .admin
        .as_ref()
        .map(|a| admin::admin(ctx, a, &root.key("admin")))
        .transpose();

    // The sidecar's entries join the written ones, each with its own path.
    let expanded = match &raw.sidecar {
        Some(s) => sidecar::expand(ctx, s, &root.key("sidecar")),
        None => sidecar::Expanded::default(),
    };
    // The mesh applies to the sidecar's inbound listener and outbound
    // clusters.
    let mesh = raw
        .mesh
        .as_ref()
        .map(|m| {
            let listeners = expanded.mesh_listeners();
            let clusters = raw
                .sidecar
                .iter()
                .flat_map(|s| s.outbound.as_deref().unwrap_or_default())
                .filter_map(|o| match o.cluster.as_ref().map(|c| c.get_ref()) {
                    Some(crate::leaf::Leaf::String(name)) => Some(name.clone()),
                    _ => None,
                })
                .collect();
            mesh::mesh(ctx, m, &root.key("mesh"), listeners, clusters)
        })
        .transpose();
    let discovery = raw
        .discovery
        .as_ref()
        .map(|d| discovery::discovery(ctx, d, &root.key("discovery")))
        .transpose();
    let services = services::services(ctx, raw.services.as_deref().unwrap_or_default(), &root);
    if let (Ok(Some(d)), Ok(s)) = (&discovery, &services) {
        services::fit_gossip(ctx, d, s, &root);
    }
    let cluster_path = root.key("clusters");
    let raw_clusters: Vec<(&RawCluster, FieldPath)> = raw_clusters
        .iter()
        .enumerate()
        .map(|(i, c)| (c, cluster_path.index(i)))
        .chain(expanded.clusters.iter().map(|(c, p)| (c, p.clone())))
        .collect();
    let cluster_names = Names::collect(
        ctx,
        "cluster",
        raw_clusters.iter().map(|(c, p)| (&c.name, p)),
    );

    let listener_path = root.key("listeners");
    let raw_listeners: Vec<(&RawListener, FieldPath)> = raw_listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (l, listener_path.index(i)))
        .chain(expanded.listeners.iter().map(|(l, p)| (l, p.clone())))
        .collect();
    let listener_names = Names::collect(
        ctx,
        "listener",
        raw_listeners
            .iter()
            .map(|(l, p)| (&l.name, p))
            .chain(expanded.transparent.iter().map(|t| (&t.name, &t.path))),
    );
    let mut listeners: Vec<_> = raw_listeners
        .iter()
        .map(|(l, path)| listener::listener(ctx, l, path, &cluster_names))
        .collect();
    let mut listener_paths: Vec<FieldPath> = raw_listeners.iter().map(|(_, p)| p.clone()).collect();
    if let Some(t) = &expanded.transparent {
        listeners.push(sidecar::transparent_listener(ctx, t, &cluster_names));
        listener_paths.push(t.path.clone());
    }
    listener::check_addresses(
        ctx,
        &listeners,
        &listener_paths,
        admin.as_ref().ok().and_then(Option::as_ref),
    );
    let clusters: Vec<_> = raw_clusters
        .iter()
        .map(|(c, path)| cluster::cluster(ctx, c, path))
        .collect();
    discovery::sources_configured(ctx, &clusters, &raw_clusters, discovery.as_ref().ok());

    let refs = route::Refs {
        listeners: &listener_names,
        clusters: &cluster_names,
        typed_clusters: &clusters,
    };
    let route_path = root.key("routes");
    let written_routes = raw_routes;
    let raw_routes: Vec<(&RawRoute, FieldPath)> = written_routes
        .iter()
        .enumerate()
        .map(|(i, r)| (r, route_path.index(i)))
        .chain(expanded.routes.iter().map(|(r, p)| (r, p.clone())))
        .collect();
    let routes: Vec<_> = raw_routes
        .iter()
        .enumerate()
        .map(|(i, (r, path))| route::route(ctx, r, i, path, &refs))
        .collect();
    route::check_names(ctx, written_routes, &route_path);
    let route_paths: Vec<&FieldPath> = raw_routes.iter().map(|(_, p)| p).collect();
    // A cluster that sends PROXY headers serves tcp listeners only: pooled
    // HTTP connections carry many clients' requests, and one header per
    // connection cannot name them all.
    for (i, route) in routes.iter().enumerate() {
        let Ok(route) = route else { continue };
        let crate::types::RouteAction::Proxy(action) = &route.action else {
            continue;
        };
        if let Some(Ok(c)) = clusters.get(action.cluster)
            && c.send_proxy_protocol.is_some()
            && let Some(path) = route_paths.get(i)
        {
            ctx.at_value(
                &path.key("cluster"),
                format!(
                    "cluster {:?} sends the PROXY protocol, which only tcp listeners can use; an http route needs a cluster without send_proxy_protocol",
                    c.name
                ),
            );
        }
    }
    // Nor can a udp listener: a PROXY header starts a connection, and
    // datagrams have none.
    for (i, listener) in listeners.iter().enumerate() {
        let Ok(listener) = listener else { continue };
        let Some(udp) = &listener.udp else { continue };
        if let Some(Ok(c)) = clusters.get(udp.cluster)
            && c.send_proxy_protocol.is_some()
            && let Some(path) = listener_paths.get(i)
        {
            ctx.at_value(
                &path.key("cluster"),
                format!(
                    "cluster {:?} sends the PROXY protocol, which only tcp listeners can use; a udp listener needs a cluster without send_proxy_protocol",
                    c.name
                ),
            );
        }
    }
    // A cluster that signs (`sign`) signs HTTP requests; a tcp or udp
    // listener forwards bytes, with no request to sign.
    for (i, listener) in listeners.iter().enumerate() {
        let Ok(listener) = listener else { continue };
        let Some(path) = listener_paths.get(i) else {
            continue;
        };
        let l4 = listener.l4.as_ref();
        let used = l4
            .and_then(|l| l.cluster)
            .map(|c| (c, path.key("cluster")))
            .into_iter()
            .chain(l4.into_iter().flat_map(move |l| {
                l.sni
                    .iter()
                    .enumerate()
                    .map(move |(j, s)| (s.cluster, path.key("sni").index(j).key("cluster")))
            }))
            .chain(
                listener
                    .udp
                    .as_ref()
                    .map(|u| (u.cluster, path.key("cluster"))),
            );
        for (cluster, at) in used {
            if let Some(Ok(c)) = clusters.get(cluster)
                && c.sign.is_some()
            {
                ctx.at_value(
                    &at,
                    format!(
                        "cluster {:?} signs HTTP requests (sign), and a {} listener forwards bytes with no request to sign; use a cluster without sign",
                        c.name,
                        listener.protocol.as_str()
                    ),
                );
            }
        }
    }
    // Routes belong to HTTP listeners; a tcp or udp one forwards everything
    // to its `cluster`.
    for (i, route) in routes.iter().enumerate() {
        let Ok(route) = route else { continue };
        if let Some(Ok(l)) = listeners.get(route.listener)
            && l.protocol != crate::types::ListenerProtocol::Http
            && let Some(path) = route_paths.get(i)
        {
            ctx.at_value(
                &path.key("listener"),
                format!(
                    "listener {:?} is a {} listener: it forwards everything to its cluster, and routes apply only to http listeners",
                    l.name,
                    l.protocol.as_str()
                ),
            );
        }
    }

    Ok(Config {
        source: None,
        runtime: runtime?,
        admin: admin?,
        listeners: listeners.into_iter().collect::<Check<_>>()?,
        routes: routes.into_iter().collect::<Check<_>>()?,
        clusters: clusters.into_iter().collect::<Check<_>>()?,
        firewall: firewall?,
        mesh: mesh?,
        discovery: discovery?,
        services: services?,
        warnings: Vec::new(),
    })
}

// === impl Ctx ===

impl<'a> Ctx<'a> {
    /// A context for `text` (displayed as `file`) and its parsed document,
    /// loaded in `env`.
    pub(crate) fn new(
        file: &'a str,
        text: &'a str,
        root: &'a toml_edit::Table,
        env: &'a Environment,
    ) -> Self {
        Self {
            file,
            lines: LineIndex::new(text),
            locator: Locator::new(root),
            errors: Vec::new(),
            warnings: Vec::new(),
            env,
            master_key: MasterKeySlot::Missing,
        }
    }

    /// The environment the config is loaded in.
    pub(crate) fn env(&self) -> &'a Environment {
        self.env
    }

    /// Records a warning about a leaf value: the config is valid, but
    /// something in it is unwise. Positioned and printed like an error.
    pub(crate) fn warn_at(
        &mut self,
        leaf: &Spanned<Leaf>,
        path: &FieldPath,
        message: impl Into<String>,
    ) {
        self.warn(Some(leaf.span()), path, message);
    }

    /// Records a warning at `span` (or with no position).
    pub(crate) fn warn(
        &mut self,
        span: Option<Range<usize>>,
        path: &FieldPath,
        message: impl Into<String>,
    ) {
        let (line, col) = span.map_or((0, 0), |s| self.lines.position(s.start));
        self.warnings.push(ConfigError {
            file: self.file.to_owned(),
            line,
            col,
            path: path.to_string(),
            message: message.into().replace(['\n', '\r'], " "),
        });
    }

    /// The warnings recorded, in file order.
    pub(crate) fn take_warnings(&mut self) -> Vec<ConfigError> {
        let mut warnings = std::mem::take(&mut self.warnings);
        warnings.sort_by_key(|w| (w.line, w.col));
        warnings
    }

    /// Records an error at `span` (or with no position). Newlines in the
    /// message are flattened so every error stays on one line.
    pub(crate) fn error_at(
        &mut self,
        span: Option<Range<usize>>,
        path: &FieldPath,
        message: impl Into<String>,
    ) -> Reported {
        let (line, col) = span.map_or((0, 0), |s| self.lines.position(s.start));
        let message = message.into().replace(['\n', '\r'], " ");
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line,
            col,
            path: path.to_string(),
            message,
        });
        Reported
    }

    /// `file:line:col: field`, as an error about `leaf` would start: for
    /// checks made later, outside validation (files the config names).
    pub(crate) fn origin(&self, leaf: &Spanned<Leaf>, path: &FieldPath) -> String {
        let (line, col) = self.lines.position(leaf.span().start);
        format!("{}:{line}:{col}: {path}", self.file)
    }

    /// `file:line:col: field` for the key at `path` (a table, say), as
    /// [`Ctx::origin`] gives it for a leaf.
    pub(crate) fn key_origin(&self, path: &FieldPath) -> String {
        let (line, col) = self
            .locator
            .key_span(path)
            .map_or((0, 0), |s| self.lines.position(s.start));
        format!("{}:{line}:{col}: {path}", self.file)
    }

    /// Records an error about a leaf value, at the value.
    pub(crate) fn at_leaf(
        &mut self,
        leaf: &Spanned<Leaf>,
        path: &FieldPath,
        message: impl Into<String>,
    ) -> Reported {
        self.error_at(Some(leaf.span()), path, message)
    }

    /// Records an error about the value (often a table) at `path`.
    pub(crate) fn at_value(&mut self, path: &FieldPath, message: impl Into<String>) -> Reported {
        let span = self.locator.value_span(path);
        self.error_at(span, path, message)
    }

    /// Records an error about the key at `path` itself.
    pub(crate) fn at_key(&mut self, path: &FieldPath, message: impl Into<String>) -> Reported {
        let span = self.locator.key_span(path);
        self.error_at(span, path, message)
    }

    /// Records a missing required field, positioned at its table.
    pub(crate) fn missing(&mut self, table: &FieldPath, key: &str) -> Reported {
        let span = self.locator.value_span(table);
        self.error_at(
            span,
            &table.key(key),
            format!("missing required field {key:?}"),
        )
    }

    /// Checks that at most one of mutually exclusive keys is set. `present`
    /// lists the ones that are; the first in file order wins and each later
    /// one is reported (at its key) as conflicting, with `rule` saying why.
    pub(crate) fn at_most_one(
        &mut self,
        table: &FieldPath,
        present: &[&str],
        rule: &str,
    ) -> Check<()> {
        if present.len() < 2 {
            return Ok(());
        }
        let mut keyed: Vec<(usize, &str)> = present
            .iter()
            .map(|k| {
                (
                    self.locator.key_span(&table.key(k)).map_or(0, |s| s.start),
                    *k,
                )
            })
            .collect();
        keyed.sort_by_key(|(start, _)| *start);
        let first = keyed[0].1;
        for (_, key) in &keyed[1..] {
            self.at_key(
                &table.key(key),
                format!("{key} conflicts with {first}: {rule}"),
            );
        }
        Err(Reported)
    }

    /// Records a key that no raw struct claimed, listing the valid ones.
    pub(crate) fn unknown_field(&mut self, path: &FieldPath) {
        let valid = unknown::valid_fields(&path.parent());
        let key = path.field_name().to_owned();
        let message = if valid.is_empty() {
            format!("unknown field {key:?}")
        } else {
            let hint = suggest::hint(&key, valid.iter().copied());
            format!(
                "unknown field {key:?}{hint}; valid fields: {}",
                valid.join(", ")
            )
        };
        self.at_key(path, message);
    }

    /// Names the field of an error that came with a span but no path.
    pub(crate) fn path_at(&self, offset: usize) -> FieldPath {
        self.locator.path_at(offset)
    }

    /// Every error recorded, sorted by position (stable, so errors at the
    /// same place keep the order they were found in).
    pub(crate) fn finish(mut self) -> Vec<ConfigError> {
        self.errors.sort_by_key(|e| (e.line, e.col));
        self.errors
    }
}
