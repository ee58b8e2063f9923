//! 1 GiB through the proxy in each direction, streamed frame by frame and
//! checked by byte count and xxh3 at both ends, with meshgate's peak RSS
//! (VmHWM) bounded: nothing on the data path may buffer a whole body.
//!
//! `MESHGATE_STREAM_BYTES` overrides the size (in bytes) for local
//! experiments; the default and what CI runs is 1 GiB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Gateway;
use common::upstream::{self, Proto, Upstream};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use xxhash_rust::xxh3::Xxh3;

const GIB: u64 = 1 << 30;
const FRAME: usize = 64 * 1024;
/// Peak resident memory allowed for the meshgate process.
const RSS_LIMIT_KIB: u64 = 64 * 1024;
/// Bound on one whole transfer (debug builds on a loaded 2-core machine).
const TRANSFER_BOUND: Duration = Duration::from_secs(180);

fn total_bytes() -> u64 {
    std::env::var("MESHGATE_STREAM_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(GIB)
}

/// 16 blocks of 64 KiB of pseudo-random bytes; a body is a pseudo-random
/// sequence of them, so dropped, repeated or reordered frames change the hash.
fn blocks() -> Arc<Vec<Bytes>> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let blocks = (0..16)
        .map(|_| {
            let mut b = Vec::with_capacity(FRAME);
            while b.len() < FRAME {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.extend_from_slice(&x.to_le_bytes());
            }
            Bytes::from(b)
        })
        .collect();
    Arc::new(blocks)
}

/// The `i`-th frame of a generated body of `total` bytes.
fn frame(blocks: &[Bytes], i: u64, total: u64) -> Option<Bytes> {
    let offset = i * FRAME as u64;
    if offset >= total {
        return None;
    }
    let pick = (i.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 60) as usize;
    let len = (total - offset).min(FRAME as u64) as usize;
    Some(blocks[pick].slice(..len))
}

/// The expected (length, xxh3) of a generated body.
fn expected(blocks: &[Bytes], total: u64) -> (u64, u64) {
    let mut h = Xxh3::new();
    let mut i = 0;
    while let Some(f) = frame(blocks, i, total) {
        h.update(&f);
        i += 1;
    }
    (total, h.digest())
}

/// A generated body streamed in 64 KiB frames, with an exact length.
struct Generated {
    blocks: Arc<Vec<Bytes>>,
    next: u64,
    total: u64,
    /// Whether to announce the length (content-length) or not (chunked / h2 without it).
    exact: bool,
}

impl Body for Generated {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let f = frame(&self.blocks, self.next, self.total);
        self.next += 1;
        Poll::Ready(f.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.exact && self.next * FRAME as u64 >= self.total
    }

    fn size_hint(&self) -> SizeHint {
        if self.exact {
            SizeHint::with_exact(self.total.saturating_sub(self.next * FRAME as u64))
        } else {
            SizeHint::new()
        }
    }
}

/// Reads a body frame by frame, returning (length, xxh3).
async fn consume(mut body: Incoming) -> Result<(u64, u64), hyper::Error> {
    let mut h = Xxh3::new();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            n += data.len() as u64;
            h.update(&data);
        }
    }
    Ok((n, h.digest()))
}

fn config(up: &Upstream) -> String {
    format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
cluster = "up"
timeout = "60s"

[[clusters]]
name = "up"
endpoints = [{{ address = "{}" }}]
"#,
        up.addr
    )
}

fn check_rss(gw: &Gateway, what: &str) -> u64 {
    let (now, peak) = gw.rss_kib();
    eprintln!("{what}: meshgate RSS now {now} KiB, peak (VmHWM) {peak} KiB");
    assert!(peak > 0, "could not read /proc/{}/status", gw.pid());
    assert!(
        peak < RSS_LIMIT_KIB,
        "{what}: meshgate peak RSS {peak} KiB >= {RSS_LIMIT_KIB} KiB"
    );
    peak
}

/// Which client protocol and framing a transfer uses.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// HTTP/1.1 with content-length.
    H1Length,
    /// HTTP/1.1, chunked (no length announced).
    H1Chunked,
    /// h2c prior knowledge, no length announced.
    H2,
}

