//! `crypto`'s natives on OpenSSL (the library Node itself is built on, so names, outputs and
//! error codes line up): random bytes, hashes, HMAC, PBKDF2, scrypt and HKDF here; ciphers
//! in `cipher.rs`; keys, signatures, RSA encryption and key generation in `crypto_keys.rs`.
//! `js/node_crypto.js` does Node's argument validation; these check again and never trust it.
//!
//! Streaming objects (a hash, an HMAC, a cipher) live in a per-isolate table and JavaScript
//! holds their number. The table is emptied when a new execution first uses it, so nothing
//! outlives the call that made it, and it holds at most [`MAX_LIVE`] objects.
//!
//! Work a native cannot be interrupted in (the watchdog stops JavaScript, not a running
//! OpenSSL call) has hard caps, documented in the README: PBKDF2 iterations × blocks,
//! scrypt's N·r·p and memory.

use std::collections::HashMap;

use openssl::error::ErrorStack;
use openssl::hash::{Hasher, MessageDigest};
use openssl::md::Md;
use openssl::pkey_ctx::{HkdfMode, PkeyCtx};

use super::super::event_loop::ExecState;
use super::super::js_values::{make_error, set_string, throw};
use super::buffer::{to_string, Encoding};
use super::bytes::{alloc_copy, bytes_arg, index_arg, Bytes};

/// Most hash, HMAC and cipher objects one execution may hold unfinished.
const MAX_LIVE: usize = 10_000;
/// Most HMAC computations one PBKDF2 call may do (iterations × output blocks): about a
/// second or two of CPU; Node's usual 100k–600k iterations for one block fit easily.
pub(super) const MAX_PBKDF2_WORK: u64 = 1 << 24;
/// Most memory and work one scrypt call may use (Node's default maxmem is 32 MiB).
pub(super) const MAX_SCRYPT_MEMORY: u64 = 256 << 20;
pub(super) const MAX_SCRYPT_WORK: u64 = 1 << 24;
/// Largest input a single OpenSSL update call takes (its lengths are C ints).
pub(super) const CHUNK: usize = 1 << 30;

pub(super) enum Obj {
    Hash {
        hasher: Hasher,
        md: MessageDigest,
        xof_len: Option<usize>,
    },
    Hmac {
        inner: Hasher,
        outer: Hasher,
    },
    Cipher(Box<super::cipher::CipherState>),
}

/// The per-isolate object table (an isolate slot).
#[derive(Default)]
pub(super) struct CryptoObjects {
    seq: u64,
    next: u32,
    live: HashMap<u32, Obj>,
    /// Keys parsed in this execution: a block that signs in a loop parses its key once
    /// (OpenSSL 3's decoders cost about as much as an RSA-2048 signature).
    pub(super) keys: Vec<(bool, Vec<u8>, super::crypto_keys::Key)>,
    /// HMAC states right after the key (inner and outer pads hashed): a block that signs
    /// many tokens with one key starts each HMAC from a copy.
    hmacs: Vec<(String, Vec<u8>, Hasher, Hasher)>,
}

/// Entries kept in each execution cache.
pub(super) const CACHE_ENTRIES: usize = 16;

/// This isolate's object table and caches, emptied when a new execution first uses them.
pub(super) fn table<'a>(scope: &'a mut v8::PinScope<'_, '_>) -> Option<&'a mut CryptoObjects> {
    let seq = scope.get_slot::<ExecState>().map_or(0, |st| st.seq);
    if scope.get_slot::<CryptoObjects>().is_none() {
        scope.set_slot(CryptoObjects::default());
    }
    let t = scope.get_slot_mut::<CryptoObjects>()?;
    if t.seq != seq {
        t.live.clear();
        t.keys.clear();
        t.hmacs.clear();
        t.seq = seq;
    }
    Some(t)
}

/// Stores an object; returns its number, or throws when the table is full.
pub(super) fn store(
    scope: &mut v8::PinScope<'_, '_>,
    obj: Obj,
    rv: &mut v8::ReturnValue<'_, v8::Value>,
) {
    let Some(t) = table(scope) else { return };
    if t.live.len() >= MAX_LIVE {
        return throw(
            scope,
            "RangeError",
            &format!(
                "more than {MAX_LIVE} unfinished hash, HMAC or cipher objects in one execution"
            ),
        );
    }
    t.next = t.next.wrapping_add(1).max(1);
    let id = t.next;
    t.live.insert(id, obj);
    rv.set_uint32(id);
}

