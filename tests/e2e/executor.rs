//! The code-block executor through the real binary: `/flow/codeblock` with every library,
//! each error type, timeouts, heap bombs, isolation, the fetch network policy with a local
//! fake server, access tokens, and 100 concurrent calls on a pool of 4.

use crate::harness::{client, Keel, Spec};
use base64::Engine;
use serde_json::{json, Value};

const TOKEN: &str = "e2e-access-token";

fn spec(extra_executor: &str) -> Spec {
    spec_with_pool(2, extra_executor)
}

fn spec_with_pool(pool: usize, extra_executor: &str) -> Spec {
    Spec {
        extra: format!(
            "[executor]\npool_size = {pool}\nexecution_timeout = \"1500ms\"\naccess_tokens = [\"{TOKEN}\"]\n{extra_executor}\n[executor.rate_limit]\nenabled = false\n"
        ),
        ..Default::default()
    }
}

fn b64(code: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(code)
}

async fn call(k: &Keel, code: &str, input: Value) -> (u16, Value) {
    let r = client()
        .post(k.url("/flow/codeblock"))
        .header("accessToken", TOKEN)
        .json(&json!({"input": input, "codebase64": b64(code)}))
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json body"))
}

async fn ok(k: &Keel, code: &str, input: Value) -> Value {
    let (status, body) = call(k, code, input).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], json!(true), "{body}");
    body["result"].clone()
}