async fn upload(mode: Mode) {
    let total = total_bytes();
    let blocks = blocks();
    let want = {
        let b = blocks.clone();
        tokio::task::spawn_blocking(move || expected(&b, total))
    };
    let up = upstream::start(
        Proto::H1,
        Arc::new(|req: Request<Incoming>| {
            Box::pin(async move {
                let framing = match req.headers().get("content-length") {
                    Some(_) => "length",
                    None => "chunked",
                };
                let (n, h) = consume(req.into_body()).await.unwrap_or((u64::MAX, 0));
                Response::new(upstream::full(format!("{n} {h:016x} {framing}")))
            })
        }),
    )
    .await;
    let gw = Gateway::start(&config(&up));
    eprintln!("meshgate RSS at start (now, peak) KiB: {:?}", gw.rss_kib());
    let mut builder = Client::builder(TokioExecutor::new());
    if let Mode::H2 = mode {
        builder.http2_only(true);
    }
    let client = builder.build_http::<Generated>();
    let exact = matches!(mode, Mode::H1Length);
    let req = Request::post(gw.url("public", "/upload"))
        .body(Generated {
            blocks: blocks.clone(),
            next: 0,
            total,
            exact,
        })
        .unwrap();
    let start = Instant::now();
    let reply = tokio::time::timeout(TRANSFER_BOUND, async {
        let resp = client.request(req).await.expect("upload failed");
        let status = resp.status();
        (status, resp.into_body().collect().await.unwrap().to_bytes())
    })
    .await
    .expect("upload did not finish in time");
    let took = start.elapsed();
    let (want_n, want_h) = want.await.unwrap();
    assert_eq!(reply.0, 200);
    let framing = if exact { "length" } else { "chunked" };
    assert_eq!(
        String::from_utf8_lossy(&reply.1),
        format!("{want_n} {want_h:016x} {framing}"),
        "upstream got other bytes or framing"
    );
    assert_eq!(up.hits(), 1);
    let peak = check_rss(&gw, "upload");
    eprintln!(
        "upload {mode:?}: {total} bytes in {took:?} ({:.0} MiB/s), meshgate peak RSS {peak} KiB",
        total as f64 / took.as_secs_f64() / (1024.0 * 1024.0)
    );
}

async fn download(mode: Mode) {
    let total = total_bytes();
    let blocks = blocks();
    let want = {
        let b = blocks.clone();
        tokio::task::spawn_blocking(move || expected(&b, total))
    };
    let b = blocks.clone();
    let exact = matches!(mode, Mode::H1Length);
    let up = upstream::start(
        Proto::H1,
        Arc::new(move |_req: Request<Incoming>| {
            let body = Generated {
                blocks: b.clone(),
                next: 0,
                total,
                exact,
            };
            Box::pin(async move { Response::new(body.map_err(|never| match never {}).boxed()) })
        }),
    )
    .await;
    let gw = Gateway::start(&config(&up));
    eprintln!("meshgate RSS at start (now, peak) KiB: {:?}", gw.rss_kib());
    let client = match mode {
        Mode::H2 => common::client::h2(),
        _ => common::client::h1(),
    };
    let req = Request::get(gw.url("public", "/download"))
        .body(http_body_util::Full::default())
        .unwrap();
    let start = Instant::now();
    let got = tokio::time::timeout(TRANSFER_BOUND, async {
        let resp = client.request(req).await.expect("download failed");
        assert_eq!(resp.status(), 200);
        consume(resp.into_body())
            .await
            .expect("download body failed")
    })
    .await
    .expect("download did not finish in time");
    let took = start.elapsed();
    assert_eq!(got, want.await.unwrap(), "client got other bytes");
    let peak = check_rss(&gw, "download");
    eprintln!(
        "download {mode:?}: {total} bytes in {took:?} ({:.0} MiB/s), meshgate peak RSS {peak} KiB",
        total as f64 / took.as_secs_f64() / (1024.0 * 1024.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_1gib_streams_intact_with_bounded_memory() {
    upload(Mode::H1Length).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_1gib_chunked_streams_intact_with_bounded_memory() {
    upload(Mode::H1Chunked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_1gib_over_h2c_streams_intact_with_bounded_memory() {
    upload(Mode::H2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_1gib_streams_intact_with_bounded_memory() {
    download(Mode::H1Length).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_1gib_chunked_streams_intact_with_bounded_memory() {
    download(Mode::H1Chunked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_1gib_over_h2c_streams_intact_with_bounded_memory() {
    download(Mode::H2).await;
}
