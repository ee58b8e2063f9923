//! Command-line definitions and dispatch.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use meshgate_app::{ConfigSource, RunOptions, UpgradeOptions};
use meshgate_config::{
    Cluster, Config, Endpoint, HttpLimits, LbPolicy, Listener, ListenerProtocol, PoolSettings,
    ProxyAction, Route, RouteAction, RouteMatch, Runtime, UpstreamProtocol,
};

/// meshgate: one binary that is a service-mesh sidecar, an API gateway and a
/// service-discovery agent.
///
/// With no arguments it runs the embedded demo: a gateway on 127.0.0.1:8080
/// in front of two demo upstreams, and the admin API on 127.0.0.1:9901.
#[derive(Debug, Parser)]
#[command(
    name = "meshgate",
    version,
    about,
    long_about,
    propagate_version = true
)]
pub(crate) struct Cli {
    /// Worker threads (default: `runtime.workers` from the config, else one per core).
    #[arg(long, global = true, value_name = "N")]
    workers: Option<NonZeroUsize>,

    /// Log as JSON lines instead of text (level filter: MESHGATE_LOG, default "info").
    #[arg(long, global = true)]
    pub(crate) log_json: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway from a config file, or the embedded demo without one.
    Run {
        /// The TOML config file (see docs/config.md).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Gateway address of the embedded demo (only without -c).
        #[arg(
            long,
            value_name = "ADDR",
            default_value = "127.0.0.1:8080",
            conflicts_with = "config"
        )]
        listen: SocketAddr,
        /// Admin address of the embedded demo (only without -c).
        #[arg(
            long,
            value_name = "ADDR",
            default_value = "127.0.0.1:9901",
            conflicts_with = "config"
        )]
        admin: SocketAddr,
        /// Serve a Unix socket at PATH (mode 0600) from which a successor
        /// started with --takeover receives the listening sockets (binary
        /// upgrade; see docs/resilience.md).
        #[arg(long, value_name = "PATH")]
        upgrade_socket: Option<PathBuf>,
        /// Take the listening sockets over from the meshgate serving
        /// --upgrade-socket, which then drains and exits; no connection is
        /// refused on the way.
        #[arg(long, requires = "upgrade_socket")]
        takeover: bool,
    },
    /// Check a config file; exit 0 if valid, else print every error and exit 1.
    Validate {
        /// The TOML config file.
        file: PathBuf,
    },
    /// A one-line reverse proxy with no config file: every request on --from
    /// goes round robin to the --to addresses.
    ///
    /// Defaults differ from a config file's where a plain reverse proxy wants
    /// it: keep-alive connections may idle 300 s (like the nginx and haproxy
    /// benchmark configs) and the route timeout is 60 s.
    Proxy {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long, value_name = "ADDR")]
        from: SocketAddr,
        /// Upstream address; repeat for more than one.
        #[arg(long, value_name = "ADDR", required = true)]
        to: Vec<SocketAddr>,
        /// Protocol spoken to the upstreams.
        #[arg(long, value_enum, default_value_t = Upstream::Http1)]
        upstream_protocol: Upstream,
        /// Admin API address (off unless given).
        #[arg(long, value_name = "ADDR")]
        admin: Option<SocketAddr>,
    },
    /// The built-in certificate authority (see docs/security.md).
    #[command(subcommand)]
    Ca(crate::cli_ca::CaCommand),
    /// Issue and inspect certificates with the built-in CA.
    #[command(subcommand)]
    Cert(crate::cli_ca::CertCommand),
    /// API keys: create one for a service (see docs/security.md).
    Apikey {
        #[command(subcommand)]
        command: crate::cli_auth::ApikeyCommand,
    },
    /// Session tokens: make a key file, issue a token (see docs/security.md).
    Token {
        #[command(subcommand)]
        command: crate::cli_auth::TokenCommand,
    },
    /// Encrypted config secrets: make a master key, encrypt a secret into
    /// an enc:v1: value for the config (see docs/security.md).
    Secret {
        #[command(subcommand)]
        command: crate::cli_secret::SecretCommand,
    },
    /// Print a new random gossip cluster key for [discovery] keys.
    Keygen,
    /// List the gossip cluster's members, as a running node sees them.
    Members {
        /// The node's admin API.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9901")]
        admin: SocketAddr,
        /// table or json.
        #[arg(long, short, value_enum, default_value_t)]
        output: crate::cli_discovery::Output,
    },
    /// List the catalog's services, or one service's instances.
    Services {
        /// A service name: list its instances.
        name: Option<String>,
        /// The node's admin API.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9901")]
        admin: SocketAddr,
        /// table or json.
        #[arg(long, short, value_enum, default_value_t)]
        output: crate::cli_discovery::Output,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Upstream {
    /// HTTP/1.1 with keep-alive.
    Http1,
    /// HTTP/2 with prior knowledge.
    H2,
}

pub(crate) fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let opts = RunOptions {
        workers: cli.workers.map(NonZeroUsize::get),
        show_tour: false,
        upgrade: None,
    };
    match cli.command {
        None => {
            let source = ConfigSource::Embedded {
                listen: ([127, 0, 0, 1], 8080).into(),
                admin: ([127, 0, 0, 1], 9901).into(),
            };
            meshgate_app::run(
                source,
                RunOptions {
                    show_tour: true,
                    ..opts
                },
            )?;
        }
        Some(Command::Run {
            config: None,
            listen,
            admin,
            upgrade_socket,
            takeover,
        }) => {
            meshgate_app::run(
                ConfigSource::Embedded { listen, admin },
                RunOptions {
                    show_tour: true,
                    upgrade: upgrade(upgrade_socket, takeover),
                    ..opts
                },
            )?;
        }
        Some(Command::Run {
            config: Some(path),
            upgrade_socket,
            takeover,
            ..
        }) => match meshgate_config::load(&path) {
            Ok(config) => meshgate_app::run(
                ConfigSource::Config(Box::new(config)),
                RunOptions {
                    upgrade: upgrade(upgrade_socket, takeover),
                    ..opts
                },
            )?,
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!(
                    "meshgate: {} has {} error(s); not starting",
                    path.display(),
                    errors.0.len()
                );
                return Ok(ExitCode::FAILURE);
            }
        },
        Some(Command::Validate { file }) => match meshgate_config::load(&file) {
            // The files the config names (TLS certificates and keys) must be
            // usable too: `run` would refuse them.
            Ok(config) => {
                for warning in &config.warnings {
                    eprintln!("warning: {warning}");
                }
                let problems = meshgate_app::check_files(&config);
                for p in &problems {
                    eprintln!("{p}");
                }
                if !problems.is_empty() {
                    eprintln!("{}: {} error(s)", file.display(), problems.len());
                    return Ok(ExitCode::FAILURE);
                }
                println!("{}: ok", file.display());
            }
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!("{}: {} error(s)", file.display(), errors.0.len());
                return Ok(ExitCode::FAILURE);
            }
        },
        Some(Command::Proxy {
            from,
            to,
            upstream_protocol,
            admin,
        }) => {
            // The admin token, and the rule that an admin API other hosts
            // can reach needs one, come from the environment here.
            let env = meshgate_config::Environment::from_process();
            let admin = admin
                .map(|address| meshgate_config::Admin::from_environment(address, &env))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--admin: {e}"))?;
            let config = proxy_config(from, &to, upstream_protocol, admin);
            meshgate_app::run(ConfigSource::Config(Box::new(config)), opts)?;
        }
        Some(Command::Ca(command)) => return crate::cli_ca::ca(command),
        Some(Command::Cert(command)) => return crate::cli_ca::cert(command),
        Some(Command::Apikey { command }) => return crate::cli_auth::apikey(command),
        Some(Command::Token { command }) => return crate::cli_auth::token(command),
        Some(Command::Secret { command }) => return crate::cli_secret::secret(command),
        Some(Command::Keygen) => return crate::cli_discovery::keygen(),
        Some(Command::Members { admin, output }) => {
            return crate::cli_discovery::members(admin, output);
        }
        Some(Command::Services {
            name,
            admin,
            output,
        }) => return crate::cli_discovery::services(admin, name.as_deref(), output),
    }
    Ok(ExitCode::SUCCESS)
}

