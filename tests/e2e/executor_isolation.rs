//! The executor's blast radius, through the real binary: user code runs in a child process
//! (`keel executor-child`). Its crash, its memory ceiling and its silence cost the calls
//! running in it — never an LLM stream or a lock call of the main process — and it comes
//! back by itself. Plus the per-isolate array-buffer budget, native bindings fed hostile
//! values, and the sandbox (seccomp, Landlock) tried from inside.

use crate::fake_llm::FakeLlm;
use crate::harness::{client, keel_bin, series, Keel, Spec};
use base64::Engine;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

const TOKEN: &str = "e2e-access-token";

fn spec(executor: &str, extra: &str) -> Spec {
    Spec {
        extra: format!(
            "[executor]\npool_size = 1\nexecution_timeout = \"5s\"\naccess_tokens = [\"{TOKEN}\"]\n{executor}\n[executor.rate_limit]\nenabled = false\n{extra}"
        ),
        ..Default::default()
    }
}

async fn call(k: &Keel, code: &str) -> (u16, Value) {
    call_at(k.control, code).await
}

async fn call_at(control: SocketAddr, code: &str) -> (u16, Value) {
    let r = client()
        .post(format!("http://{control}/flow/codeblock"))
        .header("accessToken", TOKEN)
        .json(&json!({"input": {}, "codebase64": base64::engine::general_purpose::STANDARD.encode(code)}))
        .send()
        .await
        .expect("codeblock request answered (never a dropped connection)");
    let status = r.status().as_u16();
    (status, r.json().await.expect("JSON body"))
}

async fn executor_status(k: &Keel) -> Value {
    let r = client()
        .get(k.url("/flow/status"))
        .send()
        .await
        .expect("status");
    r.json::<Value>().await.expect("json")["executor"].clone()
}

async fn executor_pid(k: &Keel) -> i32 {
    executor_status(k).await["processPid"]
        .as_i64()
        .expect("a serving executor process has a pid") as i32
}

