//! `setTimeout` and friends: a timer is a pending promise the event loop resolves.

use std::time::{Duration, Instant};

use super::super::event_loop::ExecState;
use super::super::js_values::promise_pair;
use super::millis;

pub(super) fn native_sleep(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let number = args.get(0).number_value(scope);
    let delay = millis(number, Duration::from_secs(86_400)).unwrap_or_default();
    let Some(resolver) = promise_pair(scope, &mut rv) else {
        return;
    };
    let global = v8::Global::new(scope, resolver);
    if let Some(st) = scope.get_slot_mut::<ExecState>() {
        let op = st.next_op;
        st.next_op += 1;
        let at = Instant::now() + delay;
        st.pending.insert(op, global);
        st.timers.push(std::cmp::Reverse((at, op)));
    }
}
