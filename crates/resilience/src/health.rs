//! Active health checking's state machine, as Envoy has it: when each
//! endpoint is probed next, and when its probe results flip it between
//! healthy and unhealthy.
//!
//! - Endpoints start healthy, so traffic flows from the start.
//! - `unhealthy_threshold` failed probes in a row make an endpoint
//!   unhealthy; `healthy_threshold` passing probes in a row make it healthy.
//! - The next probe is `interval` after the last one ends
//!   (`unhealthy_interval` while unhealthy), plus a uniform share of
//!   `jitter`. The first probes are spread over the first `interval` so
//!   a cluster's endpoints are not all probed at once.
//!
//! The driver asks [`Checker::due`] what to probe, probes, and reports each
//! result with [`Checker::record`]; the time and the randomness come from it.

use std::time::{Duration, Instant};

use meshgate_core::Rng;

/// Timings and thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckConfig {
    /// Between probes of a healthy endpoint.
    pub interval: Duration,
    /// Between probes of an unhealthy endpoint.
    pub unhealthy_interval: Duration,
    /// Up to this much more, at random, before each probe.
    pub jitter: Duration,
    /// Passing probes in a row to turn healthy.
    pub healthy_threshold: u32,
    /// Failed probes in a row to turn unhealthy.
    pub unhealthy_threshold: u32,
}

/// An endpoint that changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The endpoint's index.
    pub host: usize,
    /// Its new state.
    pub healthy: bool,
}

#[derive(Debug, Clone, Copy)]
struct Host {
    healthy: bool,
    /// Passing (when unhealthy) or failing (when healthy) probes in a row.
    streak: u32,
    /// When the next probe is due; `None` while one is in flight.
    next: Option<Instant>,
}

/// The health of one cluster's endpoints.
#[derive(Debug, Clone)]
pub struct Checker {
    config: CheckConfig,
    hosts: Vec<Host>,
}

impl Checker {
    /// `hosts` endpoints, all healthy, first probes spread over one
    /// `interval` from `now`.
    pub fn new(config: CheckConfig, hosts: usize, now: Instant, rng: &mut impl Rng) -> Self {
        let hosts = (0..hosts)
            .map(|_| Host {
                healthy: true,
                streak: 0,
                next: Some(now + fraction(config.interval, rng)),
            })
            .collect();
        Self { config, hosts }
    }

    /// Starts `host` in the given state (a config reload keeps what the
    /// previous checks found), its streak reset.
    pub fn assume(&mut self, host: usize, healthy: bool) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.healthy = healthy;
            h.streak = 0;
        }
    }

    /// Whether `host` is healthy (unknown hosts are not).
    pub fn is_healthy(&self, host: usize) -> bool {
        self.hosts.get(host).is_some_and(|h| h.healthy)
    }

    /// The endpoints whose probe is due at `now`; they count as in flight
    /// until their result is recorded.
    pub fn due(&mut self, now: Instant) -> Vec<usize> {
        let mut due = Vec::new();
        for (i, h) in self.hosts.iter_mut().enumerate() {
            if h.next.is_some_and(|at| at <= now) {
                h.next = None;
                due.push(i);
            }
        }
        due
    }

    /// The earliest time a probe is due, if any is scheduled.
    pub fn next_due(&self) -> Option<Instant> {
        self.hosts.iter().filter_map(|h| h.next).min()
    }

    /// Records a probe's result (finished at `now`) and schedules the next
    /// probe; returns the change of state it caused, if any.
    pub fn record(
        &mut self,
        host: usize,
        passed: bool,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Option<Change> {
        let config = self.config;
        let h = self.hosts.get_mut(host)?;
        let mut change = None;
        if passed == h.healthy {
            h.streak = 0;
        } else {
            h.streak += 1;
            let threshold = if h.healthy {
                config.unhealthy_threshold
            } else {
                config.healthy_threshold
            };
            if h.streak >= threshold.max(1) {
                h.healthy = passed;
                h.streak = 0;
                change = Some(Change {
                    host,
                    healthy: passed,
                });
            }
        }
        let wait = if h.healthy {
            config.interval
        } else {
            config.unhealthy_interval
        };
        h.next = Some(now + wait + fraction(config.jitter, rng));
        change
    }
}

/// A uniform random share of `d`.
fn fraction(d: Duration, rng: &mut impl Rng) -> Duration {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rng.below(nanos))
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
