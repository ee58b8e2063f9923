//! Discovery's metrics: the gossip node's, the DNS interface's and etcd's
//! counters, copied into the registry once a second (their drivers keep
//! plain numbers; the registry keeps atomics the `/metrics` page reads).

use std::sync::Arc;
use std::time::Duration;

use meshgate_gossip::DropReason;
use meshgate_telemetry::{Counter, Gauge, Registry};
use tokio::task::JoinHandle;

use super::runtime::Runtime;

/// Sets a registry counter to a driver's running total (totals only grow;
/// a total that went down, which they never do, is ignored).
fn mirror(counter: &Counter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.add(total - seen);
    }
}

fn gauge(g: &Gauge, v: usize) {
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
}

/// Starts the copying task; it ends when aborted.
pub(crate) fn spawn(rt: &Runtime, registry: &Registry) -> JoinHandle<()> {
    let c = |name: &str, help: &str| registry.counter(name, help, &[]);
    let members = |state: &str| {
        registry.gauge(
            "meshgate_gossip_members",
            "Members of the gossip cluster by state, as this node sees them (itself not counted).",
            &[("state", state)],
        )
    };
    let (alive, suspect, down) = (members("alive"), members("suspect"), members("down"));
    let suspicions = c(
        "meshgate_gossip_suspicions_total",
        "Suspicions raised or learnt.",
    );
    let refutations = c(
        "meshgate_gossip_refutations_total",
        "Suspicions about this node that it refuted (false positives avoided).",
    );
    let name_conflicts = c(
        "meshgate_gossip_name_conflicts_total",
        "Members that came up under a node name already in use at another address (each node needs its own node_name).",
    );
    let declared_down = c(
        "meshgate_gossip_members_down_total",
        "Members declared down.",
    );
    let left = c(
        "meshgate_gossip_members_left_total",
        "Members that left gracefully.",
    );
    let msgs_in = c(
        "meshgate_gossip_messages_received_total",
        "Gossip datagrams received.",
    );
    let msgs_out = c(
        "meshgate_gossip_messages_sent_total",
        "Gossip datagrams sent.",
    );
    let bytes_in = c(
        "meshgate_gossip_bytes_received_total",
        "Gossip bytes received.",
    );
    let bytes_out = c("meshgate_gossip_bytes_sent_total", "Gossip bytes sent.");
    let dropped: Vec<(DropReason, Arc<Counter>)> = DropReason::ALL
        .iter()
        .map(|&r| {
            (
                r,
                registry.counter(
                    "meshgate_gossip_dropped_total",
                    "Gossip datagrams dropped unread, by reason; none changes any state.",
                    &[("reason", r.as_str())],
                ),
            )
        })
        .collect();
    let repairs = c(
        "meshgate_gossip_anti_entropy_repairs_total",
        "Catalog entries repaired by anti-entropy.",
    );
    let catalog = |what: &str| {
        registry.gauge(
            "meshgate_catalog_size",
            "Entries in the service catalog.",
            &[("kind", what)],
        )
    };
    let (services, instances) = (catalog("services"), catalog("instances"));
    let dns_queries: Vec<_> = meshgate_dns::QueryType::ALL
        .iter()
        .flat_map(|&t| meshgate_dns::QueryResult::ALL.iter().map(move |&r| (t, r)))
        .map(|(t, r)| {
            let labels = [("type", t.as_str()), ("result", r.as_str())];
            (
                t,
                r,
                registry.counter(
                    "meshgate_dns_queries_total",
                    "DNS interface queries by type and result.",
                    &labels,
                ),
            )
        })
        .collect();
    let dns_dropped = c(
        "meshgate_dns_dropped_total",
        "DNS messages dropped unanswered (malformed).",
    );
    let etcd = |what: &str| {
        registry.counter(
            "meshgate_etcd_events_total",
            "etcd registry and watch events, by kind.",
            &[("kind", what)],
        )
    };
    let etcd_counters: Vec<(&'static str, Arc<Counter>)> = [
        "registrations",
        "reregistrations",
        "keepalive_failures",
        "watch_events",
        "malformed",
        "resyncs",
    ]
    .into_iter()
    .map(|k| (k, etcd(k)))
    .collect();

    let gossip = rt.gossip.clone();
    let dns = rt.dns_stats.clone();
    let etcd_stats = rt.etcd_stats.clone();
    let registry_counts = rt.registry_counts();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Some(g) = &gossip {
                let s = g.stats();
                gauge(&alive, s.members_alive);
                gauge(&suspect, s.members_suspect);
                gauge(&down, s.members_down);
                mirror(&suspicions, s.suspicions);
                mirror(&refutations, s.refutations);
                mirror(&declared_down, s.down);
                mirror(&name_conflicts, s.name_conflicts);
                mirror(&left, s.left);
                mirror(&msgs_in, s.messages_in);
                mirror(&msgs_out, s.messages_out);
                mirror(&bytes_in, s.bytes_in);
                mirror(&bytes_out, s.bytes_out);
                for (reason, counter) in &dropped {
                    mirror(counter, s.dropped(*reason));
                }
                mirror(&repairs, s.anti_entropy_repairs);
                gauge(&services, s.catalog_services);
                gauge(&instances, s.catalog_instances);
            }
            let d = dns.snapshot();
            for (t, r, counter) in &dns_queries {
                mirror(counter, d.count(*t, *r));
            }
            mirror(&dns_dropped, d.dropped_malformed);
            let e = etcd_stats.snapshot();
            let r = registry_counts();
            for (kind, counter) in &etcd_counters {
                let total = match *kind {
                    "registrations" => r.registrations,
                    "reregistrations" => r.reregistrations,
                    "keepalive_failures" => r.keepalive_failures,
                    "watch_events" => e.watch_events,
                    "malformed" => e.malformed + r.malformed,
                    _ => e.resyncs,
                };
                mirror(counter, total);
            }
        }
    })
}
