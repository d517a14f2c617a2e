//! `Buffer`'s natives (what node_buffer.cc and StringBytes do for Node): decoding bytes to
//! strings and encoding strings into bytes for every Node encoding, comparing, searching,
//! byte swaps and UTF-8/ASCII validation. `js/node_buffer.js` validates and coerces the
//! arguments as Node does; these check them again and throw instead of trusting them.
//!
//! Base64 goes through simdutf (the copy inside V8); a base64 string with characters outside
//! the alphabet, whitespace or padding in the middle takes Node's lenient decoder instead,
//! so the bytes are always the ones Node produces.

use v8::simdutf;

use super::super::js_values::throw;
use super::bytes::{bytes_arg, index_arg, Bytes};

/// Encodings, numbered as in node_buffer.js.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    Utf8,
    Ucs2,
    Latin1,
    Ascii,
    Base64,
    Base64Url,
    Hex,
}

impl Encoding {
    pub(super) fn from_arg(value: v8::Local<'_, v8::Value>) -> Option<Encoding> {
        Some(match index_arg(value, 6)? {
            0 => Encoding::Utf8,
            1 => Encoding::Ucs2,
            2 => Encoding::Latin1,
            3 => Encoding::Ascii,
            4 => Encoding::Base64,
            5 => Encoding::Base64Url,
            _ => Encoding::Hex,
        })
    }
}

/// The family's natives as one object (`natives.load('buffer')`).
pub(super) fn family<'s>(
    scope: &mut v8::PinScope<'s, '_>,
) -> Result<v8::Local<'s, v8::Object>, String> {
    let obj = v8::Object::new(scope);
    super::set_fn(scope, obj, "byteLengthUtf8", guarded!(byte_length_utf8))?;
    super::set_fn(scope, obj, "decode", guarded!(decode))?;
    super::set_fn(scope, obj, "encodeInto", guarded!(encode_into))?;
    super::set_fn(scope, obj, "compare", guarded!(compare))?;
    super::set_fn(scope, obj, "indexOf", guarded!(index_of))?;
    super::set_fn(scope, obj, "swap", guarded!(swap))?;
    super::set_fn(scope, obj, "validate", guarded!(validate))?;
    Ok(obj)
}

/// `byteLengthUtf8(string)`: the UTF-8 length (lone surrogates count as U+FFFD).
fn byte_length_utf8(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Ok(s) = v8::Local::<v8::String>::try_from(args.get(0)) else {
        return throw(scope, "TypeError", "byteLengthUtf8: expected a string");
    };
    rv.set_double(s.utf8_length(scope) as f64);
}

/// The buffer and the `[start, end)` range of a call, or a thrown error.
fn range(
    scope: &mut v8::PinScope<'_, '_>,
    buf: v8::Local<'_, v8::Value>,
    start: v8::Local<'_, v8::Value>,
    end: v8::Local<'_, v8::Value>,
) -> Option<(Bytes, usize, usize)> {
    let b = bytes_arg(scope, buf, "buffer")?;
    let len = b.len();
    match (index_arg(start, len), index_arg(end, len)) {
        (Some(s), Some(e)) if s <= e => Some((b, s, e)),
        _ => {
            throw(scope, "RangeError", "Index out of range");
            None
        }
    }
}

/// `decode(buf, start, end, encoding)`: the bytes `[start, end)` as a string.
fn decode(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(enc) = Encoding::from_arg(args.get(3)) else {
        return throw(scope, "TypeError", "decode: bad encoding");
    };
    let Some((b, start, end)) = range(scope, args.get(0), args.get(1), args.get(2)) else {
        return;
    };
    match to_string(scope, &b.as_slice()[start..end], enc) {
        Some(s) => rv.set(s.into()),
        None => {
            let e = super::super::js_values::make_error(
                scope,
                "Error",
                "Cannot create a string longer than 0x1fffffe8 characters",
            );
            if let Ok(obj) = v8::Local::<v8::Object>::try_from(e) {
                super::super::js_values::set_string(scope, obj, "code", "ERR_STRING_TOO_LONG");
            }
            scope.throw_exception(e);
        }
    }
}