async fn err_type(k: &Keel, code: &str) -> String {
    let (status, body) = call(k, code, json!({})).await;
    assert_ne!(status, 200, "{body}");
    assert_eq!(body["success"], json!(false), "{body}");
    body["error"]["type"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn every_library_works_through_codeblock() {
    let k = Keel::start(spec("")).await;
    let r = ok(
        &k,
        r#"
        const _ = require('lodash');
        const CryptoJS = require('crypto-js');
        const qs = require('qs');
        const { v4, v5, validate, version } = require('uuid');
        const { format, addDays } = require('date-fns');
        const pinyin = require('pinyin');
        const enc = CryptoJS.AES.encrypt(JSON.stringify(input.secret), 'pass phrase').toString();
        return {
          chain: _.chain(input.users).filter('active').sortBy('age').map('name').value(),
          aes: JSON.parse(CryptoJS.AES.decrypt(enc, 'pass phrase').toString(CryptoJS.enc.Utf8)),
          hmac: CryptoJS.HmacSHA256('message', 'key').toString(),
          qs: qs.stringify({ a: { b: [1, 2], c: 'd e' } }),
          qsParsed: qs.parse('x[y][z]=1&x[w]=2'),
          v4: validate(v4()) && version(v4()) === 4,
          v5: v5('hello', v5.URL),
          date: format(addDays(new Date(2024, 0, 30), 3), 'yyyy-MM-dd'),
          pinyin: pinyin('中文拼音'),
          pinyinPlain: pinyin('重庆', { style: pinyin.STYLE_NORMAL }),
        };"#,
        json!({
            "secret": {"k": [1, 2, 3]},
            "users": [
                {"name": "b", "age": 30, "active": true},
                {"name": "a", "age": 20, "active": true},
                {"name": "c", "age": 10, "active": false}
            ]
        }),
    )
    .await;
    assert_eq!(r["chain"], json!(["a", "b"]));
    assert_eq!(r["aes"], json!({"k": [1, 2, 3]}));
    assert_eq!(
        r["hmac"],
        json!("6e9ef29b75fffc5b7abae527d58fdadb2fe42e7219011976917343065f58ed4a")
    );
    assert_eq!(
        r["qs"],
        json!("a%5Bb%5D%5B0%5D=1&a%5Bb%5D%5B1%5D=2&a%5Bc%5D=d%20e")
    );
    assert_eq!(r["qsParsed"], json!({"x": {"y": {"z": "1"}, "w": "2"}}));
    assert_eq!(r["v4"], json!(true));
    assert_eq!(r["v5"], json!("074171de-bc84-5ea4-b636-1135477620e1"));
    assert_eq!(r["date"], json!("2024-02-02"));
    assert_eq!(r["pinyin"], json!([["zhōng"], ["wén"], ["pīn"], ["yīn"]]));
    assert_eq!(r["pinyinPlain"], json!([["zhong"], ["qing"]]));

    // async block
    let r = ok(
        &k,
        "async function main(){ await new Promise(r => setTimeout(r, 10)); return {result: input.n * 2}; } return main();",
        json!({"n": 25}),
    )
    .await;
    assert_eq!(r, json!({"result": 50}));

    // health: the reference's warmup block
    let h: Value = client()
        .get(k.url("/flow/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["warmup"]["status"], json!("completed"));
    assert_eq!(
        h["warmup"]["modules"],
        json!([
            "crypto-js",
            "axios",
            "date-fns",
            "lodash",
            "qs",
            "pinyin",
            "uuid",
            "dayjs",
            "fast-xml-parser",
            "xlsx",
            "sm-crypto-v2"
        ])
    );
    assert_eq!(h["warmup"]["successCount"], json!(11));
    assert_eq!(h["warmup"]["totalModules"], json!(11));
    assert!(h["warmup"]["elapsedMs"].is_u64());
    assert!(h["memory"]["heapUsedBytes"].is_u64());
    assert_eq!(h["runtime"]["poolSize"], json!(2));
    let l: Value = client()
        .get(k.url("/flow/limits"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(l["executionTimeout"], json!(1500));
    assert_eq!(l["env"]["maxCodeLength"], json!("MAX_CODE_LENGTH"));
    let st: Value = client()
        .get(k.url("/flow/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(st["executor"]["total"].as_u64().unwrap_or(0) >= 2);
    let info: Value = client()
        .get(k.url("/flow/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["service"], json!("keel-executor"));
    let metrics = k.metrics().await;
    assert!(metrics.contains("keel_executor_executions_total{outcome=\"success\"}"));
    assert!(metrics.contains("keel_executor_pool_isolates{state=\"idle\"}"));
}

#[tokio::test]
async fn errors_timeouts_heap_bombs_and_isolation() {
    let k = Keel::start(spec("heap_limit_mb = 96")).await;
    assert_eq!(err_type(&k, "return (").await, "SyntaxError");
    assert_eq!(
        err_type(&k, "return undefinedThing + 1").await,
        "ReferenceError"
    );
    assert_eq!(err_type(&k, "return null.x").await, "TypeError");
    assert_eq!(err_type(&k, "return new Array(-1)").await, "RangeError");
    assert_eq!(err_type(&k, "throw new Error('custom')").await, "Error");
    assert_eq!(err_type(&k, "return require('fs')").await, "Error");
    assert_eq!(err_type(&k, "return process.env").await, "ReferenceError");
    assert_eq!(err_type(&k, "while (true) {}").await, "TimeoutError");
    assert_eq!(
        err_type(
            &k,
            "async function spin(){ for (;;) await null; } return spin();"
        )
        .await,
        "TimeoutError"
    );
    let t = err_type(
        &k,
        "const a = []; while (true) a.push({x: new Array(1000).fill(1)});",
    )
    .await;
    assert!(t == "RangeError" || t == "TimeoutError", "{t}");
    // The pool still answers, on every isolate.
    for _ in 0..4 {
        assert_eq!(ok(&k, "return 1 + 1", json!({})).await, json!(2));
    }
    // No state leaks between calls.
    for _ in 0..3 {
        ok(
            &k,
            "Object.prototype.polluted = 1; globalThis.leak = 1; return 0",
            json!({}),
        )
        .await;
    }
    for _ in 0..3 {
        assert_eq!(
            ok(&k, "return [typeof ({}).polluted, typeof leak]", json!({})).await,
            json!(["undefined", "undefined"])
        );
    }
    // Validation errors keep the reference shape.
    let c = client();
    let r = c
        .post(k.url("/flow/codeblock"))
        .header("accessToken", TOKEN)
        .header("X-Request-ID", "req-123")
        .json(&json!({"input": {}, "codebase64": "%%%"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-request-id"], "req-123");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["type"], json!("ValidationError"));
    assert_eq!(b["request_id"], json!("req-123"));
    assert!(b["timing"]["totalTime"].is_u64());
    let r = c
        .post(k.url("/flow/codeblock"))
        .header("accessToken", TOKEN)
        .json(&json!({"codeBase64": b64("return 1")}))
        .send()
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["type"], json!("ValidationError"), "{b}");
    let r = c
        .post(k.url("/flow/codeblock"))
        .header("accessToken", TOKEN)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// A tiny HTTP server on loopback for fetch/axios.
async fn fake_server() -> std::net::SocketAddr {
    use axum::routing::{get, post};
    let app = axum::Router::new()
        .route(
            "/hello",
            get(|| async { axum::Json(json!({"hello": "world"})) }),
        )
        .route(
            "/echo",
            post(|body: String| async move { axum::Json(json!({"got": body})) }),
        )
        .route(
            "/redirect-meta",
            get(|| async {
                axum::response::Redirect::temporary("http://169.254.169.254/latest/meta-data")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[tokio::test]
async fn axios_and_fetch_follow_the_network_policy() {
    let server = fake_server().await;
    let allowed = Keel::start(spec("[executor.fetch]\nallowed_cidrs = [\"127.0.0.0/8\"]")).await;
    let code = format!(
        r#"async function main() {{
            const axios = require('axios');
            const r = await axios.get('http://{server}/hello');
            const p = await axios.post('http://{server}/echo', {{ a: 1 }});
            const f = await (await fetch('http://{server}/hello')).json();
            return {{ status: r.status, data: r.data, echo: p.data, fetched: f }};
        }} return main();"#
    );
    let r = ok(&allowed, &code, json!({})).await;
    assert_eq!(r["status"], json!(200));
    assert_eq!(r["data"], json!({"hello": "world"}));
    assert_eq!(r["echo"], json!({"got": "{\"a\":1}"}));
    assert_eq!(r["fetched"], json!({"hello": "world"}));
    // Redirects are re-checked: the metadata address is still denied.
    let t = err_type(
        &allowed,
        &format!("return fetch('http://{server}/redirect-meta').then(r => r.status)"),
    )
    .await;
    assert_eq!(t, "TypeError");

    let denied = Keel::start(spec("")).await;
    let (status, body) = call(
        &denied,
        &format!("return require('axios').get('http://{server}/hello').then(r => r.data)"),
        json!({}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], json!("AxiosError"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("network policy"),
        "{body}"
    );
    let t = err_type(
        &denied,
        "return fetch('http://localhost:1/').then(r => r.status)",
    )
    .await;
    assert_eq!(t, "TypeError");
}

#[tokio::test]
async fn access_tokens_issue_list_revoke() {
    let k = Keel::start(spec("")).await;
    let c = client();
    let body = json!({"input": {}, "codebase64": b64("return 7")});
    let r = c
        .post(k.url("/flow/codeblock"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(k.url("/flow/codeblock"))
        .header("accessToken", "wrong-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(k.url("/flow/admin/tokens"))
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "admin routes need the admin token");
    let issued: Value = k
        .admin(c.post(k.url("/flow/admin/tokens")))
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = issued["token"].as_str().expect("token").to_string();
    let id = issued["id"].as_str().expect("id").to_string();
    let r = c
        .post(k.url("/flow/codeblock"))
        .header("accessToken", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: Value = k.admin_get("/flow/admin/tokens").await;
    assert_eq!(list["tokens"][0]["name"], json!("ci"));
    assert!(
        !list.to_string().contains(&token),
        "the token itself is never listed"
    );
    let r = k
        .admin(c.delete(k.url(&format!("/flow/admin/tokens/{id}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = c
        .post(k.url("/flow/codeblock"))
        .header("accessToken", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn hundred_concurrent_calls_on_a_pool_of_four() {
    let k = Keel::start(spec_with_pool(4, "")).await;
    let c = client();
    let url = k.url("/flow/codeblock");
    let mut tasks = Vec::new();
    for i in 0..100 {
        let c = c.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let r = c
                .post(&url)
                .header("accessToken", TOKEN)
                .json(&json!({"input": {"i": i}, "codebase64": b64("const _ = require('lodash'); return _.sum([input.i, 1]);")}))
                .send()
                .await
                .expect("send");
            let b: Value = r.json().await.expect("json");
            (i, b)
        }));
    }
    for t in tasks {
        let (i, b) = t.await.unwrap();
        assert_eq!(b["result"], json!(i + 1), "{b}");
    }
    let st: Value = c
        .get(k.url("/flow/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["executor"]["poolSize"], json!(4));
    assert_eq!(st["executor"]["successful"], json!(100));
}