pub(super) fn id_arg(v: v8::Local<'_, v8::Value>) -> Option<u32> {
    index_arg(v, u32::MAX as usize).map(|n| n as u32)
}

/// Takes object `id` out of the table (put it back to keep it).
pub(super) fn take(
    scope: &mut v8::PinScope<'_, '_>,
    id: v8::Local<'_, v8::Value>,
) -> Option<(u32, Obj)> {
    let id = id_arg(id);
    let obj = id.and_then(|id| table(scope)?.live.remove(&id));
    match (id, obj) {
        (Some(id), Some(o)) => Some((id, o)),
        _ => {
            throw(
                scope,
                "Error",
                "Invalid state: the object is finished or from another call",
            );
            None
        }
    }
}

pub(super) fn put_back(scope: &mut v8::PinScope<'_, '_>, id: u32, obj: Obj) {
    if let Some(t) = table(scope) {
        t.live.insert(id, obj);
    }
}

/// Throws an OpenSSL error as Node does: `error:XXXXXXXX:lib::reason` with `code`
/// (`ERR_OSSL_[LIB_]REASON`), `library` and `reason`.
/// Hands OpenSSL's output to JavaScript as a Buffer made by the `alloc` callback argument,
/// or throws OpenSSL's error as Node does (`fallback` when OpenSSL queued none).
pub(super) fn return_bytes(
    scope: &mut v8::PinScope<'_, '_>,
    alloc: v8::Local<'_, v8::Value>,
    out: Result<Vec<u8>, ErrorStack>,
    fallback: &str,
    rv: &mut v8::ReturnValue<'_, v8::Value>,
) {
    match out {
        Ok(bytes) => {
            if let Some(v) = alloc_copy(scope, alloc, &bytes) {
                rv.set(v);
            }
        }
        Err(e) => throw_ossl(scope, &e, fallback),
    }
}

pub(super) fn throw_ossl(scope: &mut v8::PinScope<'_, '_>, e: &ErrorStack, fallback: &str) {
    let err = ossl_error(scope, e, fallback);
    scope.throw_exception(err);
}

pub(super) fn ossl_error<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    e: &ErrorStack,
    fallback: &str,
) -> v8::Local<'s, v8::Value> {
    let Some(first) = e.errors().first() else {
        return make_error(scope, "Error", fallback);
    };
    let library = first.library().unwrap_or("");
    let reason = first.reason().unwrap_or("");
    let message = format!("error:{:08X}:{library}::{reason}", first.code());
    let err = make_error(scope, "Error", &message);
    if let Ok(obj) = v8::Local::<v8::Object>::try_from(err) {
        let prefix = lib_prefix(first.library_code());
        let code = format!(
            "ERR_OSSL_{prefix}{}",
            reason.to_ascii_uppercase().replace([' ', '-'], "_")
        );
        set_string(scope, obj, "library", library);
        set_string(scope, obj, "reason", reason);
        set_string(scope, obj, "code", &code);
    }
    err
}

/// Node's OSSL_ERROR_CODES_MAP: libraries whose name goes into the error code.
fn lib_prefix(lib: i32) -> &'static str {
    match lib {
        2 => "SYS_",
        3 => "BN_",
        4 => "RSA_",
        5 => "DH_",
        6 => "EVP_",
        7 => "BUF_",
        8 => "OBJ_",
        9 => "PEM_",
        10 => "DSA_",
        11 => "X509_",
        13 => "ASN1_",
        14 => "CONF_",
        15 => "CRYPTO_",
        16 => "EC_",
        20 => "SSL_",
        32 => "BIO_",
        33 => "PKCS7_",
        34 => "X509V3_",
        35 => "PKCS12_",
        36 => "RAND_",
        37 => "DSO_",
        38 => "ENGINE_",
        39 => "OCSP_",
        40 => "UI_",
        41 => "COMP_",
        42 => "ECDSA_",
        43 => "ECDH_",
        44 => "OSSL_STORE_",
        45 => "FIPS_",
        46 => "CMS_",
        47 => "TS_",
        48 => "HMAC_",
        50 => "CT_",
        51 => "ASYNC_",
        52 => "KDF_",
        53 => "SM2_",
        128 => "USER_",
        _ => "",
    }
}

