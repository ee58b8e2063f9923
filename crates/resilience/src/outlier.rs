//! Passive outlier detection, in Envoy's manner: endpoints that fail are
//! ejected from balancing for a while, and come back on their own.
//!
//! - **Consecutive 5xx** and **consecutive gateway errors** (connect
//!   failure, reset, timeout) eject at once when a threshold is reached.
//! - **Success rate**: every `interval`, endpoints with enough requests whose
//!   success rate is below `mean − factor × stdev` of their peers are
//!   ejected (only when enough endpoints have enough requests to judge).
//! - An ejection lasts `base × times ejected`, up to `max`, so repeat
//!   offenders stay out longer; `max_percent` caps how many endpoints may
//!   be out at once (one always may, as in Envoy).

use std::time::{Duration, Instant};

/// What one request to an endpoint came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response below 500.
    Success,
    /// A 5xx response.
    ServerError,
    /// No response: connect failure, reset or timeout.
    GatewayError,
}

/// Success-rate detection settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuccessRate {
    /// Endpoints with enough requests needed before anyone is judged.
    pub min_hosts: usize,
    /// Requests an endpoint needs in an interval to be judged.
    pub min_requests: u32,
    /// How many standard deviations below the mean is an outlier.
    pub stdev_factor: f64,
}

/// Outlier detection settings for one cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutlierConfig {
    /// Consecutive 5xx that eject (0: off).
    pub consecutive_5xx: u32,
    /// Consecutive gateway errors that eject (0: off).
    pub consecutive_gateway: u32,
    /// How often success rates are judged and ejections reviewed.
    pub interval: Duration,
    /// The first ejection's length; the n-th lasts n times as long.
    pub base_ejection: Duration,
    /// The longest ejection.
    pub max_ejection: Duration,
    /// At most this share of endpoints out at once, in percent.
    pub max_percent: u8,
    /// Success-rate detection, if enabled.
    pub success_rate: Option<SuccessRate>,
}

/// What changed for an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Taken out of balancing until the given time.
    Ejected {
        /// The endpoint's index.
        host: usize,
        /// When it comes back.
        until: Instant,
    },
    /// Back in balancing.
    Returned {
        /// The endpoint's index.
        host: usize,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct Host {
    consecutive_5xx: u32,
    consecutive_gateway: u32,
    ejected_until: Option<Instant>,
    times_ejected: u32,
    ok: u32,
    total: u32,
}

/// The outlier state of one cluster's endpoints.
#[derive(Debug, Clone)]
pub struct Outliers {
    config: OutlierConfig,
    hosts: Vec<Host>,
}

impl Outliers {
    /// State for `hosts` endpoints, none ejected.
    pub fn new(config: OutlierConfig, hosts: usize) -> Self {
        Self {
            config,
            hosts: vec![Host::default(); hosts],
        }
    }

    /// Whether `host` is out of balancing.
    pub fn is_ejected(&self, host: usize) -> bool {
        self.hosts
            .get(host)
            .is_some_and(|h| h.ejected_until.is_some())
    }

    /// Records one outcome; returns the ejection it caused, if any.
    pub fn record(&mut self, host: usize, outcome: Outcome, now: Instant) -> Option<Event> {
        let config = self.config;
        let h = self.hosts.get_mut(host)?;
        h.total = h.total.saturating_add(1);
        let trip = match outcome {
            Outcome::Success => {
                h.ok = h.ok.saturating_add(1);
                h.consecutive_5xx = 0;
                h.consecutive_gateway = 0;
                false
            }
            Outcome::ServerError => {
                h.consecutive_5xx += 1;
                h.consecutive_gateway = 0;
                config.consecutive_5xx > 0 && h.consecutive_5xx >= config.consecutive_5xx
            }
            Outcome::GatewayError => {
                h.consecutive_gateway += 1;
                // A gateway error is a 5xx to the client too (502/504).
                h.consecutive_5xx += 1;
                (config.consecutive_gateway > 0
                    && h.consecutive_gateway >= config.consecutive_gateway)
                    || (config.consecutive_5xx > 0 && h.consecutive_5xx >= config.consecutive_5xx)
            }
        };
        if trip && h.ejected_until.is_none() {
            return self.eject(host, now);
        }
        None
    }

    /// Returns endpoints whose ejection has ended. Cheap: the driver may
    /// call it more often than `interval` (Envoy reviews only at each
    /// interval, so an ejection there can last up to one interval longer).
    pub fn release(&mut self, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        for (i, h) in self.hosts.iter_mut().enumerate() {
            if h.ejected_until.is_some_and(|until| until <= now) {
                h.ejected_until = None;
                h.consecutive_5xx = 0;
                h.consecutive_gateway = 0;
                events.push(Event::Returned { host: i });
            }
        }
        events
    }

    /// Takes over endpoint `from_host`'s state in `previous` as endpoint
    /// `host`'s (a config reload keeps an unchanged endpoint's history,
    /// ejection included).
    pub fn adopt(&mut self, host: usize, previous: &Outliers, from_host: usize) {
        if let (Some(h), Some(old)) = (self.hosts.get_mut(host), previous.hosts.get(from_host)) {
            *h = *old;
        }
    }

    /// The settings this state was built with.
    pub fn config(&self) -> &OutlierConfig {
        &self.config
    }

    /// The periodic review (every `interval`): returns endpoints whose
    /// ejection ended, then success-rate ejections, and starts a new
    /// counting interval.
    pub fn tick(&mut self, now: Instant) -> Vec<Event> {
        let mut events = self.release(now);
        if let Some(rule) = self.config.success_rate {
            for host in self.success_rate_outliers(rule) {
                if let Some(e) = self.eject(host, now) {
                    events.push(e);
                }
            }
        }
        for h in &mut self.hosts {
            h.ok = 0;
            h.total = 0;
        }
        events
    }

    fn success_rate_outliers(&self, rule: SuccessRate) -> Vec<usize> {
        let judged: Vec<(usize, f64)> = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.ejected_until.is_none() && h.total >= rule.min_requests.max(1))
            .map(|(i, h)| (i, f64::from(h.ok) / f64::from(h.total)))
            .collect();
        if judged.len() < rule.min_hosts.max(2) {
            return Vec::new();
        }
        let n = judged.len() as f64;
        let mean = judged.iter().map(|(_, r)| r).sum::<f64>() / n;
        let var = judged.iter().map(|(_, r)| (r - mean).powi(2)).sum::<f64>() / n;
        let threshold = mean - rule.stdev_factor * var.sqrt();
        judged
            .into_iter()
            .filter(|(_, r)| *r < threshold)
            .map(|(i, _)| i)
            .collect()
    }

    fn eject(&mut self, host: usize, now: Instant) -> Option<Event> {
        let out = self
            .hosts
            .iter()
            .filter(|h| h.ejected_until.is_some())
            .count();
        let cap = self.hosts.len() * usize::from(self.config.max_percent) / 100;
        if out > 0 && out + 1 > cap {
            return None;
        }
        let (base, max) = (self.config.base_ejection, self.config.max_ejection);
        let h = self.hosts.get_mut(host)?;
        h.times_ejected = h.times_ejected.saturating_add(1);
        let length = base.saturating_mul(h.times_ejected).min(max);
        let until = now + length;
        h.ejected_until = Some(until);
        Some(Event::Ejected { host, until })
    }
}

#[cfg(test)]
#[path = "outlier_tests.rs"]
mod tests;
