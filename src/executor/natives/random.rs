//! `crypto.getRandomValues`: fills a typed array from the OS-seeded generator.

use super::super::js_values::throw;

/// The Web Crypto limit of one `getRandomValues` call.
const MAX_RANDOM_BYTES: usize = 65_536;

pub(super) fn native_random(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Ok(view) = v8::Local::<v8::ArrayBufferView>::try_from(args.get(0)) else {
        throw(scope, "TypeError", "getRandomValues: expected a TypedArray");
        return;
    };
    let len = view.byte_length();
    if len == 0 {
        return;
    }
    if len > MAX_RANDOM_BYTES {
        throw(
            scope,
            "QuotaExceededError",
            &format!("getRandomValues: {len} bytes requested, at most {MAX_RANDOM_BYTES}"),
        );
        return;
    }
    let ptr = view.data() as *mut u8;
    if ptr.is_null() {
        return;
    }
    // SAFETY: `ptr` points at `len` bytes of the view's live backing store; no JS runs
    // while we hold the slice.
    let bytes = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
    rand::fill(bytes);
}
