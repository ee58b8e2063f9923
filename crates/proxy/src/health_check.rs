//! Active health checks: one task per cluster with a `health_check`, which
//! asks the pure [`Checker`] what is due, probes those endpoints (straight
//! to each address, not through routes, pools or breakers) and reports the
//! results back; a change of state takes the endpoint out of balancing or
//! puts it back (`ClusterState::set_healthy`).
//!
//! The task holds the proxy state weakly, so it ends with its config
//! generation. A cluster with `tls` is probed over TLS, with its settings
//! (a probe passes only if the handshake does).

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Instant;

use meshgate_config::HealthCheck;
use meshgate_core::FastRng;
use meshgate_resilience::health::{CheckConfig, Checker};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::state::ProxyState;
use crate::upstream_tls::UpstreamTls;

mod probe;
mod services;
pub(crate) use probe::grpc_health_status;
pub use services::check_service;

/// Starts the health-check tasks of `state`'s clusters.
pub(crate) fn spawn(state: &Arc<ProxyState>) -> Vec<JoinHandle<()>> {
    state
        .config
        .clusters
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let hc = c.health_check.clone()?;
            let addrs: Vec<SocketAddr> = c.endpoints.iter().map(|e| e.address).collect();
            let cluster = state.clusters.get(i)?;
            let healthy = cluster.healthy_flags();
            let tls = cluster.endpoints.first().and_then(|e| e.tls()).cloned();
            Some(tokio::spawn(run(
                Arc::downgrade(state),
                i,
                hc,
                addrs,
                healthy,
                tls,
            )))
        })
        .collect()
}

async fn run(
    state: Weak<ProxyState>,
    cluster: usize,
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
    let mut rng = FastRng::seeded(seed(cluster));
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
        let Some(state) = state.upgrade() else {
            return; // the config generation is gone
        };
        let Some(c) = state.clusters.get(cluster) else {
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
fn seed(cluster: usize) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(cluster);
    h.finish()
}
