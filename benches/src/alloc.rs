//! A counting global allocator: the `scale` scenario's memory-per-SA figure is the growth of
//! live heap bytes while SAs are installed, divided by their number.
//!
//! It counts the bytes *requested* (`Layout::size`), not what the system allocator rounds them
//! up to, so it is a lower bound on resident memory and independent of the allocator in use.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator plus a live-bytes counter.
#[derive(Debug)]
pub struct Counting {
    live: AtomicU64,
}

impl Counting {
    /// A counter at zero.
    pub const fn new() -> Self {
        Self {
            live: AtomicU64::new(0),
        }
    }

    /// Heap bytes currently allocated by the whole process (all threads).
    pub fn live(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            self.live.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            self.live.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) };
        self.live.fetch_sub(layout.size() as u64, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            self.live.fetch_sub(layout.size() as u64, Ordering::Relaxed);
            self.live.fetch_add(new_size as u64, Ordering::Relaxed);
        }
        p
    }
}
