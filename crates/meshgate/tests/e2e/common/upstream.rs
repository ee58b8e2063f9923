//! In-process upstream servers on `127.0.0.1:0`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

pub type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;
pub type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync,
>;

/// A running upstream.
pub struct Upstream {
    pub addr: SocketAddr,
    /// Requests served.
    pub hits: Arc<AtomicUsize>,
    /// TCP connections accepted.
    pub connections: Arc<AtomicUsize>,
    /// TCP connections accepted and not yet closed.
    pub open_connections: Arc<AtomicUsize>,
}

impl Upstream {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
    pub fn open(&self) -> usize {
        self.open_connections.load(Ordering::SeqCst)
    }
}

pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

/// Which protocol the upstream speaks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

/// Starts an upstream with a custom handler.
pub async fn start(proto: Proto, handler: Handler) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let connections = Arc::new(AtomicUsize::new(0));
    let open_connections = Arc::new(AtomicUsize::new(0));
    let (h, c, o) = (hits.clone(), connections.clone(), open_connections.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            c.fetch_add(1, Ordering::SeqCst);
            o.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            let hits = h.clone();
            let open = o.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let fut = handler(req);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let io = TokioIo::new(stream);
                let _ = match proto {
                    Proto::H1 => {
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, svc)
                            .await
                    }
                    Proto::H2 => {
                        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, svc)
                            .await
                    }
                };
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Upstream {
        addr,
        hits,
        connections,
        open_connections,
    }
}

/// An upstream that holds each request for `delay` and records the most
/// requests it ever had at once.
pub async fn slow(delay: std::time::Duration) -> (Upstream, Arc<AtomicUsize>) {
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n, p) = (now.clone(), peak.clone());
    let up = start(
        Proto::H1,
        Arc::new(move |_req| {
            let (n, p) = (n.clone(), p.clone());
            Box::pin(async move {
                let inside = n.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(inside, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                n.fetch_sub(1, Ordering::SeqCst);
                Response::new(full("slow"))
            })
        }),
    )
    .await;
    (up, peak)
}

/// An upstream that answers with JSON describing the request:
/// `{"instance", "method", "path", "query", "version", "headers": {name: value}}`.
pub async fn echo(instance: &'static str) -> Upstream {
    echo_proto(instance, Proto::H1).await
}

pub async fn echo_proto(instance: &'static str, proto: Proto) -> Upstream {
    start(
        proto,
        Arc::new(move |req: Request<Incoming>| {
            Box::pin(async move {
                let headers: serde_json::Map<String, serde_json::Value> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned().into(),
                        )
                    })
                    .collect();
                let body = serde_json::json!({
                    "instance": instance,
                    "method": req.method().as_str(),
                    "path": req.uri().path(),
                    "query": req.uri().query(),
                    "version": format!("{:?}", req.version()),
                    "headers": headers,
                });
                Response::builder()
                    .header("content-type", "application/json")
                    .header("connection", "x-hop")
                    .header("x-hop", "must-not-reach-the-client")
                    .body(full(body.to_string()))
                    .unwrap()
            })
        }),
    )
    .await
}

/// An upstream that reads the whole request body and sends it back, with
/// its length in `x-body-len`; 599 if the body fails.
pub async fn body_echo(proto: Proto) -> Upstream {
    start(
        proto,
        Arc::new(|req: Request<Incoming>| {
            Box::pin(async move {
                match req.into_body().collect().await {
                    Ok(body) => {
                        let body = body.to_bytes();
                        Response::builder()
                            .header("x-body-len", body.len().to_string())
                            .body(full(body))
                            .unwrap()
                    }
                    Err(e) => Response::builder()
                        .status(599)
                        .body(full(e.to_string()))
                        .unwrap(),
                }
            })
        }),
    )
    .await
}