/// An error with a Node `code`.
pub(super) fn throw_code(scope: &mut v8::PinScope<'_, '_>, name: &str, code: &str, message: &str) {
    let err = make_error(scope, name, message);
    if let Ok(obj) = v8::Local::<v8::Object>::try_from(err) {
        set_string(scope, obj, "code", code);
    }
    scope.throw_exception(err);
}

/// Node's `ERR_CRYPTO_INVALID_DIGEST` for a digest name OpenSSL does not know.
pub(super) fn throw_invalid_digest(scope: &mut v8::PinScope<'_, '_>, name: &str) {
    throw_code(
        scope,
        "TypeError",
        "ERR_CRYPTO_INVALID_DIGEST",
        &format!("Invalid digest: {name}"),
    )
}

/// A short ASCII name argument (algorithm, cipher, curve): `None` for anything else.
pub(super) fn name_arg(
    scope: &mut v8::PinScope<'_, '_>,
    v: v8::Local<'_, v8::Value>,
) -> Option<String> {
    let s = v8::Local::<v8::String>::try_from(v).ok()?;
    if s.length() > 128 {
        return None;
    }
    let s = s.to_rust_string_lossy(scope);
    (!s.contains('\0')).then_some(s)
}

pub(super) fn digest_by_name(name: &str) -> Option<MessageDigest> {
    if name.is_empty() || name.contains('\0') {
        return None;
    }
    MessageDigest::from_name(name)
}

/// The family's natives as one object (`natives.load('crypto')`).
pub(super) fn family<'s>(
    scope: &mut v8::PinScope<'s, '_>,
) -> Result<v8::Local<'s, v8::Object>, String> {
    let obj = v8::Object::new(scope);
    super::set_fn(scope, obj, "randomFill", guarded!(random_fill))?;
    super::set_fn(scope, obj, "hashNew", guarded!(hash_new))?;
    super::set_fn(scope, obj, "hashCopy", guarded!(hash_copy))?;
    super::set_fn(scope, obj, "update", guarded!(update))?;
    super::set_fn(scope, obj, "digest", guarded!(digest))?;
    super::set_fn(scope, obj, "hashOnce", guarded!(hash_once))?;
    super::set_fn(scope, obj, "hmacNew", guarded!(hmac_new))?;
    super::set_fn(scope, obj, "hmacOnce", guarded!(hmac_once))?;
    super::set_fn(scope, obj, "pbkdf2", guarded!(pbkdf2))?;
    super::set_fn(scope, obj, "scrypt", guarded!(scrypt))?;
    super::set_fn(scope, obj, "hkdf", guarded!(hkdf))?;
    super::cipher::install(scope, obj)?;
    super::crypto_keys::install(scope, obj)?;
    Ok(obj)
}

/// `randomFill(view, offset, size)`: fills bytes `[offset, offset + size)` from OpenSSL's
/// CSPRNG.
fn random_fill(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(b) = bytes_arg(scope, args.get(0), "buf") else {
        return;
    };
    let len = b.len();
    let (Some(offset), Some(size)) = (index_arg(args.get(1), len), index_arg(args.get(2), len))
    else {
        return throw(scope, "RangeError", "randomFill: range outside the buffer");
    };
    if offset + size > len {
        return throw(scope, "RangeError", "randomFill: range outside the buffer");
    }
    let dst = &mut b.as_mut_slice()[offset..offset + size];
    for chunk in dst.chunks_mut(CHUNK) {
        if let Err(e) = openssl::rand::rand_bytes(chunk) {
            return throw_ossl(scope, &e, "random generator failed");
        }
    }
}

fn xof_arg(v: v8::Local<'_, v8::Value>) -> Option<usize> {
    if v.is_undefined() || v.is_null() {
        return None;
    }
    index_arg(v, u32::MAX as usize)
}

fn new_hasher(md: MessageDigest) -> Result<Hasher, ErrorStack> {
    Hasher::new(md)
}

