//! The browse of one service type: mdns-sd's events in, a bounded table of
//! resolved instances out (as `watch` snapshots for every subscriber).
//!
//! The task ends when its last subscriber goes (it then stops the browse),
//! when the responder shuts down, or when the daemon is gone. If mdns-sd
//! drops the subscription (its event channel filled up), the browse is
//! started again after a pause.

use std::sync::{Arc, Weak};
use std::time::Duration;

use mdns_sd::{Receiver, ResolvedService, ScopedIp, ServiceDaemon, ServiceEvent};
use tokio::sync::watch;

use crate::daemon::{Inner, Snapshot};
use crate::table::{self, Refused, SeenIp, Table};
use crate::txt::Txt;

/// Pause before browsing again after mdns-sd dropped the subscription.
const REBROWSE_AFTER: Duration = Duration::from_secs(1);

/// What the browse task owns.
pub(crate) struct Browse {
    /// The canonical type, `_x._tcp.local.`.
    pub(crate) ty: String,
    pub(crate) daemon: ServiceDaemon,
    pub(crate) events: Receiver<ServiceEvent>,
    pub(crate) tx: Arc<watch::Sender<Snapshot>>,
    /// The responder, to release the browse; weak so that dropping every
    /// `Mdns` still stops the daemon.
    pub(crate) hub: Weak<Inner>,
    pub(crate) closed: watch::Receiver<bool>,
}

/// Runs the browse until no one listens or the responder stops.
pub(crate) async fn run(b: Browse) {
    let (ty, tx, hub) = (b.ty.clone(), b.tx.clone(), b.hub.clone());
    browse(b).await;
    // However it ended, a later subscriber must start a new browse rather
    // than wait on this finished one; and this one's subscribers see the
    // channel close.
    if let Some(hub) = hub.upgrade() {
        hub.forget(&ty, &tx);
    }
}

async fn browse(mut b: Browse) {
    let mut table = Table::default();
    // Whether the last refusal was for a full table, so that a flood is
    // logged once rather than once per packet.
    let mut full_logged = false;
    loop {
        tokio::select! {
            event = b.events.recv_async() => match event {
                Ok(event) => {
                    if apply(&mut table, event, &b.ty, &mut full_logged) {
                        b.tx.send_replace(Arc::new(table.clone()));
                    }
                }
                Err(_) => {
                    let Some(hub) = b.hub.upgrade() else { return };
                    if hub.is_closed() {
                        return;
                    }
                    drop(hub);
                    tracing::warn!(ty = %b.ty, "mdns: browse subscription dropped; browsing again");
                    tokio::time::sleep(REBROWSE_AFTER).await;
                    match b.daemon.browse(&b.ty) {
                        Ok(events) => b.events = events,
                        Err(e) => {
                            tracing::warn!(ty = %b.ty, error = %e, "mdns: browse failed; giving up");
                            return;
                        }
                    }
                }
            },
            () = b.tx.closed() => {
                let Some(hub) = b.hub.upgrade() else { return };
                if hub.release(&b.ty, &b.tx) {
                    return;
                }
            }
            changed = b.closed.changed() => {
                if changed.is_err() || *b.closed.borrow() {
                    return;
                }
            }
        }
    }
}

/// Applies one event; returns whether the table changed.
fn apply(table: &mut Table, event: ServiceEvent, ty: &str, full_logged: &mut bool) -> bool {
    match event {
        ServiceEvent::ServiceResolved(resolved) => {
            let fullname = resolved.fullname.clone();
            match convert(&resolved) {
                Ok(r) => match table.upsert(r) {
                    Ok(changed) => {
                        *full_logged = false;
                        changed
                    }
                    Err(_) => {
                        if !*full_logged {
                            tracing::warn!(
                                %ty,
                                limit = table::MAX_INSTANCES,
                                "mdns: too many instances of this type; ignoring new ones"
                            );
                            *full_logged = true;
                        }
                        false
                    }
                },
                Err(why) => {
                    tracing::debug!(%ty, fullname = %crate::names::truncate(&fullname, 255), ?why, "mdns: instance ignored");
                    // An instance that became unusable leaves.
                    table.remove(&fullname)
                }
            }
        }
        ServiceEvent::ServiceRemoved(_, fullname) => table.remove(&fullname),
        _ => false,
    }
}

/// mdns-sd's resolved service as plain values, checked.
fn convert(r: &ResolvedService) -> Result<table::Resolved, Refused> {
    let ips = r.addresses.iter().map(|scoped| SeenIp {
        ip: scoped.to_ip_addr(),
        if_index: match scoped {
            ScopedIp::V6(v6) => v6.scope_id().index,
            _ => 0,
        },
    });
    let txt = Txt::read(r.txt_properties.iter().map(|p| (p.key(), p.val())));
    table::resolve(&r.fullname, &r.host, r.port, ips, txt)
}
