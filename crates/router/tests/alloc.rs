//! The hot-path contract: `Router::find` allocates nothing unless the winner
//! is a path template that captures parameters.
//!
//! A counting global allocator (per thread, so parallel tests and the test
//! harness do not interfere) measures it directly.
#![allow(
    unsafe_code,
    reason = "a GlobalAlloc needs `unsafe impl`; this one only counts and forwards to System"
)]

#[path = "support/build.rs"]
mod build;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use build::{RouteExt, every_kind, route, router};
use http::{HeaderMap, HeaderValue, Method};
use meshgate_router::{RequestView, Router};

thread_local! {
    /// Allocations made by this thread. `const` and `Drop`-free, so reading
    /// it from inside the allocator can neither allocate nor recurse.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count_one() {
    // `try_with` only fails after the thread's TLS is torn down; missing a
    // count then is harmless, since no measurement is running.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds the `GlobalAlloc` contract; counting touches no allocator state.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received; `ptr` came from `System` via `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// How many allocations `router.find` makes for `(method, host, path, query)`
/// after one warm-up call (which lets a regex build its per-thread cache).
fn allocations(
    router: &Router,
    method: Method,
    host: Option<&str>,
    target: &str,
    headers: &HeaderMap,
) -> usize {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let req = RequestView {
        method: &method,
        host,
        path,
        query,
        headers,
    };
    black_box(router.find(&req));
    let before = ALLOCATIONS.with(Cell::get);
    black_box(router.find(black_box(&req)));
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_benchmark_catch_all_allocates_nothing() {
    let headers = HeaderMap::new();
    for catch_all in [route(), route().prefix("/")] {
        let r = router(&[catch_all]);
        assert_eq!(
            allocations(
                &r,
                Method::GET,
                Some("LOCALHOST:8080"),
                "/index.html?a=b",
                &headers
            ),
            0
        );
    }
}

#[test]
fn non_capturing_matches_and_misses_allocate_nothing() {
    let r = router(&every_kind());
    let mut headers = HeaderMap::new();
    headers.append("x-version", HeaderValue::from_static("v9"));
    headers.append("x-debug", HeaderValue::from_static(""));
    let cases = [
        (Some("API.example.com.:443"), "/v1/x"),
        (Some("[::1]:80"), "/"),
        (Some("a.internal.example.com"), "/"),
        (None, "/v1/health"),
        (None, "/users/me"),
        (None, "/img/cat.png"),
        (None, "/app?lang=en&debug"),
        (None, "/app?v=2"),
        (Some("nowhere.org"), "/nothing?x=1"),
    ];
    for (host, target) in cases {
        assert_eq!(
            allocations(&r, Method::GET, host, target, &headers),
            0,
            "{host:?} {target}"
        );
    }
}

#[test]
fn only_captured_params_allocate() {
    let r = router(&every_kind());
    let headers = HeaderMap::new();
    let n = allocations(&r, Method::GET, None, "/users/42/posts/7", &headers);
    // One vector plus one string per value; names are shared, not copied.
    assert_eq!(n, 3);
}
