//! V8 process-wide initialisation. V8 allows exactly one platform per process and it can
//! never be re-initialised after disposal, so it is set up once, lazily, and never torn down.

use std::sync::{Once, OnceLock};

static INIT: Once = Once::new();
static EXTRA_FLAGS: OnceLock<String> = OnceLock::new();

/// Flags applied after keel's own at [`init`]: the executor process gets the operator's
/// `EXECUTOR_V8_FLAGS` from the main process (it starts with an empty environment) plus
/// the WebAssembly memory bound. Call before [`init`]; later calls are ignored.
pub(crate) fn set_extra_flags(flags: String) {
    let _ = EXTRA_FLAGS.set(flags);
}

/// Initialises the V8 platform (idempotent, thread-safe).
pub(crate) fn init() {
    INIT.call_once(|| {
        // --no-osr-from-maglev: on-stack replacement stays on, but a loop is only ever
        // replaced into Maglev code, never TurboFan code. TurboFan OSR code of a hot
        // allocating loop entered once (`while (true) a.push({x: new Array(1000)})`) was
        // seen to run on after TerminateExecution — from the heap-limit callback and the
        // watchdog alike — until the heap reached 16 GB and the process aborted; Maglev OSR
        // code stops at the heap limit (every variant in the executor's heap-bomb tests,
        // with a 1 GB heap too). The bench's CPU-heavy block: ~25 ms per call this way,
        // ~16 ms with TurboFan OSR, ~90 ms with OSR off (`--no-use-osr`, the old setting).
        // Checked on the pinned V8 (152.2.0); re-run the heap-bomb tests when upgrading.
        //
        // --no-flush-bytecode: the libraries' compiled functions come from the snapshot,
        // once per isolate. V8 otherwise drops the bytecode of functions that have not run
        // for a few GCs, and the next block to call one would parse it again — a latency
        // spike in a long-lived isolate for a few MB of bytecode kept.
        //
        // --heap-growing-percent=100: a full GC is due once the old generation has doubled
        // since the last one. V8's own factor for a 128 MB heap is ~1.3, and every call here
        // leaves its whole context in the old generation (a deserialized context is
        // allocated there): a library context (0.4-1 MB) every call made a full GC, which
        // marks the ~20 MB of library code and strings every isolate holds, due every 10-20
        // calls. Measured on the bench's blocks (release, 2 isolates, flag off and on):
        // executor CPU per call lodash 777 -> 664 µs, xlsx 1004 -> 858 µs, for ~15 MB more
        // RSS per isolate; heap limits and the heap guard (isolate.rs) are unchanged.
        //
        // --no-incremental-marking: a major GC runs whole when it is due. While incremental
        // marking runs, V8 skips the young-generation GC it otherwise makes for every 64 MB
        // of new array buffers, so a loop that makes large Buffers (`Buffer.from(b64,
        // 'base64')` of 1 MiB, AES over 1 MiB) grew to the per-isolate array-buffer budget
        // and was stopped there by full GCs: 1.8-2 GiB/s where Node decodes at 5-7 GiB/s;
        // 8-19 GiB/s without it (bench/executor/RESULTS.md). A call's heap is small and
        // its pauses are the call's own time either way; the bench's library blocks ran
        // 1-4 % faster with it.
        v8::V8::set_flags_from_string(
            "--no-osr-from-maglev --no-flush-bytecode --heap-growing-percent=100 \
             --no-incremental-marking",
        );
        // User code gets no WebAssembly (runtime.js removes the global at snapshot time):
        // wasm memories are not array buffers from the embedder's allocator, so they would
        // escape the per-isolate budget; `--wasm-max-mem-pages` (set by the executor process
        // to that budget) still bounds each one.
        // Escape hatch for operators: extra V8 flags, e.g. "--no-maglev".
        if let Some(flags) = EXTRA_FLAGS.get() {
            v8::V8::set_flags_from_string(flags);
        } else if let Ok(flags) = std::env::var("EXECUTOR_V8_FLAGS") {
            v8::V8::set_flags_from_string(&flags);
        }
        // Isolates must not share the V8 "current isolate" assumptions of a single-threaded
        // embedder: every isolate lives on its own thread and is entered only there.
        let platform = v8::new_default_platform(0, false).make_shared();
        v8::V8::initialize_platform(platform);
        v8::V8::initialize();
    });
}

/// V8's version string, for `/flow/` and the health report.
pub(crate) fn version() -> &'static str {
    v8::V8::get_version()
}
