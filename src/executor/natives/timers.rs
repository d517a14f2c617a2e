//! `setTimeout` and friends: a timer is a pending promise the event loop resolves.

use std::time::{Duration, Instant};

use super::super::event_loop::ExecState;
use super::millis;

/// `sleep(ms, unref)`: a promise resolved after `ms`, and its operation id (for `cancel`),
/// as `[promise, op]`. An *unref* timer (`AbortSignal.timeout`'s) does not keep the call
/// running: the block completes without waiting for it, as Node's unref'd timers let the
/// process exit.
pub(super) fn native_sleep(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let number = args.get(0).number_value(scope);
    let unref = args.get(1).is_true();
    let delay = millis(number, Duration::from_secs(86_400)).unwrap_or_default();
    let Some(resolver) = v8::PromiseResolver::new(scope) else {
        return;
    };
    let promise = resolver.get_promise(scope);
    let global = v8::Global::new(scope, resolver);
    let Some(st) = scope.get_slot_mut::<ExecState>() else {
        return;
    };
    let op = st.next_op;
    st.next_op += 1;
    let at = Instant::now() + delay;
    st.pending.insert(op, global);
    if unref {
        st.unref.insert(op);
    }
    st.timers.push(std::cmp::Reverse((at, op)));
    let pair = [promise.into(), v8::Number::new(scope, op as f64).into()];
    rv.set(v8::Array::new_with_elements(scope, &pair).into());
}

/// `cancel(op)`: forgets a pending timer or fetch (`clearTimeout`, an aborted fetch), so the
/// call no longer waits for it; a fetch's request is dropped on the runtime.
pub(super) fn native_cancel(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(op) = args
        .get(0)
        .number_value(scope)
        .filter(|n| *n >= 0.0 && n.fract() == 0.0)
    else {
        return;
    };
    let op = op as u64;
    if let Some(st) = scope.get_slot_mut::<ExecState>() {
        st.forget(op);
    }
}

/// `unref(op, flag)`: whether a pending timer stops (`true`) or again starts (`false`)
/// holding the call open — `Timeout.unref()` / `.ref()`.
pub(super) fn native_unref(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(op) = args
        .get(0)
        .number_value(scope)
        .filter(|n| *n >= 0.0 && n.fract() == 0.0)
    else {
        return;
    };
    let op = op as u64;
    let unref = args.get(1).is_true();
    if let Some(st) = scope.get_slot_mut::<ExecState>() {
        if !st.pending.contains_key(&op) {
            return;
        }
        if unref {
            st.unref.insert(op);
        } else {
            st.unref.remove(&op);
        }
    }
}
