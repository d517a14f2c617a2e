//! `require`'s natives: loading one module's bundle section into a context, and counting which
//! modules the blocks actually use (the operators' `/flow/stats/modules`).

use std::sync::atomic::{AtomicU64, Ordering};

use super::super::event_loop::ExecState;
use super::super::js_values::throw;
use super::super::snapshot;

// Each call's `noted` bitmask (event_loop.rs) has a bit per module.
const _: () = assert!(snapshot::MODULES.len() <= 32);

/// Executions that required each module (indexed like [`snapshot::MODULES`]), since the
/// executor process started.
#[derive(Debug, Default)]
pub(crate) struct ModuleCounts(pub [AtomicU64; snapshot::MODULES.len()]);

impl ModuleCounts {
    /// The counts now.
    pub(crate) fn snapshot(&self) -> [u64; snapshot::MODULES.len()] {
        std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed))
    }
}

/// `loadLibrary(index)`: evaluates module `index`'s section of the bundle into the calling
/// context (it registers the module's factory; runtime.js instantiates it). V8's
/// compilation cache makes every load after an isolate's first skip the parse.
pub(super) fn native_load_library(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_, v8::Value>,
) {
    let sections = snapshot::bundle_sections();
    let Some(&(name, source)) = args
        .get(0)
        .number_value(scope)
        .filter(|n| *n >= 0.0 && n.fract() == 0.0)
        .and_then(|n| sections.get(n as usize))
    else {
        throw(scope, "TypeError", "loadLibrary: no such module");
        return;
    };
    if let Err(e) = snapshot::run_script(scope, source, &snapshot::section_name(name)) {
        if !scope.is_execution_terminating() {
            throw(
                scope,
                "Error",
                &format!("loading module {name} failed: {e}"),
            );
        }
    }
}

/// `noteRequire(index)`: the block required module `index` (the prelude calls it on every
/// `require` of a library; each module counts once per execution).
pub(super) fn native_note_require(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(i) = args
        .get(0)
        .number_value(scope)
        .filter(|n| *n >= 0.0 && *n < snapshot::MODULES.len() as f64)
    else {
        return;
    };
    if let Some(st) = scope.get_slot_mut::<ExecState>() {
        let bit = 1u32 << (i as u32);
        if st.noted & bit == 0 {
            st.noted |= bit;
            st.requires.0[i as usize].fetch_add(1, Ordering::Relaxed);
        }
    }
}
