//! Node compatibility of the executor's `Buffer` and `crypto`: each conformance file in
//! `tests/conformance/` runs under Node 20 (`node -e`, wrapped in an async function so its
//! `return` works) and through keel's `/flow/codeblock`; the two JSON results must be equal
//! case by case, which proves the expectations are Node's. A few cases are also pinned to
//! known values (RFC vectors, Node's error codes) so that keel is still checked where `node`
//! is missing (the test then says so and skips the comparison; CI has node).

use std::path::Path;

use crate::harness::{client, Keel, Spec};
use base64::Engine;
use serde_json::{json, Value};

const TOKEN: &str = "e2e-node-compat-token";

fn spec() -> Spec {
    Spec {
        extra: format!(
            "[executor]\npool_size = 1\nexecution_timeout = \"30s\"\naccess_tokens = [\"{TOKEN}\"]\n[executor.rate_limit]\nenabled = false\n"
        ),
        ..Default::default()
    }
}

async fn call(k: &Keel, code: &str) -> Value {
    let r = client()
        .post(k.url("/flow/codeblock"))
        .header("accessToken", TOKEN)
        .json(&json!({
            "input": {},
            "codebase64": base64::engine::general_purpose::STANDARD.encode(code),
            "timeout": 30000,
        }))
        .send()
        .await
        .expect("send");
    r.json().await.expect("json body")
}

async fn keel_result(k: &Keel, code: &str) -> Value {
    let body = call(k, code).await;
    assert_eq!(body["success"], json!(true), "{body}");
    body["result"].clone()
}

