//! `crypto`'s ciphers and deciphers on OpenSSL's EVP interface: every cipher Node lists,
//! AEAD modes (GCM, CCM, OCB, ChaCha20-Poly1305) with their tags and additional data,
//! padding, and `getCipherInfo`. A cipher is a streaming object in `crypto.rs`'s per-isolate
//! table; JavaScript holds its number.

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use openssl::error::ErrorStack;

use super::super::js_values::{set_string, set_val, throw};
use super::bytes::{alloc_copy, bytes_arg, index_arg};
use super::crypto::{name_arg, put_back, store, take, throw_code, throw_ossl, Obj, CHUNK};

pub(super) fn install(
    scope: &mut v8::PinScope<'_, '_>,
    obj: v8::Local<'_, v8::Object>,
) -> Result<(), String> {
    super::set_fn(scope, obj, "cipherNew", guarded!(cipher_new))?;
    super::set_fn(scope, obj, "cipherUpdate", guarded!(cipher_update))?;
    super::set_fn(scope, obj, "cipherFinal", guarded!(cipher_final))?;
    super::set_fn(scope, obj, "cipherSetAAD", guarded!(cipher_set_aad))?;
    super::set_fn(scope, obj, "cipherAuthTag", guarded!(cipher_auth_tag))?;
    super::set_fn(
        scope,
        obj,
        "cipherSetAuthTag",
        guarded!(cipher_set_auth_tag),
    )?;
    super::set_fn(scope, obj, "cipherSetPadding", guarded!(cipher_set_padding))?;
    super::set_fn(scope, obj, "cipherInfo", guarded!(cipher_info))?;
    Ok(())
}

pub(super) struct CipherState {
    ctx: CipherCtx,
    decrypt: bool,
    aead: Aead,
    tag_len: usize,
    tag: Option<Vec<u8>>,
    /// CCM decryption: the tag went to OpenSSL (once, before the data).
    tag_passed: bool,
    /// CCM decryption checks the tag in update; final reports it.
    auth_failed: bool,
    finalized: bool,
}

