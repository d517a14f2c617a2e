//! Asymmetric keys for `crypto`: import (PEM, DER, JWK components), export (PEM/DER in
//! pkcs1, pkcs8, spki and sec1, optionally encrypted; JWK) and details, on OpenSSL; what is
//! done with them (signatures, RSA encryption, key agreement, key generation) is in
//! `crypto_ops.rs`.
//!
//! Keys carry no native state: a `KeyObject` in JavaScript holds its key as DER (SPKI for
//! public keys, PKCS#8 for private ones) and each call parses it again — microseconds next
//! to any signature — so nothing needs freeing and nothing outlives its call.

use base64::Engine;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, Private, Public};
use openssl::rsa::{Rsa, RsaPrivateKeyBuilder};

use super::super::js_values::{make_error, set_string, set_val, throw};
use super::bytes::{alloc_copy, bytes_arg, bytes_of, index_arg, Bytes};
use super::crypto::{name_arg, return_bytes, table, throw_code, throw_ossl, CACHE_ENTRIES};

pub(super) fn install(
    scope: &mut v8::PinScope<'_, '_>,
    obj: v8::Local<'_, v8::Object>,
) -> Result<(), String> {
    super::set_fn(scope, obj, "keyImport", guarded!(key_import))?;
    super::set_fn(scope, obj, "keyDetails", guarded!(key_details))?;
    super::set_fn(scope, obj, "keyExport", guarded!(key_export))?;
    super::set_fn(scope, obj, "keyJwk", guarded!(key_jwk))?;
    super::set_fn(scope, obj, "keyFromJwk", guarded!(key_from_jwk))?;
    super::set_fn(scope, obj, "keyPublic", guarded!(key_public))?;
    super::crypto_ops::install(scope, obj)
}

/// A parsed key of either kind.
#[derive(Clone)]
pub(super) enum Key {
    Public(PKey<Public>),
    Private(PKey<Private>),
}

impl Key {
    fn id(&self) -> Id {
        match self {
            Key::Public(k) => k.id(),
            Key::Private(k) => k.id(),
        }
    }
    fn spki(&self) -> Result<Vec<u8>, ErrorStack> {
        match self {
            Key::Public(k) => k.public_key_to_der(),
            Key::Private(k) => k.public_key_to_der(),
        }
    }
}

/// `kind` 0: SPKI DER of a public key; 1: PKCS#8 DER of a private key.
fn parse_key(kind: v8::Local<'_, v8::Value>, der: Bytes) -> Result<Key, ErrorStack> {
    if kind.is_true() || index_arg(kind, 1) == Some(1) {
        PKey::private_key_from_pkcs8(der.as_slice()).map(Key::Private)
    } else {
        PKey::public_key_from_der(der.as_slice()).map(Key::Public)
    }
}

pub(super) fn key_arg(
    scope: &mut v8::PinScope<'_, '_>,
    kind: v8::Local<'_, v8::Value>,
    der: v8::Local<'_, v8::Value>,
) -> Option<Key> {
    let der = bytes_arg(scope, der, "key")?;
    let private = kind.is_true() || index_arg(kind, 1) == Some(1);
    let bytes = der.as_slice();
    let cached = table(scope).and_then(|t| {
        t.keys
            .iter()
            .find(|(p, d, _)| *p == private && d.as_slice() == bytes)
            .map(|(_, _, k)| k.clone())
    });
    if cached.is_some() {
        return cached;
    }
    match parse_key(kind, der) {
        Ok(k) => {
            if let Some(t) = table(scope) {
                if t.keys.len() >= CACHE_ENTRIES {
                    t.keys.remove(0);
                }
                t.keys.push((private, bytes.to_vec(), k.clone()));
            }
            Some(k)
        }
        Err(e) => {
            throw_ossl(scope, &e, "invalid key");
            None
        }
    }
}

fn type_name(id: Id) -> &'static str {
    match id {
        Id::RSA => "rsa",
        Id::RSA_PSS => "rsa-pss",
        Id::DSA => "dsa",
        Id::DH => "dh",
        Id::EC => "ec",
        Id::ED25519 => "ed25519",
        Id::ED448 => "ed448",
        Id::X25519 => "x25519",
        Id::X448 => "x448",
        _ => "",
    }
}

