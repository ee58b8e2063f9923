//! An HTTP/1.1 upstream that can be killed and restarted on the same port,
//! like a backend process that crashes and comes back.
//!
//! Killing aborts the accept loop and every connection task, so open
//! sockets close at once (in-flight requests see their connection end) and
//! new connections are refused until [`Killable::restart`] binds again.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::upstream::{Body, full};

/// A killable upstream answering every request with `status` and its name.
pub struct Killable {
    pub addr: SocketAddr,
    pub name: &'static str,
    status: StatusCode,
    /// Requests that reached this upstream, across restarts.
    pub hits: Arc<AtomicUsize>,
    tasks: Option<JoinSet<()>>,
}

impl Killable {
    /// Starts on `127.0.0.1:0`.
    pub async fn start(name: &'static str, status: StatusCode) -> Killable {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut k = Killable {
            addr: listener.local_addr().unwrap(),
            name,
            status,
            hits: Arc::new(AtomicUsize::new(0)),
            tasks: None,
        };
        k.serve(listener);
        k
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops accepting and closes every connection.
    pub fn kill(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.abort_all();
        }
    }

    /// Listens on the same address again.
    pub async fn restart(&mut self) {
        self.kill();
        // The old listener's socket closes when its task is dropped; the
        // runtime drops aborted tasks promptly, so retry briefly.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::task::yield_now().await;
                }
                Err(e) => panic!("rebinding {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let mut tasks = JoinSet::new();
        let (hits, name, status) = (self.hits.clone(), self.name, self.status);
        // Connections are tasks of one shared set, so `kill` ends them too.
        let conns = std::sync::Mutex::new(JoinSet::new());
        tasks.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let hits = hits.clone();
                conns.lock().unwrap().spawn(async move {
                    let svc = hyper::service::service_fn(move |_req| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let resp: Response<Body> =
                            Response::builder().status(status).body(full(name)).unwrap();
                        async move { Ok::<_, Infallible>(resp) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        self.tasks = Some(tasks);
    }
}

impl Drop for Killable {
    fn drop(&mut self) {
        self.kill();
    }
}
