//! The gossip catalog: every node's services, as one versioned entry per
//! node.
//!
//! A node owns its entry (name, generation, version, records) and is the
//! only one that changes it: each change bumps the version and is spread as
//! a foca custom broadcast ([`crate::broadcast`]); anti-entropy
//! ([`crate::antientropy`]) repairs what a node missed. Any copy with a
//! higher `(generation, version)` replaces an older one. When a node goes
//! down or leaves, its entry is removed, and an entry for a generation known
//! to be dead is refused so that a laggard cannot bring it back.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use meshgate_catalog::{Directory, Instance, Origin, ServiceName};
use serde::{Deserialize, Serialize};

/// One of this node's own services, as the caller configures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalService {
    /// The service it is an instance of.
    pub service: ServiceName,
    /// Unique among this node's services (e.g. `node/service/addr`).
    pub id: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Free-form metadata.
    pub meta: BTreeMap<String, String>,
    /// Whether its health check passes.
    pub healthy: bool,
}

/// A service instance as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) service: String,
    pub(crate) id: String,
    pub(crate) addr: SocketAddr,
    pub(crate) tags: Vec<String>,
    pub(crate) meta: Vec<(String, String)>,
    pub(crate) healthy: bool,
}

impl From<&LocalService> for Record {
    fn from(s: &LocalService) -> Self {
        Self {
            service: s.service.as_str().to_owned(),
            id: s.id.clone(),
            addr: s.addr,
            tags: s.tags.clone(),
            meta: s.meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            healthy: s.healthy,
        }
    }
}

/// A node's whole catalog entry; the unit of dissemination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) node: String,
    /// The node's gossip address: lets a node that learns the entry (by
    /// anti-entropy, say after joining) learn the member too.
    pub(crate) addr: SocketAddr,
    pub(crate) generation: u64,
    pub(crate) version: u64,
    /// Set by a node that leaves gracefully: its services go at once.
    pub(crate) left: bool,
    pub(crate) records: Vec<Record>,
}

impl Entry {
    pub(crate) fn stamp(&self) -> (u64, u64) {
        (self.generation, self.version)
    }
}

/// What [`Catalog::offer`] did with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Newer than what we had: kept.
    Accepted,
    /// Same or older, ours, or of a dead generation: ignored.
    Ignored,
}

/// The catalog state of one node.
#[derive(Debug)]
pub(crate) struct Catalog {
    local: String,
    entries: BTreeMap<String, Entry>,
    /// Highest generation of each node known to be down or gone.
    dead: HashMap<String, u64>,
    /// Bumped on every change; consumers compare it.
    pub(crate) version: u64,
    snapshot: Option<CatalogSnapshot>,
    /// The generation of each node that announced it left, kept after its
    /// entry is removed so that members can still show it as left.
    departed: HashMap<String, u64>,
}

impl Catalog {
    pub(crate) fn new(local: String) -> Self {
        Self {
            local,
            entries: BTreeMap::new(),
            dead: HashMap::new(),
            version: 0,
            snapshot: None,
            departed: HashMap::new(),
        }
    }

    fn changed(&mut self) {
        self.version += 1;
        self.snapshot = None;
    }

    /// Installs this node's own entry (always accepted).
    pub(crate) fn set_local(&mut self, entry: Entry) {
        self.entries.insert(entry.node.clone(), entry);
        self.changed();
    }

    /// Offers another node's entry, from a broadcast or anti-entropy.
    pub(crate) fn offer(&mut self, entry: Entry) -> Offer {
        if entry.node == self.local {
            return Offer::Ignored;
        }
        if self
            .dead
            .get(&entry.node)
            .is_some_and(|&g| entry.generation <= g)
        {
            return Offer::Ignored;
        }
        if self
            .entries
            .get(&entry.node)
            .is_some_and(|old| old.stamp() >= entry.stamp())
        {
            return Offer::Ignored;
        }
        if entry.left {
            self.departed.insert(entry.node.clone(), entry.generation);
        } else {
            self.departed.remove(&entry.node);
        }
        self.entries.insert(entry.node.clone(), entry);
        self.changed();
        Offer::Accepted
    }

    /// Removes the entry of `node` up to `generation` (it went down or
    /// left) and refuses that generation from now on. True if it changed.
    pub(crate) fn remove_node(&mut self, node: &str, generation: u64) -> bool {
        if node == self.local {
            return false;
        }
        let dead = self.dead.entry(node.to_owned()).or_insert(generation);
        *dead = (*dead).max(generation);
        let remove = self
            .entries
            .get(node)
            .is_some_and(|e| e.generation <= generation);
        if remove {
            self.entries.remove(node);
            self.changed();
        }
        remove
    }

    /// Whether `node` at `generation` announced that it left.
    pub(crate) fn has_left(&self, node: &str, generation: u64) -> bool {
        self.departed.get(node) == Some(&generation)
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The immutable snapshot consumers read, rebuilt after a change.
    pub(crate) fn snapshot(&mut self) -> CatalogSnapshot {
        if let Some(s) = &self.snapshot {
            return s.clone();
        }
        let mut services: BTreeMap<String, Vec<Instance>> = BTreeMap::new();
        for entry in self.entries.values().filter(|e| !e.left) {
            for r in &entry.records {
                // A record whose name is not a DNS label never becomes an
                // instance: it came from a peer running other rules.
                let Ok(service) = ServiceName::try_new(&r.service) else {
                    continue;
                };
                services
                    .entry(r.service.clone())
                    .or_default()
                    .push(Instance {
                        service,
                        id: r.id.clone(),
                        node: entry.node.clone(),
                        addr: r.addr,
                        tags: r.tags.clone(),
                        meta: r.meta.iter().cloned().collect(),
                        healthy: r.healthy,
                        origin: if entry.node == self.local {
                            Origin::Local
                        } else {
                            Origin::Gossip
                        },
                    });
            }
        }
        for list in services.values_mut() {
            list.sort_by(|a, b| a.id.cmp(&b.id));
        }
        let s = CatalogSnapshot {
            services: Arc::new(services),
        };
        self.snapshot = Some(s.clone());
        s
    }
}

/// An immutable view of the catalog at one moment; cheap to clone, safe to
/// share between threads (`Arc<dyn Directory>`).
#[derive(Debug, Clone, Default)]
pub struct CatalogSnapshot {
    services: Arc<BTreeMap<String, Vec<Instance>>>,
}

impl CatalogSnapshot {
    /// How many instances, healthy or not.
    pub fn instance_count(&self) -> usize {
        self.services.values().map(Vec::len).sum()
    }

    /// The addresses of the healthy instances of `service`, sorted, deduped.
    pub fn healthy_addrs(&self, service: &str) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = self
            .services
            .get(service)
            .into_iter()
            .flatten()
            .filter(|i| i.healthy)
            .map(|i| i.addr)
            .collect();
        addrs.sort();
        addrs.dedup();
        addrs
    }
}

impl Directory for CatalogSnapshot {
    fn services(&self) -> Vec<ServiceName> {
        self.services
            .values()
            .filter_map(|list| list.first().map(|i| i.service.clone()))
            .collect()
    }

    fn instances(&self, service: &str) -> Vec<Instance> {
        self.services.get(service).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
