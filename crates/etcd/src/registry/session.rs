//! One registration session: a lease, its keepalive stream, and the keys
//! put under it. It lives until shutdown or until the lease can no longer
//! be trusted; the registry task then starts a new one.

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp,
};
use meshgate_catalog::Instance;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{info, warn};

use crate::backoff::stopped;
use crate::record;
use crate::stats::{Counter, EtcdStats};
use crate::{EtcdSettings, Failure};

/// Keys checked (and put back) per transaction: two compares and one put
/// each, well inside etcd's default limit of 128 operations per branch.
const VERIFY_CHUNK: usize = 32;

/// The keys and values this node wants in etcd.
pub(super) type Desired = BTreeMap<String, Vec<u8>>;

/// The key and value of every instance; instances without an id are skipped.
pub(super) fn desired(settings: &EtcdSettings, services: &[Instance]) -> Desired {
    let mut out = Desired::new();
    for instance in services {
        if instance.id.is_empty() {
            warn!(service = %instance.service, "an instance without an id is not registered in etcd");
            continue;
        }
        let key = record::key(settings.base(), instance);
        out.insert(key, record::encode(instance, &settings.node));
    }
    out
}

/// One lease, its keepalive stream, and the keys put under it.
pub(super) struct Session {
    pub(super) client: Client,
    pub(super) lease: i64,
    keeper: LeaseKeeper,
    acks: LeaseKeepAliveStream,
    pub(super) registered: Desired,
}

/// Grants a lease (recorded in `granted` as soon as it exists), opens its
/// keepalive stream and puts every desired key under it.
pub(super) async fn establish(
    settings: &EtcdSettings,
    client: &mut Client,
    desired: Desired,
    granted: &mut Option<i64>,
) -> Result<Session, Failure> {
    let lease = settings
        .bounded("lease grant", client.lease_grant(settings.ttl_secs(), None))
        .await?
        .id();
    *granted = Some(lease);
    let (keeper, acks) = settings
        .bounded("lease keepalive", client.lease_keep_alive(lease))
        .await?;
    let options = PutOptions::new().with_lease(lease);
    for (key, value) in &desired {
        settings
            .bounded(
                "put",
                client.put(key.as_str(), value.as_slice(), Some(options.clone())),
            )
            .await?;
    }
    Ok(Session {
        client: client.clone(),
        lease,
        keeper,
        acks,
        registered: desired,
    })
}

// === impl Session ===

impl Session {
    /// Keeps the lease alive and applies updates. Ok on shutdown, Err when
    /// the session is lost.
    pub(super) async fn run(
        &mut self,
        settings: &EtcdSettings,
        services: &mut watch::Receiver<Vec<Instance>>,
        stop: &mut watch::Receiver<bool>,
        stats: &EtcdStats,
    ) -> Result<(), Failure> {
        let period = Duration::from_millis(settings.ttl_secs().unsigned_abs() * 1000 / 3);
        let mut tick = tokio::time::interval_at(Instant::now() + period, period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let ttl = period * 3;
        let mut verify = tokio::time::interval_at(Instant::now() + ttl, ttl);
        verify.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // When the oldest unanswered keepalive went out.
        let mut unanswered: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if unanswered.is_some_and(|since| since.elapsed() > settings.request_timeout) {
                        stats.bump(Counter::KeepaliveFailures);
                        return Err(Failure::Lost("a keepalive went unanswered"));
                    }
                    if let Err(error) = self.keeper.keep_alive().await {
                        stats.bump(Counter::KeepaliveFailures);
                        return Err(Failure::Etcd("lease keepalive", error));
                    }
                    unanswered.get_or_insert_with(Instant::now);
                }
                ack = self.acks.message() => match ack {
                    Ok(Some(ack)) if ack.ttl() > 0 => unanswered = None,
                    Ok(Some(_)) => {
                        stats.bump(Counter::KeepaliveFailures);
                        return Err(Failure::Lost("etcd says the lease expired"));
                    }
                    Ok(None) => {
                        stats.bump(Counter::KeepaliveFailures);
                        return Err(Failure::Lost("the keepalive stream closed"));
                    }
                    Err(error) => {
                        stats.bump(Counter::KeepaliveFailures);
                        return Err(Failure::Etcd("lease keepalive", error));
                    }
                },
                _ = verify.tick() => self.verify(settings, stats).await?,
                changed = services.changed() => {
                    if changed.is_err() {
                        // The handle is gone: that is a shutdown.
                        return Ok(());
                    }
                    let next = desired(settings, &services.borrow_and_update());
                    self.apply(settings, next).await?;
                }
                () = stopped(stop) => return Ok(()),
            }
        }
    }

    /// Puts back, under this lease, every key that someone deleted or
    /// overwrote behind the registry's back: one transaction per chunk
    /// compares each key's value and lease and, if any differs, puts the
    /// whole chunk again. Runs once per TTL.
    async fn verify(&mut self, settings: &EtcdSettings, stats: &EtcdStats) -> Result<(), Failure> {
        let keys: Vec<(&String, &Vec<u8>)> = self.registered.iter().collect();
        let options = PutOptions::new().with_lease(self.lease);
        for chunk in keys.chunks(VERIFY_CHUNK) {
            let mut when = Vec::with_capacity(chunk.len() * 2);
            let mut repair = Vec::with_capacity(chunk.len());
            for (key, value) in chunk {
                let key = key.as_str();
                when.push(Compare::value(key, CompareOp::Equal, value.as_slice()));
                when.push(Compare::lease(key, CompareOp::Equal, self.lease));
                repair.push(TxnOp::put(key, value.as_slice(), Some(options.clone())));
            }
            let txn = Txn::new().when(when).or_else(repair);
            let response = settings.bounded("verify", self.client.txn(txn)).await?;
            if !response.succeeded() {
                stats.bump(Counter::Repairs);
                warn!(
                    lease = self.lease,
                    "registered keys were deleted or overwritten in etcd; put them back"
                );
            }
        }
        Ok(())
    }

    /// Puts changed and new keys, deletes removed ones.
    async fn apply(&mut self, settings: &EtcdSettings, next: Desired) -> Result<(), Failure> {
        let options = PutOptions::new().with_lease(self.lease);
        let (mut put, mut deleted) = (0, 0);
        for (key, value) in &next {
            if self.registered.get(key) != Some(value) {
                let request =
                    self.client
                        .put(key.as_str(), value.as_slice(), Some(options.clone()));
                settings.bounded("put", request).await?;
                put += 1;
            }
        }
        for key in self.registered.keys().filter(|k| !next.contains_key(*k)) {
            settings
                .bounded("delete", self.client.delete(key.as_str(), None))
                .await?;
            deleted += 1;
        }
        self.registered = next;
        info!(
            put,
            deleted,
            lease = self.lease,
            "etcd registration updated"
        );
        Ok(())
    }
}
