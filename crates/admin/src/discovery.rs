//! `GET /members`, `GET /catalog/services` and `GET /catalog/services/{name}`:
//! the discovery agent's view of the gossip cluster and the service catalog.
//!
//! The app implements [`DiscoveryView`] over its gossip driver; this module
//! only renders. Without `[discovery]` the routes answer 404 with
//! `discovery_disabled`, so a script can tell "off" from "empty".

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use meshgate_catalog::{Directory, Instance, Origin};
use serde_json::{Value, json};

use crate::{AdminState, error};

/// One member of the gossip cluster, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The member's node name.
    pub name: String,
    /// Its gossip address.
    pub addr: std::net::SocketAddr,
    /// `alive`, `suspect`, `down` or `left`.
    pub state: &'static str,
    /// Its incarnation number.
    pub incarnation: u64,
    /// Whether this is the local node.
    pub local: bool,
}

/// What the discovery routes read.
pub trait DiscoveryView: Send + Sync {
    /// Every member this node knows of, itself included, sorted by name.
    fn members(&self) -> Vec<MemberView>;
    /// The gossip catalog: this node's services and every other member's.
    fn directory(&self) -> Arc<dyn Directory>;
}

/// The shared handle the admin state carries.
pub type Discovery = Arc<dyn DiscoveryView>;

fn disabled() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "discovery_disabled",
        "this node has no [discovery] section",
    )
}

/// `GET /members`.
pub(crate) async fn members(State(s): State<AdminState>) -> Response {
    let Some(d) = &s.discovery else {
        return disabled();
    };
    let members: Vec<Value> = d
        .members()
        .into_iter()
        .map(|m| {
            json!({
                "name": m.name,
                "addr": m.addr.to_string(),
                "state": m.state,
                "incarnation": m.incarnation,
                "local": m.local,
            })
        })
        .collect();
    Json(json!({ "members": members })).into_response()
}

/// `GET /catalog/services`: each service with its instance counts.
pub(crate) async fn services(State(s): State<AdminState>) -> Response {
    let Some(d) = &s.discovery else {
        return disabled();
    };
    let dir = d.directory();
    let services: Vec<Value> = dir
        .services()
        .into_iter()
        .map(|name| {
            let instances = dir.instances(name.as_str());
            let healthy = instances.iter().filter(|i| i.healthy).count();
            let mut tags: Vec<&str> = instances
                .iter()
                .flat_map(|i| i.tags.iter().map(String::as_str))
                .collect();
            tags.sort_unstable();
            tags.dedup();
            json!({
                "name": name.as_str(),
                "instances": instances.len(),
                "healthy": healthy,
                "tags": tags,
            })
        })
        .collect();
    Json(json!({ "services": services })).into_response()
}

/// `GET /catalog/services/{name}`: every instance, healthy or not.
pub(crate) async fn service(State(s): State<AdminState>, Path(name): Path<String>) -> Response {
    let Some(d) = &s.discovery else {
        return disabled();
    };
    let instances = d.directory().instances(&name);
    if instances.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_service",
            format!("no instance of service {name:?} is known"),
        );
    }
    let instances: Vec<Value> = instances.iter().map(instance).collect();
    Json(json!({ "name": name, "instances": instances })).into_response()
}

fn instance(i: &Instance) -> Value {
    json!({
        "id": i.id,
        "node": i.node,
        "address": i.addr.ip().to_string(),
        "port": i.addr.port(),
        "tags": i.tags,
        "meta": i.meta,
        "healthy": i.healthy,
        "origin": match i.origin {
            Origin::Local => "local",
            Origin::Gossip => "gossip",
            Origin::Etcd => "etcd",
            Origin::Mdns => "mdns",
        },
    })
}