/// `hashNew(algorithm, outputLength?)`: a hash object's number.
fn hash_new(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let md = name_arg(scope, args.get(0)).and_then(|n| digest_by_name(&n));
    let Some(md) = md else {
        return throw(scope, "Error", "Digest method not supported");
    };
    let xof_len = xof_arg(args.get(1));
    if let Some(n) = xof_len {
        // Only an XOF can change its output length.
        if n != md.size() && !is_xof(md) {
            return throw_code(
                scope,
                "Error",
                "ERR_OSSL_EVP_NOT_XOF_OR_INVALID_LENGTH",
                "error:030000B2:digital envelope routines::not XOF or invalid length",
            );
        }
    }
    match new_hasher(md) {
        Ok(hasher) => store(
            scope,
            Obj::Hash {
                hasher,
                md,
                xof_len,
            },
            &mut rv,
        ),
        Err(_) => throw(scope, "Error", "Digest method not supported"),
    }
}

fn is_xof(md: MessageDigest) -> bool {
    md.type_() == openssl::nid::Nid::SHAKE128 || md.type_() == openssl::nid::Nid::SHAKE256
}

/// `hashCopy(id, outputLength?)`: a copy of a hash object in its current state.
fn hash_copy(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some((id, obj)) = take(scope, args.get(0)) else {
        return;
    };
    let copy = match &obj {
        Obj::Hash {
            hasher,
            md,
            xof_len,
        } => Some(Obj::Hash {
            hasher: hasher.clone(),
            md: *md,
            xof_len: xof_arg(args.get(1)).or(*xof_len),
        }),
        _ => None,
    };
    put_back(scope, id, obj);
    match copy {
        Some(c) => store(scope, c, &mut rv),
        None => throw(scope, "TypeError", "not a hash"),
    }
}

/// `update(id, data)`: feeds a hash or HMAC (bytes, or a string as UTF-8).
fn update(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(data) = Input::of(scope, args.get(1), "data") else {
        return;
    };
    let Some((id, mut obj)) = take(scope, args.get(0)) else {
        return;
    };
    let r = match &mut obj {
        Obj::Hash { hasher, .. } => feed(hasher, data.as_slice()),
        Obj::Hmac { inner, .. } => feed(inner, data.as_slice()),
        Obj::Cipher(_) => Ok(()),
    };
    put_back(scope, id, obj);
    rv.set_bool(r.is_ok());
}

fn feed(h: &mut Hasher, data: &[u8]) -> Result<(), ErrorStack> {
    data.chunks(CHUNK).try_for_each(|c| h.update(c))
}

/// `digest(id, alloc, encoding?)`: finishes a hash or HMAC; its object is gone afterwards.
fn digest(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some((_, obj)) = take(scope, args.get(0)) else {
        return;
    };
    let out = match obj {
        Obj::Hash {
            mut hasher,
            md,
            xof_len,
        } => finish(&mut hasher, md, xof_len),
        Obj::Hmac { inner, outer } => hmac_finish(inner, outer),
        Obj::Cipher(_) => return throw(scope, "TypeError", "not a hash"),
    };
    return_digest(scope, args.get(1), args.get(2), out, &mut rv);
}

/// A digest as JavaScript wants it: a string when `encoding` is one of node_buffer.js's
/// encoding numbers (what `digest('hex')` would make of the Buffer, made here without the
/// Buffer), a Buffer from `alloc` otherwise.
fn return_digest(
    scope: &mut v8::PinScope<'_, '_>,
    alloc: v8::Local<'_, v8::Value>,
    encoding: v8::Local<'_, v8::Value>,
    out: Result<Vec<u8>, ErrorStack>,
    rv: &mut v8::ReturnValue<'_, v8::Value>,
) {
    match (out, Encoding::from_arg(encoding)) {
        (Ok(bytes), Some(enc)) => match to_string(scope, &bytes, enc) {
            Some(s) => rv.set(s.into()),
            None => throw(scope, "Error", "digest failed"),
        },
        (out, _) => return_bytes(scope, alloc, out, "digest failed", rv),
    }
}

/// The bytes a one-shot digest reads: a Buffer or view as it is, a string as UTF-8 (lone
/// surrogates as U+FFFD, as `Buffer.from(string)` makes them), so a block's
/// `update('text')` reaches OpenSSL without a Buffer made in between.
enum Input {
    View(Bytes),
    Text(Vec<u8>),
}

