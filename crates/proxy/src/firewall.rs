//! The firewall at accept time, on every listener kind: the block list,
//! the per-IP connection rate, then the rules (`meshgate-firewall`).
//!
//! Two lifetimes meet here. The rules and the connection quota belong to a
//! config generation ([`FirewallState`], rebuilt by each reload). The block
//! list and the per-IP rate table belong to the process ([`Blocks`],
//! carried from generation to generation): a reload must neither forgive a
//! blocked client nor hand every client a fresh burst.
//!
//! The check runs before any byte of the connection is read when the
//! listener has no PROXY protocol; with it, the socket's peer is first
//! checked against the block list alone (a blocked host cannot speak at
//! all), then, right after the header, the client the header names gets all
//! three checks (so the balancer in front is not the one the rules judge).
//! Either way it comes before TLS or HTTP. A PROXY header is believed as
//! HAProxy's `accept-proxy` believes it: such a listener must only be
//! reachable by the balancers that write the header. With no rules, an
//! allowing default, no connection rate and an empty block list, the check
//! is one atomic load.

use std::hash::BuildHasher as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use meshgate_config::{Config, FirewallAction, ListenerProtocol};
use meshgate_firewall::{BlockList, Flow, RuleSet};
use meshgate_ratelimit::{Decision, KeyedLimiter, Quota};
use meshgate_telemetry::{Counter, Registry};

/// At most this many IPs are blocked at once.
const MAX_BLOCKED: usize = 100_000;

/// The process-wide part: blocked IPs and per-IP connection rates.
pub struct Blocks {
    list: Mutex<BlockList>,
    /// Whether `list` may hold a live entry: the fast path skips the lock.
    any: AtomicBool,
    rates: Mutex<Option<KeyedLimiter>>,
    hasher: std::collections::hash_map::RandomState,
    origin: Instant,
    state_file: Mutex<Option<PathBuf>>,
    /// Held from snapshot to rename, so saves land in the order their
    /// snapshots were taken and never share the temporary file.
    saving: Mutex<()>,
}

/// Why a block could not be stored.
#[derive(Debug)]
pub enum BlockError {
    /// The list holds its maximum of live entries.
    Full(usize),
    /// The state file could not be written; the block holds in memory.
    Persist(std::io::Error),
}

impl std::fmt::Display for BlockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full(max) => write!(f, "the block list is full ({max} entries)"),
            Self::Persist(e) => write!(f, "blocked, but the state file could not be written: {e}"),
        }
    }
}

/// One generation's rules, quota and counters.
pub(crate) struct FirewallState {
    rules: RuleSet,
    quota: Option<Quota>,
    max_clients: usize,
    blocks: Arc<Blocks>,
    by_rule: Vec<Arc<Counter>>,
    by_default: Arc<Counter>,
    blocked: Arc<Counter>,
    rate_limited: Arc<Counter>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wall-clock milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

// === impl Blocks ===

impl Blocks {
    /// An empty block list, or the one kept in `state_file`.
    pub(crate) fn load(state_file: Option<PathBuf>) -> Self {
        let mut list = BlockList::new(MAX_BLOCKED);
        if let Some(path) = &state_file {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let (read, problems) = BlockList::decode(&text, MAX_BLOCKED, now_ms());
                    for p in problems {
                        tracing::warn!(file = %path.display(), "firewall state file: {p}");
                    }
                    list = read;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot read the firewall state file; starting with an empty block list")
                }
            }
        }
        Self {
            any: AtomicBool::new(!list.is_empty(now_ms())),
            list: Mutex::new(list),
            rates: Mutex::new(None),
            hasher: std::collections::hash_map::RandomState::new(),
            origin: Instant::now(),
            state_file: Mutex::new(state_file),
            saving: Mutex::new(()),
        }
    }

    /// Blocks `ip` for `ttl`; returns when the block ends (ms since the
    /// Unix epoch). The state file, if any, is rewritten: blocking file IO,
    /// so async callers run this on a blocking thread.
    pub fn block(&self, ip: IpAddr, ttl: Duration) -> Result<u64, BlockError> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let until = lock(&self.list)
            .block(ip, ttl_ms, now_ms())
            .map_err(|full| BlockError::Full(full.max))?;
        self.any.store(true, Ordering::Release);
        self.save().map_err(BlockError::Persist)?;
        Ok(until)
    }

    /// Lifts the block of `ip`; `Ok(false)` when it was not blocked.
    pub fn unblock(&self, ip: IpAddr) -> Result<bool, BlockError> {
        let removed = lock(&self.list).unblock(ip);
        if removed {
            self.save().map_err(BlockError::Persist)?;
        }
        Ok(removed)
    }

    /// The live blocks: IP and end (ms since the Unix epoch).
    pub fn blocked(&self) -> Vec<(IpAddr, u64)> {
        lock(&self.list).entries(now_ms())
    }

    /// Whether `ip` is blocked now (the PROXY path asks this of the peer).
    pub(crate) fn is_blocked(&self, ip: IpAddr) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let now = now_ms();
        let mut list = lock(&self.list);
        if list.is_blocked(ip, now) {
            return true;
        }
        // Not blocked: if nothing is left at all, let the fast path back.
        if list.is_empty(now) {
            list.purge(now);
            self.any.store(false, Ordering::Release);
        }
        false
    }

    /// Writes the list to the state file (a temporary file renamed over
    /// it, so a crash leaves the old list or the new, never half of one).
    fn save(&self) -> std::io::Result<()> {
        let _saving = lock(&self.saving);
        let Some(path) = lock(&self.state_file).clone() else {
            return Ok(());
        };
        // Copy under the list's lock (accepts wait on it), format outside.
        let snapshot = lock(&self.list).clone();
        let text = snapshot.encode(now_ms());
        let mode = meshgate_core::fs::mode_of(&path, 0o600);
        meshgate_core::fs::replace(&path, text.as_bytes(), mode)
    }

    /// A reload may name another state file: the list moves there.
    fn set_state_file(&self, path: Option<PathBuf>) {
        let changed = {
            let mut current = lock(&self.state_file);
            let changed = *current != path;
            *current = path;
            changed
        };
        if changed && let Err(e) = self.save() {
            tracing::warn!(error = %e, "cannot write the firewall state file");
        }
    }

    fn rate(&self, quota: &Quota, max_clients: usize, ip: IpAddr) -> Decision {
        let key = self.hasher.hash_one(meshgate_core::cidr::canonical(ip));
        let now = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut rates = lock(&self.rates);
        let table = match &mut *rates {
            Some(t) if t.capacity() >= max_clients => t,
            slot => slot.insert(KeyedLimiter::new(max_clients)),
        };
        table.check(quota, key, now)
    }
}