impl CipherState {
    /// CCM decryption: hands the expected tag to OpenSSL before the first data (Node's
    /// MaybePassAuthTagToOpenSSL).
    fn pass_tag(&mut self) -> bool {
        if self.aead == Aead::Ccm && self.decrypt && !self.tag_passed {
            let Some(tag) = &self.tag else { return false };
            if self.ctx.set_tag(tag).is_err() {
                return false;
            }
            self.tag_passed = true;
        }
        true
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aead {
    None,
    Gcm,
    Ccm,
    Ocb,
    ChaCha,
}

fn cipher_by_name(name: &str) -> Option<Cipher> {
    if name.is_empty() || name.contains('\0') {
        return None;
    }
    Cipher::fetch(None, name, None).ok()
}

/// A cipher's mode, from its long name (as `getCipherInfo` reports it).
fn mode_of(c: &CipherRef) -> &'static str {
    let name = c.nid().long_name().unwrap_or("").to_ascii_lowercase();
    let has = |s: &str| name.contains(s);
    if has("chacha20-poly1305") || has("chacha20") || has("rc4") {
        "stream"
    } else if has("gcm") {
        "gcm"
    } else if has("ccm") {
        "ccm"
    } else if has("ocb") {
        "ocb"
    } else if has("xts") {
        "xts"
    } else if has("wrap") {
        "wrap"
    } else if has("cbc") {
        "cbc"
    } else if has("cfb") {
        "cfb"
    } else if has("ofb") {
        "ofb"
    } else if has("ctr") {
        "ctr"
    } else {
        "ecb"
    }
}

fn aead_of(c: &CipherRef) -> Aead {
    if c.nid()
        .long_name()
        .unwrap_or("")
        .eq_ignore_ascii_case("chacha20-poly1305")
    {
        return Aead::ChaCha;
    }
    match mode_of(c) {
        "gcm" => Aead::Gcm,
        "ccm" => Aead::Ccm,
        "ocb" => Aead::Ocb,
        _ => Aead::None,
    }
}

/// `cipherNew(name, key, iv|null, decrypt, authTagLength|-1)`: a cipher object's number,
/// with Node's checks on key, IV and tag lengths.
fn cipher_new(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let name = name_arg(scope, args.get(0)).unwrap_or_default();
    let Some(cipher) = cipher_by_name(&name) else {
        return throw_code(
            scope,
            "Error",
            "ERR_CRYPTO_UNKNOWN_CIPHER",
            "Unknown cipher",
        );
    };
    let Some(key) = bytes_arg(scope, args.get(1), "key") else {
        return;
    };
    let iv = if args.get(2).is_null() {
        None
    } else {
        match bytes_arg(scope, args.get(2), "iv") {
            Some(b) => Some(b),
            None => return,
        }
    };
    let decrypt = args.get(3).is_true();
    let tag_arg = args.get(4).number_value(scope).unwrap_or(-1.0);
    let aead = aead_of(&cipher);
    let expected_iv = cipher.iv_length();
    // Node: a cipher that needs no IV takes null; one that needs one must get one; only
    // AEAD modes may change its length.
    match (&iv, expected_iv) {
        (None, n) if n != 0 => {
            return throw_code(
                scope,
                "TypeError",
                "ERR_CRYPTO_INVALID_IV",
                "Invalid initialization vector",
            )
        }
        (Some(b), n)
            if b.len() != n
                && (aead == Aead::None || b.len() == 0)
                && !(n == 0 && b.len() == 0) =>
        {
            return throw_code(
                scope,
                "TypeError",
                "ERR_CRYPTO_INVALID_IV",
                "Invalid initialization vector",
            )
        }
        _ => {}
    }
    if key.len() != cipher.key_length() {
        return throw_code(
            scope,
            "RangeError",
            "ERR_CRYPTO_INVALID_KEYLEN",
            "Invalid key length",
        );
    }
    let tag_len = if tag_arg.is_finite() && tag_arg >= 0.0 {
        Some(tag_arg as usize)
    } else {
        None
    };
    let valid_tag = |n: usize| match aead {
        Aead::Gcm => (4..=16).contains(&n) && (n >= 12 || n == 4 || n == 8),
        Aead::Ccm => (4..=16).contains(&n) && n % 2 == 0,
        Aead::Ocb => (1..=16).contains(&n),
        Aead::ChaCha => (1..=16).contains(&n),
        Aead::None => true,
    };
    if let Some(n) = tag_len {
        if aead != Aead::None && !valid_tag(n) {
            return throw_code(
                scope,
                "TypeError",
                "ERR_CRYPTO_INVALID_AUTH_TAG",
                &format!("Invalid authentication tag length: {n}"),
            );
        }
    }
    if aead == Aead::Ccm && tag_len.is_none() {
        return throw_code(
            scope,
            "TypeError",
            "ERR_CRYPTO_INVALID_AUTH_TAG",
            "authTagLength required for aes-128-ccm",
        );
    }
    let build = || -> Result<CipherCtx, ErrorStack> {
        let mut ctx = CipherCtx::new()?;
        let init = |ctx: &mut CipherCtx, k: Option<&[u8]>, i: Option<&[u8]>| {
            if decrypt {
                ctx.decrypt_init(Some(&cipher), k, i)
            } else {
                ctx.encrypt_init(Some(&cipher), k, i)
            }
        };
        init(&mut ctx, None, None)?;
        if let Some(ivb) = &iv {
            // Always for AEAD modes: a CCM context starts at a 7-byte nonce whatever the cipher says.
            if aead != Aead::None {
                ctx.set_iv_length(ivb.len())?;
            }
        }
        if aead == Aead::Ccm || aead == Aead::Ocb || aead == Aead::ChaCha {
            if let Some(n) = tag_len {
                ctx.set_tag_length(n)?;
            } else if aead == Aead::Ocb || aead == Aead::ChaCha {
                ctx.set_tag_length(16)?;
            }
        }
        // The cipher again would reset the IV length set above.
        let second = |ctx: &mut CipherCtx, k: &[u8], i: Option<&[u8]>| {
            if decrypt {
                ctx.decrypt_init(None, Some(k), i)
            } else {
                ctx.encrypt_init(None, Some(k), i)
            }
        };
        second(&mut ctx, key.as_slice(), iv.as_ref().map(|b| b.as_slice()))?;
        Ok(ctx)
    };
    match build() {
        Ok(ctx) => {
            let state = CipherState {
                ctx,
                decrypt,
                aead,
                tag_len: tag_len.unwrap_or(16),
                tag: None,
                tag_passed: false,
                auth_failed: false,
                finalized: false,
            };
            store(scope, Obj::Cipher(Box::new(state)), &mut rv);
        }
        Err(e) => {
            if aead != Aead::None {
                throw_code(
                    scope,
                    "TypeError",
                    "ERR_CRYPTO_INVALID_IV",
                    "Invalid initialization vector",
                )
            } else {
                throw_ossl(scope, &e, "cipher init failed")
            }
        }
    }
}

fn with_cipher<R>(
    scope: &mut v8::PinScope<'_, '_>,
    id: v8::Local<'_, v8::Value>,
    f: impl FnOnce(&mut CipherState) -> R,
) -> Option<R> {
    let (id, mut obj) = take(scope, id)?;
    let r = match &mut obj {
        Obj::Cipher(c) => Some(f(c)),
        _ => None,
    };
    put_back(scope, id, obj);
    if r.is_none() {
        throw(scope, "TypeError", "not a cipher");
    }
    r
}

/// `cipherUpdate(id, data, alloc)`: the output for `data`.
fn cipher_update(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(data) = bytes_arg(scope, args.get(1), "data") else {
        return;
    };
    let input = data.as_slice();
    let r = with_cipher(
        scope,
        args.get(0),
        |c| -> Result<Vec<u8>, Option<ErrorStack>> {
            if c.finalized {
                return Err(None);
            }
            if !c.pass_tag() {
                return Err(None);
            }
            let mut out = vec![0u8; input.len() + c.ctx.block_size().max(1) * 2];
            let mut n = 0;
            for chunk in input.chunks(CHUNK) {
                // SAFETY: `out` has room for the input plus two blocks of buffered data.
                match unsafe { c.ctx.cipher_update_unchecked(chunk, Some(&mut out[n..])) } {
                    Ok(k) => n += k,
                    // CCM decryption checks the tag here; Node reports it at final.
                    Err(_) if c.aead == Aead::Ccm && c.decrypt => {
                        c.auth_failed = true;
                        let _ = ErrorStack::get();
                        return Ok(Vec::new());
                    }
                    Err(e) => return Err(Some(e)),
                }
            }
            out.truncate(n);
            Ok(out)
        },
    );
    match r {
        None => {}
        Some(Ok(out)) => {
            if let Some(v) = alloc_copy(scope, args.get(2), &out) {
                rv.set(v);
            }
        }
        Some(Err(None)) => throw(scope, "Error", "Trying to add data in unsupported state"),
        Some(Err(Some(e))) => throw_ossl(scope, &e, "Trying to add data in unsupported state"),
    }
}

/// `cipherFinal(id, alloc)`: the last output; for AEAD decryption it checks the tag.
fn cipher_final(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let r = with_cipher(
        scope,
        args.get(0),
        |c| -> Result<Vec<u8>, Option<ErrorStack>> {
            if c.finalized {
                return Err(None);
            }
            c.finalized = true;
            if c.decrypt && c.aead != Aead::None && c.aead != Aead::Ccm {
                match &c.tag {
                    Some(tag) => c.ctx.set_tag(tag).map_err(|_| None)?,
                    None => return Err(None),
                }
            }
            let mut out = vec![0u8; c.ctx.block_size().max(1) * 2];
            let n = if c.aead == Aead::Ccm && c.decrypt {
                if c.auth_failed {
                    return Err(None);
                }
                0
            } else {
                c.ctx.cipher_final(&mut out).map_err(|e| {
                    if c.aead == Aead::None {
                        Some(e)
                    } else {
                        None
                    }
                })?
            };
            out.truncate(n);
            if !c.decrypt && c.aead != Aead::None {
                let mut tag = vec![0u8; c.tag_len];
                c.ctx.tag(&mut tag).map_err(Some)?;
                c.tag = Some(tag);
            }
            Ok(out)
        },
    );
    match r {
        None => {}
        Some(Ok(out)) => {
            if let Some(v) = alloc_copy(scope, args.get(1), &out) {
                rv.set(v);
            }
        }
        Some(Err(None)) => throw(
            scope,
            "Error",
            "Unsupported state or unable to authenticate data",
        ),
        Some(Err(Some(e))) => throw_ossl(scope, &e, "Unsupported state"),
    }
}

/// `cipherSetAAD(id, data, plaintextLength|-1)`: false when the cipher refuses.
fn cipher_set_aad(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(data) = bytes_arg(scope, args.get(1), "buffer") else {
        return;
    };
    let plaintext_len = index_arg(args.get(2), i32::MAX as usize);
    let aad = data.as_slice();
    let ok = with_cipher(scope, args.get(0), |c| {
        if c.finalized || c.aead == Aead::None {
            return false;
        }
        if c.aead == Aead::Ccm {
            let Some(len) = plaintext_len else {
                return false;
            };
            if !c.pass_tag() || c.ctx.set_data_len(len).is_err() {
                return false;
            }
        }
        // SAFETY: no output buffer: AAD input.
        unsafe { c.ctx.cipher_update_unchecked(aad, None) }.is_ok()
    });
    if let Some(ok) = ok {
        rv.set_bool(ok);
    }
}

/// `cipherAuthTag(id, alloc)`: the tag after an AEAD encryption's final, else undefined.
fn cipher_auth_tag(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let tag = with_cipher(scope, args.get(0), |c| {
        if c.decrypt || !c.finalized {
            None
        } else {
            c.tag.clone()
        }
    });
    if let Some(Some(tag)) = tag {
        if let Some(v) = alloc_copy(scope, args.get(1), &tag) {
            rv.set(v);
        }
    }
}

/// `cipherSetAuthTag(id, tag)`: false when the state or length is wrong.
fn cipher_set_auth_tag(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(tag) = bytes_arg(scope, args.get(1), "buffer") else {
        return;
    };
    let tag = tag.as_slice().to_vec();
    let ok = with_cipher(scope, args.get(0), |c| {
        if !c.decrypt || c.finalized || c.aead == Aead::None || c.tag.is_some() {
            return false;
        }
        c.tag = Some(tag);
        true
    });
    if let Some(ok) = ok {
        rv.set_bool(ok);
    }
}

/// `cipherSetPadding(id, on)`: false after final.
fn cipher_set_padding(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let on = args.get(1).is_true();
    let ok = with_cipher(scope, args.get(0), |c| {
        if c.finalized {
            return false;
        }
        c.ctx.set_padding(on);
        true
    });
    if let Some(ok) = ok {
        rv.set_bool(ok);
    }
}

/// `cipherInfo(name)`: `{ name, nid, blockSize, ivLength, keyLength, mode }` or undefined.
fn cipher_info(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let name = name_arg(scope, args.get(0)).unwrap_or_default();
    let Some(c) = cipher_by_name(&name) else {
        return;
    };
    let obj = v8::Object::new(scope);
    let nid = c.nid();
    let mode = mode_of(&c);
    set_string(scope, obj, "mode", mode);
    let short = nid
        .short_name()
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_else(|_| name.to_ascii_lowercase());
    set_string(scope, obj, "name", &short);
    set_val(
        scope,
        obj,
        "nid",
        v8::Integer::new(scope, nid.as_raw()).into(),
    );
    if mode != "stream" {
        set_val(
            scope,
            obj,
            "blockSize",
            v8::Integer::new(scope, c.block_size() as i32).into(),
        );
    }
    let iv = c.iv_length();
    if iv != 0 {
        set_val(
            scope,
            obj,
            "ivLength",
            v8::Integer::new(scope, iv as i32).into(),
        );
    }
    set_val(
        scope,
        obj,
        "keyLength",
        v8::Integer::new(scope, c.key_length() as i32).into(),
    );
    rv.set(obj.into());
}
