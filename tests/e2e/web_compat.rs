//! Node compatibility: each file in `tests/conformance/` runs under Node 20 (the contract:
//! the reference's users wrote their blocks against Node's documentation) and through
//! keel's `/flow/codeblock`, both against the same local fake server, and the two results
//! must be equal — so every expectation in those files is Node's behaviour, not ours.
//!
//! Without `node` on the PATH (or, for files that require npm modules, without
//! `src/executor/js/node_modules`) a test still runs the file through keel and checks its
//! outcome, and says what it skipped — unless `WEB_COMPAT_NODE` is set (CI), where that is
//! a failure.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Path as UrlPath;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use base64::Engine;
use serde_json::{json, Value};

use crate::harness::{client, Keel, Spec};

const TOKEN: &str = "e2e-web-compat-token";

fn spec() -> Spec {
    Spec {
        extra: format!(
            "[executor]\npool_size = 2\nexecution_timeout = \"10s\"\naccess_tokens = [\"{TOKEN}\"]\n[executor.rate_limit]\nenabled = false\n[executor.fetch]\nallowed_cidrs = [\"127.0.0.0/8\"]\nmax_requests_per_execution = 100\n"
        ),
        ..Default::default()
    }
}

/// Byte `i` of `/bytes/{n}` (the conformance files compute the same).
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 31 + 7) & 255) as u8).collect()
}

fn compressed(enc: &str) -> Response {
    use std::io::Write;
    let body = serde_json::to_vec(&json!({"compressed": enc, "text": "héllo ".repeat(50)}))
        .unwrap_or_default();
    let bytes = match enc {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let _ = e.write_all(&body);
            e.finish().unwrap_or_default()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            let _ = e.write_all(&body);
            e.finish().unwrap_or_default()
        }
        "br" => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                let _ = w.write_all(&body);
            }
            out
        }
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONTENT_ENCODING, enc),
        ],
        bytes,
    )
        .into_response()
}

async fn echo(method: Method, headers: HeaderMap, body: Bytes) -> Response {
    let get = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
    axum::Json(json!({
        "method": method.as_str(),
        "type": get("content-type"),
        "hex": hex,
        "text": String::from_utf8_lossy(&body),
        "probe": get("x-probe"),
    }))
    .into_response()
}

