//! Circuit breakers in Envoy's sense: limits on how much a cluster is asked
//! to carry at once (connections, requests waiting for a connection,
//! requests, retries). Past a limit the answer is "no" at once, so an
//! overloaded upstream sheds load instead of queueing it.
//!
//! A [`Limit`] counts holders of [`Permit`]s; a permit gives its unit back
//! when dropped, so whatever holds the resource (a connection, a response
//! body) holds the permit. Pure: atomics only, no clock, no I/O.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One concurrency limit.
#[derive(Debug)]
pub struct Limit {
    max: usize,
    current: AtomicUsize,
}

/// One unit of a [`Limit`], returned on drop.
#[derive(Debug)]
pub struct Permit {
    limit: Arc<Limit>,
}

impl Limit {
    /// A limit of `max` units, none taken.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            current: AtomicUsize::new(0),
        })
    }

    /// Takes a unit, or `None` when all `max` are taken.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        self.current
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit {
                limit: self.clone(),
            })
    }

    /// Units taken now.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// The limit.
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limit.current.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_grants_up_to_max_and_takes_units_back_on_drop() {
        let l = Limit::new(2);
        let a = l.try_acquire();
        let b = l.try_acquire();
        assert!(a.is_some() && b.is_some());
        assert!(l.try_acquire().is_none(), "full");
        assert_eq!(l.current(), 2);
        drop(a);
        assert_eq!(l.current(), 1);
        assert!(
            l.try_acquire().is_some(),
            "a unit came back (and went again)"
        );
        assert_eq!(l.current(), 1);
        assert!(Limit::new(0).try_acquire().is_none(), "zero admits nothing");
    }

    #[test]
    fn concurrent_acquirers_never_exceed_the_limit() {
        let l = Limit::new(8);
        let peak = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (l, peak) = (l.clone(), peak.clone());
                s.spawn(move || {
                    for _ in 0..10_000 {
                        if let Some(p) = l.try_acquire() {
                            peak.fetch_max(l.current(), Ordering::AcqRel);
                            drop(p);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Acquire) <= 8);
        assert_eq!(l.current(), 0);
    }
}
