//! An ArrayBuffer allocator that counts: V8's heap limit covers JavaScript objects, not the
//! backing stores of `ArrayBuffer`s, typed arrays and `Buffer`s, which V8 asks the embedder
//! to allocate. Without a budget, sixteen `new ArrayBuffer(256 MiB)` grow the process by
//! 4 GiB while the heap stays small. Each isolate gets its own [`Budget`]; an allocation that
//! would pass it returns null, which V8 turns into a catchable `RangeError: Array buffer
//! allocation failed` (after one full GC and a retry, so garbage from earlier calls on the
//! same isolate never counts against a new one).

use std::alloc::Layout;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes of backing store one isolate may hold at once.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
    /// Set when an allocation was refused since the last [`Budget::take_refused`]: the
    /// worker reports a refused call as a memory-limit failure even when user code caught
    /// the `RangeError` and threw something else.
    refused: AtomicBool,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
            refused: AtomicBool::new(false),
        })
    }

    /// Bytes held now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether an allocation was refused since the last call (and clears the flag).
    pub(crate) fn take_refused(&self) -> bool {
        self.refused.swap(false, Ordering::Relaxed)
    }

    /// Reserves `len` bytes, or refuses when that would pass the limit.
    fn reserve(&self, len: usize) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let Some(next) = used.checked_add(len).filter(|n| *n <= self.limit) else {
                self.refused.store(true, Ordering::Relaxed);
                return false;
            };
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    fn release(&self, len: usize) {
        self.used.fetch_sub(len, Ordering::Relaxed);
    }
}

/// Alignment of every backing store: what V8's default allocator (calloc) guarantees.
const ALIGN: usize = 16;

fn layout(len: usize) -> Option<Layout> {
    // A zero-length buffer still gets a unique, freeable pointer.
    Layout::from_size_align(len.max(1), ALIGN).ok()
}

fn allocate_with(budget: &Budget, len: usize, zeroed: bool) -> *mut c_void {
    let Some(layout) = layout(len) else {
        return std::ptr::null_mut();
    };
    if !budget.reserve(len) {
        return std::ptr::null_mut();
    }
    // SAFETY: `layout` has a non-zero size.
    let ptr = unsafe {
        if zeroed {
            std::alloc::alloc_zeroed(layout)
        } else {
            std::alloc::alloc(layout)
        }
    };
    if ptr.is_null() {
        budget.release(len);
    }
    ptr.cast()
}

unsafe extern "C" fn allocate(budget: &Budget, len: usize) -> *mut c_void {
    allocate_with(budget, len, true)
}

unsafe extern "C" fn allocate_uninitialized(budget: &Budget, len: usize) -> *mut c_void {
    allocate_with(budget, len, false)
}

unsafe extern "C" fn free(budget: &Budget, data: *mut c_void, len: usize) {
    if data.is_null() {
        return;
    }
    if let Some(layout) = layout(len) {
        // SAFETY: V8 frees a pointer this allocator returned, with the length it asked for.
        unsafe { std::alloc::dealloc(data.cast(), layout) };
        budget.release(len);
    }
}

unsafe extern "C" fn drop_budget(budget: *const Budget) {
    // SAFETY: the pointer came from `Arc::into_raw` in [`allocator`]; V8 calls this once,
    // when the allocator itself is destroyed.
    unsafe { drop(Arc::from_raw(budget)) };
}

static VTABLE: v8::RustAllocatorVtable<Budget> = v8::RustAllocatorVtable {
    allocate,
    allocate_uninitialized,
    free,
    drop: drop_budget,
};

/// A V8 allocator drawing on `budget` (V8 keeps a reference until the isolate is gone).
pub(crate) fn allocator(budget: &Arc<Budget>) -> v8::SharedRef<v8::Allocator> {
    let raw = Arc::into_raw(budget.clone());
    // SAFETY: `raw` stays valid until V8 calls `drop_budget`; the vtable is 'static.
    unsafe { v8::new_rust_allocator(raw, &VTABLE) }.make_shared()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_and_releases_on_free() {
        let b = Budget::new(100);
        let p = allocate_with(&b, 60, true);
        assert!(!p.is_null());
        assert_eq!(b.used(), 60);
        assert!(allocate_with(&b, 41, false).is_null());
        assert!(b.take_refused());
        assert!(!b.take_refused());
        // SAFETY: `p` came from this allocator with length 60.
        unsafe { free(&b, p, 60) };
        assert_eq!(b.used(), 0);
        let q = allocate_with(&b, 100, false);
        assert!(!q.is_null());
        // SAFETY: as above.
        unsafe { free(&b, q, 100) };
    }

    #[test]
    fn hostile_lengths_are_refused_not_overflowed() {
        let b = Budget::new(usize::MAX / 2);
        for len in [usize::MAX, usize::MAX - 1, isize::MAX as usize] {
            assert!(allocate_with(&b, len, true).is_null(), "{len}");
        }
        assert_eq!(b.used(), 0);
        let z = allocate_with(&b, 0, true);
        assert!(!z.is_null());
        // SAFETY: zero-length allocation from this allocator.
        unsafe { free(&b, z, 0) };
    }
}