/// Returns `[kind, der]` to JavaScript: `der` through `alloc`.
fn return_key(
    scope: &mut v8::PinScope<'_, '_>,
    key: Result<Key, ErrorStack>,
    alloc: v8::Local<'_, v8::Value>,
    rv: &mut v8::ReturnValue<'_, v8::Value>,
) {
    let encoded = key.and_then(|k| match &k {
        Key::Public(p) => p.public_key_to_der().map(|d| (0, d)),
        Key::Private(p) => p.private_key_to_pkcs8().map(|d| (1, d)),
    });
    match encoded {
        Ok((kind, der)) => {
            let Some(buf) = alloc_copy(scope, alloc, &der) else {
                return;
            };
            let kind = v8::Integer::new(scope, kind).into();
            let arr = v8::Array::new_with_elements(scope, &[kind, buf]);
            rv.set(arr.into());
        }
        Err(e) => throw_ossl(scope, &e, "invalid key"),
    }
}

/// `keyImport(data, format, type, wantPublic, passphrase|null, alloc)`: a key from PEM or
/// DER as `[kind, der]`. `wantPublic` also takes a private key or a certificate and keeps
/// their public key, as `createPublicKey` does.
fn key_import(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(data) = bytes_arg(scope, args.get(0), "key") else {
        return;
    };
    let format = name_arg(scope, args.get(1)).unwrap_or_default();
    let ty = name_arg(scope, args.get(2)).unwrap_or_default();
    let want_public = args.get(3).is_true();
    let pass = bytes_of(args.get(4)).map(|b| b.as_slice().to_vec());
    let input = data.as_slice();
    if format == "pem" {
        let text = String::from_utf8_lossy(input);
        let encrypted = text.contains("ENCRYPTED");
        if encrypted && pass.is_none() {
            // What Node's OpenSSL answers when its password callback has nothing to give.
            let err = make_error(
                scope,
                "Error",
                "error:07880109:common libcrypto routines::interrupted or cancelled",
            );
            if let Ok(obj) = v8::Local::<v8::Object>::try_from(err) {
                set_string(scope, obj, "library", "common libcrypto routines");
                set_string(scope, obj, "reason", "interrupted or cancelled");
                set_string(
                    scope,
                    obj,
                    "code",
                    "ERR_OSSL_CRYPTO_INTERRUPTED_OR_CANCELLED",
                );
            }
            scope.throw_exception(err);
            return;
        }
        let pass = pass.unwrap_or_default();
        let key = if want_public && text.contains("-----BEGIN CERTIFICATE-----") {
            openssl::x509::X509::from_pem(input)
                .and_then(|c| c.public_key())
                .map(Key::Public)
        } else if want_public && text.contains("-----BEGIN RSA PUBLIC KEY-----") {
            Rsa::public_key_from_pem_pkcs1(input)
                .and_then(PKey::from_rsa)
                .map(Key::Public)
        } else if want_public && text.contains("PUBLIC KEY-----") {
            PKey::public_key_from_pem(input).map(Key::Public)
        } else {
            PKey::private_key_from_pem_passphrase(input, &pass).map(|k| {
                if want_public {
                    match k
                        .public_key_to_der()
                        .and_then(|d| PKey::public_key_from_der(&d))
                    {
                        Ok(p) => Key::Public(p),
                        Err(_) => Key::Private(k),
                    }
                } else {
                    Key::Private(k)
                }
            })
        };
        return return_key(scope, key, args.get(5), &mut rv);
    }
    let key = match (ty.as_str(), want_public) {
        ("spki", true) => PKey::public_key_from_der(input).map(Key::Public),
        ("pkcs1", true) => Rsa::public_key_from_der_pkcs1(input)
            .and_then(PKey::from_rsa)
            .map(Key::Public),
        ("pkcs1", false) => Rsa::private_key_from_der(input)
            .and_then(PKey::from_rsa)
            .map(Key::Private),
        ("sec1", false) => EcKey::private_key_from_der(input)
            .and_then(PKey::from_ec_key)
            .map(Key::Private),
        ("pkcs8", false) => match &pass {
            Some(p) => PKey::private_key_from_pkcs8_passphrase(input, p).map(Key::Private),
            None => PKey::private_key_from_pkcs8(input).map(Key::Private),
        },
        // A private key where a public one is wanted: keep its public half.
        (_, true) => PKey::private_key_from_der(input)
            .and_then(|k| k.public_key_to_der())
            .and_then(|d| PKey::public_key_from_der(&d))
            .map(Key::Public),
        _ => {
            return throw_code(
                scope,
                "TypeError",
                "ERR_INVALID_ARG_VALUE",
                &format!("The property 'options.type' is invalid. Received '{ty}'"),
            )
        }
    };
    return_key(scope, key, args.get(5), &mut rv)
}