/// The file's result under Node, or `None` (with a note) when `node` is not installed.
async fn node_result(code: &str) -> Option<Value> {
    let wrapped = format!(
        "(async () => {{\n{code}\n}})().then((r) => process.stdout.write(JSON.stringify(r)), (e) => {{ console.error(e); process.exit(1); }})"
    );
    let out = tokio::process::Command::new("node")
        .arg("-e")
        .arg(wrapped)
        .output()
        .await;
    match out {
        Err(e) => {
            eprintln!("node_compat: node is not available ({e}); comparing with Node skipped");
            None
        }
        Ok(o) => {
            assert!(
                o.status.success(),
                "node failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            Some(serde_json::from_slice(&o.stdout).expect("node printed JSON"))
        }
    }
}

fn conformance(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs one conformance file both ways; returns keel's result.
async fn same_as_node(k: &Keel, file: &str) -> Value {
    let code = conformance(file);
    let keel = keel_result(k, &code).await;
    let cases = keel.as_object().expect("an object of cases");
    assert!(cases.len() > 100, "{file}: only {} cases", cases.len());
    if let Some(node) = node_result(&code).await {
        let node = node.as_object().expect("node: an object of cases");
        let mut differ = Vec::new();
        for key in node.keys().chain(cases.keys()) {
            if node.get(key) != cases.get(key) {
                differ.push(format!(
                    "{key}:\n  node: {}\n  keel: {}",
                    node.get(key).unwrap_or(&Value::Null),
                    cases.get(key).unwrap_or(&Value::Null)
                ));
            }
        }
        differ.dedup();
        assert!(
            differ.is_empty(),
            "{file}: {} of {} cases differ from Node:\n{}",
            differ.len(),
            node.len(),
            differ.join("\n")
        );
    }
    keel
}

fn code_of(v: &Value) -> &str {
    v["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn buffer_behaves_as_in_node() {
    let k = Keel::start(spec()).await;
    let r = same_as_node(&k, "buffer.js").await;
    assert_eq!(r["module.same"], json!(true));
    assert_eq!(
        r["toString.base64"],
        json!("aMOpbGxvIHfDtnJsZCDinJMg8J+YgA==")
    );
    assert_eq!(r["from.hex"]["hex"], json!(""));
    assert_eq!(
        r["base64.lenient"],
        json!([
            "68656c6c6f",
            "68656c6c6f",
            "41",
            "41",
            "41",
            "ffeffe",
            "ffeffe",
            "",
            "68656c6c6f",
            "68656c",
            "",
            "",
            "68656c6c6f",
            "61",
            "6162",
            "00"
        ])
    );
    assert_eq!(r["readUInt32LE.at0"], json!(0x0403_0201));
    assert_eq!(r["readBigInt64BE.at8"], json!("-433757350076153984n"));
    assert_eq!(r["toJSON"], json!({"type": "Buffer", "data": [1, 2, 255]}));
    assert_eq!(code_of(&r["alloc.negative"]), "ERR_OUT_OF_RANGE");
    assert_eq!(code_of(&r["from.number"]), "ERR_INVALID_ARG_TYPE");
    assert_eq!(
        code_of(&r["from.arrayBufferBadOffset"]),
        "ERR_BUFFER_OUT_OF_BOUNDS"
    );
    assert_eq!(code_of(&r["toString.badEncoding"]), "ERR_UNKNOWN_ENCODING");
    assert_eq!(code_of(&r["swap16.bad"]), "ERR_INVALID_BUFFER_SIZE");
    assert_eq!(code_of(&r["fill.invalidValue"]), "ERR_INVALID_ARG_VALUE");
    assert_eq!(r["readUInt32LE.pastEnd"]["threw"], json!("RangeError"));
}

#[tokio::test]
async fn crypto_behaves_as_in_node() {
    let k = Keel::start(spec()).await;
    let r = same_as_node(&k, "crypto.js").await;
    // FIPS 180 and RFC 4231 / RFC 6070 vectors.
    assert_eq!(
        r["hash.sha256"][0],
        json!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(
        r["hmac.vectors"][0],
        json!("f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
    );
    assert_eq!(
        r["pbkdf2Sync"][0]["hex"],
        json!("0c60c80f961f0e71f3a9b524af6012062fe037a6")
    );
    assert_eq!(r["gcm"][2], json!("gcm plaintext"));
    assert_eq!(r["sign.rsa"][1], json!(true));
    assert_eq!(r["sign.ed25519"][1], json!(true));
    assert_eq!(r["rsa.oaep"][1], json!("secret"));
    assert_eq!(r["dh.x25519"][1], json!(true));
    assert_eq!(code_of(&r["decipher.wrongKey"]), "ERR_OSSL_BAD_DECRYPT");
    assert_eq!(code_of(&r["cipher.keyLength"]), "ERR_CRYPTO_INVALID_KEYLEN");
    assert_eq!(code_of(&r["hash.finalized"]), "ERR_CRYPTO_HASH_FINALIZED");
    assert_eq!(code_of(&r["hmac.badDigest"]), "ERR_CRYPTO_INVALID_DIGEST");
    assert_eq!(code_of(&r["key.garbagePem"]), "ERR_OSSL_UNSUPPORTED");
    assert_eq!(
        code_of(&r["timingSafeEqual.length"]),
        "ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH"
    );
    assert_eq!(
        r["gcm.tampered"]["message"],
        json!("Unsupported state or unable to authenticate data")
    );
}

#[tokio::test]
async fn node_prefix_refused_modules_and_globals() {
    let k = Keel::start(spec()).await;
    let r = keel_result(
        &k,
        r#"
        const out = {};
        const err = (name) => { try { require(name); return 'loaded'; } catch (e) { return [e.code, e.message]; } };
        out.issue = [Buffer.from('hi').toString('base64'), require('crypto').createHash('sha256').update('hi').digest('hex')];
        out.prefix = [require('node:buffer').Buffer === Buffer, require('node:crypto') === require('crypto')];
        out.refused = ['fs', 'node:fs', 'path', 'child_process', 'os', 'process', 'net', 'worker_threads'].map(err);
        out.unknownBuiltin = err('node:nope');
        out.globals = [typeof Buffer, typeof crypto.getRandomValues, typeof crypto.randomUUID, typeof crypto.subtle.digest];
        return out;
        "#,
    )
    .await;
    assert_eq!(
        r["issue"],
        json!([
            "aGk=",
            "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
        ])
    );
    assert_eq!(r["prefix"], json!([true, true]));
    for refused in r["refused"].as_array().expect("array") {
        assert_eq!(refused[0], json!("ERR_ACCESS_DENIED"), "{refused}");
        assert!(
            refused[1]
                .as_str()
                .unwrap_or_default()
                .contains("not available in a code block"),
            "{refused}"
        );
    }
    assert_eq!(
        r["unknownBuiltin"],
        json!([
            "ERR_UNKNOWN_BUILTIN_MODULE",
            "No such built-in module: node:nope"
        ])
    );
    assert_eq!(
        r["globals"],
        json!(["function", "function", "function", "function"])
    );
    // Work a native cannot be interrupted in is capped, with a catchable error.
    let capped = call(
        &k,
        "return require('crypto').pbkdf2Sync('p', 's', 2 ** 30, 64, 'sha512')",
    )
    .await;
    assert_eq!(capped["success"], json!(false), "{capped}");
    assert_eq!(capped["error"]["type"], json!("RangeError"), "{capped}");
}

#[tokio::test]
async fn buffer_and_crypto_natives_answer_hostile_arguments_with_exceptions() {
    let k = Keel::start(spec()).await;
    let cases = [
        "return Buffer.alloc(4).utf8Write('x', 1e300)",
        "return Buffer.alloc(4).hexWrite('ffff', 2, 1e300)",
        "return Buffer.prototype.utf8Slice.call({}, 0, 1)",
        "return Buffer.prototype.hexSlice.call(new Uint16Array(4), 1, 7)",
        "return Buffer.prototype.base64Write.call(new DataView(new ArrayBuffer(4)), 'QUJD')",
        "const ab = new ArrayBuffer(8); const b = Buffer.from(ab); ab.transfer(); return [b.length, b.toString('hex'), b.indexOf(0), Buffer.compare(b, Buffer.alloc(0))]",
        "const ab = new ArrayBuffer(8, { maxByteLength: 16 }); const b = Buffer.from(ab); ab.resize(2); return [b.length, b.toString('base64'), b.fill(1).length]",
        "return Buffer.alloc(2 ** 31).length",
        "return 'x'.repeat(2 ** 27).length && Buffer.from('x'.repeat(2 ** 27)).toString('hex').length",
        "return Buffer.from('a').indexOf(Buffer.alloc(1 << 20), -1e300, 'ucs2')",
        "const c = require('crypto'); const h = c.createHash('sha256'); for (let i = 0; i < 20000; i++) c.createHash('md5'); return h.digest('hex')",
        "return require('crypto').createCipheriv('aes-128-gcm', Buffer.alloc(16), Buffer.alloc(1 << 20)).final().length",
        "return require('crypto').createPrivateKey({ key: Buffer.alloc(1 << 16, 0x30), format: 'der', type: 'pkcs8' })",
        "return require('crypto').scryptSync('p', 's', 16, { N: 2 ** 30, maxmem: 2 ** 40 })",
        "return require('crypto').generateKeyPairSync('rsa', { modulusLength: 65536 })",
        "return require('crypto').randomFillSync(new Float64Array(4), 1e300)",
        "return require('crypto').hkdfSync('sha256', 'k', 's', 'i', 2 ** 32)",
        // The one-call path of a waiting hash or HMAC: large and broken strings, an output
        // encoding whose toString throws.
        "const c = require('crypto'); c.createHmac('sha256', 'k').digest(); return c.createHmac('sha256', '\\ud800'.repeat(1 << 20)).update('x'.repeat(1 << 25)).digest('hex')",
        "const c = require('crypto'); c.createHash('sha1').digest(); return c.createHash('sha1').update('x').digest({ toString() { throw new Error('no') } })",
    ];
    for code in cases {
        let body = call(&k, code).await;
        assert!(body["success"].is_boolean(), "{code}: {body}");
    }
    let body = call(&k, "return Buffer.from('still alive').toString('base64')").await;
    assert_eq!(body["result"], json!("c3RpbGwgYWxpdmU="), "{body}");
}
