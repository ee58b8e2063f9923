//! One cluster at runtime: its endpoints' pools, the balancers over the
//! endpoints currently available, and the resilience state that decides
//! availability (outlier ejection, health checks, priority failover, panic
//! mode, slow start) and whether retries are affordable (the budget).
//!
//! The decisions are the pure cores' (`meshgate-resilience`); this module
//! feeds them outcomes and the time, and acts on their answers: an
//! ejection, a return or a health change rebuilds the balancers
//! (`available`) and swaps them in, so picking stays lock-free.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use arc_swap::ArcSwap;
use meshgate_balance::{ActiveGuard, Policy};
use meshgate_config::{CircuitBreakers, Cluster, SlowStart};
use meshgate_core::Rng;
use meshgate_resilience::breaker::{Limit, Permit};
use meshgate_resilience::budget::{BudgetConfig, RetryBudget};
use meshgate_resilience::hosts;
use meshgate_resilience::outlier::{Event, OutlierConfig, Outliers, SuccessRate};
use meshgate_resilience::retry::{Attempt, Reason};
use meshgate_telemetry::Registry;

use crate::pool::EndpointPool;

mod available;
mod metrics;
use available::Available;
use metrics::Metrics;
pub(crate) use metrics::breaker_overflow;

/// Everything the data path needs for one cluster.
pub(crate) struct ClusterState {
    pub(crate) name: String,
    pub(crate) endpoints: Vec<Arc<EndpointPool>>,
    pub(crate) http2: bool,
    policy: Policy,
    /// Each endpoint's identity (its address) and weight, for rebuilds.
    ids: Vec<(String, u32)>,
    priorities: Vec<u32>,
    overprovisioning: u32,
    slow_start: Option<SlowStart>,
    panic_threshold: u8,
    /// Whether outlier detection can eject anything at all.
    detecting: bool,
    /// Whether active health checks run (and so can clear `unhealthy`).
    checked: bool,
    available: ArcSwap<Available>,
    /// `circuit_breakers.max_requests` and `max_retries` (the connection
    /// limits live with the pools).
    pub(crate) requests: Arc<Limit>,
    pub(crate) retries: Arc<Limit>,
    health: Mutex<Health>,
    metrics: Metrics,
    /// Signs every request sent to the cluster (`sign`); set by the state
    /// builder, which loads its key file.
    pub(crate) signer: Option<Arc<crate::sign::UpstreamSigner>>,
}

struct Health {
    outliers: Outliers,
    budget: RetryBudget,
    next_review: Instant,
    panic: bool,
    /// Endpoints active health checks found unhealthy.
    unhealthy: Vec<bool>,
    /// When each endpoint last came back (for slow start).
    back_since: Vec<Option<Instant>>,
    /// Whether some endpoint is still ramping up.
    ramping: bool,
}

/// A cluster's `max_requests` and `max_retries` units. A reload that
/// keeps a limit's size keeps the limit itself, so requests admitted by the
/// old generation still count against the new one.
pub(crate) struct Breakers {
    requests: Arc<Limit>,
    retries: Arc<Limit>,
}

impl Breakers {
    /// The limits of `c`, taken over from `old` where their sizes match.
    pub(crate) fn new(c: &Cluster, old: Option<(&Cluster, &ClusterState)>) -> Self {
        let limit = |size: fn(&CircuitBreakers) -> u32, of: fn(&ClusterState) -> &Arc<Limit>| {
            let n = size(&c.circuit_breakers);
            match old {
                Some((o, s)) if size(&o.circuit_breakers) == n => of(s).clone(),
                _ => Limit::new(usize::try_from(n).unwrap_or(usize::MAX)),
            }
        };
        Self {
            requests: limit(|b| b.max_requests, |s| &s.requests),
            retries: limit(|b| b.max_retries, |s| &s.retries),
        }
    }
}

