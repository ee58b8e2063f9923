//! Advertising records over DNS-SD: this node's local services (as
//! `INSTANCE._NAME._tcp.local.`) and, for the bootstrap, its gossip address.
//!
//! [`Mdns::advertise`] takes the whole desired set each time (a config
//! reload passes the new `[[services]]`): what left or changed is
//! unregistered first (goodbye packets, so browsers drop it at once rather
//! than at TTL expiry), then what is new or changed is registered.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use mdns_sd::{IfKind, ServiceInfo};
use meshgate_catalog::Instance;

use crate::{Mdns, MdnsError, names, txt};

/// One record set to announce: what the daemon's [`ServiceInfo`] is built
/// from, kept comparable so a reload re-announces only what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ad {
    /// `_x._tcp.local.`.
    pub(crate) ty: String,
    /// The instance label.
    pub(crate) instance: String,
    /// The address announced; unspecified means "the selected interfaces'
    /// addresses" (IPv4 ones only for `0.0.0.0`).
    pub(crate) ip: IpAddr,
    pub(crate) port: u16,
    pub(crate) txt: Vec<(String, String)>,
}

// === impl Ad ===

impl Ad {
    /// The daemon's form of it, announced under host name `host`.
    pub(crate) fn to_info(&self, host: &str) -> Result<ServiceInfo, MdnsError> {
        let txt: Vec<(&str, &str)> = self
            .txt
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let info = if self.ip.is_unspecified() {
            let mut info = ServiceInfo::new(
                &self.ty,
                &self.instance,
                host,
                (),
                self.port,
                txt.as_slice(),
            )?
            .enable_addr_auto();
            // A socket on 0.0.0.0 takes IPv4 only: announcing the interfaces'
            // IPv6 addresses would hand out places nothing listens on.
            if self.ip.is_ipv4() {
                info.set_interfaces(vec![IfKind::IPv4]);
            }
            info
        } else {
            ServiceInfo::new(
                &self.ty,
                &self.instance,
                host,
                self.ip,
                self.port,
                txt.as_slice(),
            )?
        };
        Ok(info)
    }
}

/// What [`Mdns::advertise`] registered, by the daemon's full name.
pub(crate) type Registered = BTreeMap<String, Ad>;

/// The outcome of [`Mdns::advertise`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdvertiseReport {
    /// The full names now advertised (`node-a._users._tcp.local.`), sorted.
    pub advertised: Vec<String>,
    /// Instances not advertised: their id and why (a service name that is
    /// not a valid DNS-SD type, a port of 0, a duplicate instance name).
    pub skipped: Vec<(String, String)>,
    /// TXT content left out of advertised instances: their id and what.
    pub trimmed: Vec<(String, String)>,
}

/// The ads for `services`, by full name, and what could not be made.
fn plan(
    services: &[Instance],
    host: &str,
    report: &mut AdvertiseReport,
) -> BTreeMap<String, (Ad, ServiceInfo)> {
    let mut out = BTreeMap::new();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for s in services {
        *count.entry(s.service.as_str()).or_default() += 1;
    }
    for s in services {
        let ty = match names::service_type_of(&s.service) {
            Ok(ty) => ty,
            Err(why) => {
                report.skipped.push((s.id.clone(), why));
                continue;
            }
        };
        if s.addr.port() == 0 {
            report.skipped.push((s.id.clone(), "port 0".into()));
            continue;
        }
        // One instance of a service per node is named after the node; when
        // a node runs several, each carries its address too.
        let label = if count.get(s.service.as_str()).copied().unwrap_or(0) > 1 {
            names::instance_label(&format!("{} ({})", s.node, s.addr))
        } else {
            names::instance_label(&s.node)
        };
        let (txt, dropped) = txt::service_txt(s);
        for what in dropped {
            report.trimmed.push((s.id.clone(), what));
        }
        let ad = Ad {
            ty,
            instance: label,
            ip: s.addr.ip(),
            port: s.addr.port(),
            txt,
        };
        let info = match ad.to_info(host) {
            Ok(info) => info,
            Err(e) => {
                report.skipped.push((s.id.clone(), e.to_string()));
                continue;
            }
        };
        let fullname = info.get_fullname().to_ascii_lowercase();
        if out.contains_key(&fullname) {
            report
                .skipped
                .push((s.id.clone(), format!("duplicate instance name {fullname}")));
            continue;
        }
        out.insert(fullname, (ad, info));
    }
    out
}

// === impl Mdns ===

impl Mdns {
    /// Makes `services` (this node's `[[services]]`, as catalog instances)
    /// exactly what is advertised: unregisters the ones no longer wanted or
    /// changed, registers the new and changed ones. Each instance is
    /// announced at its address (an unspecified address: at the selected
    /// interfaces' addresses; mdns-sd announces an address only on the
    /// interface whose subnet holds it, so a loopback address reaches
    /// nobody unless `lo` is selected). Pass `&[]` to withdraw everything.
    pub async fn advertise(&self, services: &[Instance]) -> AdvertiseReport {
        let mut report = AdvertiseReport::default();
        let wanted = plan(services, &self.inner.host, &mut report);
        let mut registered = self.inner.advertised.lock().await;
        if self.inner.is_closed() {
            report.skipped.extend(
                services
                    .iter()
                    .map(|s| (s.id.clone(), "the mdns responder is shut down".into())),
            );
            return report;
        }

        let stale: BTreeSet<String> = registered
            .iter()
            .filter(|(name, ad)| wanted.get(*name).is_none_or(|(new, _)| new != *ad))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &stale {
            self.unregister(name).await;
            registered.remove(name);
        }
        for (name, (ad, info)) in wanted {
            if registered.contains_key(&name) {
                continue;
            }
            if !self.inner.selection.may_use_loopback() && ad.ip.is_loopback() {
                tracing::warn!(
                    fullname = %name,
                    "mdns: a loopback address is announced only on a loopback interface; \
                     list \"lo\" in the interfaces or give the service a LAN address"
                );
            }
            match self.register(info) {
                Ok(()) => {
                    registered.insert(name, ad);
                }
                Err(e) => report.skipped.push((name, e.to_string())),
            }
        }
        report.advertised = registered.keys().cloned().collect();
        report
    }
}

#[cfg(test)]
mod tests;