/// Polls until a trivial block succeeds again (a deadline, not a measurement).
async fn wait_serving(k: &Keel) {
    for _ in 0..300 {
        let (s, b) = call(k, "return 40 + 2").await;
        if s == 200 && b["result"] == 42 {
            return;
        }
        assert!(
            s == 503 || s == 500,
            "while restarting: 503 (or 500), got {s} {b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("executor did not come back; log:\n{}", k.log());
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on the executor process keel started for this test.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// A streamed chat completion through keel's proxy: (status, the concatenated text, whether
/// the stream ended with `[DONE]`).
async fn stream_chat(proxy: SocketAddr) -> (u16, String, bool) {
    let r = client()
        .post(format!("http://{proxy}/v1/chat/completions"))
        .json(
            &json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("proxy request");
    let status = r.status().as_u16();
    let body = r.text().await.expect("stream body");
    let mut text = String::new();
    let mut done = false;
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(data) {
            if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
                text.push_str(t);
            }
        }
    }
    (status, text, done)
}

#[tokio::test]
async fn an_executor_crash_costs_only_its_own_calls() {
    let llm = FakeLlm::start("m").await;
    let text = "one two three four five six seven eight nine ten eleven twelve";
    llm.set_text(text);
    llm.set_gap(Duration::from_millis(60));
    let k = Keel::start(spec(
        "",
        &format!(
            "[[proxy.nodes]]\nname = \"n1\"\nbase_url = \"{}\"\n",
            llm.url()
        ),
    ))
    .await;
    let pid = executor_pid(&k).await;

    // In flight when the executor process dies: two LLM streams, a lock loop, and a block.
    let proxy = k.proxy;
    let streams: Vec<_> = (0..2).map(|_| tokio::spawn(stream_chat(proxy))).collect();
    let control = k.control;
    let locks = tokio::spawn(async move {
        let c = client();
        let mut ok = 0;
        for i in 0..20 {
            let url = format!("http://{control}/api/v1/locks/gpu_lock:0/acquire");
            let r = c
                .post(url)
                .json(&json!({"holder": format!("w{i}"), "ttl_seconds": 60}))
                .send()
                .await
                .expect("acquire answered");
            assert_eq!(r.status(), 200);
            let a: Value = r.json().await.expect("json");
            let url = format!("http://{control}/api/v1/locks/gpu_lock:0/release");
            let r = c
                .post(url)
                .json(&json!({"fencing_token": a["fencing_token"]}))
                .send()
                .await
                .expect("release answered");
            assert_eq!(r.status(), 200);
            ok += 1;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        ok
    });
    let block = tokio::spawn(call_at(control, "while (true) {}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // What a V8 fatal error or an abort() in user code looks like from outside.
    signal(pid, libc::SIGABRT);

    let (s, b) = block.await.expect("block task");
    assert_eq!(s, 500, "{b}");
    assert_eq!(b["success"], false);
    assert_eq!(b["error"]["type"], "ExecutorCrashed", "{b}");
    for s in streams {
        let (status, got, done) = s.await.expect("stream task");
        assert_eq!(status, 200);
        assert_eq!(got, text, "the stream completed in full");
        assert!(done, "the stream ended with [DONE]");
    }
    assert_eq!(locks.await.expect("lock task"), 20);

    wait_serving(&k).await;
    let new_pid = executor_pid(&k).await;
    assert_ne!(new_pid, pid, "a new executor process serves");
    let m = k.metrics().await;
    assert_eq!(
        series(&m, "keel_executor_restarts_total{reason=\"crashed\"}"),
        1.0
    );
    assert_eq!(executor_status(&k).await["processRestarts"], 1);
    assert!(k.log().contains("executor.restarted"), "typed event logged");
    let r = client().get(k.url("/health/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200, "keel itself never stopped being ready");
}

#[tokio::test]
async fn memory_ceiling_stops_the_process_and_budgets_stop_the_call() {
    // A ceiling below what one block may take in array buffers: the process watchdog acts.
    let k = Keel::start(spec(
        "memory_limit_mb = 256\narray_buffer_limit_mb = 600",
        "",
    ))
    .await;
    let pid = executor_pid(&k).await;
    let (s, b) = call(
        &k,
        "const keep = []; for (let i = 0; i < 50; i++) { const a = new Uint8Array(10 * 1024 * 1024); a.fill(7); keep.push(a); } while (true) {}",
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["type"], "MemoryLimitError", "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("memory_limit_mb"),
        "{b}"
    );
    wait_serving(&k).await;
    assert_ne!(executor_pid(&k).await, pid);
    let m = k.metrics().await;
    assert_eq!(
        series(&m, "keel_executor_restarts_total{reason=\"memory_limit\"}"),
        1.0
    );
    drop(k);

    // The default per-isolate budget: the call fails, the process stays.
    let k = Keel::start(spec("", "")).await;
    let pid = executor_pid(&k).await;
    for code in [
        "const a = []; for (let i = 0; i < 16; i++) { const b = new ArrayBuffer(256 * 1024 * 1024); new Uint8Array(b).fill(1); a.push(b); } return a.length",
        "const a = []; for (;;) a.push(new Float64Array(1024 * 1024));",
        "try { new ArrayBuffer(2 ** 40) } catch (e) { throw new Error('swallowed: ' + e) }",
    ] {
        let (s, b) = call(&k, code).await;
        assert_eq!(s, 400, "{code}: {b}");
        assert_eq!(b["error"]["type"], "RangeError", "{code}: {b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("array_buffer_limit_mb"),
            "{code}: {b}"
        );
    }
    let (s, b) = call(
        &k,
        "const a = new Uint8Array(64 * 1024 * 1024); a.fill(3); return a[a.length - 1] + (typeof WebAssembly)",
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["result"], "3undefined", "within budget; no WebAssembly");
    assert_eq!(
        executor_pid(&k).await,
        pid,
        "no restart for a refused buffer"
    );
}

#[tokio::test]
async fn native_bindings_answer_hostile_arguments_with_exceptions() {
    let k = Keel::start(spec("", "")).await;
    let pid = executor_pid(&k).await;
    let cases = [
        "return fetch('http://example.test/', {timeout: 1e300}).then(() => 'ok', e => e.name)",
        "return fetch('http://example.test/', {timeout: NaN}).then(() => 'ok', e => e.name)",
        "return fetch('http://example.test/', {timeout: -Infinity}).then(() => 'ok', e => e.name)",
        "return require('axios').get('http://example.test/', {timeout: 1e300}).then(() => 'ok', e => e.name || 'err')",
        "return fetch('http://example.test/' + 'a'.repeat(1 << 20)).then(() => 'ok', e => e.name)",
        "return fetch('http://example.test/', {method: 'x'.repeat(1000)}).then(() => 'ok', e => e.name)",
        "return fetch('http://example.test/', {method: 'POST', body: 'x'.repeat(8 << 20)}).then(() => 'ok', e => e.name)",
        "const h = {}; for (let i = 0; i < 1000; i++) h['x-' + i] = 'v'; return fetch('http://example.test/', {headers: h}).then(() => 'ok', e => e.name)",
        "return new Promise(r => setTimeout(() => r('late'), 1e300)).then(String)",
        "return new Promise(r => setTimeout(() => r('soon'), -1))",
        "return new Promise(r => setTimeout(() => r('nan'), NaN))",
        "try { crypto.getRandomValues(new Uint8Array(1 << 20)); return 'no' } catch (e) { return e.name }",
        "try { crypto.getRandomValues({length: 1e300}); return 'no' } catch (e) { return e.name }",
        "console.log('x'.repeat(1 << 24)); console.log(Symbol('s').toString()); return 'logged'",
    ];
    for code in cases {
        let (s, b) = call(&k, code).await;
        assert!(
            s == 200 || s == 400,
            "{code}: answered in the reference shape, got {s} {b}"
        );
        assert!(b["success"].is_boolean(), "{code}: {b}");
    }
    // A block that sleeps "forever" times out like any other.
    let (s, b) = call(
        &k,
        "return new Promise(r => setTimeout(() => r('late'), 1e300))",
    )
    .await;
    assert_eq!(
        (s, b["error"]["type"].clone()),
        (400, json!("TimeoutError"))
    );
    assert_eq!(executor_pid(&k).await, pid, "nothing took the process down");
    assert_eq!(executor_status(&k).await["processRestarts"], 0);
}

#[tokio::test]
async fn a_silent_executor_process_is_replaced() {
    let k = Keel::start(spec("", "")).await;
    let pid = executor_pid(&k).await;
    // Stopped, the process can neither answer nor report: what a wedged process looks like.
    signal(pid, libc::SIGSTOP);
    let (s, b) = call(&k, "return 1").await;
    assert_eq!(s, 500, "{b}");
    assert_eq!(b["error"]["type"], "ExecutorCrashed", "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("stopped answering"),
        "{b}"
    );
    wait_serving(&k).await;
    let m = k.metrics().await;
    assert_eq!(
        series(&m, "keel_executor_restarts_total{reason=\"unresponsive\"}"),
        1.0
    );
}

#[tokio::test]
async fn the_sandbox_refuses_exec_writes_signals_and_keel_files() {
    let k = Keel::start(spec("", "")).await;
    let pid = executor_pid(&k).await;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    assert!(
        environ.is_empty(),
        "the executor process has no environment"
    );

    let store = k.dir.path().join("data").join("keel.redb");
    let out = std::process::Command::new(keel_bin())
        .arg("executor-sandbox-probe")
        .arg("--deny-read")
        .arg(&k.config_path)
        .arg("--deny-read")
        .arg(&store)
        .output()
        .expect("run the probe");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(
        lines.len() >= 9,
        "every attempt reported (none replaced the probe): {text}"
    );
    let sandbox = &lines[0];
    let landlock = sandbox["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("landlock enforced");
    if !landlock {
        println!("note: this kernel has no Landlock; file checks skipped: {sandbox}");
    }
    for l in &lines[1..] {
        let what = l["try"].as_str().unwrap_or_default();
        let file_check = what.starts_with("read ") || what.starts_with("write ");
        if file_check && !landlock {
            continue;
        }
        assert_eq!(l["refused"], true, "the sandbox let this through: {l}");
    }
    // The executor process keeps working inside the same sandbox.
    let (s, b) = call(&k, "return require('lodash').sum([1, 2, 3])").await;
    assert_eq!((s, b["result"].clone()), (200, json!(6)), "{b}");
}
