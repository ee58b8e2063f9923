//! The global allocator: mimalloc, called the way `std`'s `System`
//! allocator calls malloc.
//!
//! Why not `mimalloc::MiMalloc`: it passes every request to
//! `mi_malloc_aligned(size, align)`, even for the 8- and 16-byte alignments
//! that plain `mi_malloc` always gives. mimalloc's aligned entry point only
//! has a fast path for blocks of at most 1 KiB; anything larger (the boxed
//! 5 KiB pipeline future of every request, h2 streams' state) went through
//! `mi_theap_malloc_zero_aligned_at_generic` and its over-allocation, once
//! per HTTP/1.1 request and three times per h2c request: ~80 and ~350
//! instructions per request more than plain `mi_malloc` (callgrind,
//! docs/benchmarks.md).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The largest alignment plain `mi_malloc` guarantees on this target: with
/// 16-byte `max_align_t`, mimalloc's size classes are multiples of two
/// words, so every block of 16 bytes or more is 16-byte aligned, and
/// smaller blocks are word aligned (mimalloc `src/alloc.c`, the assertion in
/// `_mi_page_malloc_zero`). The same rule as `std`'s `MIN_ALIGN`.
const MIN_ALIGN: usize = 16;

/// mimalloc through its unaligned entry points whenever they suffice.
pub(crate) struct Allocator;

/// Whether plain `mi_malloc` already gives `layout`'s alignment.
fn plain(layout: &Layout) -> bool {
    layout.align() <= MIN_ALIGN && layout.align() <= layout.size()
}

// SAFETY: every pointer handed out comes from mimalloc with at least the
// layout's size and alignment (`plain` decides when the unaligned calls give
// that alignment; otherwise the aligned calls are used), and every pointer
// given back is freed or resized by mimalloc, which accepts pointers from
// either family.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: mimalloc's allocation functions accept any size.
        unsafe {
            if plain(&layout) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if plain(&layout) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `GlobalAlloc`'s contract: `ptr` came from this allocator.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator (`GlobalAlloc`'s contract);
        // the new block keeps the old alignment by the same rule as `alloc`.
        unsafe {
            let new = Layout::from_size_align_unchecked(new_size, layout.align());
            if plain(&new) {
                mi::mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every size and alignment mix comes back aligned, zeroed when asked,
    /// and keeps its bytes across a resize.
    #[test]
    fn blocks_are_aligned_zeroed_and_resized() {
        let a = Allocator;
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in [1, 7, 8, 15, 16, 24, 40, 1000, 1024, 1025, 5400, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size; the block is freed below with
                // its own layout.
                unsafe {
                    let p = a.alloc_zeroed(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == 0));
                    p.write_bytes(0xa5, size);
                    let q = a.realloc(p, layout, size * 3);
                    assert!(!q.is_null());
                    assert_eq!(q as usize % align, 0, "resized {size} align {align}");
                    assert!(
                        std::slice::from_raw_parts(q, size)
                            .iter()
                            .all(|&b| b == 0xa5)
                    );
                    a.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                    let r = a.alloc(layout);
                    assert_eq!(r as usize % align, 0);
                    a.dealloc(r, layout);
                }
            }
        }
    }
}