impl Input {
    fn of(
        scope: &mut v8::PinScope<'_, '_>,
        v: v8::Local<'_, v8::Value>,
        what: &str,
    ) -> Option<Input> {
        match v8::Local::<v8::String>::try_from(v) {
            Ok(s) => {
                let mut out = vec![0u8; s.utf8_length(scope)];
                let n = s.write_utf8_v2(scope, &mut out, v8::WriteFlags::kReplaceInvalidUtf8, None);
                out.truncate(n);
                Some(Input::Text(out))
            }
            Err(_) => bytes_arg(scope, v, what).map(Input::View),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Input::View(b) => b.as_slice(),
            Input::Text(t) => t,
        }
    }
}

fn finish(
    h: &mut Hasher,
    md: MessageDigest,
    xof_len: Option<usize>,
) -> Result<Vec<u8>, ErrorStack> {
    if is_xof(md) {
        let mut out = vec![0u8; xof_len.unwrap_or(md.size())];
        if !out.is_empty() {
            h.finish_xof(&mut out)?;
        }
        Ok(out)
    } else {
        Ok(h.finish()?.to_vec())
    }
}

/// `hashOnce(algorithm, data, alloc, encoding?)`: one-shot digest (`crypto.hash`, and a
/// `createHash(…).update(…).digest(…)` that updated once), `data` bytes or a string.
fn hash_once(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let md = name_arg(scope, args.get(0)).and_then(|n| digest_by_name(&n));
    let Some(md) = md else {
        return throw(scope, "Error", "Digest method not supported");
    };
    let Some(data) = Input::of(scope, args.get(1), "data") else {
        return;
    };
    let out = new_hasher(md).and_then(|mut h| {
        feed(&mut h, data.as_slice())?;
        finish(&mut h, md, None)
    });
    return_digest(scope, args.get(2), args.get(3), out, &mut rv);
}

/// `hmacNew(algorithm, key)`: an HMAC object's number (RFC 2104 on two hashers, so any
/// key length, the empty key included, works with any block digest).
fn hmac_new(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    match hmac_start(scope, args.get(0), args.get(1)) {
        Some(Ok((inner, outer))) => store(scope, Obj::Hmac { inner, outer }, &mut rv),
        Some(Err(e)) => throw_ossl(scope, &e, "HMAC init failed"),
        None => {}
    }
}

/// `hmacOnce(algorithm, key, data, alloc, encoding?)`: a whole HMAC in one call — what
/// `createHmac(…).update(…).digest(…)` with one update comes to (a JWT or webhook
/// signature); `key` and `data` bytes or strings (UTF-8).
fn hmac_once(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(data) = Input::of(scope, args.get(2), "data") else {
        return;
    };
    let out = match hmac_start(scope, args.get(0), args.get(1)) {
        Some(pair) => pair.and_then(|(mut inner, outer)| {
            feed(&mut inner, data.as_slice())?;
            hmac_finish(inner, outer)
        }),
        None => return,
    };
    return_digest(scope, args.get(3), args.get(4), out, &mut rv);
}

/// The two hashers an HMAC starts from (inner and outer pads hashed), from this
/// execution's cache when the same digest and key came before; `None` with an exception
/// thrown for a digest that cannot make an HMAC or a key that is no bytes or string.
fn hmac_start(
    scope: &mut v8::PinScope<'_, '_>,
    name: v8::Local<'_, v8::Value>,
    key: v8::Local<'_, v8::Value>,
) -> Option<Result<(Hasher, Hasher), ErrorStack>> {
    let name = name_arg(scope, name).unwrap_or_default();
    let md = digest_by_name(&name).filter(|md| !is_xof(*md) && md.block_size() > 0);
    let Some(md) = md else {
        throw_invalid_digest(scope, &name);
        return None;
    };
    let key = Input::of(scope, key, "key")?;
    let key = key.as_slice();
    let cached = table(scope).and_then(|t| {
        t.hmacs
            .iter()
            .find(|(n, k, _, _)| *n == name && k.as_slice() == key)
            .map(|(_, _, i, o)| (i.clone(), o.clone()))
    });
    Some(match cached {
        Some(p) => Ok(p),
        None => hmac_pair(md, key).inspect(|(inner, outer)| {
            if let Some(t) = table(scope) {
                if t.hmacs.len() >= CACHE_ENTRIES {
                    t.hmacs.remove(0);
                }
                t.hmacs
                    .push((name.clone(), key.to_vec(), inner.clone(), outer.clone()));
            }
        }),
    })
}

