//! Small helpers for building and reading JavaScript values from Rust: properties, error
//! objects of a given name, and strings read with a length bound.

pub(super) fn get_str(
    scope: &mut v8::PinScope<'_, '_>,
    obj: v8::Local<'_, v8::Object>,
    key: &str,
) -> Option<String> {
    let k = v8::String::new(scope, key)?;
    let v = obj.get(scope, k.into())?;
    if v.is_string() {
        Some(v.to_rust_string_lossy(scope))
    } else {
        None
    }
}

pub(super) fn set_val(
    scope: &mut v8::PinScope<'_, '_>,
    obj: v8::Local<'_, v8::Object>,
    key: &str,
    value: v8::Local<'_, v8::Value>,
) {
    if let Some(k) = v8::String::new(scope, key) {
        obj.set(scope, k.into(), value);
    }
}

pub(super) fn set_string(
    scope: &mut v8::PinScope<'_, '_>,
    obj: v8::Local<'_, v8::Object>,
    key: &str,
    value: &str,
) {
    if let Some(v) = v8::String::new(scope, value) {
        set_val(scope, obj, key, v.into());
    }
}

/// A JS error object with the given name (`TypeError` uses the real constructor).
pub(super) fn make_error<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    name: &str,
    message: &str,
) -> v8::Local<'s, v8::Value> {
    let msg = v8::String::new(scope, message).unwrap_or_else(|| v8::String::empty(scope));
    let err = match name {
        "TypeError" => v8::Exception::type_error(scope, msg),
        "RangeError" => v8::Exception::range_error(scope, msg),
        _ => v8::Exception::error(scope, msg),
    };
    if name != "TypeError" && name != "RangeError" && name != "Error" {
        if let Ok(obj) = v8::Local::<v8::Object>::try_from(err) {
            set_string(scope, obj, "name", name);
        }
    }
    err
}

pub(super) fn throw(scope: &mut v8::PinScope<'_, '_>, name: &str, message: &str) {
    let e = make_error(scope, name, message);
    scope.throw_exception(e);
}

/// A value as a string when it is a string (or a primitive) of at most `max` UTF-16 units;
/// `None` for objects (no user `toString` runs inside a native) and longer strings.
pub(super) fn bounded_string(
    scope: &mut v8::PinScope<'_, '_>,
    value: v8::Local<'_, v8::Value>,
    max: usize,
) -> Option<String> {
    if value.is_object() {
        return None;
    }
    let s = value.to_string(scope)?;
    if s.length() > max {
        return None;
    }
    Some(s.to_rust_string_lossy(scope))
}
