//! V8 process-wide initialisation. V8 allows exactly one platform per process and it can
//! never be re-initialised after disposal, so it is set up once, lazily, and never torn down.

use std::sync::Once;

static INIT: Once = Once::new();

/// Initialises the V8 platform (idempotent, thread-safe).
pub fn init() {
    INIT.call_once(|| {
        // --no-use-osr: code that TurboFan compiled by on-stack replacement (a hot loop
        // entered once, e.g. `while (true) a.push({x: new Array(1000).fill(1)})`) was seen
        // to never honour TerminateExecution, so neither the watchdog nor the heap-limit
        // callback could stop it and the heap grew until the process aborted. Functions are
        // still optimised on their next call; only mid-loop tier-up is off.
        v8::V8::set_flags_from_string("--no-use-osr");
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
