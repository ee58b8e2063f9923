//! A body's idle timeout: how long its source may send nothing while it is
//! being waited on (a route's `idle_timeout`, Envoy's stream idle timeout).
//!
//! Only time spent *waiting* counts: the clock starts at the first poll
//! that finds nothing since the last frame, and a frame stops it. Time the
//! reader spends not polling (a slow client holding back an h2 stream,
//! a write that blocks) is not the source's stall, so it is not counted,
//! and a source whose bytes sat unread is never cut: they are read first.
//!
//! Cheap, as [`crate::deadline::Deadline`] is: a frame only clears a field,
//! and the one timer is never re-armed per frame. It is armed for the first
//! wait; a later wait ends later, so the timer can only fire early, and is
//! then moved to the current wait's end: at most once per timeout period.
//! A body without an idle timeout has no watch at all.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

pin_project_lite::pin_project! {
    /// See the module docs.
    pub(crate) struct IdleWatch {
        timeout: Duration,
        // When the current wait began; `None` while frames flow.
        waiting_since: Option<Instant>,
        // Never set later than the current wait's end (see the module docs).
        #[pin]
        timer: Sleep,
    }
}

impl IdleWatch {
    /// A watch over a body whose first frame is awaited from now on; MUST
    /// be created inside a tokio runtime.
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            waiting_since: None,
            timer: tokio::time::sleep(timeout),
        }
    }

    /// The source produced a frame (or ended): the wait, if any, is over.
    pub(crate) fn progress(self: Pin<&mut Self>) {
        *self.project().waiting_since = None;
    }

    /// The source had nothing: starts or continues the wait, and resolves
    /// once it has lasted the timeout. Registers `cx` for that moment.
    pub(crate) fn poll_stalled(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let since = *this.waiting_since.get_or_insert_with(Instant::now);
        let end = since + *this.timeout;
        loop {
            ready!(this.timer.as_mut().poll(cx));
            // A timer never fires before its deadline.
            if this.timer.deadline() >= end {
                return Poll::Ready(());
            }
            this.timer.as_mut().reset(end);
        }
    }

    /// The timeout this watch enforces.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls the watch once as a reader would after its source said Pending.
    fn stalled(watch: Pin<&mut IdleWatch>) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        watch.poll_stalled(&mut cx).is_ready()
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_is_cut_after_the_timeout_not_before() {
        let t = Duration::from_millis(300);
        let mut watch = std::pin::pin!(IdleWatch::new(t));
        let start = Instant::now();
        assert!(!stalled(watch.as_mut()));
        tokio::time::sleep(t - Duration::from_millis(1)).await;
        assert!(!stalled(watch.as_mut()));
        std::future::poll_fn(|cx| watch.as_mut().poll_stalled(cx)).await;
        assert_eq!(Instant::now() - start, t);
    }

    #[tokio::test(start_paused = true)]
    async fn each_frame_restarts_the_clock() {
        let t = Duration::from_millis(300);
        let mut watch = std::pin::pin!(IdleWatch::new(t));
        // A frame every 200 ms for 2 s: never 300 ms without one.
        for _ in 0..10 {
            assert!(!stalled(watch.as_mut()));
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(!stalled(watch.as_mut()), "cut while frames flowed");
            watch.as_mut().progress();
        }
        // Then silence: cut one timeout after the last frame.
        let last = Instant::now();
        std::future::poll_fn(|cx| watch.as_mut().poll_stalled(cx)).await;
        assert_eq!(Instant::now() - last, t);
    }

    #[tokio::test(start_paused = true)]
    async fn time_without_a_poll_after_a_frame_is_not_a_stall() {
        let t = Duration::from_millis(300);
        let mut watch = std::pin::pin!(IdleWatch::new(t));
        watch.as_mut().progress();
        // The reader held back for 10 timeouts (backpressure)...
        tokio::time::sleep(t * 10).await;
        // ...so the wait starts now, not at the last frame.
        let now = Instant::now();
        assert!(!stalled(watch.as_mut()));
        std::future::poll_fn(|cx| watch.as_mut().poll_stalled(cx)).await;
        assert_eq!(Instant::now() - now, t);
    }
}
