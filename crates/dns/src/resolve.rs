//! DNS endpoint sources: a cluster's endpoints from what a DNS name
//! resolves to, kept current by re-resolving when the answer's TTL runs out.
//!
//! A name starting with `_` (`_users._tcp.example.org`), or any name with
//! [`ResolveSettings::srv`], is looked up as SRV: each record gives a port
//! and a target, and the target's addresses come from the additional
//! section or, when absent there, from A/AAAA lookups. Any other name is
//! looked up as A and AAAA, each address paired with
//! [`ResolveSettings::port`]. SRV priority and weight are not used: every
//! record is an endpoint, and the cluster's balancer spreads the load.
//!
//! Failures (timeouts, SERVFAIL, REFUSED, no nameserver) keep the last
//! published set and retry with backoff. NXDOMAIN is an answer, not a
//! failure: the name is gone, so the set becomes empty, and the name is
//! asked again after the negative TTL (clamped like any TTL).
//!
//! The name is absolute: `search`/`ndots` from resolv.conf do not apply.

mod exchange;
mod resolv_conf;
mod schedule;
pub(crate) mod wire;

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};
use tokio::sync::watch;

use self::exchange::ask;
use self::schedule::Schedule;
use self::wire::Reply;

/// SRV answers are followed for at most this many targets without glue, so
/// that one answer cannot make us send hundreds of queries.
const MAX_TARGET_LOOKUPS: usize = 32;

/// How a DNS endpoint source resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveSettings {
    /// The nameservers asked, in order. Empty (the default): the
    /// `nameserver` lines of [`Self::resolv_conf`], re-read every round.
    pub nameservers: Vec<SocketAddr>,
    /// The resolv.conf read when `nameservers` is empty. Default
    /// `/etc/resolv.conf`.
    pub resolv_conf: PathBuf,
    /// The port paired with A/AAAA answers (the cluster's port). Not used
    /// for SRV, whose records carry their ports.
    pub port: u16,
    /// Ask SRV even though the name does not start with `_`. Default false.
    pub srv: bool,
    /// The shortest wait before resolving again, whatever the TTL (a TTL of
    /// 0 means "every `min_refresh`"); also the first backoff after a
    /// failure. Default 1 s; never below 100 ms.
    pub min_refresh: Duration,
    /// The longest wait before resolving again, whatever the TTL; also the
    /// backoff's cap. Default 300 s.
    pub max_refresh: Duration,
    /// How long one nameserver has to answer one question. Default 2 s.
    pub timeout: Duration,
}

impl ResolveSettings {
    /// The defaults above, with A/AAAA answers on `port`.
    pub fn new(port: u16) -> Self {
        Self {
            nameservers: Vec::new(),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            port,
            srv: false,
            min_refresh: Duration::from_secs(1),
            max_refresh: Duration::from_secs(300),
            timeout: Duration::from_secs(2),
        }
    }
}

/// A name a DNS endpoint source cannot ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadName(String);

impl fmt::Display for BadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadName {}

/// Checks that `name` is a DNS name a source can resolve (for config
/// validation): ASCII labels of 1 to 63 bytes, 253 in all; a trailing dot
/// is optional.
pub fn check_name(name: &str) -> Result<(), BadName> {
    parse_name(name).map(|_| ())
}

