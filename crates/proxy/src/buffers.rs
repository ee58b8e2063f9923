//! A per-thread free list of connection buffers.
//!
//! An HTTP/1.1 keep-alive connection gives its read buffer and its response
//! buffer up while it waits for the next request, so 10,000 idle connections
//! pin no buffer memory. Freeing and allocating them again for every
//! request, though, cost ~3k instructions per request in the allocator's
//! slow path (pages emptied, retired and fetched again), more than the
//! memory saved was worth on a busy connection. So a waiting connection
//! hands its buffers here and the next connection to become readable takes
//! them back: a busy worker reuses a handful of buffers, and an idle one
//! holds at most `KEEP` of each kind. The upstream client writes each
//! request head from a response buffer of this list too.

use std::cell::RefCell;

use bytes::BytesMut;

/// Buffers kept per thread, of each kind: as many as connections of one
/// worker are likely to be between "readable" and "waiting" at once.
const KEEP: usize = 16;
/// Response buffers that grew past this are freed, not kept.
const MAX_OUT: usize = 16 * 1024;
/// Read buffers that grew past this (a large head) are freed, not kept.
const MAX_READ: usize = 64 * 1024;

thread_local! {
    static READ: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static OUT: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty read buffer with room for at least `capacity` bytes.
pub(crate) fn take_read(capacity: usize) -> BytesMut {
    let mut buf = READ
        .with(|f| f.try_borrow_mut().ok().and_then(|mut f| f.pop()))
        .unwrap_or_default();
    // A kept buffer may still share its memory with a request head that was
    // split off it; once that head is gone, `reserve` reclaims the whole
    // allocation in place instead of allocating.
    buf.reserve(capacity);
    buf
}

/// Hands back an empty read buffer. One that still holds bytes is dropped:
/// they belong to its connection.
pub(crate) fn give_back_read(buf: BytesMut) {
    if !buf.is_empty() || buf.capacity() > MAX_READ {
        return;
    }
    READ.with(|f| {
        if let Ok(mut f) = f.try_borrow_mut()
            && f.len() < KEEP
        {
            f.push(buf);
        }
    });
}

/// An empty response buffer with room for at least `capacity` bytes.
pub(crate) fn take_out(capacity: usize) -> Vec<u8> {
    let mut out = OUT
        .with(|f| f.try_borrow_mut().ok().and_then(|mut f| f.pop()))
        .unwrap_or_default();
    out.reserve(capacity);
    out
}

/// Hands back a response buffer (its contents are discarded).
pub(crate) fn give_back_out(mut out: Vec<u8>) {
    if out.capacity() == 0 || out.capacity() > MAX_OUT {
        return;
    }
    out.clear();
    OUT.with(|f| {
        if let Ok(mut f) = f.try_borrow_mut()
            && f.len() < KEEP
        {
            f.push(out);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_read_buffer_comes_back_with_its_memory() {
        let buf = take_read(8192);
        let ptr = buf.as_ptr();
        give_back_read(buf);
        let again = take_read(8192);
        assert_eq!(again.as_ptr(), ptr, "the same allocation is reused");
        assert!(again.capacity() >= 8192 && again.is_empty());
    }

    #[test]
    fn a_buffer_split_by_a_head_is_reclaimed_once_the_head_is_gone() {
        let mut buf = take_read(8192);
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let head = buf.split().freeze();
        give_back_read(buf);
        drop(head);
        let again = take_read(8192);
        assert!(again.capacity() >= 8192 && again.is_empty());
    }

    #[test]
    fn buffers_with_bytes_or_grown_too_large_are_not_kept() {
        let mut full = BytesMut::with_capacity(64);
        full.extend_from_slice(b"pipelined");
        give_back_read(full);
        assert!(take_read(1).is_empty(), "a connection's bytes never leak");
        give_back_out(Vec::with_capacity(MAX_OUT * 4));
        assert!(take_out(1).capacity() <= MAX_OUT);
    }

    #[test]
    fn at_most_keep_buffers_of_a_kind_are_held() {
        for _ in 0..KEEP * 2 {
            give_back_out(Vec::with_capacity(1024));
        }
        assert_eq!(OUT.with(|f| f.borrow().len()), KEEP);
    }
}
