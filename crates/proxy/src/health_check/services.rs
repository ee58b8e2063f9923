//! Active checks of this node's own `[[services]]`: the same probes and the
//! same pure [`Checker`] as clusters' checks, reported to a callback (the
//! discovery agent) instead of a balancer. A service with a check starts
//! failing, as Consul's "critical until first passing": the catalog never
//! serves an instance nobody has seen answer.

use std::net::SocketAddr;
use std::time::Instant;

use meshgate_config::HealthCheck;
use meshgate_core::FastRng;
use meshgate_resilience::health::{CheckConfig, Checker};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Probes `addr` with `hc` until the task is aborted, calling
/// `on_change(healthy)` on every change of state (and never otherwise).
pub fn check_service(
    addr: SocketAddr,
    hc: HealthCheck,
    on_change: impl Fn(bool) + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let config = CheckConfig {
            interval: hc.interval,
            unhealthy_interval: hc.unhealthy_interval,
            jitter: hc.jitter,
            healthy_threshold: hc.healthy_threshold,
            unhealthy_threshold: hc.unhealthy_threshold,
        };
        let mut rng = FastRng::seeded(super::seed(&addr.to_string()));
        let mut checker = Checker::new(config, 1, Instant::now(), &mut rng);
        checker.assume(0, false);
        let (tx, mut rx) = mpsc::unbounded_channel::<bool>();
        loop {
            for _ in checker.due(Instant::now()) {
                let (kind, timeout, tx) = (hc.kind.clone(), hc.timeout, tx.clone());
                tokio::spawn(async move {
                    let probe = super::probe::probe(&kind, addr, None);
                    let passed = tokio::time::timeout(timeout, probe).await.unwrap_or(false);
                    let _ = tx.send(passed); // Err: the check was stopped
                });
            }
            let wake = checker.next_due().map(tokio::time::Instant::from_std);
            let result = tokio::select! {
                r = rx.recv() => r,
                () = super::sleep_until(wake) => None,
            };
            if let Some(passed) = result
                && let Some(change) = checker.record(0, passed, Instant::now(), &mut rng)
            {
                on_change(change.healthy);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use meshgate_config::HealthCheckKind;

    use super::*;

    fn tcp_check() -> HealthCheck {
        HealthCheck {
            kind: HealthCheckKind::Tcp,
            interval: Duration::from_millis(50),
            unhealthy_interval: Duration::from_millis(50),
            jitter: Duration::ZERO,
            timeout: Duration::from_millis(500),
            healthy_threshold: 1,
            unhealthy_threshold: 1,
        }
    }

    #[tokio::test]
    async fn a_service_turns_healthy_when_it_answers_and_critical_when_it_stops() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = check_service(addr, tcp_check(), move |h| {
            let _ = tx.send(h);
        });
        let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(first.unwrap(), Some(true), "a listening service passes");
        drop(listener);
        let next = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(next.unwrap(), Some(false), "a closed port fails");
        task.abort();
    }

    #[tokio::test]
    async fn a_service_that_never_answers_is_never_reported_healthy() {
        // Bound and closed: nothing listens there.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = check_service(addr, tcp_check(), move |h| {
            let _ = tx.send(h);
        });
        // Several probe rounds: it starts critical, so no change is reported.
        let got = tokio::time::timeout(Duration::from_millis(400), rx.recv()).await;
        assert!(got.is_err(), "no change expected, got {got:?}");
        task.abort();
    }
}