/// `keyDetails(kind, der)`: `{ type, modulusLength?, publicExponent?, divisorLength?,
/// namedCurve? }` (publicExponent as a decimal string).
fn key_details(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(key) = key_arg(scope, args.get(0), args.get(1)) else {
        return;
    };
    let obj = v8::Object::new(scope);
    set_string(scope, obj, "type", type_name(key.id()));
    let num = |scope: &mut v8::PinScope<'_, '_>, name: &str, n: u32| {
        let v = v8::Integer::new_from_unsigned(scope, n).into();
        set_val(scope, obj, name, v);
    };
    let details = match &key {
        Key::Public(k) => details_of(scope, k, obj, &num),
        Key::Private(k) => details_of(scope, k, obj, &num),
    };
    match details {
        Ok(()) => rv.set(obj.into()),
        Err(e) => throw_ossl(scope, &e, "key details"),
    }
}

fn details_of<T: HasPublic>(
    scope: &mut v8::PinScope<'_, '_>,
    k: &PKey<T>,
    obj: v8::Local<'_, v8::Object>,
    num: &dyn Fn(&mut v8::PinScope<'_, '_>, &str, u32),
) -> Result<(), ErrorStack> {
    match k.id() {
        Id::RSA | Id::RSA_PSS => {
            let rsa = k.rsa()?;
            num(scope, "modulusLength", rsa.n().num_bits() as u32);
            let e = rsa.e().to_dec_str()?;
            set_string(scope, obj, "publicExponent", &e);
        }
        Id::DSA => {
            let dsa = k.dsa()?;
            num(scope, "modulusLength", dsa.p().num_bits() as u32);
            num(scope, "divisorLength", dsa.q().num_bits() as u32);
        }
        Id::EC => {
            let ec = k.ec_key()?;
            if let Some(nid) = ec.group().curve_name() {
                set_string(scope, obj, "namedCurve", nid.short_name().unwrap_or(""));
            }
        }
        _ => {}
    }
    Ok(())
}

fn symm_cipher(name: &str) -> Option<openssl::symm::Cipher> {
    if name.is_empty() || name.contains('\0') {
        return None;
    }
    let c = openssl::cipher::Cipher::fetch(None, name, None).ok()?;
    openssl::symm::Cipher::from_nid(c.nid())
}

