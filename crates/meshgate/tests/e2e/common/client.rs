//! HTTP clients for tests: hyper over HTTP/1.1 or h2c prior knowledge.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// How long one request may take, body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub version: Version,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// An HTTP/1.1 keep-alive client.
pub fn h1() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An h2c (prior knowledge) client.
pub fn h2() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// Reads a whole response into a [`Reply`].
async fn read(resp: Response<Incoming>) -> Reply {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body failed").to_bytes();
    Reply {
        version: parts.version,
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Sends a request and reads the whole response (bounded by 20 s).
pub async fn send(client: &Client<HttpConnector, Full<Bytes>>, req: Request<Full<Bytes>>) -> Reply {
    let fut = async { read(client.request(req).await.expect("request failed")).await };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .expect("request timed out")
}

/// Sends one request on a new hyper HTTP/1.1 connection over the stream
/// `connect` opens, with the headers given exactly (no client adds or
/// removes any, not even `Host`), and reads the whole response (bounded by
/// 20 s, connecting included).
pub async fn send_fresh(
    connect: impl Future<Output = std::io::Result<TcpStream>>,
    req: Request<Full<Bytes>>,
) -> Reply {
    let fut = async {
        let stream = connect.await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        read(send.send_request(req).await.unwrap()).await
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .expect("request timed out")
}

/// GET `http://addr{path}` with extra headers.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut b = Request::get(format!("http://{addr}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(&h1(), b.body(Full::new(Bytes::new())).unwrap()).await
}
