//! Reading and making the byte arguments of the Buffer and crypto natives: the memory behind
//! an `ArrayBufferView`, `ArrayBuffer` or `SharedArrayBuffer`, and new `Uint8Array`s whose
//! memory comes from the isolate's array-buffer allocator (so keel's budget counts it).

use super::super::js_values::throw;

/// The memory of a byte argument. Borrowed from V8 for the duration of one native call.
#[derive(Clone, Copy)]
pub(super) struct Bytes {
    ptr: *mut u8,
    len: usize,
}

impl Bytes {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The bytes as a slice.
    ///
    /// SAFETY (for the callers of the unsafe accessors): the memory is an off-heap backing
    /// store held alive by the argument's handle, and it does not move; it stays valid while
    /// the native runs no JavaScript (nothing can detach or shrink it meanwhile). Slices of
    /// two arguments may alias, so a native holds a mutable slice only of memory it does
    /// not also read through another slice.
    pub(super) fn as_slice<'a>(&self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
            return &[];
        }
        // SAFETY: see above; `ptr` is non-null and points at `len` readable bytes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The bytes as a mutable slice (see [`Bytes::as_slice`] on aliasing).
    pub(super) fn as_mut_slice<'a>(&self) -> &'a mut [u8] {
        if self.len == 0 || self.ptr.is_null() {
            return &mut [];
        }
        // SAFETY: as for `as_slice`; the caller reads no other alias of this memory while
        // it holds the slice.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

/// The bytes of a typed array, DataView, ArrayBuffer or SharedArrayBuffer; `None` for
/// anything else.
pub(super) fn bytes_of(value: v8::Local<'_, v8::Value>) -> Option<Bytes> {
    if let Ok(view) = v8::Local::<v8::ArrayBufferView>::try_from(value) {
        let len = view.byte_length();
        // `data()` first materializes an on-heap typed array's buffer (an allocation), so it
        // comes before any slice is taken.
        let ptr = if len == 0 {
            std::ptr::null_mut()
        } else {
            view.data() as *mut u8
        };
        return Some(Bytes { ptr, len });
    }
    if let Ok(ab) = v8::Local::<v8::ArrayBuffer>::try_from(value) {
        let len = ab.byte_length();
        let ptr = ab
            .data()
            .map_or(std::ptr::null_mut(), |p| p.as_ptr() as *mut u8);
        return Some(Bytes { ptr, len });
    }
    if let Ok(sab) = v8::Local::<v8::SharedArrayBuffer>::try_from(value) {
        let store = sab.get_backing_store();
        let len = store.byte_length();
        let ptr = store
            .data()
            .map_or(std::ptr::null_mut(), |p| p.as_ptr() as *mut u8);
        return Some(Bytes { ptr, len });
    }
    None
}

/// [`bytes_of`], or a TypeError naming the argument.
pub(super) fn bytes_arg(
    scope: &mut v8::PinScope<'_, '_>,
    value: v8::Local<'_, v8::Value>,
    what: &str,
) -> Option<Bytes> {
    let b = bytes_of(value);
    if b.is_none() {
        throw(
            scope,
            "TypeError",
            &format!("{what} must be an ArrayBuffer or an ArrayBufferView"),
        );
    }
    b
}

/// A whole number in `0..=max` from a JS number; `None` for anything else (NaN, fractions,
/// negative, past `max`, not a number).
pub(super) fn index_arg(value: v8::Local<'_, v8::Value>, max: usize) -> Option<usize> {
    let n = v8::Local::<v8::Number>::try_from(value).ok()?.value();
    if !n.is_finite() || n < 0.0 || n.fract() != 0.0 || n > max as f64 {
        return None;
    }
    Some(n as usize)
}

/// A new `Buffer` holding a copy of `data`, made by `alloc` (the prelude's `(n) => new
/// FastBuffer(n)`, passed in by the calling JS). Allocating through JavaScript keeps the
/// memory on the isolate's budget and makes a refusal a catchable `RangeError`, where
/// `v8::ArrayBuffer::new` would abort the process. `None` with an exception pending when
/// `alloc` threw or returned something else.
pub(super) fn alloc_copy<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    alloc: v8::Local<'_, v8::Value>,
    data: &[u8],
) -> Option<v8::Local<'s, v8::Value>> {
    let Ok(alloc) = v8::Local::<v8::Function>::try_from(alloc) else {
        throw(scope, "TypeError", "internal: no allocator");
        return None;
    };
    let len = v8::Number::new(scope, data.len() as f64).into();
    let undefined = v8::undefined(scope).into();
    let out = alloc.call(scope, undefined, &[len])?;
    match bytes_of(out) {
        Some(b) if b.len() == data.len() => {
            b.as_mut_slice().copy_from_slice(data);
            Some(out)
        }
        _ => {
            throw(scope, "TypeError", "internal: allocator returned no buffer");
            None
        }
    }
}
