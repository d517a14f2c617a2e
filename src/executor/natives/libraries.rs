//! `require` in a lean context: evaluates the library bundle into it first.

use super::super::js_values::throw;
use super::super::snapshot;

/// Evaluates the library bundle into the calling (lean) context, for a `require` there.
/// V8's compilation cache makes every call after an isolate's first skip the parse.
pub(super) fn native_load_libraries(
    scope: &mut v8::PinScope<'_, '_>,
    _args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_, v8::Value>,
) {
    if let Err(e) = snapshot::run_script(scope, snapshot::LIBS_BUNDLE, snapshot::LIBS_NAME) {
        if !scope.is_execution_terminating() {
            throw(
                scope,
                "Error",
                &format!("loading the libraries failed: {e}"),
            );
        }
    }
}
