//! Every bad input gets the JSON error shape (issue 14, part 6), on both listeners:
//! malformed chunked bodies and `..` paths on the proxy, pipelined requests answered in
//! order, axum's own rejections on the control listener, token-issue bodies, and hostile
//! `timeout` / `ttl_seconds` values that used to reach a panicking `Duration` constructor.

use crate::harness::{client, Keel, Spec};
use crate::upstream::Upstream;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "e2e-access-token";

async fn proxy_with_prefixed_node(node: &Upstream) -> Keel {
    Keel::start(Spec {
        extra: format!(
            "[[proxy.nodes]]\nname = \"node1\"\nbase_url = \"{}/prefix\"\n",
            node.url()
        ),
        ..Spec::default()
    })
    .await
}

/// Sends raw bytes on a new proxy connection and reads until keel closes it.
async fn raw_exchange(k: &Keel, request: &[u8]) -> String {
    let mut conn = tokio::net::TcpStream::connect(k.proxy).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer))
        .await
        .expect("keel closes the connection after an error answer")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Asserts a raw HTTP/1 answer is `status` with keel's JSON error of type `kind`.
fn assert_json_error(answer: &str, status: u16, kind: &str) {
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status} ")),
        "expected {status}: {answer}"
    );
    let (head, body) = answer.split_once("\r\n\r\n").expect("header and body");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{answer}"
    );
    let body: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON body ({e}): {answer}"));
    assert_eq!(body["error"]["type"], kind, "{answer}");
    assert!(
        !body["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{answer}"
    );
}

#[tokio::test]
async fn malformed_chunked_bodies_are_a_400_not_a_502() {
    let node1 = Upstream::start("node1").await;
    let k = proxy_with_prefixed_node(&node1).await;
    let bodies: [&[u8]; 3] = [
        // Not a hex chunk size.
        b"zz\r\nhello\r\n0\r\n\r\n",
        // A chunk size that overflows.
        b"fffffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        // Data longer than its chunk size, then garbage where CRLF belongs.
        b"2\r\nhello\r\n0\r\n\r\n",
    ];
    for body in bodies {
        let mut request =
            b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        request.extend_from_slice(body);
        let answer = raw_exchange(&k, &request).await;
        assert_json_error(&answer, 400, "invalid_request");
    }
    assert!(node1.requests().is_empty(), "no request reached the node");
    // The node is not blamed for the client's bytes.
    let metrics = k.metrics().await;
    assert!(
        !metrics.contains("keel_upstream_requests_total{node=\"node1\""),
        "{metrics}"
    );
}

