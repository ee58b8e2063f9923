//! The etcd registry's settings, and the one place an etcd client is made
//! from them.
//!
//! Plain Rust values: the application maps its typed `[discovery.etcd]`
//! config onto [`EtcdSettings`]; this crate never reads config files.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use crate::Failure;

/// How often the client pings an idle HTTP/2 connection. etcd refuses pings
/// more often than every 5 s (`--grpc-keepalive-min-time`), so this stays
/// above that; a ping unanswered within `request_timeout` closes the
/// connection, which is how a silently dead etcd (no RST) is noticed.
const H2_PING_INTERVAL: Duration = Duration::from_secs(10);

/// Where etcd is and how this node uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSettings {
    /// etcd client URLs or `host:port` pairs (`http://` is implied; TLS is
    /// not supported yet). Default: `["127.0.0.1:2379"]`.
    pub endpoints: Vec<String>,
    /// The key prefix every instance is registered under, without a
    /// trailing `/` (one is stripped). Default: `/meshgate/services`.
    pub prefix: String,
    /// The lease's time to live: how long an instance stays visible after
    /// its node stops refreshing it. Rounded up to whole seconds (etcd's
    /// unit), at least 1 s. Keepalives go out every third of it. Default 10 s.
    pub lease_ttl: Duration,
    /// The bound on establishing the TCP connection to an endpoint.
    /// Default 3 s.
    pub connect_timeout: Duration,
    /// The bound on every unary request (get, put, grant, revoke) and on an
    /// unanswered keepalive. Default 5 s.
    pub request_timeout: Duration,
    /// This node's name, written into the `node` field of instances that do
    /// not carry one. Default: empty (the application passes its node name).
    pub node: String,
}

impl Default for EtcdSettings {
    fn default() -> Self {
        Self {
            endpoints: vec!["127.0.0.1:2379".to_owned()],
            prefix: "/meshgate/services".to_owned(),
            lease_ttl: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            node: String::new(),
        }
    }
}

impl EtcdSettings {
    /// Checks what etcd-client would otherwise only refuse at connect time,
    /// over and over: at least one endpoint, each `host:port` or
    /// `http://host:port` (TLS to etcd is not supported yet), non-zero
    /// timeouts. For the application's config validation; the message says
    /// what would be valid.
    pub fn validate(&self) -> Result<(), String> {
        if self.endpoints.is_empty() {
            return Err("at least one etcd endpoint is needed, like \"127.0.0.1:2379\"".to_owned());
        }
        for endpoint in &self.endpoints {
            check_endpoint(endpoint)?;
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err("etcd timeouts must be longer than zero".to_owned());
        }
        Ok(())
    }

    /// The prefix without trailing slashes.
    pub(crate) fn base(&self) -> &str {
        self.prefix.trim_end_matches('/')
    }

    /// `PREFIX/SERVICE/`: the keys of one service's instances.
    pub(crate) fn service_prefix(&self, service: &str) -> String {
        format!("{}/{service}/", self.base())
    }

    /// `PREFIX/`: the keys of every service's instances.
    pub(crate) fn all_prefix(&self) -> String {
        format!("{}/", self.base())
    }

    /// The lease TTL in etcd's whole seconds, rounded up, at least 1.
    pub(crate) fn ttl_secs(&self) -> i64 {
        let secs = self.lease_ttl.as_secs() + u64::from(self.lease_ttl.subsec_nanos() > 0);
        i64::try_from(secs.max(1)).unwrap_or(i64::MAX)
    }

    /// A new client. etcd-client connects lazily, so this rarely waits;
    /// every request made on it is bounded by [`Self::bounded`].
    ///
    /// Each registration or watch session gets a client of its own: a
    /// stream broken by an etcd restart is never resumed on the old
    /// connection (etcd-client does not re-establish streams), so a new
    /// session starts from a clean one.
    pub(crate) async fn connect(&self) -> Result<Client, Failure> {
        let options = ConnectOptions::new()
            .with_connect_timeout(self.connect_timeout)
            .with_keep_alive(H2_PING_INTERVAL, self.request_timeout);
        self.bounded("connect", Client::connect(&self.endpoints, Some(options)))
            .await
    }

    /// Runs one etcd request within `request_timeout`.
    pub(crate) async fn bounded<T>(
        &self,
        what: &'static str,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.request_timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Failure::Etcd(what, error)),
            Err(_) => Err(Failure::Timeout(what)),
        }
    }
}

fn check_endpoint(endpoint: &str) -> Result<(), String> {
    if endpoint.starts_with("https://") {
        return Err(format!(
            "etcd endpoint {endpoint:?}: TLS to etcd is not supported yet; use http://"
        ));
    }
    let rest = endpoint.strip_prefix("http://").unwrap_or(endpoint);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let valid = rest.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && !host.contains(['/', '@', '?', '#', ' '])
            && port.parse::<u16>().is_ok_and(|p| p != 0)
    });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "etcd endpoint {endpoint:?} is not host:port or http://host:port"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_ignore_a_trailing_slash() {
        let s = EtcdSettings {
            prefix: "/mg/services//".to_owned(),
            ..EtcdSettings::default()
        };
        assert_eq!(s.service_prefix("users"), "/mg/services/users/");
        assert_eq!(s.all_prefix(), "/mg/services/");
    }

    #[test]
    fn endpoints_are_host_port_or_plain_http_urls() {
        let with = |endpoints: &[&str]| EtcdSettings {
            endpoints: endpoints.iter().map(|e| (*e).to_owned()).collect(),
            ..EtcdSettings::default()
        };
        assert!(EtcdSettings::default().validate().is_ok());
        assert!(
            with(&["127.0.0.1:2379", "http://etcd-1:2379/", "[::1]:2379"])
                .validate()
                .is_ok()
        );
        for bad in [
            "etcd-1",
            "etcd-1:0",
            ":2379",
            "https://etcd-1:2379",
            "http://a/b:1",
            "a:99999",
        ] {
            assert!(with(&[bad]).validate().is_err(), "{bad}");
        }
        assert!(with(&[]).validate().is_err());
        let zero = EtcdSettings {
            request_timeout: Duration::ZERO,
            ..EtcdSettings::default()
        };
        assert!(zero.validate().is_err());
    }

    #[test]
    fn the_ttl_rounds_up_to_whole_seconds() {
        let ttl = |ms| EtcdSettings {
            lease_ttl: Duration::from_millis(ms),
            ..EtcdSettings::default()
        };
        assert_eq!(ttl(10_000).ttl_secs(), 10);
        assert_eq!(ttl(2_500).ttl_secs(), 3);
        assert_eq!(ttl(0).ttl_secs(), 1);
    }
}