/// The fake server both runtimes fetch from (loopback only).
async fn fake_server() -> SocketAddr {
    let app = axum::Router::new()
        .route(
            "/bytes/{n}",
            get(|UrlPath(n): UrlPath<usize>| async move {
                (
                    [(header::CONTENT_TYPE, "application/octet-stream")],
                    pattern(n.min(1 << 20)),
                )
            }),
        )
        .route(
            "/text",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    "héllo wörld € 😀",
                )
            }),
        )
        .route(
            "/compressed/{enc}",
            get(|UrlPath(enc): UrlPath<String>| async move { compressed(&enc) }),
        )
        .route("/echo", any(echo))
        .route(
            "/redirect",
            get(|| async { axum::response::Redirect::to("/echo") }),
        )
        .route(
            "/status/{code}",
            get(|UrlPath(code): UrlPath<u16>| async move {
                (
                    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
                    "status body",
                )
            }),
        )
        .route(
            "/delay/{ms}",
            get(|UrlPath(ms): UrlPath<u64>| async move {
                tokio::time::sleep(Duration::from_millis(ms.min(10_000))).await;
                "done"
            }),
        )
        .route(
            "/headers",
            get(|| async {
                let mut h = HeaderMap::new();
                h.append("x-multi", "one".parse().unwrap());
                h.append("x-multi", "two".parse().unwrap());
                h.append(header::SET_COOKIE, "a=1; Path=/".parse().unwrap());
                h.append(header::SET_COOKIE, "b=2".parse().unwrap());
                h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
                (h, "{}")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The file through keel, as `{"result": v}` or `{"error": {"name", "message"}}`.
async fn through_keel(k: &Keel, code: &str, input: &Value) -> Value {
    let r = client()
        .post(k.url("/flow/codeblock"))
        .header("accessToken", TOKEN)
        .json(&json!({
            "input": input,
            "codebase64": base64::engine::general_purpose::STANDARD.encode(code),
        }))
        .send()
        .await
        .expect("send");
    let body: Value = r.json().await.expect("json");
    if body["success"] == json!(true) {
        json!({"result": body["result"]})
    } else {
        json!({"error": {"name": body["error"]["type"], "message": body["error"]["message"]}})
    }
}

/// Skips the Node side with a note, or fails where Node is required (`WEB_COMPAT_NODE=1`,
/// as CI sets it).
fn skip_node(file: &Path, why: &str) -> Option<Value> {
    assert!(
        std::env::var_os("WEB_COMPAT_NODE").is_none(),
        "{}: {why}, and WEB_COMPAT_NODE requires the comparison",
        file.display()
    );
    eprintln!("NOTE: {} not compared with Node: {why}", file.display());
    None
}

/// The file under Node, or `None` (with the reason printed) when Node cannot run it here.
async fn through_node(file: &Path, input: &Value, needs_modules: bool) -> Option<Value> {
    if needs_modules && !root().join("src/executor/js/node_modules").is_dir() {
        return skip_node(
            file,
            "src/executor/js/node_modules missing (cd src/executor/js && npm ci)",
        );
    }
    let out = tokio::process::Command::new("node")
        .arg(root().join("tests/conformance/run-node.js"))
        .arg(file)
        .arg(input.to_string())
        .output()
        .await;
    let out = match out {
        Ok(o) => o,
        Err(e) => return skip_node(file, &format!("cannot run node ({e})")),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    match serde_json::from_str(line) {
        Ok(v) => Some(v),
        Err(e) => panic!(
            "node printed no result for {} ({e}); stdout:\n{stdout}\nstderr:\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Paths where two JSON values differ (at most `limit`), for a readable failure.
fn differences(node: &Value, keel: &Value, path: &str, out: &mut Vec<String>) {
    if out.len() >= 40 {
        return;
    }
    match (node, keel) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                differences(
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ if node != keel => out.push(format!("{path}:\n    node: {node}\n    keel: {keel}")),
        _ => {}
    }
}

/// Runs `name` through keel and Node, asserts they agree, and returns keel's outcome.
async fn conformance(name: &str, needs_modules: bool) -> Value {
    let server = fake_server().await;
    let input = json!({"base": format!("http://{server}")});
    let file = root().join("tests/conformance").join(name);
    let code = std::fs::read_to_string(&file).expect("conformance file");
    let k = Keel::start(spec()).await;
    let keel = through_keel(&k, &code, &input).await;
    if let Some(node) = through_node(&file, &input, needs_modules).await {
        let mut diffs = Vec::new();
        differences(&node, &keel, "", &mut diffs);
        assert!(
            diffs.is_empty(),
            "{name}: keel differs from Node 20 at {} place(s):\n{}",
            diffs.len(),
            diffs.join("\n")
        );
    }
    keel
}

fn succeeded(name: &str, keel: &Value) {
    assert!(
        keel.get("result").is_some(),
        "{name} failed in keel: {keel}"
    );
}

#[tokio::test]
async fn web_globals_match_node() {
    let keel = conformance("web.js", false).await;
    succeeded("web.js", &keel);
}

#[tokio::test]
async fn fetch_matches_node() {
    let keel = conformance("fetch.js", false).await;
    succeeded("fetch.js", &keel);
}

#[tokio::test]
async fn axios_matches_node() {
    let keel = conformance("axios.js", true).await;
    succeeded("axios.js", &keel);
}

#[tokio::test]
async fn completion_rules_match_node() {
    let keel = conformance("completion.js", false).await;
    succeeded("completion.js", &keel);
}

#[tokio::test]
async fn modules_match_node() {
    let keel = conformance("modules.js", true).await;
    succeeded("modules.js", &keel);
}

#[tokio::test]
async fn an_undefined_value_is_a_validation_error() {
    let keel = conformance("undefined.js", false).await;
    assert_eq!(
        keel,
        json!({"error": {"name": "ValidationError", "message": "the return value cannot be undefined"}})
    );
}

/// `/flow/stats/*`: module counts come from the `require` calls blocks made (once per
/// execution and module, subpaths under their module), token usage from the calls made.
#[tokio::test]
async fn stats_count_required_modules_and_token_usage() {
    let k = Keel::start(spec()).await;
    let input = json!({});
    let blocks = [
        "const _ = require('lodash'); require('lodash'); return _.sum([1, 2])",
        "require('dayjs/plugin/utc'); return require('dayjs').name || 'dayjs'",
        "return require('lodash').VERSION",
        "return 1",
        "throw new Error('no')",
    ];
    for b in blocks {
        through_keel(&k, b, &input).await;
    }
    let admin = |path: &str| {
        client().get(k.url(path)).header(
            "authorization",
            format!("Bearer {}", crate::harness::ADMIN_TOKEN),
        )
    };
    // The executor process reports its counts a few times a second.
    let modules = k
        .admin_get_until("/flow/stats/modules", |m| {
            m["data"]["totalRequires"] == json!(3)
        })
        .await;
    assert_eq!(modules["data"]["totalRequires"], json!(3), "{modules}");
    let first = &modules["data"]["modules"][0];
    assert_eq!(first["name"], json!("lodash"), "{modules}");
    assert_eq!(first["requires"], json!(2), "{modules}");
    let one: Value = admin("/flow/stats/modules/dayjs")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(one["data"]["requires"], json!(1), "{one}");
    let missing = admin("/flow/stats/modules/left-pad")
        .send()
        .await
        .expect("send");
    assert_eq!(missing.status(), 404);
    let users: Value = admin("/flow/stats/users")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let row = &users["data"]["users"][0];
    assert_eq!(row["token"], json!("config token 1"), "{users}");
    assert_eq!(row["executions"], json!(5), "{users}");
    assert_eq!(row["failed"], json!(1), "{users}");
    let anonymous = client()
        .get(k.url("/flow/stats/users"))
        .send()
        .await
        .expect("send");
    assert_eq!(anonymous.status(), 401);
}
