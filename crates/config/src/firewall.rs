//! Typed `[firewall]` settings: who may connect to which listener, checked
//! at accept on every listener kind, before TLS or any request byte.
//!
//! Rules are tried in order; the first that matches a connection decides
//! it, and `default` decides the rest. A rule matches when every part it
//! names matches: the listener's kind (`protocol`), the client address
//! (`sources`), the address the client connected to (`destinations`) and
//! its port (`ports`). A part left out matches everything. The evaluator is
//! the pure `meshgate-firewall`; the dynamic block list and the per-IP
//! connection rate are checked before the rules.

use std::path::PathBuf;
use std::time::Duration;

pub use meshgate_core::Cidr;

/// The `[firewall]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Firewall {
    /// What happens to a connection no rule matched.
    pub default: FirewallAction,
    /// The rules, in the order they are tried.
    pub rules: Vec<FirewallRule>,
    /// A per-client-IP limit on new connections, if any.
    pub connection_rate: Option<ConnectionRate>,
    /// Where the dynamic block list is kept across restarts; `None` keeps
    /// it in memory only. Relative paths are from the config file's
    /// directory.
    pub state_file: Option<PathBuf>,
}

impl Default for Firewall {
    /// No firewall: everything is allowed.
    fn default() -> Self {
        Self {
            default: FirewallAction::Allow,
            rules: Vec::new(),
            connection_rate: None,
            state_file: None,
        }
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FirewallAction {
    /// Let the connection through.
    Allow,
    /// Close it at once.
    Deny,
}

impl FirewallAction {
    /// The config and metric spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

/// Which listeners a rule applies to, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FirewallProtocol {
    /// Every listener.
    Any,
    /// `protocol = "tcp"` listeners.
    Tcp,
    /// `protocol = "udp"` listeners (checked when a client's session starts).
    Udp,
    /// `protocol = "http"` listeners.
    Http,
}

/// One `[[firewall.rules]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FirewallRule {
    /// Its name in metrics and logs (`rules[N]` when not written).
    pub name: String,
    /// What a match does.
    pub action: FirewallAction,
    /// Which listener kinds it applies to.
    pub protocol: FirewallProtocol,
    /// Client networks; empty matches every client.
    pub sources: Vec<Cidr>,
    /// Local networks the client connected to; empty matches any.
    pub destinations: Vec<Cidr>,
    /// Local ports; `None` matches any.
    pub ports: Option<PortRange>,
}

/// An inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// The first port in the range.
    pub first: u16,
    /// The last port in the range (at least `first`).
    pub last: u16,
}

impl PortRange {
    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

/// `connection_rate`: new connections per client IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionRate {
    /// Connections allowed per `per`, sustained.
    pub limit: u32,
    /// The period of `limit`.
    pub per: Duration,
    /// Connections allowed at once from a quiet client.
    pub burst: u32,
    /// Client IPs tracked at once (fixed memory; see `meshgate-ratelimit`).
    pub max_clients: usize,
}