impl ClusterState {
    pub(crate) fn new(
        c: &Cluster,
        policy: Policy,
        endpoints: Vec<Arc<EndpointPool>>,
        http2: bool,
        breakers: Breakers,
        registry: &Registry,
    ) -> Self {
        // Endpoint identity for consistent hashing is its address, so adding
        // or ejecting an endpoint does not move keys between the others.
        let ids: Vec<(String, u32)> = c
            .endpoints
            .iter()
            .map(|e| (e.address.to_string(), e.weight))
            .collect();
        let od = &c.outlier_detection;
        let outliers = OutlierConfig {
            consecutive_5xx: od.consecutive_5xx,
            consecutive_gateway: od.consecutive_gateway_errors,
            interval: od.interval,
            base_ejection: od.base_ejection_time,
            max_ejection: od.max_ejection_time,
            max_percent: od.max_ejection_percent,
            success_rate: od.success_rate.map(|s| SuccessRate {
                min_hosts: usize::try_from(s.minimum_hosts).unwrap_or(usize::MAX),
                min_requests: s.request_volume,
                stdev_factor: s.stdev_factor,
            }),
        };
        let budget = BudgetConfig {
            ratio: c.retry_budget.ratio,
            min_per_second: c.retry_budget.min_retries_per_second,
            window: c.retry_budget.window,
        };
        let now = Instant::now();
        // At start every endpoint is available, by priority level.
        let priorities: Vec<u32> = c.endpoints.iter().map(|e| e.priority).collect();
        let start = hosts::plan(
            &priorities,
            c.overprovisioning_factor,
            c.panic_threshold,
            |_| false,
        );
        let all = Available::build(policy, &ids, &start, |_| 1.0);
        let metrics = Metrics::new(&c.name, &ids, registry);
        Self {
            name: c.name.clone(),
            endpoints,
            http2,
            policy,
            priorities,
            overprovisioning: c.overprovisioning_factor,
            slow_start: c.slow_start,
            panic_threshold: c.panic_threshold,
            checked: c.health_check.is_some(),
            detecting: od.consecutive_5xx > 0
                || od.consecutive_gateway_errors > 0
                || od.success_rate.is_some(),
            available: ArcSwap::from_pointee(all),
            requests: breakers.requests,
            retries: breakers.retries,
            health: Mutex::new(Health {
                outliers: Outliers::new(outliers, ids.len()),
                budget: RetryBudget::new(budget, now),
                next_review: now + od.interval,
                panic: false,
                unhealthy: vec![false; ids.len()],
                back_since: vec![None; ids.len()],
                ramping: false,
            }),
            ids,
            metrics,
            signer: None,
        }
    }

    /// Picks an endpoint, avoiding those in `tried` when another is
    /// available, and raises its active-request count.
    pub(crate) fn pick(
        &self,
        hash: Option<u64>,
        tried: &[usize],
        rng: &mut impl Rng,
    ) -> Option<(usize, ActiveGuard)> {
        let picked = self.available.load().pick(hash, tried, rng)?;
        self.metrics.attempts.inc();
        Some(picked)
    }

    /// Records how an attempt on `host` ended; `first` counts it as a new
    /// request for the retry budget.
    pub(crate) fn record(&self, host: usize, attempt: Attempt, first: bool) {
        if !self.detecting && !first {
            return;
        }
        let now = Instant::now();
        let mut h = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        if first {
            h.budget.request(now);
        }
        if !self.detecting {
            return;
        }
        if let Some(event) = h.outliers.record(host, attempt.outcome(), now) {
            self.apply(&mut h, &[event]);
        }
    }

    /// A unit of `max_requests` for a new request, held until its response
    /// ends; `None` (counted) when the cluster is full.
    pub(crate) fn admit(&self) -> Option<Permit> {
        let permit = self.requests.try_acquire();
        if permit.is_none() {
            self.metrics.overflow_requests.inc();
        }
        permit
    }

    /// Asks for one retry: a unit of `max_retries` (held through the retry
    /// attempt), then the budget. Counts the retry or the refusal.
    pub(crate) fn try_retry(&self, reason: Reason) -> Option<Permit> {
        let Some(permit) = self.retries.try_acquire() else {
            self.metrics.overflow_retries.inc();
            return None;
        };
        let now = Instant::now();
        let granted = self
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .budget
            .try_retry(now);
        if granted {
            let i = match reason {
                Reason::ConnectFailure => 0,
                Reason::Reset => 1,
                Reason::Timeout => 2,
                Reason::Status => 3,
            };
            if let Some(c) = self.metrics.retries.get(i) {
                c.inc();
            }
        } else {
            self.metrics.budget_exhausted.inc();
        }
        granted.then_some(permit)
    }

    /// The periodic review, about once a second: ended ejections return;
    /// every `interval`, success rates are judged.
    pub(crate) fn review(&self, now: Instant) {
        let mut h = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        let events = if !self.detecting {
            // Only ejections carried over by a reload can end here.
            h.outliers.release(now)
        } else if now >= h.next_review {
            h.next_review = now + h.outliers.config().interval;
            h.outliers.tick(now)
        } else {
            h.outliers.release(now)
        };
        // While an endpoint slow-starts, its weight grows every review.
        if !events.is_empty() || h.ramping {
            self.apply(&mut h, &events);
        }
    }