#[tokio::test]
async fn dot_dot_paths_cannot_climb_above_the_node_prefix() {
    let node1 = Upstream::start("node1").await;
    let k = proxy_with_prefixed_node(&node1).await;
    for path in [
        "/../admin",
        "/v1/../../admin",
        "/v1/%2e%2e/%2e%2e/admin",
        "/v1/%2E./%2E%2E/admin",
        "/v1/.%2e/admin",
        "/v1/..%2f..%2fadmin",
        "/v1/..\\..\\admin",
        "/v1/..;/..;/admin",
        "/v1/%252e%252e/admin",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let answer = raw_exchange(&k, request.as_bytes()).await;
        assert_json_error(&answer, 400, "invalid_request");
    }
    assert!(node1.requests().is_empty(), "no request reached the node");

    // Ordinary paths (a lone `.`, dots inside names) still go through, under the prefix.
    for (path, upstream) in [
        ("/v1/models", "/prefix/v1/models"),
        ("/v1/a..b/x?q=..", "/prefix/v1/a..b/x?q=.."),
    ] {
        let r = client().get(k.proxy_url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let last = node1.requests().pop().expect("forwarded");
        assert_eq!(last.path, upstream);
    }
}

/// Reads one HTTP/1 answer framed by `content-length` from `conn` (with what is already in
/// `buf`), returning its status line and body.
async fn read_answer(conn: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> (String, Value) {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or_else(|| panic!("answer framed by content-length: {head}"));
            if buf.len() >= end + 4 + length {
                let body = buf[end + 4..end + 4 + length].to_vec();
                buf.drain(..end + 4 + length);
                let status = head.lines().next().unwrap_or("").to_string();
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                return (status, body);
            }
        }
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(
            n > 0,
            "keel closed the connection with answers missing; got {}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_in_order() {
    let node1 = Upstream::start("node1").await;
    let k = proxy_with_prefixed_node(&node1).await;
    // Four requests in one write: bodies framed by length and by chunks, and one without.
    let mut wire = Vec::new();
    for (i, chunked) in [(1, false), (2, true), (3, false)] {
        let body = json!({"model": format!("m{i}")}).to_string();
        if chunked {
            wire.extend_from_slice(
                format!(
                    "POST /v1/echo?n={i} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
        } else {
            wire.extend_from_slice(
                format!(
                    "POST /v1/echo?n={i} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    }
    wire.extend_from_slice(b"GET /v1/models?n=4 HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut conn = tokio::net::TcpStream::connect(k.proxy).await.unwrap();
    conn.write_all(&wire).await.unwrap();
    let mut buf = Vec::new();
    let mut models = Vec::new();
    for _ in 0..4 {
        let (status, body) = read_answer(&mut conn, &mut buf).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        models.push(body["model"].clone());
    }
    assert_eq!(models, [json!("m1"), json!("m2"), json!("m3"), Value::Null]);
    let paths: Vec<String> = node1.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/prefix/v1/echo?n=1",
            "/prefix/v1/echo?n=2",
            "/prefix/v1/echo?n=3",
            "/prefix/v1/models?n=4"
        ]
    );
    // The connection is still usable afterwards.
    conn.write_all(b"GET /v1/models?n=5 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (status, _) = read_answer(&mut conn, &mut buf).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
}

/// Posts a JSON body of `len` bytes to the control listener over a raw connection and
/// returns the answer: the body goes out from another task, and a write that fails because
/// keel answered early and closed is expected.
async fn raw_oversized_post(k: &Keel, path: &str, len: usize) -> String {
    let conn = tokio::net::TcpStream::connect(k.control).await.unwrap();
    let (mut read, mut write) = conn.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    let sender = tokio::spawn(async move {
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&vec![b' '; len]).await;
        write
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut answer)).await;
    sender.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Asserts a control-listener answer is `status` with `{"error":{"type":kind,"message"}}`.
async fn expect_error(r: reqwest::Response, status: u16, kind: &str, what: &str) {
    assert_eq!(r.status().as_u16(), status, "{what}");
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = r.text().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{what}: {content_type} {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e} {text}"));
    assert_eq!(body["error"]["type"], kind, "{what}: {text}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {text}"
    );
}

#[tokio::test]
async fn axum_rejections_on_the_control_listener_come_back_as_json_errors() {
    let k = Keel::start_default().await;
    let c = client();
    let acquire = k.url("/api/v1/locks/gpu_lock:0/acquire");
    let json_body = |body: &str| {
        c.post(&acquire)
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let cases = [
        ("{", 400, "invalid_json", "broken JSON"),
        ("[]", 400, "invalid_request", "an array"),
        ("{}", 400, "invalid_request", "missing holder"),
        (
            r#"{"holder":"w","colour":1}"#,
            400,
            "invalid_request",
            "unknown field",
        ),
        (r#"{"holder":1}"#, 400, "invalid_request", "wrong type"),
        (
            r#"{"holder":"w","ttl_seconds":1e300}"#,
            400,
            "invalid_request",
            "ttl 1e300",
        ),
        (
            r#"{"holder":"w","ttl_seconds":-1}"#,
            400,
            "invalid_request",
            "ttl -1",
        ),
        (
            r#"{"holder":"w","ttl_seconds":"5"}"#,
            400,
            "invalid_request",
            "ttl string",
        ),
        (
            r#"{"holder":"w","ttl_seconds":1e400}"#,
            400,
            "invalid_json",
            "ttl beyond f64",
        ),
        (
            r#"{"holder":"w","wait_seconds":1e30}"#,
            400,
            "invalid_request",
            "wait 1e30",
        ),
        (
            r#"{"holder":"w","wait_seconds":-0.5}"#,
            400,
            "invalid_request",
            "wait negative",
        ),
    ];
    for (body, status, kind, what) in cases {
        expect_error(json_body(body).send().await.unwrap(), status, kind, what).await;
    }
    let r = c
        .post(&acquire)
        .header("content-type", "text/plain")
        .body(r#"{"holder":"w"}"#)
        .send()
        .await
        .unwrap();
    expect_error(r, 415, "unsupported_media_type", "wrong content type").await;
    // Bodies over `control.max_body_bytes` (1 MiB): keel may answer before reading them
    // all, so they are sent raw and the answer read whatever happens to the rest.
    for path in [
        "/api/v1/locks/gpu_lock:0/acquire", // a JSON extractor
        "/api/v1/heartbeats/task-1",        // a raw body
    ] {
        let answer = raw_oversized_post(&k, path, 2 << 20).await;
        assert_json_error(&answer, 413, "payload_too_large");
    }
    let r = c
        .post(k.url("/api/v1/heartbeats/task-1"))
        .body("{nope")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "invalid_json", "heartbeat body").await;

    // Path parameters that do not decode (%FF is not UTF-8), a query that does not parse.
    let r = c.get(k.url("/app/%FF")).send().await.unwrap();
    expect_error(r, 400, "invalid_path", "dashboard file").await;
    let r = c
        .post(k.url("/api/v1/heartbeats/%FF"))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "invalid_path", "heartbeat task id").await;
    let r = k
        .admin(c.delete(k.url("/admin/api/nodes/%FF")))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "invalid_path", "node name").await;
    let r = k
        .admin(c.delete(k.url("/flow/admin/tokens/%FF")))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "invalid_path", "token id").await;
    let r = c
        .get(k.url("/api/v1/monitoring/gpu-lock/status?lock_key=a&lock_key=b"))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "invalid_query", "lock_key given twice").await;

    // The lock itself was never touched by any of that.
    let status: Value = c
        .get(k.url("/api/v1/monitoring/gpu-lock/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["is_locked"], json!(false), "{status}");
}

#[tokio::test]
async fn issuing_an_executor_token_validates_its_body() {
    let k = Keel::start_default().await;
    let c = client();
    let url = k.url("/flow/admin/tokens");
    for body in [
        "[]",
        "\"s\"",
        r#"{"name":1}"#,
        r#"{"nam":"x"}"#,
        r#"{"name":""}"#,
        "{",
    ] {
        let r = k
            .admin(c.post(&url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let kind = if body == "{" {
            "invalid_json"
        } else {
            "invalid_request"
        };
        expect_error(r, 400, kind, body).await;
    }
    let long = json!({"name": "n".repeat(101)}).to_string();
    let r = k.admin(c.post(&url)).body(long).send().await.unwrap();
    expect_error(r, 400, "invalid_request", "a 101-character name").await;
    // A named token, and one without any body.
    let r = k
        .admin(c.post(&url))
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = k.admin(c.post(&url)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let list: Value = k
        .admin(c.get(&url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    assert!(
        names.contains(&"ci") && names.contains(&"unnamed"),
        "{list}"
    );
}

#[tokio::test]
async fn codeblock_timeouts_of_any_size_never_take_the_process_down() {
    use base64::Engine;
    let k = Keel::start(Spec {
        extra: format!(
            "[executor]\npool_size = 1\nexecution_timeout = \"1500ms\"\naccess_tokens = [\"{TOKEN}\"]\n[executor.rate_limit]\nenabled = false\n"
        ),
        ..Spec::default()
    })
    .await;
    let c = client();
    let code = base64::engine::general_purpose::STANDARD.encode("return input.n * 2");
    let call = |timeout: &str| {
        c.post(k.url("/flow/codeblock"))
            .header("accessToken", TOKEN)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"input":{{"n":21}},"codeBase64":"{code}","timeout":{timeout}}}"#
            ))
            .send()
    };
    // Huge timeouts are capped by the server's limit (the spec's rule) and the call runs.
    for timeout in [
        "1e30",
        "1e300",
        "1.7976931348623157e308",
        "99999999999999999999999",
    ] {
        let r = call(timeout).await.unwrap();
        assert_eq!(r.status(), 200, "timeout {timeout}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["result"], 42, "{body}");
    }
    // Not a non-negative number: the reference's ValidationError shape.
    for timeout in ["-1", "-1e300", "\"100\"", "true", "[]", "1e400"] {
        let r = call(timeout).await.unwrap();
        assert_eq!(r.status(), 400, "timeout {timeout}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["success"], false, "{body}");
        assert_eq!(body["error"]["type"], "ValidationError", "{body}");
    }
    // Still serving, and no request is left counted in flight (this scrape is the one).
    let metrics = k.metrics().await;
    assert!(
        metrics.contains("keel_http_requests_in_flight{listener=\"control\"} 1"),
        "{metrics}"
    );
}