/// `keyExport(kind, der, format, type, cipher|null, passphrase|null, alloc)`: PEM text or
/// DER bytes.
fn key_export(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(key) = key_arg(scope, args.get(0), args.get(1)) else {
        return;
    };
    let pem = name_arg(scope, args.get(2)).as_deref() == Some("pem");
    let ty = name_arg(scope, args.get(3)).unwrap_or_default();
    let cipher_name = name_arg(scope, args.get(4));
    let pass = bytes_of(args.get(5)).map(|b| b.as_slice().to_vec());
    let cipher = match &cipher_name {
        Some(n) => match symm_cipher(n) {
            Some(c) => Some(c),
            None => {
                return throw_code(
                    scope,
                    "Error",
                    "ERR_CRYPTO_UNKNOWN_CIPHER",
                    "Unknown cipher",
                )
            }
        },
        None => None,
    };
    let enc = cipher.zip(pass);
    let out: Result<Vec<u8>, ErrorStack> = match (&key, ty.as_str()) {
        (Key::Public(k), "spki") => {
            if pem {
                k.public_key_to_pem()
            } else {
                k.public_key_to_der()
            }
        }
        (Key::Public(k), "pkcs1") => k.rsa().and_then(|r| {
            if pem {
                r.public_key_to_pem_pkcs1()
            } else {
                r.public_key_to_der_pkcs1()
            }
        }),
        (Key::Private(k), "pkcs8") => match (&enc, pem) {
            (Some((c, p)), true) => k.private_key_to_pem_pkcs8_passphrase(*c, p),
            (Some((c, p)), false) => k.private_key_to_pkcs8_passphrase(*c, p),
            (None, true) => k.private_key_to_pem_pkcs8(),
            (None, false) => k.private_key_to_pkcs8(),
        },
        (Key::Private(k), "pkcs1") => k.rsa().and_then(|r| match (&enc, pem) {
            (Some((c, p)), true) => r.private_key_to_pem_passphrase(*c, p),
            (None, true) => r.private_key_to_pem(),
            (_, false) => r.private_key_to_der(),
        }),
        (Key::Private(k), "sec1") => k.ec_key().and_then(|r| match (&enc, pem) {
            (Some((c, p)), true) => r.private_key_to_pem_passphrase(*c, p),
            (None, true) => r.private_key_to_pem(),
            (_, false) => r.private_key_to_der(),
        }),
        _ => {
            return throw_code(
                scope,
                "TypeError",
                "ERR_INVALID_ARG_VALUE",
                &format!("The property 'options.type' is invalid. Received '{ty}'"),
            )
        }
    };
    match out {
        Ok(bytes) if pem => {
            match v8::String::new_from_one_byte(scope, &bytes, v8::NewStringType::Normal) {
                Some(s) => rv.set(s.into()),
                None => throw(scope, "RangeError", "key too large"),
            }
        }
        Ok(bytes) => {
            if let Some(v) = alloc_copy(scope, args.get(6), &bytes) {
                rv.set(v);
            }
        }
        Err(e) => throw_ossl(scope, &e, "key export failed"),
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn jwk_curve(nid: Nid) -> Option<&'static str> {
    match nid {
        Nid::X9_62_PRIME256V1 => Some("P-256"),
        Nid::SECP384R1 => Some("P-384"),
        Nid::SECP521R1 => Some("P-521"),
        Nid::SECP256K1 => Some("secp256k1"),
        _ => None,
    }
}

/// `keyJwk(kind, der)`: the JWK members of an RSA, EC or OKP key, in Node's order.
fn key_jwk(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(key) = key_arg(scope, args.get(0), args.get(1)) else {
        return;
    };
    let mut members: Vec<(&str, String)> = Vec::new();
    let r = (|| -> Result<Result<(), String>, ErrorStack> {
        match key.id() {
            Id::RSA => {
                let (n, e, private) = match &key {
                    Key::Public(k) => {
                        let r = k.rsa()?;
                        (r.n().to_vec(), r.e().to_vec(), None)
                    }
                    Key::Private(k) => {
                        let r = k.rsa()?;
                        let part = |b: Option<&openssl::bn::BigNumRef>| {
                            b.map(|x| x.to_vec()).unwrap_or_default()
                        };
                        let private = [
                            r.d().to_vec(),
                            part(r.p()),
                            part(r.q()),
                            part(r.dmp1()),
                            part(r.dmq1()),
                            part(r.iqmp()),
                        ];
                        (r.n().to_vec(), r.e().to_vec(), Some(private))
                    }
                };
                members.push(("kty", "RSA".into()));
                members.push(("n", b64url(&n)));
                members.push(("e", b64url(&e)));
                if let Some(p) = private {
                    for (name, v) in ["d", "p", "q", "dp", "dq", "qi"].into_iter().zip(p) {
                        members.push((name, b64url(&v)));
                    }
                }
            }
            Id::EC => {
                let (group_nid, x, y, d) = match &key {
                    Key::Public(k) => {
                        let ec = k.ec_key()?;
                        ec_coords(&ec.group().to_owned_group()?, ec.public_key(), None)?
                    }
                    Key::Private(k) => {
                        let ec = k.ec_key()?;
                        ec_coords(
                            &ec.group().to_owned_group()?,
                            ec.public_key(),
                            Some(ec.private_key()),
                        )?
                    }
                };
                let Some(crv) = group_nid.and_then(jwk_curve) else {
                    let name = group_nid
                        .and_then(|n| n.short_name().ok())
                        .unwrap_or("unknown");
                    return Ok(Err(format!("Unsupported JWK EC curve: {name}.")));
                };
                members.push(("kty", "EC".into()));
                members.push(("x", b64url(&x)));
                members.push(("y", b64url(&y)));
                members.push(("crv", crv.into()));
                if let Some(d) = d {
                    members.push(("d", b64url(&d)));
                }
            }
            Id::ED25519 | Id::ED448 | Id::X25519 | Id::X448 => {
                let crv = match key.id() {
                    Id::ED25519 => "Ed25519",
                    Id::ED448 => "Ed448",
                    Id::X25519 => "X25519",
                    _ => "X448",
                };
                members.push(("crv", crv.into()));
                match &key {
                    Key::Public(k) => members.push(("x", b64url(&k.raw_public_key()?))),
                    Key::Private(k) => {
                        members.push(("d", b64url(&k.raw_private_key()?)));
                        members.push(("x", b64url(&k.raw_public_key()?)));
                    }
                }
                members.push(("kty", "OKP".into()));
            }
            _ => return Ok(Err("Unsupported JWK key type".into())),
        }
        Ok(Ok(()))
    })();
    match r {
        Ok(Ok(())) => {
            let obj = v8::Object::new(scope);
            for (k, v) in &members {
                set_string(scope, obj, k, v);
            }
            rv.set(obj.into());
        }
        Ok(Err(msg)) => throw_code(scope, "Error", "ERR_CRYPTO_JWK_UNSUPPORTED_KEY_TYPE", &msg),
        Err(e) => throw_ossl(scope, &e, "JWK export failed"),
    }
}

trait ToOwnedGroup {
    fn to_owned_group(&self) -> Result<EcGroup, ErrorStack>;
}
impl ToOwnedGroup for openssl::ec::EcGroupRef {
    fn to_owned_group(&self) -> Result<EcGroup, ErrorStack> {
        match self.curve_name() {
            Some(nid) => EcGroup::from_curve_name(nid),
            None => Err(ErrorStack::get()),
        }
    }
}

type EcCoords = (Option<Nid>, Vec<u8>, Vec<u8>, Option<Vec<u8>>);

fn ec_coords(
    group: &EcGroup,
    point: &openssl::ec::EcPointRef,
    private: Option<&openssl::bn::BigNumRef>,
) -> Result<EcCoords, ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    let mut x = BigNum::new()?;
    let mut y = BigNum::new()?;
    point.affine_coordinates(group, &mut x, &mut y, &mut ctx)?;
    let size = group.degree().div_ceil(8) as i32;
    let d = match private {
        Some(d) => Some(d.to_vec_padded(size)?),
        None => None,
    };
    Ok((
        group.curve_name(),
        x.to_vec_padded(size)?,
        y.to_vec_padded(size)?,
        d,
    ))
}

