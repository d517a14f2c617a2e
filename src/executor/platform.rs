//! V8 process-wide initialisation. V8 allows exactly one platform per process and it can
//! never be re-initialised after disposal, so it is set up once, lazily, and never torn down.

use std::sync::Once;

static INIT: Once = Once::new();

/// Initialises the V8 platform (idempotent, thread-safe).
pub fn init() {
    INIT.call_once(|| {
        // --no-concurrent-osr: on-stack replacement stays on (a long loop in a block that
        // runs once is compiled mid-loop; without OSR the bench's CPU-heavy block ran ~4x
        // slower), but OSR compiles synchronously. With *concurrent* OSR, a hot allocating
        // loop entered once (`while (true) a.push({x: new Array(1000)})`) was seen to run
        // on after TerminateExecution — from the heap-limit callback or the watchdog — until
        // the heap grew to 16 GB and the process aborted; with synchronous OSR every heap
        // bomb variant in the tests is stopped at the isolate's heap limit. Checked on the
        // pinned V8 (152.2.0); re-run the heap-bomb tests when upgrading it.
        v8::V8::set_flags_from_string("--no-concurrent-osr");
        // Escape hatch for operators: extra V8 flags, e.g. "--no-maglev".
        if let Ok(flags) = std::env::var("EXECUTOR_V8_FLAGS") {
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
pub fn version() -> &'static str {
    v8::V8::get_version()
}
