//! What `crypto` does with asymmetric keys, on OpenSSL: signatures (RSA PKCS#1 and PSS,
//! ECDSA in DER or IEEE-P1363, Ed25519/Ed448, DSA), RSA encryption both ways, key agreement
//! (ECDH, X25519/X448, DH) and key generation. Keys come in and go out through
//! `crypto_keys.rs`.

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::md::{Md, MdRef};
use openssl::md_ctx::MdCtx;
use openssl::pkey::{HasPublic, Id, PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::{Padding, Rsa};
use openssl::sign::RsaPssSaltlen;

use super::bytes::{alloc_copy, bytes_arg, bytes_of, index_arg};
use super::crypto::{
    digest_by_name, name_arg, return_bytes, throw_code, throw_invalid_digest, throw_ossl,
};

use super::crypto_keys::{curve_nid, key_arg, Key};

/// Largest RSA/DSA modulus a code block may generate: an 8192-bit RSA key can take a
/// minute, and a native call cannot be interrupted.
pub(super) const MAX_KEYGEN_BITS: u32 = 4096;

pub(super) fn install(
    scope: &mut v8::PinScope<'_, '_>,
    obj: v8::Local<'_, v8::Object>,
) -> Result<(), String> {
    super::set_fn(scope, obj, "sign", guarded!(sign))?;
    super::set_fn(scope, obj, "verify", guarded!(verify))?;
    super::set_fn(scope, obj, "rsaCrypt", guarded!(rsa_crypt))?;
    super::set_fn(scope, obj, "derive", guarded!(derive))?;
    super::set_fn(scope, obj, "generateKeyPair", guarded!(generate_key_pair))?;
    Ok(())
}

fn md_ref(name: &str) -> Option<&'static MdRef> {
    let md = digest_by_name(name)?;
    Md::from_nid(md.type_())
}

/// The digest argument of sign and verify: `Ok(None)` for null/undefined (the key type's
/// own, e.g. Ed25519), `Err` once `ERR_CRYPTO_INVALID_DIGEST` was thrown.
fn optional_digest(
    scope: &mut v8::PinScope<'_, '_>,
    v: v8::Local<'_, v8::Value>,
) -> Result<Option<&'static MdRef>, ()> {
    if v.is_null_or_undefined() {
        return Ok(None);
    }
    let name = name_arg(scope, v).unwrap_or_default();
    match md_ref(&name) {
        Some(m) => Ok(Some(m)),
        None => {
            throw_invalid_digest(scope, &name);
            Err(())
        }
    }
}

/// Signature options shared by sign and verify: `(padding, saltLength, p1363)`.
struct SigOptions {
    padding: Option<i32>,
    salt: Option<i32>,
    p1363: bool,
}

fn sig_options(
    scope: &mut v8::PinScope<'_, '_>,
    padding: v8::Local<'_, v8::Value>,
    salt: v8::Local<'_, v8::Value>,
    p1363: v8::Local<'_, v8::Value>,
) -> SigOptions {
    let int = |scope: &mut v8::PinScope<'_, '_>, v: v8::Local<'_, v8::Value>| {
        v.number_value(scope)
            .filter(|n| n.is_finite() && n.fract() == 0.0 && n.abs() < 1e9)
            .map(|n| n as i32)
    };
    SigOptions {
        padding: int(scope, padding),
        salt: int(scope, salt),
        p1363: p1363.is_true(),
    }
}

fn configure<T>(
    ctx: &mut openssl::pkey_ctx::PkeyCtxRef<T>,
    id: Id,
    o: &SigOptions,
) -> Result<(), ErrorStack> {
    if id == Id::RSA || id == Id::RSA_PSS {
        if let Some(p) = o.padding {
            ctx.set_rsa_padding(Padding::from_raw(p))?;
        }
        let pss = o.padding == Some(Padding::PKCS1_PSS.as_raw()) || (id == Id::RSA_PSS);
        if pss {
            if let Some(s) = o.salt {
                ctx.set_rsa_pss_saltlen(match s {
                    -1 => RsaPssSaltlen::DIGEST_LENGTH,
                    -2 => RsaPssSaltlen::MAXIMUM_LENGTH,
                    n => RsaPssSaltlen::custom(n),
                })?;
            }
        }
    }
    Ok(())
}

