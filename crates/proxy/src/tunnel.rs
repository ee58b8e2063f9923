//! Protocol upgrades over HTTP/1.1 (WebSocket, RFC 6455; any `Upgrade`
//! token but h2c): recognising the request, carrying the upstream's
//! `101 Switching Protocols` connection back to the downstream server, and
//! the byte tunnel that follows.
//!
//! `Connection` and `Upgrade` are hop-by-hop, so the pipeline strips them
//! like any other and then puts back exactly the upgrade it forwards
//! ([`restore`]). The upstream client returns a `101` with its connection
//! in a [`Pending`] extension; the downstream server writes the `101` and
//! joins the two sockets in [`tunnel`]. From then on the tunnel depends on
//! no config generation, so it survives reloads; it ends when both sides
//! have closed, when it has been idle too long, or when the process exits
//! at the end of a drain.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Version, request::Parts};
use tokio::io::{AsyncRead, AsyncWriteExt as _, ReadBuf};

use crate::pool::ConnSlot;

/// The protocols a request asks to switch to, if it is a proxied upgrade:
/// HTTP/1.1, `Connection` lists `upgrade`, and `Upgrade` names a protocol
/// other than h2c. h2c is never forwarded, even beside another protocol:
/// meshgate declines it by answering in HTTP/1.1, and an upstream that
/// switched to it would carry requests past meshgate's routing (h2c
/// smuggling).
/// `has_body` requests are not upgraded: the tunnel would start after a
/// body of unknown framing, so their `Upgrade` is stripped like any other
/// hop-by-hop header.
pub(crate) fn requested(parts: &Parts, has_body: bool) -> Option<HeaderValue> {
    if has_body || parts.version != Version::HTTP_11 {
        return None;
    }
    let value = parts.headers.get(header::UPGRADE)?.to_str().ok()?;
    let wanted: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.eq_ignore_ascii_case("h2c"))
        .collect();
    if wanted.is_empty() {
        return None;
    }
    let listed = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !listed {
        return None;
    }
    HeaderValue::from_str(&wanted.join(", ")).ok()
}

/// Whether a `101`'s `Upgrade` names one of the protocols asked for; any
/// other switch is the upstream's protocol error.
pub(crate) fn answers(asked: &HeaderValue, switched: Option<&HeaderValue>) -> bool {
    let (Ok(asked), Some(Ok(switched))) = (asked.to_str(), switched.map(HeaderValue::to_str))
    else {
        return false;
    };
    let switched = switched.trim();
    asked
        .split(',')
        .any(|p| p.trim().eq_ignore_ascii_case(switched))
}

/// Puts the upgrade back on a request whose hop-by-hop headers were
/// stripped, so the upstream sees the handshake.
pub(crate) fn restore(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
    // h2c's settings are never forwarded with it (see `requested`).
    headers.remove("http2-settings");
}

/// An upstream connection that answered `101`, with the bytes it sent after
/// the head (the start of the new protocol) and its unit of the cluster's
/// `max_connections`, held for the tunnel's life.
pub(crate) struct Upgraded {
    /// Plain or TLS, as the cluster's connections are.
    pub(crate) io: crate::upstream_tls::UpstreamStream,
    pub(crate) buf: BytesMut,
    pub(crate) slot: ConnSlot,
}

/// The response extension that carries an [`Upgraded`] connection from the
/// upstream client to the downstream server. (Extensions must be `Clone`;
/// the connection is taken exactly once.)
#[derive(Clone)]
pub(crate) struct Pending(Arc<Mutex<Option<Upgraded>>>);

impl Pending {
    pub(crate) fn new(upgraded: Upgraded) -> Self {
        Self(Arc::new(Mutex::new(Some(upgraded))))
    }

