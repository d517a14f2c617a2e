//! One V8 isolate of the pool: created from the snapshot with its heap guard (the
//! near-heap-limit and GC callbacks that stop a heap bomb) and its array-buffer budget, and
//! the per-call contexts booted in it.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::alloc::{self, Budget};
use super::natives;
use super::requires::ContextKind;
use super::worker::Shared;

/// Set by the near-heap-limit callback; lives (boxed) as long as its isolate.
pub(super) struct HeapGuard {
    pub(super) handle: v8::IsolateHandle,
    pub(super) hit: AtomicBool,
    /// Used-heap level after a GC at which the running block is terminated. Below the hard
    /// limit on purpose: V8 aborts the whole process when a scavenge cannot promote into a
    /// full old generation, and the near-heap-limit callback is not consulted on that path.
    pub(super) soft_limit: usize,
    /// The most the near-heap-limit callback lets the heap grow to while a terminated block
    /// unwinds: should termination ever not take (see platform.rs on OSR), V8 then stops
    /// the process at a bounded size instead of doubling the limit until the machine swaps.
    pub(super) ceiling: usize,
}

/// After every GC: terminate the running block once the heap passes the soft limit.
unsafe extern "C" fn gc_epilogue(
    isolate: v8::UnsafeRawIsolatePtr,
    _type: v8::GCType,
    _flags: v8::GCCallbackFlags,
    data: *mut c_void,
) {
    // SAFETY: as for `near_heap_limit`; the isolate pointer is the one V8 is collecting,
    // on this thread.
    let guard = unsafe { &*(data as *const HeapGuard) };
    let mut ptr = isolate;
    let iso = unsafe { v8::Isolate::ref_from_raw_isolate_ptr_mut(&mut ptr) };
    let used = iso.get_heap_statistics().used_heap_size();
    if used > guard.soft_limit && !guard.hit.swap(true, Ordering::SeqCst) {
        guard.handle.terminate_execution();
    }
}

extern "C" fn near_heap_limit(data: *mut c_void, current: usize, _initial: usize) -> usize {
    // SAFETY: `data` is the HeapGuard registered with this isolate; it is dropped only
    // after the isolate (field order of `LiveIsolate`).
    let guard = unsafe { &*(data as *const HeapGuard) };
    guard.hit.store(true, Ordering::SeqCst);
    guard.handle.terminate_execution();
    // Headroom so V8 can unwind the terminated script instead of aborting the process;
    // the isolate is thrown away right after.
    current.saturating_mul(2).min(guard.ceiling).max(current)
}

/// An isolate plus the guard its callback points at and its array-buffer budget. Field
/// order matters: the isolate is dropped before the guard.
pub(super) struct LiveIsolate {
    pub(super) isolate: v8::OwnedIsolate,
    pub(super) guard: Box<HeapGuard>,
    pub(super) budget: Arc<Budget>,
}

pub(super) fn new_isolate(shared: &Shared) -> LiveIsolate {
    let budget = Budget::new(shared.limits.array_buffer_limit);
    let params = v8::CreateParams::default()
        .snapshot_blob(v8::StartupData::from(shared.snapshot.blob))
        .array_buffer_allocator(alloc::allocator(&budget))
        .heap_limits(0, shared.limits.heap_limit);
    let mut isolate = v8::Isolate::new(params);
    isolate.set_microtasks_policy(v8::MicrotasksPolicy::Explicit);
    let guard = Box::new(HeapGuard {
        handle: isolate.thread_safe_handle(),
        hit: AtomicBool::new(false),
        soft_limit: shared.limits.heap_limit / 4 * 3,
        ceiling: shared.limits.heap_limit.saturating_mul(4),
    });
    let data = &*guard as *const HeapGuard as *mut c_void;
    isolate.add_near_heap_limit_callback(near_heap_limit, data);
    isolate.add_gc_epilogue_callback(gc_epilogue, data, v8::GCType::kGCTypeAll);
    LiveIsolate {
        isolate,
        guard,
        budget,
    }
}

/// Creates a context of `kind` from the snapshot and hands it its natives.
pub(super) fn prepare_context(
    isolate: &mut v8::OwnedIsolate,
    kind: ContextKind,
) -> Result<v8::Global<v8::Context>, String> {
    v8::scope!(let scope, isolate);
    let context = match kind {
        ContextKind::Lean => v8::Context::new(scope, Default::default()),
        ContextKind::Snapshot(index) => {
            v8::Context::from_snapshot(scope, index, Default::default())
                .ok_or("the snapshot lacks a context")?
        }
    };
    let scope = &mut v8::ContextScope::new(scope, context);
    let natives = v8::Object::new(scope);
    natives::install(scope, natives)?;
    let global = context.global(scope);
    let key = v8::String::new(scope, "__keel_boot").ok_or("string")?;
    let boot = global
        .get(scope, key.into())
        .and_then(|v| v8::Local::<v8::Function>::try_from(v).ok())
        .ok_or("__keel_boot missing from snapshot")?;
    if boot.call(scope, global.into(), &[natives.into()]).is_none() {
        return Err("__keel_boot threw".into());
    }
    Ok(v8::Global::new(scope, context))
}
