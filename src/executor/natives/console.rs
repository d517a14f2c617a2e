//! `console.*`: lines kept per call within the configured bounds, the rest counted.

use super::super::event_loop::ExecState;

pub(super) fn native_log(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_, v8::Value>,
) {
    let level = args.get(0).to_rust_string_lossy(scope);
    let Ok(text) = v8::Local::<v8::String>::try_from(args.get(1)) else {
        return;
    };
    let len = text.length();
    let Some(st) = scope.get_slot::<ExecState>() else {
        return;
    };
    let fits = st.logs.len() < st.max_console_lines
        && st.log_bytes.saturating_add(len) <= st.max_console_bytes;
    if !fits {
        if let Some(st) = scope.get_slot_mut::<ExecState>() {
            st.logs_dropped += 1;
        }
        return;
    }
    let line = format!("{level}: {}", text.to_rust_string_lossy(scope));
    if let Some(st) = scope.get_slot_mut::<ExecState>() {
        st.log_bytes += line.len();
        st.logs.push(line);
    }
}