fn order_size<T: HasPublic>(k: &PKey<T>) -> Option<i32> {
    let ec = k.ec_key().ok()?;
    let mut order = BigNum::new().ok()?;
    let mut ctx = BigNumContext::new().ok()?;
    ec.group().order(&mut order, &mut ctx).ok()?;
    Some(order.num_bytes())
}

/// `sign(digest|null, data, der, padding, saltLength, p1363, alloc)`: a signature with a
/// private key (PKCS#8 DER).
fn sign(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Ok(md) = optional_digest(scope, args.get(0)) else {
        return;
    };
    let Some(data) = bytes_arg(scope, args.get(1), "data") else {
        return;
    };
    let one = v8::Integer::new(scope, 1).into();
    let Some(Key::Private(key)) = key_arg(scope, one, args.get(2)) else {
        return;
    };
    let o = sig_options(scope, args.get(3), args.get(4), args.get(5));
    let r = (|| -> Result<Vec<u8>, ErrorStack> {
        let mut ctx = MdCtx::new()?;
        let pctx = ctx.digest_sign_init(md, &key)?;
        configure(pctx, key.id(), &o)?;
        let mut sig = Vec::new();
        ctx.digest_sign_to_vec(data.as_slice(), &mut sig)?;
        if o.p1363 && key.id() == Id::EC {
            if let Some(n) = order_size(&key) {
                let s = EcdsaSig::from_der(&sig)?;
                let mut out = s.r().to_vec_padded(n)?;
                out.extend(s.s().to_vec_padded(n)?);
                return Ok(out);
            }
        }
        Ok(sig)
    })();
    return_bytes(scope, args.get(6), r, "sign failed", &mut rv);
}

/// `verify(digest|null, data, kind, der, signature, padding, saltLength, p1363)`.
fn verify(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Ok(md) = optional_digest(scope, args.get(0)) else {
        return;
    };
    let Some(data) = bytes_arg(scope, args.get(1), "data") else {
        return;
    };
    let Some(key) = key_arg(scope, args.get(2), args.get(3)) else {
        return;
    };
    let Some(sig) = bytes_arg(scope, args.get(4), "signature") else {
        return;
    };
    let o = sig_options(scope, args.get(5), args.get(6), args.get(7));
    fn run<T: HasPublic>(
        key: &PKey<T>,
        md: Option<&MdRef>,
        data: &[u8],
        sig: &[u8],
        o: &SigOptions,
    ) -> Result<bool, ErrorStack> {
        let sig = if o.p1363 && key.id() == Id::EC {
            let Some(n) = order_size(key) else {
                return Ok(false);
            };
            if sig.len() != 2 * n as usize {
                return Ok(false);
            }
            let r = BigNum::from_slice(&sig[..n as usize])?;
            let s = BigNum::from_slice(&sig[n as usize..])?;
            EcdsaSig::from_private_components(r, s)?.to_der()?
        } else {
            sig.to_vec()
        };
        let mut ctx = MdCtx::new()?;
        let pctx = ctx.digest_verify_init(md, key)?;
        configure(pctx, key.id(), o)?;
        // A malformed signature is "false", as in Node.
        Ok(ctx.digest_verify(data, &sig).unwrap_or(false))
    }
    let r = match &key {
        Key::Public(k) => run(k, md, data.as_slice(), sig.as_slice(), &o),
        Key::Private(k) => run(k, md, data.as_slice(), sig.as_slice(), &o),
    };
    // Errors OpenSSL leaves behind for a bad signature are not the call's errors.
    let _ = ErrorStack::get();
    match r {
        Ok(ok) => rv.set_bool(ok),
        Err(e) => throw_ossl(scope, &e, "verify failed"),
    }
}

