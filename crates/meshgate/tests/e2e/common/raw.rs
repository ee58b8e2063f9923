//! Raw TCP on both sides of the gateway: an HTTP/1.x client that speaks just
//! enough of the protocol to check exact bytes, timeouts and closes, and raw
//! upstreams that answer (or misbehave) byte by byte.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::wait::BOUND;

// === client ===

/// One HTTP/1.x response read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// How a connection ended when read to the end.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Orderly close (FIN).
    Eof,
    /// Connection reset.
    Reset,
}

/// A raw TCP client speaking just enough HTTP/1.x to check the gateway.
pub struct Raw {
    pub stream: TcpStream,
    /// Bytes read but not yet consumed as a response.
    pub buf: Vec<u8>,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let stream = tokio::time::timeout(BOUND, TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads more bytes into the buffer; 0 on EOF.
    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads one complete response to a non-HEAD request.
    pub async fn response(&mut self) -> RawResponse {
        self.response_to(false).await
    }

    /// Reads one complete response (content-length, chunked or
    /// close-delimited); a response to HEAD has no body whatever its headers.
    pub async fn response_to(&mut self, head: bool) -> RawResponse {
        tokio::time::timeout(BOUND, self.response_inner(head))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no complete response in time; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            })
    }

    async fn response_inner(&mut self, head: bool) -> RawResponse {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = self
                .fill()
                .await
                .expect("read failed before a response head");
            assert!(
                n > 0,
                "EOF before a response head; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        };
        let (status, headers) = parse_head(&self.buf[..head_end]);
        self.buf.drain(..head_end);
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let body = if head || status == 204 || status == 304 {
            Vec::new()
        } else if let Some(len) = get("content-length") {
            let len: usize = len.parse().unwrap();
            while self.buf.len() < len {
                assert!(self.fill().await.unwrap() > 0, "EOF inside a body");
            }
            self.buf.drain(..len).collect()
        } else if get("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    assert!(self.fill().await.unwrap() > 0, "EOF inside a chunk size");
                };
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
                while self.buf.len() < line_end + 2 + size + 2 {
                    assert!(self.fill().await.unwrap() > 0, "EOF inside a chunk");
                }
                body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                self.buf.drain(..line_end + 2 + size + 2);
                if size == 0 {
                    break body;
                }
            }
        } else {
            while self.fill().await.unwrap_or(0) > 0 {}
            std::mem::take(&mut self.buf)
        };
        RawResponse {
            status,
            headers,
            body,
        }
    }

    /// Reads until the peer closes or `within` passes. Returns the bytes read
    /// (including anything already buffered), how it ended (None: still
    /// open), and when.
    pub async fn read_to_close(&mut self, within: Duration) -> (Vec<u8>, Option<End>, Instant) {
        read_to_close(&mut self.stream, std::mem::take(&mut self.buf), within).await
    }
}

pub async fn read_to_close<R: AsyncReadExt + Unpin>(
    stream: &mut R,
    mut got: Vec<u8>,
    within: Duration,
) -> (Vec<u8>, Option<End>, Instant) {
    let deadline = tokio::time::Instant::now() + within;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return (got, None, Instant::now()),
            Ok(Ok(0)) => return (got, Some(End::Eof), Instant::now()),
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (got, Some(End::Reset), Instant::now());
            }
            Ok(Err(e)) => panic!("read failed: {e}"),
        }
    }
}

/// Parses a response head (status line and headers, ending in CRLF CRLF).
pub fn parse_head(head: &[u8]) -> (u16, Vec<(String, String)>) {
    let head = String::from_utf8_lossy(head).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(
        status_line.starts_with("HTTP/1.1 ") || status_line.starts_with("HTTP/1.0 "),
        "bad status line {status_line:?}"
    );
    let status: u16 = status_line[9..12].parse().unwrap();
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    (status, headers)
}

/// Splits a byte stream of complete responses that all carry a
/// content-length (or have no body) into (status, body) pairs.
pub fn split_responses(mut bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let end = find(bytes, b"\r\n\r\n").unwrap_or_else(|| {
            panic!(
                "trailing bytes are not a response head: {:?}",
                String::from_utf8_lossy(bytes)
            )
        }) + 4;
        let (status, headers) = parse_head(&bytes[..end]);
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        assert!(
            bytes.len() >= end + len,
            "truncated response body: {:?}",
            String::from_utf8_lossy(bytes)
        );
        out.push((status, bytes[end..end + len].to_vec()));
        bytes = &bytes[end + len..];
    }
    out
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Checks the JSON error contract of a meshgate-generated error.
pub fn assert_error(resp: &RawResponse, status: u16, code: &str) {
    assert_eq!(resp.status, status, "body: {}", resp.text());
    assert_eq!(
        resp.header("content-type"),
        Some("application/json"),
        "error bodies are JSON: {resp:?}"
    );
    let body = resp.json();
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
}

// === upstream ===

/// A raw TCP upstream: its address and the connections it accepted.
pub struct RawUpstream {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
}

/// Starts a raw TCP upstream: every accepted connection is handed to `serve`.
pub async fn raw_upstream<F, Fut>(serve: F) -> RawUpstream
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream));
        }
    });
    RawUpstream { addr, connections }
}

/// Reads until the end of a request head (any body is left unread); false if
/// the peer closed or failed first.
pub async fn read_head(stream: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    true
}
