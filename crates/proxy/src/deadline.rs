//! A per-connection timer that costs nothing per request.
//!
//! Arming a tokio timer for every wait (each idle gap between keep-alive
//! requests) is a timer-wheel insert and removal per request. [`Deadline`]
//! keeps one timer, never armed further ahead than the shortest timeout it
//! serves: every later deadline starts after the timer was armed, so it is
//! at least that far away, and the timer can only fire early, never late.
//! When it fires early it is re-armed, once per timeout period, not per
//! request. A deadline nearer than the armed one (a route timeout shorter
//! than the horizon) moves the timer in: one re-arm, never a late wake-up.
//!
//! An HTTP/1.1 connection lends its `Deadline` to the pipeline, which bounds
//! its upstream attempts with it: the route timeout then costs a poll of a
//! timer already in the wheel, where `tokio::time::timeout` inserted and
//! removed an entry per request (~0.3k instructions).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// See the module docs.
pub(crate) struct Deadline {
    timer: Option<Pin<Box<Sleep>>>,
    /// The shortest timeout this connection uses.
    horizon: Duration,
}

impl Deadline {
    pub(crate) fn new(horizon: Duration) -> Self {
        Self {
            timer: None,
            horizon,
        }
    }

    /// Resolves once `at` has passed.
    pub(crate) fn until(&mut self, at: Instant) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| self.poll_until(at, cx))
    }

    /// Polls for `at` having passed (for hand-written futures).
    pub(crate) fn poll_until(&mut self, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let horizon = self.horizon;
        let timer = self.timer.get_or_insert_with(|| {
            Box::pin(tokio::time::sleep_until(at.min(Instant::now() + horizon)))
        });
        if at < timer.deadline() {
            timer.as_mut().reset(at);
        }
        loop {
            ready!(timer.as_mut().poll(cx));
            let now = Instant::now();
            if now >= at {
                return Poll::Ready(());
            }
            timer.as_mut().reset(at.min(now + horizon));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_at_each_deadline_never_late() {
        let mut d = Deadline::new(Duration::from_secs(5));
        let start = Instant::now();
        d.until(start + Duration::from_secs(12)).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(12));
        // A nearer deadline after a far one: still on time.
        let t = Instant::now();
        d.until(t + Duration::from_secs(5)).await;
        assert_eq!(Instant::now() - t, Duration::from_secs(5));
        // One already past resolves at once.
        d.until(start).await;
        assert_eq!(Instant::now() - t, Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_nearer_than_the_armed_timer_is_kept() {
        let mut d = Deadline::new(Duration::from_secs(10));
        let start = Instant::now();
        // Arms the timer 10 s out, then gives up on it at 3 s.
        let far = tokio::time::timeout(
            Duration::from_secs(3),
            d.until(start + Duration::from_secs(30)),
        );
        assert!(far.await.is_err());
        // A route timeout shorter than the horizon: on time, not at 10 s.
        d.until(start + Duration::from_secs(4)).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(4));
    }
}