/// An HMAC's value once its message went into `inner`: the inner digest through `outer`.
fn hmac_finish(mut inner: Hasher, mut outer: Hasher) -> Result<Vec<u8>, ErrorStack> {
    outer.update(&inner.finish()?)?;
    Ok(outer.finish()?.to_vec())
}

pub(super) fn hmac_pair(md: MessageDigest, key: &[u8]) -> Result<(Hasher, Hasher), ErrorStack> {
    let block = md.block_size();
    let mut k = if key.len() > block {
        let mut h = Hasher::new(md)?;
        feed(&mut h, key)?;
        h.finish()?.to_vec()
    } else {
        key.to_vec()
    };
    k.resize(block, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let mut inner = Hasher::new(md)?;
    inner.update(&ipad)?;
    let mut outer = Hasher::new(md)?;
    outer.update(&opad)?;
    Ok((inner, outer))
}

/// `pbkdf2(password, salt, iterations, keylen, digest, alloc)`.
fn pbkdf2(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let name = name_arg(scope, args.get(4)).unwrap_or_default();
    let Some(md) = digest_by_name(&name) else {
        return throw_invalid_digest(scope, &name);
    };
    let (Some(pass), Some(salt)) = (
        bytes_arg(scope, args.get(0), "password"),
        bytes_arg(scope, args.get(1), "salt"),
    ) else {
        return;
    };
    let (Some(iter), Some(keylen)) = (
        index_arg(args.get(2), i32::MAX as usize),
        index_arg(args.get(3), i32::MAX as usize),
    ) else {
        return throw(scope, "RangeError", "pbkdf2: bad iterations or keylen");
    };
    let blocks = keylen.div_ceil(md.size().max(1)) as u64;
    if iter == 0 || (iter as u64).saturating_mul(blocks.max(1)) > MAX_PBKDF2_WORK {
        return throw_code(
            scope,
            "RangeError",
            "ERR_OUT_OF_RANGE",
            &format!(
                "The value of \"iterations\" is out of range. It must be >= 1 and iterations × output blocks <= {MAX_PBKDF2_WORK} in a keel code block (a native call cannot be interrupted). Received {iter}"
            ),
        );
    }
    let mut out = vec![0u8; keylen];
    if let Err(e) =
        openssl::pkcs5::pbkdf2_hmac(pass.as_slice(), salt.as_slice(), iter, md, &mut out)
    {
        return throw_code(
            scope,
            "Error",
            "ERR_CRYPTO_PBKDF2_ERROR",
            &format!("PBKDF2 error: {e}"),
        );
    }
    if let Some(v) = alloc_copy(scope, args.get(5), &out) {
        rv.set(v);
    }
}

/// `scrypt(password, salt, keylen, N, r, p, maxmem, alloc)`.
fn scrypt(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let (Some(pass), Some(salt)) = (
        bytes_arg(scope, args.get(0), "password"),
        bytes_arg(scope, args.get(1), "salt"),
    ) else {
        return;
    };
    let num = |i: i32| index_arg(args.get(i), (1u64 << 53) as usize).map(|n| n as u64);
    let (Some(keylen), Some(n), Some(r), Some(p), Some(maxmem)) =
        (num(2), num(3), num(4), num(5), num(6))
    else {
        return throw_code(
            scope,
            "RangeError",
            "ERR_CRYPTO_INVALID_SCRYPT_PARAMS",
            "Invalid scrypt params",
        );
    };
    let work = n.saturating_mul(r).saturating_mul(p);
    let memory = n.saturating_mul(r).saturating_mul(128);
    if work > MAX_SCRYPT_WORK || memory > MAX_SCRYPT_MEMORY || keylen > i32::MAX as u64 {
        return throw_code(
            scope,
            "RangeError",
            "ERR_CRYPTO_INVALID_SCRYPT_PARAMS",
            &format!("Invalid scrypt params: N·r·p above {MAX_SCRYPT_WORK} or N·r·128 above {MAX_SCRYPT_MEMORY} bytes in a keel code block"),
        );
    }
    let mut out = vec![0u8; keylen as usize];
    if let Err(e) =
        openssl::pkcs5::scrypt(pass.as_slice(), salt.as_slice(), n, r, p, maxmem, &mut out)
    {
        let detail = e.errors().first().map(|x| {
            format!(
                "error:{:08X}:{}::{}",
                x.code(),
                x.library().unwrap_or(""),
                x.reason().unwrap_or("")
            )
        });
        let msg = match detail {
            Some(d) => format!("Invalid scrypt params: {d}"),
            None => "Invalid scrypt params".to_string(),
        };
        return throw_code(
            scope,
            "RangeError",
            "ERR_CRYPTO_INVALID_SCRYPT_PARAMS",
            &msg,
        );
    }
    if let Some(v) = alloc_copy(scope, args.get(7), &out) {
        rv.set(v);
    }
}

/// `hkdf(digest, ikm, salt, info, keylen, alloc)`.
fn hkdf(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let name = name_arg(scope, args.get(0)).unwrap_or_default();
    let md = if name.is_empty() || name.contains('\0') {
        None
    } else {
        Md::fetch(None, &name, None).ok()
    };
    let Some(md) = md else {
        return throw_invalid_digest(scope, &name);
    };
    let (Some(ikm), Some(salt), Some(info)) = (
        bytes_arg(scope, args.get(1), "ikm"),
        bytes_arg(scope, args.get(2), "salt"),
        bytes_arg(scope, args.get(3), "info"),
    ) else {
        return;
    };
    let Some(keylen) = index_arg(args.get(4), 255 * md.size()) else {
        return throw_code(
            scope,
            "RangeError",
            "ERR_CRYPTO_INVALID_KEYLEN",
            "Invalid key length",
        );
    };
    let run = || -> Result<Vec<u8>, ErrorStack> {
        let mut out = vec![0u8; keylen];
        if keylen == 0 {
            return Ok(out);
        }
        let mut ctx = PkeyCtx::new_id(openssl::pkey::Id::HKDF)?;
        ctx.derive_init()?;
        ctx.set_hkdf_mode(HkdfMode::EXTRACT_THEN_EXPAND)?;
        ctx.set_hkdf_md(&md)?;
        // OpenSSL refuses an empty key; HKDF with an empty IKM is the extract of a zero-length
        // key, which HMAC pads to the same block of zeros as a one-byte zero key would not
        // be — so derive by hand in that case.
        if ikm.len() == 0 {
            return hkdf_by_hand(&name, &[], salt.as_slice(), info.as_slice(), keylen);
        }
        ctx.set_hkdf_key(ikm.as_slice())?;
        if salt.len() > 0 {
            ctx.set_hkdf_salt(salt.as_slice())?;
        }
        if info.len() > 0 {
            ctx.add_hkdf_info(info.as_slice())?;
        }
        ctx.derive(Some(&mut out))?;
        Ok(out)
    };
    return_bytes(scope, args.get(5), run(), "HKDF failed", &mut rv);
}

/// RFC 5869 on [`hmac_pair`].
fn hkdf_by_hand(
    name: &str,
    ikm: &[u8],
    salt: &[u8],
    info: &[u8],
    len: usize,
) -> Result<Vec<u8>, ErrorStack> {
    let Some(md) = digest_by_name(name) else {
        return Err(ErrorStack::get());
    };
    let hmac = |key: &[u8], parts: &[&[u8]]| -> Result<Vec<u8>, ErrorStack> {
        let (mut inner, outer) = hmac_pair(md, key)?;
        for p in parts {
            inner.update(p)?;
        }
        hmac_finish(inner, outer)
    };
    let zeros = vec![0u8; md.size()];
    let prk = hmac(if salt.is_empty() { &zeros } else { salt }, &[ikm])?;
    let mut out = Vec::with_capacity(len);
    let mut t: Vec<u8> = Vec::new();
    let mut i = 1u8;
    while out.len() < len {
        t = hmac(&prk, &[&t, info, &[i]])?;
        out.extend_from_slice(&t);
        i = i.wrapping_add(1);
    }
    out.truncate(len);
    Ok(out)
}