fn parse_name(name: &str) -> Result<Name, BadName> {
    let bad = |why: &str| BadName(format!("{name:?} is not a DNS name: {why}"));
    if name.trim_end_matches('.').is_empty() {
        return Err(bad("it is empty"));
    }
    if !name.is_ascii() {
        return Err(bad("write it in ASCII (punycode)"));
    }
    let mut parsed = Name::from_ascii(name).map_err(|e| bad(&e.to_string()))?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// Keeps `tx` equal to the endpoints `name` resolves to (sorted, deduped,
/// sent only when they change) until `shutdown` completes or every receiver
/// of `tx` is gone. `Err` at once when `name` is not a DNS name.
pub async fn dns_source(
    name: &str,
    settings: ResolveSettings,
    tx: watch::Sender<Vec<SocketAddr>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BadName> {
    let parsed = parse_name(name)?;
    let srv = settings.srv || name.starts_with('_');
    let mut schedule = Schedule::new(settings.min_refresh, settings.max_refresh);
    let mut failures = 0u32;
    tokio::pin!(shutdown);
    loop {
        let work = async {
            let nameservers = nameservers(&settings).await?;
            if srv {
                resolve_srv(&nameservers, &parsed, settings.timeout).await
            } else {
                let (ips, ttl) = addresses(&nameservers, &parsed, settings.timeout).await?;
                let addrs = ips.into_iter().map(|ip| SocketAddr::new(ip, settings.port));
                Ok((addrs.collect(), ttl))
            }
        };
        let result = tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tx.closed() => return Ok(()),
            result = work => result,
        };
        let delay = match result {
            Ok((addrs, ttl)) => {
                if failures > 0 {
                    tracing::info!(name, "dns endpoint source resolves again");
                }
                failures = 0;
                publish(&tx, addrs);
                schedule.success(ttl)
            }
            Err(why) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(name, %why, "dns endpoint source failed; keeping the last endpoints");
                } else {
                    tracing::debug!(name, %why, failures, "dns endpoint source still failing");
                }
                schedule.failure()
            }
        };
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tx.closed() => return Ok(()),
            () = tokio::time::sleep(delay) => {}
        }
    }
}

fn publish(tx: &watch::Sender<Vec<SocketAddr>>, mut addrs: Vec<SocketAddr>) {
    addrs.sort();
    addrs.dedup();
    tx.send_if_modified(|current| {
        if *current == addrs {
            return false;
        }
        *current = addrs;
        true
    });
}

async fn nameservers(settings: &ResolveSettings) -> Result<Vec<SocketAddr>, String> {
    if !settings.nameservers.is_empty() {
        return Ok(settings.nameservers.clone());
    }
    let text = tokio::fs::read_to_string(&settings.resolv_conf)
        .await
        .map_err(|e| format!("{}: {e}", settings.resolv_conf.display()))?;
    let found = resolv_conf::nameservers(&text);
    if found.is_empty() {
        return Err(format!(
            "{}: no nameserver line",
            settings.resolv_conf.display()
        ));
    }
    Ok(found)
}

/// A and AAAA of `name`, with the smaller TTL. NXDOMAIN for both: no
/// addresses (and the negative TTL). Either question failing fails both,
/// so that a half answer never replaces a whole one.
async fn addresses(
    nameservers: &[SocketAddr],
    name: &Name,
    limit: Duration,
) -> Result<(Vec<IpAddr>, Option<u32>), String> {
    let (v4, v6) = tokio::join!(
        ask(nameservers, name, RecordType::A, limit),
        ask(nameservers, name, RecordType::AAAA, limit),
    );
    let mut ips = Vec::new();
    let mut ttl = None;
    for reply in [v4?, v6?] {
        let (found, t) = match reply {
            Reply::Found(f) => (f.addrs, f.ttl),
            Reply::NoName { ttl } => (Vec::new(), ttl),
            // `ask` returns only the two above.
            other => return Err(format!("unexpected reply {other:?}")),
        };
        ips.extend(found);
        ttl = min_ttl(ttl, t);
    }
    Ok((ips, ttl))
}

async fn resolve_srv(
    nameservers: &[SocketAddr],
    name: &Name,
    limit: Duration,
) -> Result<(Vec<SocketAddr>, Option<u32>), String> {
    let found = match ask(nameservers, name, RecordType::SRV, limit).await? {
        Reply::Found(f) => f,
        Reply::NoName { ttl } => return Ok((Vec::new(), ttl)),
        other => return Err(format!("unexpected reply {other:?}")),
    };
    let mut ttl = found.ttl;
    let mut out = Vec::new();
    let mut lookups = 0;
    for (target, port) in &found.srv {
        // RFC 2782: a target of "." means the service is not offered here.
        if target.is_root() {
            continue;
        }
        let ips = match found.glue.get(target) {
            Some(ips) => ips.clone(),
            None if lookups < MAX_TARGET_LOOKUPS => {
                lookups += 1;
                let (ips, t) = addresses(nameservers, target, limit).await?;
                ttl = min_ttl(ttl, t);
                ips
            }
            None => continue,
        };
        out.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, *port)));
    }
    Ok((out, ttl))
}

fn min_ttl(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