    pub(crate) fn take(&self) -> Option<Upgraded> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Joins `client` and the upgraded upstream until both directions have
/// closed, or neither side has sent a byte for `idle`. `from_client` holds
/// bytes the client sent after its request head (a first frame may arrive
/// with the handshake); the upstream's early bytes are in `upstream.buf`.
pub(crate) async fn tunnel(
    mut client: crate::downstream::Stream,
    from_client: &[u8],
    upstream: Upgraded,
    idle: Duration,
) {
    let Upgraded {
        io: mut up,
        buf: from_upstream,
        slot,
    } = upstream;
    // (The pool set TCP_NODELAY when it connected.)
    let early = async {
        up.write_all(from_client).await?;
        up.flush().await?; // TLS: out of rustls
        client.write_all(&from_upstream).await?;
        client.flush().await
    };
    if early.await.is_err() {
        return;
    }
    let active = Arc::new(AtomicBool::new(false));
    let mut a = Active {
        io: client,
        seen: active.clone(),
    };
    let mut b = Active {
        io: up,
        seen: active.clone(),
    };
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    // Idleness is checked once per period, so a tunnel closes between
    // `idle` and twice that after its last byte: no timer per read.
    let watch = async {
        loop {
            tokio::time::sleep(idle).await;
            if !active.swap(false, Ordering::Relaxed) {
                return;
            }
        }
    };
    tokio::select! {
        copied = copy => {
            if let Err(e) = copied {
                tracing::debug!(error = %e, "tunnel ended with an error");
            }
        }
        () = watch => tracing::debug!(?idle, "tunnel idle; closing"),
    }
    drop(slot);
}

/// A tunnel end that notes when it reads anything.
struct Active<T> {
    io: T,
    seen: Arc<AtomicBool>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Active<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.seen.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Active<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)], version: Version) -> Parts {
        let mut req = http::Request::builder().uri("/ws").version(version);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_websocket_handshake_is_an_upgrade() {
        let p = parts(
            &[
                ("connection", "keep-alive, Upgrade"),
                ("upgrade", "websocket"),
            ],
            Version::HTTP_11,
        );
        assert_eq!(
            requested(&p, false),
            Some(HeaderValue::from_static("websocket"))
        );
    }

    #[test]
    fn upgrade_needs_connection_http11_no_body_and_not_h2c() {
        let ws = [("connection", "upgrade"), ("upgrade", "websocket")];
        assert_eq!(requested(&parts(&ws, Version::HTTP_11), true), None);
        assert_eq!(requested(&parts(&ws, Version::HTTP_10), false), None);
        let unlisted = [("connection", "keep-alive"), ("upgrade", "websocket")];
        assert_eq!(requested(&parts(&unlisted, Version::HTTP_11), false), None);
        let h2c = [
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "h2c"),
        ];
        let mixed = [("connection", "upgrade"), ("upgrade", "h2c, websocket")];
        assert_eq!(
            requested(&parts(&mixed, Version::HTTP_11), false),
            Some(HeaderValue::from_static("websocket")),
            "h2c is dropped from a list"
        );
        assert_eq!(requested(&parts(&h2c, Version::HTTP_11), false), None);
        let empty = [("connection", "upgrade"), ("upgrade", " , ")];
        assert_eq!(requested(&parts(&empty, Version::HTTP_11), false), None);
    }

    #[test]
    fn a_switch_must_be_to_a_protocol_asked_for() {
        let asked = HeaderValue::from_static("websocket, foo/2");
        let yes = |v: &'static str| answers(&asked, Some(&HeaderValue::from_static(v)));
        assert!(yes("websocket"));
        assert!(yes("WebSocket "));
        assert!(yes("foo/2"));
        assert!(!yes("h2c"));
        assert!(!yes("websocket, h2c"));
        assert!(!answers(&asked, None));
    }

    #[test]
    fn restore_replaces_whatever_connection_said() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        restore(&mut h, HeaderValue::from_static("websocket"));
        assert_eq!(
            h.get(header::CONNECTION).map(|v| v.as_bytes()),
            Some(&b"upgrade"[..])
        );
        assert_eq!(
            h.get(header::UPGRADE).map(|v| v.as_bytes()),
            Some(&b"websocket"[..])
        );
    }
}