// === impl FirewallState ===

impl FirewallState {
    /// Compiles `config`'s firewall, keeping the process-wide `blocks`
    /// (from the previous generation) or loading them.
    pub(crate) fn new(config: &Config, registry: &Registry, blocks: Option<Arc<Blocks>>) -> Self {
        let fw = &config.firewall;
        let blocks = match blocks {
            Some(b) => {
                b.set_state_file(fw.state_file.clone());
                b
            }
            None => Arc::new(Blocks::load(fw.state_file.clone())),
        };
        let counter = |rule: &str, action: FirewallAction| {
            registry.counter(
                "meshgate_firewall_connections_total",
                "Connections (and UDP sessions) the firewall decided, by rule and action.",
                &[("rule", rule), ("action", action.as_str())],
            )
        };
        let rate = fw.connection_rate;
        Self {
            rules: RuleSet::new(fw),
            quota: rate.and_then(|r| Quota::new(r.limit, r.per, r.burst)),
            max_clients: rate.map_or(0, |r| r.max_clients),
            by_rule: fw
                .rules
                .iter()
                .map(|r| counter(&r.name, r.action))
                .collect(),
            by_default: counter("default", fw.default),
            blocked: counter("blocklist", FirewallAction::Deny),
            rate_limited: counter("connection_rate", FirewallAction::Deny),
            blocks,
        }
    }

    /// The process-wide block list.
    pub(crate) fn blocks(&self) -> &Arc<Blocks> {
        &self.blocks
    }

    /// Decides a connection from its socket peer at accept. When the
    /// listener takes a PROXY header (`then_header`), only the block list
    /// applies here; [`FirewallState::admit`] judges the header's client.
    pub(crate) fn admit_peer(
        &self,
        protocol: ListenerProtocol,
        peer: IpAddr,
        then_header: bool,
        local: impl FnOnce() -> Option<SocketAddr>,
    ) -> Result<(), &'static str> {
        if then_header {
            self.not_blocked(peer)
        } else {
            self.admit(protocol, peer, local)
        }
    }

    fn not_blocked(&self, ip: IpAddr) -> Result<(), &'static str> {
        if self.blocks.is_blocked(ip) {
            self.blocked.inc();
            return Err("blocklist");
        }
        Ok(())
    }

    /// Decides a new connection (or UDP session) from `client` to
    /// `local()` (asked only when a rule needs it: it may be a syscall).
    /// `Err` names the reason for logs; the caller closes the connection.
    pub(crate) fn admit(
        &self,
        protocol: ListenerProtocol,
        client: IpAddr,
        local: impl FnOnce() -> Option<SocketAddr>,
    ) -> Result<(), &'static str> {
        self.not_blocked(client)?;
        if let Some(quota) = &self.quota
            && let Decision::Deny { .. } = self.blocks.rate(quota, self.max_clients, client)
        {
            self.rate_limited.inc();
            return Err("connection_rate");
        }
        if self.rules.allows_all() {
            return Ok(());
        }
        let Some(destination) = local() else {
            return Err("no_local_address");
        };
        let matched = self.rules.evaluate(&Flow {
            protocol,
            source: client,
            destination,
        });
        let counter = matched
            .rule
            .and_then(|i| self.by_rule.get(i))
            .unwrap_or(&self.by_default);
        counter.inc();
        match matched.action {
            FirewallAction::Allow => Ok(()),
            FirewallAction::Deny => Err("rule"),
        }
    }
}
