//! UTF-8 for `TextEncoder`/`TextDecoder` (and every body the prelude turns into bytes):
//! V8 and Rust do the transcoding, JavaScript only allocates the typed array, so the bytes
//! count against the isolate's array-buffer budget and a refused allocation is a catchable
//! `RangeError` instead of a fatal out-of-memory inside a native.

use super::super::js_values::throw;
use super::view_bytes;

/// `utf8Length(string)`: the UTF-8 length of a string (lone surrogates become U+FFFD,
/// three bytes, as the WHATWG encoder does).
pub(super) fn native_utf8_length(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Ok(s) = v8::Local::<v8::String>::try_from(args.get(0)) else {
        throw(scope, "TypeError", "utf8Length: expected a string");
        return;
    };
    rv.set_double(s.utf8_length(scope) as f64);
}

/// `utf8Write(string, uint8array)`: writes the string's UTF-8 into the array (sized by
/// `utf8Length`); returns the bytes written.
pub(super) fn native_utf8_write(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Ok(s) = v8::Local::<v8::String>::try_from(args.get(0)) else {
        throw(scope, "TypeError", "utf8Write: expected a string");
        return;
    };
    let Ok(view) = v8::Local::<v8::ArrayBufferView>::try_from(args.get(1)) else {
        throw(scope, "TypeError", "utf8Write: expected a Uint8Array");
        return;
    };
    let len = view.byte_length();
    if len == 0 {
        rv.set_int32(0);
        return;
    }
    let ptr = view.data() as *mut u8;
    if ptr.is_null() {
        rv.set_int32(0);
        return;
    }
    // SAFETY: `ptr` points at `len` bytes of the view's live backing store; V8 writes into
    // it without running JavaScript.
    let out = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
    let written = s.write_utf8_v2(scope, out, v8::WriteFlags::kReplaceInvalidUtf8, None);
    rv.set_double(written as f64);
}

/// `utf8EncodeInto(string, uint8array)`: `TextEncoder.encodeInto` — as much of the string
/// as fits, never half a character; returns `[read (UTF-16 units), written (bytes)]`.
pub(super) fn native_utf8_encode_into(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Ok(s) = v8::Local::<v8::String>::try_from(args.get(0)) else {
        throw(scope, "TypeError", "utf8EncodeInto: expected a string");
        return;
    };
    let Ok(view) = v8::Local::<v8::ArrayBufferView>::try_from(args.get(1)) else {
        throw(scope, "TypeError", "utf8EncodeInto: expected a Uint8Array");
        return;
    };
    let len = view.byte_length();
    let ptr = view.data() as *mut u8;
    let (mut read, mut written) = (0usize, 0usize);
    if len > 0 && !ptr.is_null() {
        // SAFETY: as in `native_utf8_write`.
        let out = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
        written = s.write_utf8_v2(
            scope,
            out,
            v8::WriteFlags::kReplaceInvalidUtf8,
            Some(&mut read),
        );
    }
    let pair = [
        v8::Number::new(scope, read as f64).into(),
        v8::Number::new(scope, written as f64).into(),
    ];
    rv.set(v8::Array::new_with_elements(scope, &pair).into());
}

/// `utf8Decode(bytes, fatal)`: a string from UTF-8 bytes (an ArrayBuffer or a view).
/// Malformed sequences become U+FFFD, or a `TypeError` when `fatal` (Node's
/// `ERR_ENCODING_INVALID_ENCODED_DATA`).
pub(super) fn native_utf8_decode(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let fatal = args.get(1).is_true();
    let Some(bytes) = view_bytes(args.get(0)) else {
        throw(
            scope,
            "TypeError",
            "utf8Decode: expected an ArrayBuffer or an ArrayBufferView",
        );
        return;
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) if fatal => {
            let e = super::super::js_values::make_error(
                scope,
                "TypeError",
                "The encoded data was not valid for encoding utf-8",
            );
            if let Ok(obj) = v8::Local::<v8::Object>::try_from(e) {
                super::super::js_values::set_string(
                    scope,
                    obj,
                    "code",
                    "ERR_ENCODING_INVALID_ENCODED_DATA",
                );
            }
            scope.throw_exception(e);
            return;
        }
        Err(_) => String::from_utf8_lossy(bytes),
    };
    match v8::String::new(scope, &text) {
        Some(s) => rv.set(s.into()),
        None => throw(scope, "RangeError", "Invalid string length"),
    }
}
