//! The discovery agent's long-running parts, started from `[discovery]`:
//! the gossip node, the DNS interface, the mDNS responder (LAN bootstrap,
//! DNS-SD advertisement, imports), the etcd registry, and the task that
//! publishes the node's own services to each of them.
//!
//! Settings are taken at start; a reload changes the local services and
//! the cluster keys in place, and says which other changes need a restart.

use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdp};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use anyhow::Context as _;
use meshgate_catalog::Instance;
use meshgate_config::Config;
use meshgate_config::discovery::{Discovery, GossipProfile};
use meshgate_discovery::{Gossip, GossipHandle};
use meshgate_etcd::{EtcdSettings, EtcdStats, Registry, RegistryHandle};
use meshgate_gossip::{LocalService, Settings, Timing};
use meshgate_mdns::{Mdns, MdnsSettings};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::local::Local;
use crate::upgrade::{Handed, Kind, Takeover, acquire_discovery, dup};

/// What runs; each part is `None` when not configured.
pub(crate) struct Runtime {
    /// `[discovery]` as it was at start.
    pub(crate) settings: Option<Discovery>,
    pub(crate) gossip: Option<GossipHandle>,
    /// The gossip address other nodes are told (`advertise`, else bound).
    pub(crate) advertised: Option<SocketAddr>,
    /// The cluster keys a reload asked for; one task hands them to the
    /// driver in order, the latest winning.
    keys: Option<watch::Sender<Vec<[u8; 32]>>>,
    pub(crate) etcd: Option<EtcdSettings>,
    pub(crate) etcd_stats: Arc<EtcdStats>,
    /// Shared with the publishing task; taken at shutdown.
    registry: Arc<std::sync::Mutex<Option<RegistryHandle>>>,
    pub(crate) mdns: Option<Mdns>,
    pub(crate) dns_stats: Arc<meshgate_dns::DnsStats>,
    pub(crate) local: Arc<Local>,
    /// Set to `true` to stop sources and background tasks.
    pub(crate) stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Copies of the gossip and DNS sockets, to offer a successor in a
    /// binary upgrade.
    pub(crate) handed: Vec<Handed>,
}

