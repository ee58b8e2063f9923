//! Active health checks: one task per cluster with a `health_check`, which
//! asks the pure [`Checker`] what is due, probes those endpoints (straight
//! to each address, not through routes, pools or breakers) and reports the
//! results back; a change of state takes the endpoint out of balancing or
//! puts it back (`ClusterState::set_healthy`).
//!
//! A task follows the running generation (`Live`), finding its cluster by
//! name each round, so a new generation whose cluster has the same
//! endpoints and check (one built for another cluster's discovered
//! endpoints, say) keeps the task, its streaks and its schedule. It ends
//! when the cluster's endpoints or check change, or the cluster goes, and
//! with the `Live` itself. A cluster with `tls` is probed over TLS, with its
//! settings (a probe passes only if the handshake does).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Instant;

use meshgate_config::{Config, HealthCheck};
use meshgate_core::FastRng;
use meshgate_resilience::health::{CheckConfig, Checker};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::state::{Live, ProxyState};
use crate::upstream_tls::UpstreamTls;

mod probe;
mod services;
pub(crate) use probe::grpc_health_status;
pub use services::check_service;

/// What a check task is bound to: its cluster's endpoints and settings.
fn checked(config: &Config, name: &str) -> Option<(Vec<SocketAddr>, HealthCheck)> {
    let c = config.clusters.iter().find(|c| c.name == name)?;
    let hc = c.health_check.clone()?;
    Some((c.endpoints.iter().map(|e| e.address).collect(), hc))
}

/// Makes `running` (tasks by cluster name) match `state`, the current
/// generation of `live`: a task whose cluster kept its endpoints and check
/// since `previous` goes on; the others are aborted, and started afresh for
/// `state`'s clusters. `previous: None` restarts every task (a reload: the
/// check settings may have changed).
pub(crate) fn reconcile(
    live: &Arc<Live>,
    state: &Arc<ProxyState>,
    previous: Option<&Config>,
    running: &mut HashMap<String, JoinHandle<()>>,
) {
    running.retain(|name, task| {
        let keep = !task.is_finished()
            && previous.is_some_and(|p| {
                let before = checked(p, name);
                before.is_some() && before == checked(&state.config, name)
            });
        if !keep {
            task.abort();
        }
        keep
    });
    for (i, c) in state.config.clusters.iter().enumerate() {
        if running.contains_key(&c.name) {
            continue;
        }
        let Some(hc) = c.health_check.clone() else {
            continue;
        };
        let Some(cluster) = state.clusters.get(i) else {
            continue;
        };
        let addrs: Vec<SocketAddr> = c.endpoints.iter().map(|e| e.address).collect();
        let healthy = cluster.healthy_flags();
        let tls = cluster.endpoints.first().and_then(|e| e.tls()).cloned();
        let task = tokio::spawn(run(
            Arc::downgrade(live),
            c.name.clone(),
            hc,
            addrs,
            healthy,
            tls,
        ));
        running.insert(c.name.clone(), task);
    }
}

async fn run(
    live: Weak<Live>,
    name: String,
    hc: HealthCheck,
    addrs: Vec<SocketAddr>,
    healthy: Vec<bool>,
    tls: Option<Arc<UpstreamTls>>,
) {
    let config = CheckConfig {
        interval: hc.interval,
        unhealthy_interval: hc.unhealthy_interval,
        jitter: hc.jitter,
        healthy_threshold: hc.healthy_threshold,
        unhealthy_threshold: hc.unhealthy_threshold,
    };
    let mut rng = FastRng::seeded(seed(&name));
    let mut checker = Checker::new(config, addrs.len(), Instant::now(), &mut rng);
    // A reload starts from what the previous generation's checks found.
    for (host, healthy) in healthy.into_iter().enumerate() {
        checker.assume(host, healthy);
    }
    let hc = Arc::new(hc);
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, bool)>();
    loop {
        for host in checker.due(Instant::now()) {
            let Some(&addr) = addrs.get(host) else {
                continue;
            };
            let (hc, tx, tls) = (hc.clone(), tx.clone(), tls.clone());
            tokio::spawn(async move {
                let probe = probe::probe(&hc.kind, addr, tls.as_deref());
                let passed = tokio::time::timeout(hc.timeout, probe)
                    .await
                    .unwrap_or(false);
                let _ = tx.send((host, passed));
            });
        }
        let wake = checker.next_due().map(tokio::time::Instant::from_std);
        let result = tokio::select! {
            r = rx.recv() => r,
            () = sleep_until(wake) => None,
        };
        let Some(live) = live.upgrade() else {
            return; // the process is stopping
        };
        let state = live.current();
        // Ours only while the cluster has the endpoints and check we probe.
        if checked(&state.config, &name).is_none_or(|(a, h)| a != addrs || h != *hc) {
            return;
        }
        let Some(c) = state.clusters.iter().find(|c| c.name == name) else {
            return;
        };
        if let Some((host, passed)) = result {
            c.probed(passed);
            if let Some(change) = checker.record(host, passed, Instant::now(), &mut rng) {
                c.set_healthy(change.host, change.healthy);
            }
        }
    }
}

/// Sleeps until `at`, or forever when nothing is scheduled (every probe is
/// in flight; a result comes first).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A per-process, per-cluster seed for the probe jitter.
fn seed(what: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(what.as_bytes());
    h.finish()
}