    /// Takes over the outlier and health state of the endpoints `old` (the
    /// previous config generation's cluster of the same name) also has, the
    /// retry budget if its settings are unchanged, and the time of the next
    /// success-rate review if it comes sooner (so frequent reloads do not
    /// keep postponing it).
    pub(crate) fn carry_from(&self, old: &ClusterState) {
        let old_health = old.health.lock().unwrap_or_else(PoisonError::into_inner);
        let mut h = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        if old_health.budget.config() == h.budget.config() {
            h.budget = old_health.budget.clone();
        }
        h.next_review = h.next_review.min(old_health.next_review);
        let mut carried = false;
        for (i, (addr, _)) in self.ids.iter().enumerate() {
            let Some(j) = old.ids.iter().position(|(a, _)| a == addr) else {
                continue;
            };
            carried = true;
            h.outliers.adopt(i, &old_health.outliers, j);
            // Without checks in this generation, nothing could clear it.
            let unhealthy = self.checked && old_health.unhealthy.get(j).copied().unwrap_or(false);
            if let Some(flag) = h.unhealthy.get_mut(i) {
                *flag = unhealthy;
            }
            if let (Some(b), Some(since)) = (h.back_since.get_mut(i), old_health.back_since.get(j))
            {
                *b = *since;
            }
            if let Some(g) = self.metrics.healthy.get(i) {
                g.set(i64::from(!unhealthy));
            }
            if let Some(g) = self.metrics.ejected.get(i) {
                g.set(i64::from(h.outliers.is_ejected(i)));
            }
        }
        h.panic = old_health.panic;
        drop(old_health);
        if carried {
            self.apply(&mut h, &[]);
        }
    }

    /// Whether each endpoint is healthy as far as active checks know (the
    /// starting state of a new generation's checks).
    pub(crate) fn healthy_flags(&self) -> Vec<bool> {
        let h = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        h.unhealthy.iter().map(|u| !u).collect()
    }

    /// Counts one active health-check probe.
    pub(crate) fn probed(&self, passed: bool) {
        if passed {
            self.metrics.checks_passed.inc();
        } else {
            self.metrics.checks_failed.inc();
        }
    }

    /// Active health checking changed `host`'s state.
    pub(crate) fn set_healthy(&self, host: usize, healthy: bool) {
        if let Some(g) = self.metrics.healthy.get(host) {
            g.set(i64::from(healthy));
        }
        let endpoint = self.ids.get(host).map_or("?", |(a, _)| a.as_str());
        if healthy {
            tracing::info!(cluster = %self.name, endpoint, "endpoint passes health checks again");
        } else {
            tracing::warn!(cluster = %self.name, endpoint, "endpoint fails health checks");
        }
        let mut h = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(flag) = h.unhealthy.get_mut(host) {
            *flag = !healthy;
        }
        if healthy && !h.outliers.is_ejected(host) {
            self.came_back(&mut h, host);
        }
        self.apply(&mut h, &[]);
    }

    /// `host` is available again: its slow start begins now.
    fn came_back(&self, h: &mut Health, host: usize) {
        if self.slow_start.is_some()
            && let Some(since) = h.back_since.get_mut(host)
        {
            *since = Some(Instant::now());
        }
    }

    /// Acts on ejections and returns: metrics, a log line, and a new
    /// balancer over what is available (neither ejected nor unhealthy).
    fn apply(&self, h: &mut Health, events: &[Event]) {
        for event in events {
            match *event {
                Event::Ejected { host, until } => {
                    self.metrics.ejections.inc();
                    if let Some(g) = self.metrics.ejected.get(host) {
                        g.set(1);
                    }
                    tracing::warn!(
                        cluster = %self.name,
                        endpoint = self.ids.get(host).map_or("?", |(a, _)| a.as_str()),
                        for_ms = until.saturating_duration_since(Instant::now()).as_millis() as u64,
                        "endpoint ejected"
                    );
                }
                Event::Returned { host } => {
                    if let Some(g) = self.metrics.ejected.get(host) {
                        g.set(0);
                    }
                    if !h.unhealthy.get(host).copied().unwrap_or(false) {
                        self.came_back(h, host);
                    }
                    tracing::info!(
                        cluster = %self.name,
                        endpoint = self.ids.get(host).map_or("?", |(a, _)| a.as_str()),
                        "endpoint returned to balancing"
                    );
                }
            }
        }
        let (outliers, unhealthy) = (&h.outliers, &h.unhealthy);
        let plan = hosts::plan(
            &self.priorities,
            self.overprovisioning,
            self.panic_threshold,
            |i| outliers.is_ejected(i) || unhealthy.get(i).copied().unwrap_or(false),
        );
        if plan.panic && !h.panic {
            self.metrics.panics.inc();
            tracing::warn!(cluster = %self.name, "too few endpoints available: panic mode, balancing over all");
        }
        h.panic = plan.panic;
        self.metrics.panic.set(i64::from(plan.panic));
        // Slow start: the share of its weight each endpoint gets now.
        let now = Instant::now();
        let shares: Vec<f64> = match self.slow_start {
            None => Vec::new(),
            Some(s) => h
                .back_since
                .iter_mut()
                .map(|since| {
                    let Some(at) = *since else { return 1.0 };
                    let share = hosts::slow_start_factor(
                        now.saturating_duration_since(at),
                        s.window,
                        s.aggression,
                        f64::from(s.min_weight_percent) / 100.0,
                    );
                    if share >= 1.0 {
                        *since = None; // ramp done
                    }
                    share
                })
                .collect(),
        };
        h.ramping = shares.iter().any(|&s| s < 1.0);
        let available = Available::build(self.policy, &self.ids, &plan, |i| {
            shares.get(i).copied().unwrap_or(1.0)
        });
        self.available.store(Arc::new(available));
    }
}