/// `bytes` as a string in `enc` (what `buf.toString(enc)` gives); `None` when V8 cannot make
/// a string that long.
pub(super) fn to_string<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    bytes: &[u8],
    enc: Encoding,
) -> Option<v8::Local<'s, v8::String>> {
    let normal = v8::NewStringType::Normal;
    match enc {
        Encoding::Utf8 => v8::String::new_from_utf8(scope, bytes, normal),
        Encoding::Latin1 => v8::String::new_from_one_byte(scope, bytes, normal),
        Encoding::Ascii => {
            if simdutf::validate_ascii(bytes) {
                v8::String::new_from_one_byte(scope, bytes, normal)
            } else {
                // Node clears the high bit of every byte.
                let masked: Vec<u8> = bytes.iter().map(|c| c & 0x7f).collect();
                v8::String::new_from_one_byte(scope, &masked, normal)
            }
        }
        Encoding::Ucs2 => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|p| u16::from_le_bytes([p[0], p[1]]))
                .collect();
            v8::String::new_from_two_byte(scope, &units, normal)
        }
        Encoding::Hex => {
            let mut out = vec![0u8; bytes.len() * 2];
            for (pair, c) in out.chunks_exact_mut(2).zip(bytes) {
                pair.copy_from_slice(&HEX_PAIRS[*c as usize]);
            }
            v8::String::new_from_one_byte(scope, &out, normal)
        }
        Encoding::Base64 | Encoding::Base64Url => {
            let options = if enc == Encoding::Base64 {
                simdutf::Base64Options::Default
            } else {
                simdutf::Base64Options::Url
            };
            let mut out = vec![0u8; simdutf::base64_length_from_binary(bytes.len(), options)];
            // SAFETY: `out` has the length simdutf asks for.
            let n = unsafe { simdutf::binary_to_base64(bytes, &mut out, options) };
            out.truncate(n);
            v8::String::new_from_one_byte(scope, &out, normal)
        }
    }
}

/// `encodeInto(buf, string, offset, maxLength, encoding)`: writes the string's bytes at
/// `offset`, at most `maxLength` of them; returns how many it wrote.
fn encode_into(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(enc) = Encoding::from_arg(args.get(4)) else {
        return throw(scope, "TypeError", "encodeInto: bad encoding");
    };
    let Ok(s) = v8::Local::<v8::String>::try_from(args.get(1)) else {
        return throw(scope, "TypeError", "argument must be a string");
    };
    let Some(b) = bytes_arg(scope, args.get(0), "buffer") else {
        return;
    };
    let len = b.len();
    let Some(offset) = index_arg(args.get(2), len) else {
        return throw(scope, "RangeError", "Index out of range");
    };
    let Some(max) = index_arg(args.get(3), len - offset) else {
        return throw(scope, "RangeError", "Index out of range");
    };
    let dst = &mut b.as_mut_slice()[offset..offset + max];
    let written = match enc {
        Encoding::Utf8 => s.write_utf8_v2(scope, dst, v8::WriteFlags::kReplaceInvalidUtf8, None),
        Encoding::Latin1 | Encoding::Ascii => {
            let n = max.min(s.length());
            s.write_one_byte_v2(scope, 0, &mut dst[..n], v8::WriteFlags::empty());
            n
        }
        Encoding::Ucs2 => {
            let units = (max / 2).min(s.length());
            let mut tmp = vec![0u16; units];
            s.write_v2(scope, 0, &mut tmp, v8::WriteFlags::empty());
            for (i, u) in tmp.iter().enumerate() {
                dst[2 * i..2 * i + 2].copy_from_slice(&u.to_le_bytes());
            }
            units * 2
        }
        Encoding::Hex | Encoding::Base64 | Encoding::Base64Url => {
            let view = v8::ValueView::new(scope, s);
            match view.data() {
                v8::ValueViewData::OneByte(src) => decode_text(enc, src, dst),
                v8::ValueViewData::TwoByte(src) => decode_text(enc, src, dst),
            }
        }
    };
    rv.set_double(written as f64);
}

/// A string's character as Node's decoders see it: only its low byte.
trait Unit: Copy {
    fn low_byte(self) -> u8;
}
impl Unit for u8 {
    fn low_byte(self) -> u8 {
        self
    }
}
impl Unit for u16 {
    fn low_byte(self) -> u8 {
        self as u8
    }
}

