//! This node's own `[[services]]` as catalog instances, with the state of
//! their health checks, and the one task that publishes every change to
//! where the node announces itself (gossip, etcd, DNS-SD).
//!
//! Changes (a reload's new list, a check turning) arrive from sync code,
//! while the announcers are async; a `watch` channel in between keeps only
//! the latest list, so a burst of changes is published once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use meshgate_catalog::{Instance, Origin, ServiceName};
use meshgate_config::discovery::Service;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The local services and their health.
pub(crate) struct Local {
    node: String,
    state: Mutex<State>,
    tx: watch::Sender<Vec<Instance>>,
}

#[derive(Default)]
struct State {
    services: Vec<Service>,
    /// Health of checked services by id; absent: unchecked (healthy).
    health: HashMap<String, bool>,
    /// The running checks by service id, with what they check and the
    /// epoch their reports carry.
    checks: HashMap<String, (Service, u64, JoinHandle<()>)>,
    /// Numbers checks, so a report from a check already replaced (its
    /// task aborted between the probe and the report) is ignored.
    epoch: u64,
}

impl Local {
    /// An empty set for `node`; [`Local::set_services`] fills it.
    pub(crate) fn new(node: String) -> Arc<Self> {
        Arc::new(Self {
            node,
            state: Mutex::new(State::default()),
            tx: watch::channel(Vec::new()).0,
        })
    }

    /// The latest instance list, to follow with `changed()`.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Vec<Instance>> {
        self.tx.subscribe()
    }

    /// The instances as they stand.
    pub(crate) fn instances(&self) -> Vec<Instance> {
        self.tx.borrow().clone()
    }

    /// Replaces the service list (start, reload). Checks of services that
    /// stay the same keep running and keep their state; new or changed
    /// ones start critical.
    pub(crate) fn set_services(self: &Arc<Self>, services: &[Service]) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // A dropped JoinHandle detaches its task: stop the checks of
        // services that changed or went.
        state.checks.retain(|id, (old, _, task)| {
            let keep = services.iter().any(|s| s.id == *id && s == old);
            if !keep {
                task.abort();
            }
            keep
        });
        state
            .health
            .retain(|id, _| services.iter().any(|s| s.id == *id));
        for s in services {
            let Some(hc) = &s.health_check else {
                state.health.remove(&s.id);
                continue;
            };
            if state.checks.contains_key(&s.id) {
                continue;
            }
            state.health.insert(s.id.clone(), false);
            state.epoch += 1;
            let (me, id, epoch) = (Arc::downgrade(self), s.id.clone(), state.epoch);
            let task = meshgate_proxy::check_service(s.address, hc.clone(), move |healthy| {
                if let Some(me) = me.upgrade() {
                    me.set_health(&id, epoch, healthy);
                }
            });
            state.checks.insert(s.id.clone(), (s.clone(), epoch, task));
        }
        state.services = services.to_vec();
        self.publish(&state);
    }

    fn set_health(&self, id: &str, epoch: u64, healthy: bool) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.checks.get(id).is_none_or(|(_, e, _)| *e != epoch) {
            return; // a replaced check's last word
        }
        tracing::info!(service = id, healthy, "local service health changed");
        state.health.insert(id.to_owned(), healthy);
        self.publish(&state);
    }

    fn publish(&self, state: &State) {
        let instances: Vec<Instance> = state
            .services
            .iter()
            .filter_map(|s| {
                Some(Instance {
                    // Names were checked by the config.
                    service: ServiceName::try_new(&s.name).ok()?,
                    id: s.id.clone(),
                    node: self.node.clone(),
                    addr: s.address,
                    tags: s.tags.clone(),
                    meta: s.meta.clone().into_iter().collect::<BTreeMap<_, _>>(),
                    healthy: state.health.get(&s.id).copied().unwrap_or(true),
                    origin: Origin::Local,
                })
            })
            .collect();
        self.tx.send_if_modified(|current| {
            let changed = *current != instances;
            *current = instances;
            changed
        });
    }

    /// Stops every check.
    pub(crate) fn stop(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, (_, _, task)) in state.checks.drain() {
            task.abort();
        }
    }
}