impl Runtime {
    /// Starts what `config` asks for. Fails start-up on a socket that
    /// cannot be bound or a responder that cannot start. When taking over
    /// from a running process, its gossip and DNS sockets are used instead
    /// of binding (`takeover`).
    pub(crate) async fn start(
        config: &Config,
        mut takeover: Option<&mut Takeover>,
    ) -> anyhow::Result<Self> {
        let settings = config.discovery.clone();
        let node = settings
            .as_ref()
            .and_then(|d| d.node_name.clone())
            .unwrap_or_else(hostname);
        let (stop, _) = watch::channel(false);
        let local = Local::new(node.clone());
        local.set_services(&config.services);
        let mut rt = Self {
            settings: settings.clone(),
            gossip: None,
            advertised: None,
            keys: None,
            etcd: None,
            etcd_stats: Arc::new(EtcdStats::default()),
            registry: Arc::default(),
            mdns: None,
            dns_stats: Arc::new(meshgate_dns::DnsStats::default()),
            local,
            stop,
            tasks: Vec::new(),
            handed: Vec::new(),
        };
        let wants_mdns = config.clusters.iter().any(|c| {
            matches!(
                c.discovery,
                Some(meshgate_config::discovery::ClusterDiscovery::Mdns(_))
            )
        });
        let Some(d) = settings else {
            if wants_mdns {
                // Imports only: no gossip address to announce.
                let any = SocketAddr::from(([0, 0, 0, 0], 0));
                rt.mdns = Some(start_mdns(MdnsSettings::new(node, any))?);
            }
            return Ok(rt);
        };
        let inherited = match acquire_discovery(takeover.as_deref_mut(), Kind::Gossip, d.bind) {
            Some(meshgate_proxy::Socket::Udp(u)) => Some(u),
            _ => None,
        };
        let (gossip, advertised, socket) =
            start_gossip(&d, &node, rt.local.instances(), inherited).await?;
        rt.hand(Kind::Gossip, d.bind, socket);
        rt.advertised = Some(advertised);
        let (keys_tx, keys_rx) = watch::channel(d.keys.clone());
        rt.tasks
            .push(tokio::spawn(apply_keys(gossip.clone(), keys_rx)));
        rt.keys = Some(keys_tx);
        tracing::info!(listener = "gossip", node = %node, address = %advertised, "listening");
        if d.lan || wants_mdns {
            let mut ms = MdnsSettings::new(node.clone(), advertised);
            ms.interfaces = d.interfaces.clone();
            let mdns = start_mdns(ms)?;
            if d.lan {
                let (seeds_tx, seeds) = watch::channel(Vec::new());
                rt.tasks.push(
                    meshgate_mdns::lan_bootstrap(&mdns, seeds_tx, rt.stop.subscribe())
                        .map_err(|e| anyhow::anyhow!("mDNS bootstrap: {e}"))?,
                );
                rt.tasks
                    .push(tokio::spawn(join_found(gossip.clone(), seeds)));
            }
            rt.mdns = Some(mdns);
        }
        if let Some(addr) = d.dns {
            let udp = acquire_discovery(takeover.as_deref_mut(), Kind::DnsUdp, addr);
            let tcp = acquire_discovery(takeover, Kind::DnsTcp, addr);
            let (udp, tcp) = match (udp, tcp) {
                (Some(meshgate_proxy::Socket::Udp(u)), Some(meshgate_proxy::Socket::Tcp(t))) => {
                    (u, t)
                }
                _ => meshgate_dns::bind(addr)
                    .await
                    .with_context(|| format!("binding the DNS interface on {addr}"))?,
            };
            rt.hand(Kind::DnsUdp, addr, dup(&udp));
            rt.hand(Kind::DnsTcp, addr, dup(&tcp));
            let bound = tcp.local_addr().unwrap_or(addr);
            tracing::info!(listener = "dns", address = %bound, "listening (DNS interface, UDP and TCP)");
            let dns = dns_settings(&d)?;
            let mut stop = rt.stop.subscribe();
            rt.tasks.push(tokio::spawn(meshgate_dns::serve(
                udp,
                tcp,
                Arc::new(LiveDirectory(gossip.clone())),
                dns,
                rt.dns_stats.clone(),
                async move {
                    let _ = stop.wait_for(|s| *s).await; // Err: the agent is gone; stop too
                },
            )));
        }
        if let Some(e) = &d.etcd {
            let settings = EtcdSettings {
                endpoints: e.endpoints.clone(),
                prefix: e.prefix.clone(),
                lease_ttl: e.lease_ttl,
                node: node.clone(),
                ..EtcdSettings::default()
            };
            *lock(&rt.registry) = Some(Registry::start(settings.clone(), rt.local.instances()));
            rt.etcd = Some(settings);
        }
        rt.gossip = Some(gossip);
        rt.tasks.push(tokio::spawn(publish(
            rt.local.subscribe(),
            rt.gossip.clone(),
            rt.registry.clone(),
            rt.mdns.clone().filter(|_| d.lan),
        )));
        Ok(rt)
    }

    /// Applies what a reload may change in place: the local services, and
    /// the cluster keys (rotation); warns about the rest.
    pub(crate) fn reconfigure(&self, config: &Config) {
        self.local.set_services(&config.services);
        let (Some(old), Some(new)) = (&self.settings, &config.discovery) else {
            if self.settings.is_some() != config.discovery.is_some() {
                tracing::warn!("[discovery] was added or removed: restart meshgate to apply");
            }
            return;
        };
        if let Some(keys) = &self.keys {
            // Compared with the keys last asked for, not those at start.
            keys.send_if_modified(|current| {
                let changed = *current != new.keys;
                current.clone_from(&new.keys);
                changed
            });
        }
        let mut same = new.clone();
        same.keys = old.keys.clone();
        if same != *old {
            tracing::warn!(
                "[discovery] settings other than keys changed: restart meshgate to apply them"
            );
        }
    }