fn upgrade(socket: Option<PathBuf>, takeover: bool) -> Option<UpgradeOptions> {
    socket.map(|socket| UpgradeOptions { socket, takeover })
}

/// The config `meshgate proxy` runs: one listener, one catch-all route, one
/// round-robin cluster. Built directly as typed config: every part is
/// already valid by construction (addresses were parsed by clap, the rest are
/// constants), so there is nothing for the TOML validator to check.
fn proxy_config(
    from: SocketAddr,
    to: &[SocketAddr],
    protocol: Upstream,
    admin: Option<meshgate_config::Admin>,
) -> Config {
    Config {
        source: None,
        runtime: Runtime::default(),
        admin,
        listeners: vec![Listener {
            name: "proxy".into(),
            address: from,
            protocol: ListenerProtocol::Http,
            l4: None,
            proxy_protocol: None,
            tls: None,
            udp: None,
            limits: HttpLimits {
                idle_timeout: Duration::from_secs(300),
                ..HttpLimits::default()
            },
        }],
        routes: vec![Route {
            name: "proxy".into(),
            listener: 0,
            matcher: RouteMatch::default(),
            action: RouteAction::Proxy(ProxyAction {
                cluster: 0,
                timeout: Duration::from_secs(60),
                connect_timeout: None,
                idle_timeout: None,
                prefix_rewrite: None,
                host_rewrite: None,
                hash_key: None,
                retry: meshgate_config::RetryPolicy::default(),
            }),
            auth: None,
            authz: Vec::new(),
            rate_limit: None,
        }],
        clusters: vec![Cluster {
            name: "upstream".into(),
            lb: LbPolicy::RoundRobin,
            protocol: match protocol {
                Upstream::Http1 => UpstreamProtocol::Http1,
                Upstream::H2 => UpstreamProtocol::Http2,
            },
            endpoints: to
                .iter()
                .map(|&address| Endpoint {
                    address,
                    weight: 1,
                    priority: 0,
                })
                .collect(),
            connect_timeout: Duration::from_secs(5),
            pool: PoolSettings::default(),
            outlier_detection: meshgate_config::OutlierDetection::default(),
            retry_budget: meshgate_config::RetryBudget::default(),
            health_check: None,
            overprovisioning_factor: 140,
            slow_start: None,
            circuit_breakers: meshgate_config::CircuitBreakers::default(),
            send_proxy_protocol: None,
            panic_threshold: 50,
            tls: None,
            sign: None,
            discovery: None,
        }],
        firewall: meshgate_config::Firewall::default(),
        mesh: None,
        discovery: None,
        services: Vec::new(),
        warnings: Vec::new(),
    }
}