fn decode_text<T: Unit>(enc: Encoding, src: &[T], dst: &mut [u8]) -> usize {
    match enc {
        Encoding::Hex => hex_decode(src, dst),
        _ => base64_decode(src, dst),
    }
}

/// The two hex digits of every byte.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [DIGITS[i >> 4], DIGITS[i & 15]];
        i += 1;
    }
    t
};

/// The value of every hex digit (16 for anything else).
static UNHEX: [u8; 256] = {
    let mut t = [16u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

fn unhex(c: u8) -> Option<u8> {
    let v = UNHEX[c as usize];
    (v < 16).then_some(v)
}

/// Node's hex decoder: pairs of digits until the first pair that is not one. Eight bytes
/// at a time with one validity check per eight (a bad digit anywhere in them sends those
/// eight to the pair-by-pair loop, so no byte past the last good pair is ever written).
fn hex_decode<T: Unit>(src: &[T], dst: &mut [u8]) -> usize {
    let n = dst.len().min(src.len() / 2);
    let (src, dst) = (&src[..2 * n], &mut dst[..n]);
    let mut done = 0;
    for (out, digits) in dst.chunks_exact_mut(8).zip(src.chunks_exact(16)) {
        let mut bytes = [0u8; 8];
        let mut bad = 0u8;
        for (b, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let hi = UNHEX[pair[0].low_byte() as usize];
            let lo = UNHEX[pair[1].low_byte() as usize];
            bad |= hi | lo;
            *b = (hi << 4 & 0xf0) | (lo & 0x0f);
        }
        if bad > 15 {
            break;
        }
        out.copy_from_slice(&bytes);
        done += 8;
    }
    for i in done..n {
        match (
            unhex(src[i * 2].low_byte()),
            unhex(src[i * 2 + 1].low_byte()),
        ) {
            (Some(a), Some(b)) => dst[i] = (a << 4) | b,
            _ => return i,
        }
    }
    n
}

/// The value of a base64 character of either alphabet (64 for anything else).
const fn unbase64_table() -> [u8; 256] {
    let mut t = [64u8; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut i = 0;
    while i < alphabet.len() {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t[b'+' as usize] = 62;
    t[b'-' as usize] = 62;
    t[b'/' as usize] = 63;
    t[b'_' as usize] = 63;
    t
}
static UNBASE64: [u8; 256] = unbase64_table();

/// The decoded size Node allocates for a base64 string (nbytes Base64DecodedSize).
fn base64_decoded_size<T: Unit>(src: &[T]) -> usize {
    let mut size = src.len();
    if size < 2 {
        return 0;
    }
    if src[size - 1].low_byte() == b'=' {
        size -= 1;
        if src[size - 1].low_byte() == b'=' {
            size -= 1;
        }
    }
    let rem = size % 4;
    let mut out = size / 4 * 3;
    if rem != 0 {
        if out == 0 && rem == 1 {
            out = 0;
        } else {
            out += 1 + usize::from(rem == 3);
        }
    }
    out
}

/// Node's base64 decoder (either alphabet): whole groups fast, and around anything else the
/// slow path that skips characters outside the alphabet and stops at `=`.
fn base64_decode<T: Unit>(src: &[T], dst: &mut [u8]) -> usize {
    let decoded = base64_decoded_size(src);
    let available = dst.len().min(decoded);
    // simdutf first: for a clean string (one alphabet, no stray characters) its bytes are
    // Node's; any complaint sends the string to the lenient decoder below.
    if std::mem::size_of::<T>() == 1 && available == decoded {
        // SAFETY: T is u8 here (size 1 and one of the two Unit types).
        let bytes: &[u8] =
            unsafe { std::slice::from_raw_parts(src.as_ptr() as *const u8, src.len()) };
        if simdutf::maximal_binary_length_from_base64(bytes) <= dst.len() {
            // The standard alphabet, then the URL one (a string uses one or the other).
            for options in [simdutf::Base64Options::Default, simdutf::Base64Options::Url] {
                // SAFETY: `dst` holds at least the maximal decoded length.
                let r = unsafe {
                    simdutf::base64_to_binary(
                        bytes,
                        dst,
                        options,
                        simdutf::LastChunkHandling::Loose,
                    )
                };
                if r.is_ok() && r.count == decoded {
                    return r.count;
                }
            }
        }
    }
    let max_k = available / 3 * 3;
    let mut max_i = src.len() / 4 * 4;
    let (mut i, mut k) = (0usize, 0usize);
    while i < max_i && k < max_k {
        let a = UNBASE64[src[i].low_byte() as usize];
        let b = UNBASE64[src[i + 1].low_byte() as usize];
        let c = UNBASE64[src[i + 2].low_byte() as usize];
        let d = UNBASE64[src[i + 3].low_byte() as usize];
        if (a | b | c | d) & 64 != 0 {
            if !base64_group_slow(src, dst, &mut i, &mut k) {
                return k;
            }
            max_i = i + (src.len() - i) / 4 * 4;
        } else {
            dst[k] = (a << 2) | (b >> 4);
            dst[k + 1] = (b << 4) | (c >> 2);
            dst[k + 2] = (c << 6) | d;
            i += 4;
            k += 3;
        }
    }
    if i < src.len() && k < dst.len() {
        base64_group_slow(src, dst, &mut i, &mut k);
    }
    k
}

/// One group of four alphabet characters, skipping others; `false` once decoding stops
/// (at `=`, the end of the input or of `dst`).
fn base64_group_slow<T: Unit>(src: &[T], dst: &mut [u8], i: &mut usize, k: &mut usize) -> bool {
    let next = |i: &mut usize| -> Option<u8> {
        loop {
            let c = src[*i].low_byte();
            let v = UNBASE64[c as usize];
            *i += 1;
            if v < 64 {
                return Some(v);
            }
            if c == b'=' || *i >= src.len() {
                return None;
            }
        }
    };
    let Some(mut hi) = next(i) else { return false };
    if *i >= src.len() || *k >= dst.len() {
        return false;
    }
    for step in 0..3 {
        let Some(lo) = next(i) else { return false };
        dst[*k] = match step {
            0 => ((hi & 0x3f) << 2) | ((lo & 0x30) >> 4),
            1 => ((hi & 0x0f) << 4) | ((lo & 0x3c) >> 2),
            _ => ((hi & 0x03) << 6) | (lo & 0x3f),
        };
        *k += 1;
        if *i >= src.len() || *k >= dst.len() {
            return false;
        }
        hi = lo;
    }
    true
}

/// `compare(a, aStart, aEnd, b, bStart, bEnd)`: -1, 0 or 1, as memcmp then length.
fn compare(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some((a, a0, a1)) = range(scope, args.get(0), args.get(1), args.get(2)) else {
        return;
    };
    let Some((b, b0, b1)) = range(scope, args.get(3), args.get(4), args.get(5)) else {
        return;
    };
    let ord = a.as_slice()[a0..a1].cmp(&b.as_slice()[b0..b1]);
    rv.set_int32(ord as i32);
}

/// Search modes, as in node_buffer.js.
const SEARCH_UCS2_BUFFER: usize = 1;
const SEARCH_UCS2_STRING: usize = 2;

/// node_buffer.cc IndexOfOffset.
fn index_of_offset(length: i64, offset: i64, needle_length: i64, forward: bool) -> i64 {
    if offset < 0 {
        if offset + length >= 0 {
            length + offset
        } else if forward || needle_length == 0 {
            0
        } else {
            -1
        }
    } else if offset + needle_length <= length {
        offset
    } else if needle_length == 0 {
        length
    } else if forward {
        -1
    } else {
        length - 1
    }
}

/// `indexOf(haystack, needle, byteOffset, forward, mode)`: node_buffer.cc IndexOfString
/// and IndexOfBuffer once the needle is bytes.
fn index_of(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(hay) = bytes_arg(scope, args.get(0), "buffer") else {
        return;
    };
    let Some(needle) = bytes_arg(scope, args.get(1), "value") else {
        return;
    };
    let offset = args.get(2).number_value(scope).unwrap_or(0.0);
    // The JS side passes a truncated int32-clamped number; anything else is clamped here.
    let offset = if offset.is_nan() {
        0
    } else {
        offset.clamp(-9_007_199_254_740_992.0, 9_007_199_254_740_992.0) as i64
    };
    let forward = args.get(3).is_true();
    let mode = index_arg(args.get(4), 2).unwrap_or(0);
    let hay_bytes = hay.as_slice();
    let needle_bytes = needle.as_slice();
    let hay_len = if mode == SEARCH_UCS2_STRING {
        hay_bytes.len() & !1
    } else {
        hay_bytes.len()
    };
    let needle_len = needle_bytes.len();
    let start = index_of_offset(hay_len as i64, offset, needle_len as i64, forward);
    if needle_len == 0 {
        rv.set_double(start as f64);
        return;
    }
    if hay_len == 0 || start <= -1 {
        rv.set_int32(-1);
        return;
    }
    let start = start as usize;
    if (forward && needle_len + start > hay_len) || needle_len > hay_len {
        rv.set_int32(-1);
        return;
    }
    let result = if mode == SEARCH_UCS2_BUFFER || mode == SEARCH_UCS2_STRING {
        if hay_len < 2 || needle_len < 2 {
            rv.set_int32(-1);
            return;
        }
        let units = |b: &[u8], n: usize| -> Vec<u16> {
            b[..n * 2]
                .chunks_exact(2)
                .map(|p| u16::from_le_bytes([p[0], p[1]]))
                .collect()
        };
        let h = units(hay_bytes, hay_len / 2);
        let n = units(needle_bytes, needle_len / 2);
        search(&h, &n, start / 2, forward).map_or(h.len(), |p| p) * 2
    } else {
        search_bytes(&hay_bytes[..hay_len], needle_bytes, start, forward).unwrap_or(hay_len)
    };
    if result == hay_len {
        rv.set_int32(-1);
    } else {
        rv.set_double(result as f64);
    }
}

/// The first match at or after `start` (forward), or the last at or before it.
fn search_bytes(hay: &[u8], needle: &[u8], start: usize, forward: bool) -> Option<usize> {
    let diff = hay.len().checked_sub(needle.len())?;
    if forward {
        if start > diff {
            return None;
        }
        memchr::memmem::find(&hay[start..], needle).map(|p| p + start)
    } else {
        let last = start.min(diff);
        memchr::memmem::rfind(&hay[..last + needle.len()], needle)
    }
}

/// [`search_bytes`] over UTF-16 units: Knuth-Morris-Pratt, linear in the haystack whatever
/// the needle (a native cannot be interrupted by the watchdog).
fn search(hay: &[u16], needle: &[u16], start: usize, forward: bool) -> Option<usize> {
    let diff = hay.len().checked_sub(needle.len())?;
    if forward {
        if start > diff {
            return None;
        }
        kmp(&hay[start..], needle).map(|p| p + start)
    } else {
        let last = start.min(diff);
        let h: Vec<u16> = hay[..last + needle.len()].iter().rev().copied().collect();
        let n: Vec<u16> = needle.iter().rev().copied().collect();
        kmp(&h, &n).map(|p| last - p)
    }
}

fn kmp(hay: &[u16], needle: &[u16]) -> Option<usize> {
    let mut fail = vec![0usize; needle.len()];
    let mut k = 0;
    for i in 1..needle.len() {
        while k > 0 && needle[i] != needle[k] {
            k = fail[k - 1];
        }
        if needle[i] == needle[k] {
            k += 1;
        }
        fail[i] = k;
    }
    let mut k = 0;
    for (i, c) in hay.iter().enumerate() {
        while k > 0 && *c != needle[k] {
            k = fail[k - 1];
        }
        if *c == needle[k] {
            k += 1;
        }
        if k == needle.len() {
            return Some(i + 1 - k);
        }
    }
    None
}

/// `swap(buf, width)`: reverses the byte order of each 2-, 4- or 8-byte group in place;
/// returns `buf`.
fn swap(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(b) = bytes_arg(scope, args.get(0), "buffer") else {
        return;
    };
    let width = match index_arg(args.get(1), 8) {
        Some(w @ (2 | 4 | 8)) => w,
        _ => return throw(scope, "RangeError", "swap: width must be 2, 4 or 8"),
    };
    if b.len() % width != 0 {
        return throw(
            scope,
            "RangeError",
            &format!("Buffer size must be a multiple of {}-bits", width * 8),
        );
    }
    for group in b.as_mut_slice().chunks_exact_mut(width) {
        group.reverse();
    }
    rv.set(args.get(0));
}

/// `validate(input, kind)`: whether the bytes are UTF-8 (kind 0) or ASCII (kind 1).
fn validate(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(b) = bytes_arg(scope, args.get(0), "input") else {
        return;
    };
    let bytes = b.as_slice();
    let ok = if args.get(1).is_true() || index_arg(args.get(1), 1) == Some(1) {
        simdutf::validate_ascii(bytes)
    } else {
        simdutf::validate_utf8(bytes)
    };
    rv.set_bool(ok);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str, cap: usize) -> Vec<u8> {
        let mut out = vec![0u8; cap];
        let n = base64_decode(s.as_bytes(), &mut out);
        out.truncate(n);
        out
    }

    #[test]
    fn base64_decoding_matches_nodes_lenient_rules() {
        // Expectations from Node 20: Buffer.from(s, 'base64').
        let size = |s: &str| base64_decoded_size(s.as_bytes());
        assert_eq!(b64("aGVsbG8=", size("aGVsbG8=")), b"hello");
        assert_eq!(b64("aGVsbG8", size("aGVsbG8")), b"hello");
        assert_eq!(b64("QR==", size("QR==")), b"A");
        assert_eq!(b64(" Q Q = = Q", size(" Q Q = = Q")), b"A");
        assert_eq!(b64("QQ==QQ==", size("QQ==QQ==")), b"A");
        assert_eq!(b64("_-_-", size("_-_-")), vec![0xff, 0xef, 0xfe]);
        assert_eq!(b64("/+/+", size("/+/+")), vec![0xff, 0xef, 0xfe]);
        assert_eq!(b64("Q", size("Q")), b"");
        assert_eq!(b64("aGVs\nbG8=", size("aGVs\nbG8=")), b"hello");
        // A destination shorter than the decoded size takes a prefix.
        assert_eq!(b64("aGVsbG8=", 2), b"he");
    }

    #[test]
    fn hex_stops_at_the_first_bad_pair() {
        let mut out = [0u8; 4];
        assert_eq!(hex_decode("abcx1".as_bytes(), &mut out), 1);
        assert_eq!(out[0], 0xab);
        assert_eq!(hex_decode("zz".as_bytes(), &mut out), 0);
        assert_eq!(hex_decode("0102030405".as_bytes(), &mut out), 4);
        // Past eight bytes (the chunked loop): a bad digit in the second chunk stops at its
        // pair, and the bytes after it keep what they held (`buf.write(hex)` semantics).
        let mut out = [0xeeu8; 20];
        let good = "00112233445566778899aabbccddeeff";
        assert_eq!(hex_decode(good.as_bytes(), &mut out), 16);
        assert_eq!(
            out[..16],
            *b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff"
        );
        let mut out = [0xeeu8; 20];
        assert_eq!(
            hex_decode("00112233445566778899aAbBcG".as_bytes(), &mut out),
            12
        );
        assert_eq!(out[10..14], [0xaa, 0xbb, 0xee, 0xee]);
        let wide: Vec<u16> = good.encode_utf16().collect();
        let mut out = [0u8; 16];
        assert_eq!(hex_decode(&wide, &mut out), 16);
        assert_eq!(out[15], 0xff);
    }

    #[test]
    fn searches_find_first_and_last_matches() {
        assert_eq!(search_bytes(b"abcabc", b"bc", 0, true), Some(1));
        assert_eq!(search_bytes(b"abcabc", b"bc", 2, true), Some(4));
        assert_eq!(search_bytes(b"abcabc", b"bc", 5, false), Some(4));
        assert_eq!(search_bytes(b"abcabc", b"bc", 3, false), Some(1));
        assert_eq!(search_bytes(b"abcabc", b"bc", 0, false), None);
        let u = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        assert_eq!(search(&u("aabaab"), &u("ab"), 0, true), Some(1));
        assert_eq!(search(&u("aabaab"), &u("ab"), 5, false), Some(4));
        assert_eq!(search(&u("aaaa"), &u("b"), 0, true), None);
    }
}