    /// A reader of the registry's counters (zeros without one).
    pub(crate) fn registry_counts(
        &self,
    ) -> impl Fn() -> meshgate_etcd::EtcdCounts + Send + 'static {
        let registry = self.registry.clone();
        move || {
            lock(&registry)
                .as_ref()
                .map(RegistryHandle::stats)
                .unwrap_or_default()
        }
    }

    /// Keeps a copy of a discovery socket for a successor; one that cannot
    /// be copied is not offered (the successor binds afresh, or fails to
    /// start and this process goes on).
    fn hand(&mut self, kind: Kind, configured: SocketAddr, copy: std::io::Result<OwnedFd>) {
        let bound = copy.as_ref().ok().and_then(|fd| {
            let a = rustix::net::getsockname(fd).ok()?;
            SocketAddr::try_from(a).ok()
        });
        match (copy, bound) {
            (Ok(fd), Some(bound)) => self.handed.push(Handed {
                kind,
                configured,
                bound,
                fd,
            }),
            _ => tracing::warn!(
                socket = kind.name(),
                "cannot copy a discovery socket; a binary upgrade will bind it afresh"
            ),
        }
    }

    /// Leaves the gossip cluster, deregisters from etcd, says goodbye on
    /// mDNS; each bounded in time.
    pub(crate) async fn stop(&mut self) {
        let _ = self.stop.send(true); // Err: no receivers left, nothing to stop
        self.local.stop();
        if let Some(g) = &self.gossip {
            g.leave_and_stop().await;
        }
        let registry = lock(&self.registry).take();
        if let Some(r) = registry {
            r.shutdown().await;
        }
        if let Some(m) = &self.mdns {
            m.shutdown().await;
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

/// The gossip catalog as it stands at each call (the handle's snapshot is
/// swapped on every change), for the DNS interface and the admin API.
pub(crate) struct LiveDirectory(pub(crate) GossipHandle);

impl meshgate_catalog::Directory for LiveDirectory {
    fn services(&self) -> Vec<meshgate_catalog::ServiceName> {
        self.0.directory().services()
    }

    fn instances(&self, service: &str) -> Vec<Instance> {
        self.0.directory().instances(service)
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn start_mdns(settings: MdnsSettings) -> anyhow::Result<Mdns> {
    Mdns::start(settings).map_err(|e| anyhow::anyhow!("starting the mDNS responder: {e}"))
}

/// Hands each new key list to the driver, in the order reloads made them.
async fn apply_keys(gossip: GossipHandle, mut keys: watch::Receiver<Vec<[u8; 32]>>) {
    while keys.changed().await.is_ok() {
        let k = keys.borrow_and_update().clone();
        match gossip.set_keys(k).await {
            Ok(()) => tracing::info!("gossip keys replaced"),
            Err(e) => tracing::error!(error = %e, "gossip keys not replaced"),
        }
    }
}

/// Starts the gossip node on `inherited` (a binary upgrade's) or a socket
/// bound afresh; also returns the address it advertises and a copy of the
/// socket.
async fn start_gossip(
    d: &Discovery,
    node: &str,
    services: Vec<Instance>,
    inherited: Option<tokio::net::UdpSocket>,
) -> anyhow::Result<(GossipHandle, SocketAddr, std::io::Result<OwnedFd>)> {
    let socket = match inherited {
        Some(socket) => socket,
        None => tokio::net::UdpSocket::bind(d.bind)
            .await
            .with_context(|| format!("binding gossip on {}", d.bind))?,
    };
    let copy = dup(&socket);
    let bound = socket.local_addr()?;
    let mut advertised = d.advertise.unwrap_or(bound);
    if advertised.ip().is_unspecified() {
        advertised.set_ip(
            reachable_ip(&d.join)
                .context("bind is an unspecified address: set [discovery] advertise to the address other nodes reach")?,
        );
    }
    let mut settings = Settings::new(node, advertised, d.keys.clone());
    settings.timing = match d.profile {
        GossipProfile::Lan => Timing::lan(),
        GossipProfile::Wan => Timing::wan(),
        GossipProfile::Local => local_timing(),
    };
    let handle = Gossip::start(
        settings,
        Some(socket),
        d.join.clone(),
        local_services(&services),
    )
    .await
    .context("starting gossip")?;
    // Port 0: the driver advertises the port it was given.
    if advertised.port() == 0 {
        advertised.set_port(handle.local_addr().port());
    }
    Ok((handle, advertised, copy))
}

/// One machine (tests, demos): LAN timing five times faster.
fn local_timing() -> Timing {
    let lan = Timing::lan();
    Timing {
        probe_period: lan.probe_period / 5,
        probe_rtt: lan.probe_rtt / 5,
        gossip_interval: lan.gossip_interval / 5,
        anti_entropy_interval: lan.anti_entropy_interval / 5,
        rejoin_interval: lan.rejoin_interval / 5,
        ..lan
    }
}

/// The gossip core's view of the local instances.
fn local_services(instances: &[Instance]) -> Vec<LocalService> {
    instances
        .iter()
        .map(|i| LocalService {
            service: i.service.clone(),
            id: i.id.clone(),
            addr: i.addr,
            tags: i.tags.clone(),
            meta: i.meta.clone(),
            healthy: i.healthy,
        })
        .collect()
}

fn dns_settings(d: &Discovery) -> anyhow::Result<meshgate_dns::DnsSettings> {
    let domain = meshgate_dns::Domain::try_new(&d.dns_domain)
        .map_err(|e| anyhow::anyhow!("dns_domain {:?}: {e}", d.dns_domain))?;
    Ok(meshgate_dns::DnsSettings {
        domain,
        service_ttl: d.dns_ttl,
        ..meshgate_dns::DnsSettings::default()
    })
}

/// Publishes every change of the local services to gossip, etcd and (with
/// `lan`) DNS-SD.
async fn publish(
    mut local: watch::Receiver<Vec<Instance>>,
    gossip: Option<GossipHandle>,
    registry: Arc<std::sync::Mutex<Option<RegistryHandle>>>,
    mdns: Option<Mdns>,
) {
    loop {
        let instances = local.borrow_and_update().clone();
        if let Some(g) = &gossip
            && let Err(e) = g.set_local_services(local_services(&instances)).await
        {
            tracing::error!(error = %e, "local services not published to gossip");
        }
        if let Some(r) = lock(&registry).as_ref() {
            r.update(instances.clone());
        }
        if let Some(m) = &mdns {
            // DNS-SD has no health: what is advertised is served by whoever
            // imports it, so a critical instance is withdrawn instead.
            let healthy: Vec<Instance> = instances.iter().filter(|i| i.healthy).cloned().collect();
            let report = m.advertise(&healthy).await;
            for (name, why) in report.skipped {
                tracing::warn!(service = %name, reason = %why, "not advertised over DNS-SD");
            }
        }
        if local.changed().await.is_err() {
            return;
        }
    }
}

/// Joins the gossip cluster through the peers mDNS finds.
async fn join_found(gossip: GossipHandle, mut seeds: watch::Receiver<Vec<std::net::SocketAddr>>) {
    loop {
        let found = seeds.borrow_and_update().clone();
        if !found.is_empty() {
            tracing::info!(peers = found.len(), "mDNS found gossip peers; joining");
            if let Err(e) = gossip.join(found).await {
                tracing::error!(error = %e, "joining peers found over mDNS");
            }
        }
        if seeds.changed().await.is_err() {
            return;
        }
    }
}

/// The local address the kernel would use towards the first seed (or a
/// private address when there is none): no packet is sent.
fn reachable_ip(seeds: &[SocketAddr]) -> Option<IpAddr> {
    let target = seeds
        .first()
        .copied()
        .unwrap_or(SocketAddr::from(([10, 255, 255, 255], 9)));
    let bind: SocketAddr = if target.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = StdUdp::bind(bind).ok()?;
    socket.connect(target).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// This host's name, for the default node name.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "meshgate".to_owned())
}
