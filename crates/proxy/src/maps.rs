//! A per-thread free list of header maps.
//!
//! Every proxied request builds two `HeaderMap`s (the request's, parsed from
//! the client, and the response's, parsed from the upstream), and each one
//! is two allocations with zeroed indices. Once a head has been written out
//! its map is cleared and kept here, so the next head reuses the memory:
//! about 700 instructions per request on the hot path.
//!
//! Only small maps are kept (a map sized by a 100-header request would pin
//! that memory), and only a few per thread.

use std::cell::RefCell;

use http::HeaderMap;

/// Maps kept per thread: enough for the heads in flight between a parse
/// and the write that frees them.
const KEEP: usize = 32;
/// Larger maps are freed, not kept.
const MAX_CAPACITY: usize = 64;

thread_local! {
    static FREE: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// An empty map with room for `capacity` headers, reused when possible.
pub(crate) fn take(capacity: usize) -> HeaderMap {
    let reused = FREE.with(|f| f.try_borrow_mut().ok().and_then(|mut f| f.pop()));
    match reused {
        Some(mut map) => {
            map.reserve(capacity);
            map
        }
        None => HeaderMap::with_capacity(capacity),
    }
}

/// Hands a map whose head has been written back for reuse.
pub(crate) fn give_back(mut map: HeaderMap) {
    // An empty map that never allocated (a response whose lines were kept
    // as they came) would only displace one with memory.
    if map.capacity() > MAX_CAPACITY || map.capacity() == 0 {
        return;
    }
    map.clear();
    FREE.with(|f| {
        if let Ok(mut f) = f.try_borrow_mut()
            && f.len() < KEEP
        {
            f.push(map);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_returned_map_comes_back_empty_with_its_memory() {
        let mut map = take(8);
        map.insert("x-a", HeaderValue::from_static("1"));
        let cap = map.capacity();
        give_back(map);
        let again = take(4);
        assert!(again.is_empty());
        assert!(again.capacity() >= cap.min(4));
        let bigger = take(40);
        assert!(bigger.capacity() >= 40);
    }

    #[test]
    fn large_maps_are_not_kept() {
        let map = HeaderMap::with_capacity(1000);
        give_back(map);
        // The free list never holds it: a fresh take sizes its own.
        assert!(take(1).capacity() < 1000);
    }
}
