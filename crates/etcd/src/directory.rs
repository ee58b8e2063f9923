//! Every service under the prefix, as a [`Directory`] the DNS interface and
//! the admin API read from memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use meshgate_catalog::{Directory, Instance, ServiceName};
use tokio::sync::watch;

use crate::EtcdSettings;
use crate::backoff::stopped;
use crate::stats::EtcdStats;
use crate::watcher::{Entries, watch_prefix};

/// The instances of every service registered under the prefix, kept up to
/// date by [`EtcdDirectory::watch`]. Cheap to clone; reads never block and
/// see one whole snapshot.
#[derive(Debug, Clone, Default)]
pub struct EtcdDirectory {
    snapshot: Arc<ArcSwap<BTreeMap<ServiceName, Vec<Instance>>>>,
}

// === impl EtcdDirectory ===

impl EtcdDirectory {
    /// An empty directory; [`Self::watch`] fills it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Watches `PREFIX/` and keeps this directory (and its clones) current
    /// until `shutdown` holds true or its sender is dropped. While etcd is
    /// unreachable the last known instances stay.
    pub async fn watch(
        &self,
        settings: EtcdSettings,
        mut shutdown: watch::Receiver<bool>,
        stats: Arc<EtcdStats>,
    ) {
        let prefix = settings.all_prefix();
        watch_prefix(
            &settings,
            &prefix,
            &stats,
            stopped(&mut shutdown),
            |entries| {
                self.snapshot.store(Arc::new(group(entries)));
            },
        )
        .await;
    }
}

impl Directory for EtcdDirectory {
    fn services(&self) -> Vec<ServiceName> {
        self.snapshot.load().keys().cloned().collect()
    }

    fn instances(&self, service: &str) -> Vec<Instance> {
        let Ok(name) = ServiceName::try_new(service) else {
            return Vec::new(); // no such name can be registered
        };
        self.snapshot.load().get(&name).cloned().unwrap_or_default()
    }
}

/// Entries grouped by service, each service's instances sorted by id.
fn group(entries: &Entries) -> BTreeMap<ServiceName, Vec<Instance>> {
    let mut out: BTreeMap<ServiceName, Vec<Instance>> = BTreeMap::new();
    for instance in entries.values() {
        out.entry(instance.service.clone())
            .or_default()
            .push(instance.clone());
    }
    for instances in out.values_mut() {
        instances.sort_by(|a, b| a.id.cmp(&b.id));
    }
    out
}
