//! A real DNS interface server over an in-memory directory, and `dig`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use meshgate_catalog::{Instance, Origin, ServiceName};
use meshgate_dns::{DnsSettings, DnsStats, MemoryDirectory, bind, serve};
use tokio::sync::oneshot;

/// An instance of `service` at `addr`.
pub(crate) fn inst(
    service: &str,
    node: &str,
    addr: &str,
    tags: &[&str],
    healthy: bool,
) -> Instance {
    let addr: SocketAddr = addr.parse().unwrap();
    Instance {
        service: ServiceName::try_new(service).unwrap(),
        id: format!("{node}/{service}/{addr}"),
        node: node.into(),
        addr,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        meta: BTreeMap::new(),
        healthy,
        origin: Origin::Local,
    }
}

/// A running server; stopped when dropped.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    pub(crate) stats: Arc<DnsStats>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may be gone already; nothing to stop then.
            let _ = stop.send(());
        }
    }
}

/// Starts the server on 127.0.0.1:0 (UDP and TCP on one port) inside the
/// current runtime.
pub(crate) async fn spawn(dir: Arc<MemoryDirectory>, settings: DnsSettings) -> Running {
    let (udp, tcp) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = udp.local_addr().unwrap();
    assert_eq!(addr, tcp.local_addr().unwrap());
    let stats = Arc::new(DnsStats::default());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(udp, tcp, dir, settings, stats.clone(), async move {
        // Either an explicit stop or the sender dropped: stop both ways.
        let _ = stopped.await;
    }));
    Running {
        addr,
        stats,
        stop: Some(stop),
    }
}

/// A server on a runtime of its own, for tests that call blocking `dig`.
pub(crate) struct Blocking {
    pub(crate) server: Running,
    pub(crate) dir: Arc<MemoryDirectory>,
    _rt: tokio::runtime::Runtime,
}

impl Blocking {
    pub(crate) fn start(dir: MemoryDirectory, settings: DnsSettings) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = Arc::new(dir);
        let server = rt.block_on(spawn(dir.clone(), settings));
        Self {
            server,
            dir,
            _rt: rt,
        }
    }

    /// Runs `dig @server -p PORT ARGS`, bounded by dig's own timeout (2 s,
    /// one try); returns its stdout.
    pub(crate) fn dig(&self, args: &[&str]) -> String {
        let out = Command::new("dig")
            .arg(format!("@{}", self.server.addr.ip()))
            .args([
                "-p",
                &self.server.addr.port().to_string(),
                "+time=2",
                "+tries=1",
            ])
            .args(args)
            .output()
            .expect("dig runs (apt-get install bind9-dnsutils)");
        String::from_utf8(out.stdout).unwrap()
    }
}

/// Polls `f` until it returns `Some`, for at most `limit`.
pub(crate) fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(x) = f() {
            return Some(x);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
