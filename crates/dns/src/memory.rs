//! An in-memory [`Directory`]: a list of instances behind a lock, replaced
//! or edited whole. For tests, and for a caller that has the instances at
//! hand (static services) and no catalog.

use std::sync::RwLock;

use meshgate_catalog::{Directory, Instance, ServiceName};

/// A [`Directory`] over a `Vec<Instance>` that can be changed while shared.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    instances: RwLock<Vec<Instance>>,
}

impl MemoryDirectory {
    /// A directory holding `instances`.
    pub fn new(instances: Vec<Instance>) -> Self {
        Self {
            instances: RwLock::new(instances),
        }
    }

    /// Replaces every instance.
    pub fn set(&self, instances: Vec<Instance>) {
        // A panic while holding the lock cannot leave the Vec half-written
        // (assignment is one move), so a poisoned lock is safe to reuse.
        *self.instances.write().unwrap_or_else(|e| e.into_inner()) = instances;
    }

    /// A copy of every instance.
    pub fn instances_snapshot(&self) -> Vec<Instance> {
        self.instances
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies `f` to the instances.
    pub fn update(&self, f: impl FnOnce(&mut Vec<Instance>)) {
        f(&mut self.instances.write().unwrap_or_else(|e| e.into_inner()));
    }
}

impl Directory for MemoryDirectory {
    fn services(&self) -> Vec<ServiceName> {
        let guard = self.instances.read().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<ServiceName> = guard.iter().map(|i| i.service.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    fn instances(&self, service: &str) -> Vec<Instance> {
        let guard = self.instances.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<Instance> = guard
            .iter()
            .filter(|i| i.service.as_str() == service)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}
