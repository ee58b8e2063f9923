//! One health-check probe: a TCP connect, an HTTP/1.1 request, or gRPC's
//! `grpc.health.v1.Health/Check` over HTTP/2. Each runs on a connection of
//! its own (hyper's client: probes are rare and cold), over TLS when the
//! cluster has `tls` (ALPN `http/1.1`, `h2` or none, by kind), and passes
//! or fails; the caller bounds it with the check's timeout.

use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshgate_config::{HealthCheckKind, HttpHealthCheck};
use tokio::net::TcpStream;

use crate::stream::Stream;
use crate::upstream_tls::{Alpn, UpstreamStream, UpstreamTls};

/// How much of a response body `body_contains` looks at.
const BODY_PEEK: usize = 64 * 1024;

/// Whether the endpoint at `addr` passes one probe (over TLS with `tls`).
pub(super) async fn probe(
    kind: &HealthCheckKind,
    addr: SocketAddr,
    tls: Option<&UpstreamTls>,
) -> bool {
    let Ok(tcp) = TcpStream::connect(addr).await else {
        return false;
    };
    let stream = match tls {
        None => Stream::Tcp(tcp),
        Some(tls) => {
            let alpn = match kind {
                HealthCheckKind::Tcp => Alpn::None,
                HealthCheckKind::Http(_) => Alpn::Http1,
                HealthCheckKind::Grpc { .. } => Alpn::H2,
            };
            match tls.handshake(tcp, addr, alpn).await {
                Ok(conn) => Stream::Tls(Box::new(conn)),
                Err(_) => return false,
            }
        }
    };
    match kind {
        HealthCheckKind::Tcp => true,
        HealthCheckKind::Http(http) => probe_http(stream, http, addr).await,
        HealthCheckKind::Grpc { service } => probe_grpc(stream, service, addr).await,
    }
}

async fn probe_http(stream: UpstreamStream, check: &HttpHealthCheck, addr: SocketAddr) -> bool {
    let Ok((mut send, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return false;
    };
    tokio::spawn(conn);
    let host = check.host.clone().unwrap_or_else(|| addr.to_string());
    let Ok(req) = Request::builder()
        .method(check.method.clone())
        .uri(check.path.as_str())
        .header(header::HOST, host)
        .header(header::USER_AGENT, "meshgate-health-check")
        .header(header::CONNECTION, "close")
        .body(Full::new(Bytes::new()))
    else {
        return false;
    };
    let Ok(resp) = send.send_request(req).await else {
        return false;
    };
    let status = resp.status().as_u16();
    if !check.expected_statuses.iter().any(|r| r.contains(&status)) {
        return false;
    }
    let Some(needle) = &check.body_contains else {
        return true;
    };
    // Read at most BODY_PEEK bytes: a health endpoint that streams forever
    // must not hold the probe (the timeout would end it anyway).
    let mut body = resp.into_body();
    let mut seen = BytesMut::new();
    while seen.len() < BODY_PEEK {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let take = data.len().min(BODY_PEEK - seen.len());
                    seen.extend_from_slice(&data[..take]);
                }
            }
            Some(Err(_)) => return false,
            None => break,
        }
    }
    contains(&seen, needle.as_bytes())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

async fn probe_grpc(stream: UpstreamStream, service: &str, addr: SocketAddr) -> bool {
    let scheme = if stream.is_tls() { "https" } else { "http" };
    let Ok((mut send, conn)) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await
    else {
        return false;
    };
    tokio::spawn(conn);
    let Ok(req) = Request::builder()
        .method(Method::POST)
        .uri(format!("{scheme}://{addr}/grpc.health.v1.Health/Check"))
        .header(header::CONTENT_TYPE, "application/grpc")
        .header(header::TE, "trailers")
        .header(header::USER_AGENT, "meshgate-health-check")
        .body(Full::new(grpc_request(service)))
    else {
        return false;
    };
    let Ok(resp) = send.send_request(req).await else {
        return false;
    };
    if resp.status() != http::StatusCode::OK {
        return false;
    }
    // A trailers-only answer (grpc-status in the headers) has no message:
    // an error, or at best the status UNKNOWN.
    if resp.headers().contains_key("grpc-status") {
        return false;
    }
    let Ok(collected) = resp.into_body().collect().await else {
        return false;
    };
    let ok = collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .is_some_and(|s| s == "0");
    ok && grpc_health_status(&collected.to_bytes()) == Some(SERVING)
}

/// `HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: u64 = 1;

/// The length-prefixed `HealthCheckRequest { service }` message.
fn grpc_request(service: &str) -> Bytes {
    let mut msg = Vec::with_capacity(service.len() + 8);
    if !service.is_empty() {
        msg.push(0x0a); // field 1, length-delimited
        put_varint(&mut msg, service.len() as u64);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut framed = Vec::with_capacity(msg.len() + 5);
    framed.push(0); // not compressed
    framed.extend_from_slice(&u32::try_from(msg.len()).unwrap_or(u32::MAX).to_be_bytes());
    framed.extend_from_slice(&msg);
    Bytes::from(framed)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// The `status` of a length-prefixed `HealthCheckResponse` (field 1, a
/// varint), or `None` if the bytes are not one well-formed message.
/// Untrusted bytes: fuzzed (`fuzz/fuzz_targets/grpc_health_response.rs`).
pub(crate) fn grpc_health_status(bytes: &[u8]) -> Option<u64> {
    let mut buf = bytes;
    if buf.remaining() < 5 || buf.get_u8() != 0 {
        return None; // short, or compressed (we asked for none)
    }
    let len = usize::try_from(buf.get_u32()).ok()?;
    let mut msg = buf.get(..len)?;
    // An absent status field is its default, UNKNOWN (0).
    let mut status = 0;
    while !msg.is_empty() {
        let key = varint(&mut msg)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = varint(&mut msg)?,
            // Unknown fields are skipped, as protobuf requires.
            (_, 0) => {
                varint(&mut msg)?;
            }
            (_, 1) => msg = msg.get(8..)?,
            (_, 2) => {
                let n = usize::try_from(varint(&mut msg)?).ok()?;
                msg = msg.get(n..)?;
            }
            (_, 5) => msg = msg.get(4..)?,
            _ => return None,
        }
    }
    Some(status)
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_responses_decode_and_garbage_does_not() {
        // SERVING, NOT_SERVING, and an empty message (UNKNOWN).
        assert_eq!(grpc_health_status(&[0, 0, 0, 0, 2, 0x08, 1]), Some(1));
        assert_eq!(grpc_health_status(&[0, 0, 0, 0, 2, 0x08, 2]), Some(2));
        assert_eq!(grpc_health_status(&[0, 0, 0, 0, 0]), Some(0));
        // An unknown length-delimited field before the status is skipped.
        assert_eq!(
            grpc_health_status(&[0, 0, 0, 0, 5, 0x12, 1, b'x', 0x08, 1]),
            Some(1)
        );
        for bad in [
            &[][..],
            &[1, 0, 0, 0, 0],
            &[0, 0, 0, 0, 9, 0x08, 1],
            &[0, 0, 0, 0, 1, 0x08],
            &[0, 0, 0, 0, 2, 0x0b, 1],
        ] {
            assert_eq!(grpc_health_status(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_request_names_the_service() {
        assert_eq!(&grpc_request("")[..], &[0, 0, 0, 0, 0]);
        assert_eq!(
            &grpc_request("ab")[..],
            &[0, 0, 0, 0, 4, 0x0a, 2, b'a', b'b']
        );
        assert!(contains(b"all ok here", b"ok"));
        assert!(!contains(b"all good", b"ok"));
    }
}