/// `rsaCrypt(op, kind, der, padding, oaepHash|null, label|null, data, alloc)`; op 0
/// publicEncrypt, 1 privateDecrypt, 2 privateEncrypt, 3 publicDecrypt.
fn rsa_crypt(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let op = index_arg(args.get(0), 3).unwrap_or(0);
    let Some(key) = key_arg(scope, args.get(1), args.get(2)) else {
        return;
    };
    let padding = args
        .get(3)
        .number_value(scope)
        .filter(|n| n.is_finite() && (0.0..=10.0).contains(n))
        .map_or(Padding::PKCS1_OAEP, |n| Padding::from_raw(n as i32));
    let oaep = if args.get(4).is_null_or_undefined() {
        None
    } else {
        let name = name_arg(scope, args.get(4)).unwrap_or_default();
        match md_ref(&name) {
            Some(m) => Some(m),
            None => {
                return throw_code(
                    scope,
                    "TypeError",
                    "ERR_OSSL_EVP_INVALID_DIGEST",
                    "Invalid digest used",
                )
            }
        }
    };
    let label = bytes_of(args.get(5)).map(|b| b.as_slice().to_vec());
    let Some(data) = bytes_arg(scope, args.get(6), "buffer") else {
        return;
    };
    fn options<T>(
        ctx: &mut PkeyCtx<T>,
        padding: Padding,
        oaep: Option<&MdRef>,
        label: Option<&[u8]>,
    ) -> Result<(), ErrorStack> {
        ctx.set_rsa_padding(padding)?;
        if padding == Padding::PKCS1_OAEP {
            if let Some(md) = oaep {
                ctx.set_rsa_oaep_md(md)?;
            }
            if let Some(l) = label.filter(|l| !l.is_empty()) {
                ctx.set_rsa_oaep_label(l)?;
            }
        }
        Ok(())
    }
    fn run_public<T: HasPublic>(
        mut ctx: PkeyCtx<T>,
        op: usize,
        padding: Padding,
        oaep: Option<&MdRef>,
        label: Option<&[u8]>,
        data: &[u8],
    ) -> Result<Vec<u8>, ErrorStack> {
        let mut out = Vec::new();
        if op == 0 {
            ctx.encrypt_init()?;
            options(&mut ctx, padding, oaep, label)?;
            ctx.encrypt_to_vec(data, &mut out)?;
        } else {
            ctx.verify_recover_init()?;
            options(&mut ctx, padding, oaep, label)?;
            let mut buf = vec![0u8; 16 * 1024];
            let n = ctx.verify_recover(data, Some(&mut buf))?;
            buf.truncate(n);
            out = buf;
        }
        Ok(out)
    }
    fn run_private(
        mut ctx: PkeyCtx<Private>,
        op: usize,
        padding: Padding,
        oaep: Option<&MdRef>,
        label: Option<&[u8]>,
        data: &[u8],
    ) -> Result<Vec<u8>, ErrorStack> {
        if op == 0 || op == 3 {
            return run_public(ctx, op, padding, oaep, label, data);
        }
        let mut out = Vec::new();
        if op == 1 {
            ctx.decrypt_init()?;
            options(&mut ctx, padding, oaep, label)?;
            ctx.decrypt_to_vec(data, &mut out)?;
        } else {
            ctx.sign_init()?;
            options(&mut ctx, padding, oaep, label)?;
            ctx.sign_to_vec(data, &mut out)?;
        }
        Ok(out)
    }
    let r = match (&key, op) {
        (Key::Private(k), _) => PkeyCtx::new(k)
            .and_then(|c| run_private(c, op, padding, oaep, label.as_deref(), data.as_slice())),
        (Key::Public(k), 0 | 3) => PkeyCtx::new(k)
            .and_then(|c| run_public(c, op, padding, oaep, label.as_deref(), data.as_slice())),
        (Key::Public(_), _) => {
            return throw_code(
                scope,
                "TypeError",
                "ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE",
                "Invalid key object type public, expected private.",
            )
        }
    };
    return_bytes(scope, args.get(7), r, "RSA operation failed", &mut rv);
}

/// `derive(privateDer, publicDer, alloc)`: the shared secret of ECDH, X25519 or X448.
fn derive(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let one = v8::Integer::new(scope, 1).into();
    let zero = v8::Integer::new(scope, 0).into();
    let Some(Key::Private(private)) = key_arg(scope, one, args.get(0)) else {
        return;
    };
    let Some(Key::Public(public)) = key_arg(scope, zero, args.get(1)) else {
        return;
    };
    let r = openssl::derive::Deriver::new(&private).and_then(|mut d| {
        d.set_peer(&public)?;
        d.derive_to_vec()
    });
    return_bytes(scope, args.get(2), r, "key agreement failed", &mut rv);
}

