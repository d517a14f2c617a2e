//! The natives: Rust functions handed to each context (as `__keel_boot`'s argument) that
//! the runtime prelude (`js/runtime.js`, `js/web.js`) builds `console`, `fetch`, timers,
//! `crypto`, `require`, `TextEncoder`/`TextDecoder` and `URL` on.
//!
//!
//! A native runs inside a V8 callback: a Rust panic there cannot unwind through V8's C++
//! frames and would abort the executor process. Every native therefore validates what user
//! code hands it (NaN, ±Infinity, 1e300, huge strings, wrong types all become a JS
//! exception or a clamped value), and `guarded!` still catches a panic that slips through
//! and throws it as an `Error` into the calling block.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use super::js_values::throw;

mod console;
mod fetch;
mod libraries;
mod text;
mod timers;
mod url;

pub(super) use libraries::ModuleCounts;

/// Wraps a native so that a panic inside it becomes a JS exception for that call only.
macro_rules! guarded {
    ($native:path) => {
        |scope: &mut v8::PinScope<'_, '_>,
         args: v8::FunctionCallbackArguments<'_>,
         rv: v8::ReturnValue<'_, v8::Value>| {
            $crate::executor::natives::catch_native_panic(
                scope,
                stringify!($native),
                move |scope| $native(scope, args, rv),
            )
        }
    };
}

// After `guarded!`, which they use (macros are in scope only below their definition).
mod buffer;
mod bytes;
mod cipher;
mod crypto;
mod crypto_keys;
mod crypto_ops;

fn catch_native_panic(
    scope: &mut v8::PinScope<'_, '_>,
    name: &str,
    f: impl FnOnce(&mut v8::PinScope<'_, '_>),
) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| f(scope))).is_err() {
        tracing::error!(
            native = name,
            "a native binding panicked; the call gets an Error"
        );
        if !scope.is_execution_terminating() {
            throw(scope, "Error", &format!("internal error in {name}"));
        }
    }
}

/// Milliseconds from a JS number as a duration: NaN, negative and non-finite values are
/// `None`; anything past `cap` is `cap`.
pub(crate) fn millis(value: Option<f64>, cap: Duration) -> Option<Duration> {
    let ms = value.filter(|n| n.is_finite() && *n > 0.0)?;
    Some(Duration::try_from_secs_f64(ms / 1000.0).map_or(cap, |d| d.min(cap)))
}

/// The bytes of an `ArrayBuffer` or an `ArrayBufferView` (typed array, DataView); `None`
/// for anything else. The slice borrows the backing store: use it before any JavaScript
/// runs again (which could detach or resize it).
pub(crate) fn view_bytes<'a>(value: v8::Local<'a, v8::Value>) -> Option<&'a [u8]> {
    let (ptr, len) = if let Ok(view) = v8::Local::<v8::ArrayBufferView>::try_from(value) {
        (view.data() as *const u8, view.byte_length())
    } else if let Ok(buf) = v8::Local::<v8::ArrayBuffer>::try_from(value) {
        let len = buf.byte_length();
        match buf.data() {
            Some(p) => (p.as_ptr() as *const u8, len),
            None => (std::ptr::null(), 0),
        }
    } else {
        return None;
    };
    if len == 0 || ptr.is_null() {
        return Some(&[]);
    }
    // SAFETY: `ptr` points at `len` live bytes of the backing store, which the local keeps
    // alive; callers use the slice before any JavaScript runs.
    Some(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Puts every native on `natives` (the object `__keel_boot` receives).
pub(super) fn install(
    scope: &mut v8::PinScope<'_, '_>,
    natives: v8::Local<'_, v8::Object>,
) -> Result<(), String> {
    set_fn(scope, natives, "log", guarded!(console::native_log))?;
    set_fn(scope, natives, "fetch", guarded!(fetch::native_fetch))?;
    set_fn(
        scope,
        natives,
        "takeBody",
        guarded!(fetch::native_take_body),
    )?;
    set_fn(scope, natives, "sleep", guarded!(timers::native_sleep))?;
    set_fn(scope, natives, "cancel", guarded!(timers::native_cancel))?;
    set_fn(scope, natives, "unref", guarded!(timers::native_unref))?;
    set_fn(
        scope,
        natives,
        "utf8Length",
        guarded!(text::native_utf8_length),
    )?;
    set_fn(
        scope,
        natives,
        "utf8Write",
        guarded!(text::native_utf8_write),
    )?;
    set_fn(
        scope,
        natives,
        "utf8EncodeInto",
        guarded!(text::native_utf8_encode_into),
    )?;
    set_fn(
        scope,
        natives,
        "utf8Decode",
        guarded!(text::native_utf8_decode),
    )?;
    set_fn(scope, natives, "urlParse", guarded!(url::native_url_parse))?;
    set_fn(scope, natives, "urlSet", guarded!(url::native_url_set))?;
    set_fn(
        scope,
        natives,
        "noteRequire",
        guarded!(libraries::native_note_require),
    )?;
    set_fn(
        scope,
        natives,
        "loadLibrary",
        guarded!(libraries::native_load_library),
    )?;
    set_fn(scope, natives, "load", guarded!(load_family))?;
    Ok(())
}

/// `load(name)`: the natives of one family (`buffer`, `crypto`) as an object, made when a
/// context first needs them: most calls never touch Buffer or crypto, and making their
/// functions up front would cost every context creation.
fn load_family(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let name = args.get(0).to_rust_string_lossy(scope);
    let made = match name.as_str() {
        "buffer" => buffer::family(scope),
        "crypto" => crypto::family(scope),
        _ => Err(format!("no native family {name}")),
    };
    match made {
        Ok(obj) => rv.set(obj.into()),
        Err(e) => throw(scope, "Error", &e),
    }
}

fn set_fn(
    scope: &mut v8::PinScope<'_, '_>,
    obj: v8::Local<'_, v8::Object>,
    name: &str,
    f: impl v8::MapFnTo<v8::FunctionCallback>,
) -> Result<(), String> {
    let func = v8::Function::new(scope, f).ok_or("function")?;
    let key = v8::String::new(scope, name).ok_or("string")?;
    obj.set(scope, key.into(), func.into()).ok_or("set")?;
    Ok(())
}
