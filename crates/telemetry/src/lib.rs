//! The metrics registry every meshgate component reports into.
//!
//! Components create their series once, when a config is built, and keep
//! `Arc` handles to plain atomics; the data path then only does relaxed
//! atomic adds, with no hashing, locking or allocation per request. The admin
//! API renders the registry as Prometheus text exposition format (version
//! 0.0.4, which `promtool` and every scraper accept) or as JSON rows.
//!
//! This crate depends on nothing but std, so any layer may use it.
#![warn(missing_docs)]

mod metric;
mod registry;

pub use metric::{Counter, Gauge, Histogram, LATENCY_BUCKETS};
pub use registry::{Kind, Registry, Sample};