/// `generateKeyPair(type, modulusLength|curve, publicExponent, divisorLength, alloc)`:
/// `[spkiDer, pkcs8Der]`.
fn generate_key_pair(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let ty = name_arg(scope, args.get(0)).unwrap_or_default();
    let bits = |v: v8::Local<'_, v8::Value>| index_arg(v, u32::MAX as usize).map(|n| n as u32);
    let key: Result<PKey<Private>, ErrorStack> = match ty.as_str() {
        "rsa" | "rsa-pss" => {
            let Some(n) = bits(args.get(1)).filter(|n| (512..=MAX_KEYGEN_BITS).contains(n)) else {
                return throw_code(scope, "RangeError", "ERR_OUT_OF_RANGE", &format!("The value of \"options.modulusLength\" is out of range. It must be >= 512 && <= {MAX_KEYGEN_BITS} in a keel code block (key generation cannot be interrupted)"));
            };
            let e = bits(args.get(2)).unwrap_or(65537);
            (|| {
                let e = BigNum::from_u32(e)?;
                if ty == "rsa" {
                    Rsa::generate_with_e(n, &e).and_then(PKey::from_rsa)
                } else {
                    let mut ctx = PkeyCtx::new_id(Id::RSA_PSS)?;
                    ctx.keygen_init()?;
                    ctx.set_rsa_keygen_bits(n)?;
                    ctx.set_rsa_keygen_pubexp(&e)?;
                    ctx.keygen()
                }
            })()
        }
        "dsa" => {
            let Some(n) = bits(args.get(1)).filter(|n| (512..=MAX_KEYGEN_BITS).contains(n)) else {
                return throw_code(scope, "RangeError", "ERR_OUT_OF_RANGE", &format!("The value of \"options.modulusLength\" is out of range. It must be >= 512 && <= {MAX_KEYGEN_BITS} in a keel code block (key generation cannot be interrupted)"));
            };
            (|| {
                let mut ctx = PkeyCtx::new_id(Id::DSA)?;
                ctx.paramgen_init()?;
                ctx.set_dsa_paramgen_bits(n)?;
                let params = ctx.paramgen()?;
                let mut kctx = PkeyCtx::new(&params)?;
                kctx.keygen_init()?;
                kctx.keygen()
            })()
        }
        "ec" => {
            let name = name_arg(scope, args.get(1)).unwrap_or_default();
            let Some(nid) = curve_nid(&name) else {
                return throw_code(
                    scope,
                    "TypeError",
                    "ERR_CRYPTO_INVALID_CURVE",
                    "Invalid EC curve name",
                );
            };
            match EcGroup::from_curve_name(nid) {
                Ok(g) => EcKey::generate(&g).and_then(PKey::from_ec_key),
                Err(_) => {
                    return throw_code(
                        scope,
                        "TypeError",
                        "ERR_CRYPTO_INVALID_CURVE",
                        "Invalid EC curve name",
                    )
                }
            }
        }
        "ed25519" => PKey::generate_ed25519(),
        "ed448" => PKey::generate_ed448(),
        "x25519" => PKey::generate_x25519(),
        "x448" => PKey::generate_x448(),
        _ => {
            return throw_code(
                scope,
                "TypeError",
                "ERR_INVALID_ARG_VALUE",
                &format!("The argument 'type' must be a supported key type. Received '{ty}'"),
            )
        }
    };
    let ders = key.and_then(|k| Ok((k.public_key_to_der()?, k.private_key_to_pkcs8()?)));
    match ders {
        Ok((public, private)) => {
            let Some(p) = alloc_copy(scope, args.get(4), &public) else {
                return;
            };
            let Some(s) = alloc_copy(scope, args.get(4), &private) else {
                return;
            };
            let arr = v8::Array::new_with_elements(scope, &[p, s]);
            rv.set(arr.into());
        }
        Err(e) => throw_ossl(scope, &e, "key generation failed"),
    }
}