pub(super) fn curve_nid(name: &str) -> Option<Nid> {
    let name = match name {
        "P-192" => "prime192v1",
        "P-224" => "secp224r1",
        "P-256" => "prime256v1",
        "P-384" => "secp384r1",
        "P-521" => "secp521r1",
        n => n,
    };
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: a NUL-terminated name; NID_undef (0) for unknown names.
    let nid = unsafe { openssl_sys::OBJ_sn2nid(cname.as_ptr()) };
    (nid != 0).then(|| Nid::from_raw(nid))
}

/// `keyFromJwk(kty, crv, isPrivate, parts[], alloc)`: `[kind, der]` from decoded JWK
/// members (RSA: n e d p q dp dq qi; EC: x y d; OKP: x d).
fn key_from_jwk(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let kty = name_arg(scope, args.get(0)).unwrap_or_default();
    let crv = name_arg(scope, args.get(1)).unwrap_or_default();
    let private = args.get(2).is_true();
    let Ok(parts) = v8::Local::<v8::Array>::try_from(args.get(3)) else {
        return throw_code(
            scope,
            "TypeError",
            "ERR_CRYPTO_INVALID_JWK",
            "Invalid JWK data",
        );
    };
    let mut p: Vec<Vec<u8>> = Vec::new();
    for i in 0..parts.length().min(8) {
        let Some(v) = parts.get_index(scope, i) else {
            return;
        };
        p.push(
            bytes_of(v)
                .map(|b| b.as_slice().to_vec())
                .unwrap_or_default(),
        );
    }
    let get = |i: usize| p.get(i).cloned().unwrap_or_default();
    let bn = |i: usize| BigNum::from_slice(&get(i));
    let key: Result<Key, ErrorStack> = match kty.as_str() {
        "RSA" if private => (|| {
            let b = RsaPrivateKeyBuilder::new(bn(0)?, bn(1)?, bn(2)?)?
                .set_factors(bn(3)?, bn(4)?)?
                .set_crt_params(bn(5)?, bn(6)?, bn(7)?)?;
            PKey::from_rsa(b.build()).map(Key::Private)
        })(),
        "RSA" => Rsa::from_public_components(
            match bn(0) {
                Ok(v) => v,
                Err(e) => return throw_ossl(scope, &e, "bad JWK"),
            },
            match bn(1) {
                Ok(v) => v,
                Err(e) => return throw_ossl(scope, &e, "bad JWK"),
            },
        )
        .and_then(PKey::from_rsa)
        .map(Key::Public),
        "EC" => {
            let nid = match crv.as_str() {
                "P-256" => Some(Nid::X9_62_PRIME256V1),
                "P-384" => Some(Nid::SECP384R1),
                "P-521" => Some(Nid::SECP521R1),
                "secp256k1" => Some(Nid::SECP256K1),
                _ => None,
            };
            let Some(nid) = nid else {
                return throw_code(
                    scope,
                    "TypeError",
                    "ERR_CRYPTO_INVALID_JWK",
                    "Invalid JWK EC key",
                );
            };
            (|| {
                let group = EcGroup::from_curve_name(nid)?;
                let public = EcKey::from_public_key_affine_coordinates(&group, &*bn(0)?, &*bn(1)?)?;
                if private {
                    let ec = EcKey::from_private_components(&group, &*bn(2)?, public.public_key())?;
                    ec.check_key()?;
                    PKey::from_ec_key(ec).map(Key::Private)
                } else {
                    PKey::from_ec_key(public).map(Key::Public)
                }
            })()
        }
        "OKP" => {
            let id = match crv.as_str() {
                "Ed25519" => Id::ED25519,
                "Ed448" => Id::ED448,
                "X25519" => Id::X25519,
                "X448" => Id::X448,
                _ => {
                    return throw_code(
                        scope,
                        "TypeError",
                        "ERR_CRYPTO_INVALID_JWK",
                        "Invalid JWK data",
                    )
                }
            };
            if private {
                PKey::private_key_from_raw_bytes(&get(1), id).map(Key::Private)
            } else {
                PKey::public_key_from_raw_bytes(&get(0), id).map(Key::Public)
            }
        }
        _ => {
            return throw_code(
                scope,
                "TypeError",
                "ERR_CRYPTO_INVALID_JWK",
                "Invalid JWK data",
            )
        }
    };
    if key.is_err() {
        let _ = ErrorStack::get();
        let msg = if kty == "OKP" {
            "Invalid JWK data".to_string()
        } else {
            format!("Invalid JWK {kty} key")
        };
        return throw_code(scope, "TypeError", "ERR_CRYPTO_INVALID_JWK", &msg);
    }
    return_key(scope, key, args.get(4), &mut rv)
}

/// `keyPublic(der, alloc)`: the SPKI DER of a private key's public half.
fn key_public(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let one = v8::Integer::new(scope, 1).into();
    let Some(key) = key_arg(scope, one, args.get(0)) else {
        return;
    };
    return_bytes(scope, args.get(1), key.spki(), "public key", &mut rv);
}
