//! The balancers a cluster picks from: one per priority level in use, each
//! with its share of traffic (from the pure `hosts::plan`) and the weights
//! of its endpoints, slow start included. Built whole on every change and
//! swapped in, so a pick reads it without a lock.

use std::sync::Arc;

use meshgate_balance::{ActiveGuard, Balancer, Policy};
use meshgate_core::Rng;
use meshgate_resilience::hosts::Plan;

/// How often a pick may land on an endpoint already tried before the
/// balancer's choice is taken anyway (Envoy's host-selection attempts).
const PICK_ATTEMPTS: usize = 3;

/// The largest weight a balancer takes; ramped weights are scaled into it.
const MAX_WEIGHT: u32 = 1000;

pub(super) struct Available {
    levels: Vec<LevelSet>,
}

struct LevelSet {
    /// Share of traffic in percent; the levels' shares sum to 100.
    load: u32,
    balancer: Arc<Balancer>,
    /// Balancer index → endpoint index.
    hosts: Vec<usize>,
}

impl Available {
    /// The balancers for `plan`; `share(i)` is the part of endpoint `i`'s
    /// weight it gets now (below 1 while it slow-starts).
    pub(super) fn build(
        policy: Policy,
        ids: &[(String, u32)],
        plan: &Plan,
        share: impl Fn(usize) -> f64,
    ) -> Self {
        let levels = plan
            .levels
            .iter()
            .map(|level| {
                let shares: Vec<f64> = level.hosts.iter().map(|&i| share(i)).collect();
                let ramping = shares.iter().any(|&s| s < 1.0);
                let top = level
                    .hosts
                    .iter()
                    .filter_map(|&i| ids.get(i).map(|(_, w)| *w))
                    .max()
                    .unwrap_or(1)
                    .max(1);
                // Integer weights: scale so the heaviest endpoint is near
                // MAX_WEIGHT, leaving room for fractions of the lighter ones.
                let scale = if ramping {
                    (MAX_WEIGHT / top).max(1)
                } else {
                    1
                };
                let weighted: Vec<(&str, u32)> = level
                    .hosts
                    .iter()
                    .zip(&shares)
                    .filter_map(|(&i, &s)| {
                        let (id, w) = ids.get(i)?;
                        let w = (f64::from(w * scale) * s).round() as u32;
                        Some((id.as_str(), w.clamp(1, MAX_WEIGHT)))
                    })
                    .collect();
                // Plain round robin ignores weights; with equal weights,
                // smooth weighted round robin is the same rotation, so a
                // ramp uses it.
                let policy = match policy {
                    Policy::RoundRobin if ramping => Policy::WeightedRoundRobin,
                    p => p,
                };
                LevelSet {
                    load: level.load,
                    balancer: Arc::new(Balancer::with_ids(policy, &weighted)),
                    hosts: level.hosts.clone(),
                }
            })
            .collect();
        Self { levels }
    }

    /// Picks an endpoint: a level by its share of traffic (by the hash key
    /// when there is one, so a key stays put), then an endpoint in it,
    /// avoiding `tried` when another is available.
    pub(super) fn pick(
        &self,
        hash: Option<u64>,
        tried: &[usize],
        rng: &mut impl Rng,
    ) -> Option<(usize, ActiveGuard)> {
        let level = match self.levels.as_slice() {
            [] => return None,
            [only] => only,
            levels => {
                let mut at = hash.map_or_else(|| rng.below(100), |h| h % 100);
                levels
                    .iter()
                    .find(|l| {
                        let here = at < u64::from(l.load);
                        at = at.saturating_sub(u64::from(l.load));
                        here
                    })
                    .or(levels.last())?
            }
        };
        let mut choice = None;
        for _ in 0..PICK_ATTEMPTS {
            let i = level.balancer.pick(hash, rng)?;
            let host = *level.hosts.get(i)?;
            choice = Some((i, host));
            if !tried.contains(&host) {
                break;
            }
        }
        let (i, host) = choice?;
        Some((host, level.balancer.start_request_owned(i)))
    }
}
