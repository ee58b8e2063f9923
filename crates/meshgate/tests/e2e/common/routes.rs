//! Config builders and reply helpers for the routing and forwarding tests.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::Value;

use super::client::{self, Reply};
use super::upstream::Upstream;

/// A keep-alive HTTP/1.1 test client.
pub type H1 = Client<HttpConnector, Full<Bytes>>;

pub const LISTENER: &str = r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"
"#;

/// A `[[routes]]` entry with a direct response whose body is the route name.
pub fn direct_route(name: &str, matcher: &str) -> String {
    format!(
        r#"
[[routes]]
name = "{name}"
listener = "public"
match = {{ {matcher} }}
direct_response = {{ status = 200, body = "{name}" }}
"#
    )
}

/// A `[[routes]]` entry forwarding to cluster `cluster`, plus extra route keys.
pub fn proxy_route(name: &str, matcher: &str, cluster: &str, extra: &str) -> String {
    format!(
        r#"
[[routes]]
name = "{name}"
listener = "public"
match = {{ {matcher} }}
cluster = "{cluster}"
{extra}
"#
    )
}

/// A one-endpoint cluster.
pub fn cluster(name: &str, up: &Upstream) -> String {
    format!(
        r#"
[[clusters]]
name = "{name}"
endpoints = [{{ address = "{}" }}]
"#,
        up.addr
    )
}

/// Sends `method path` with these headers and reads the whole reply.
pub async fn call(
    c: &H1,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    client::send(c, b.body(Full::new(Bytes::new())).unwrap()).await
}

/// The JSON an echo upstream answered with, checking it came from `instance`.
pub fn echoed(r: &Reply, instance: &str) -> Value {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["instance"], instance,
        "answered by the wrong upstream: {v}"
    );
    v
}

pub fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}
