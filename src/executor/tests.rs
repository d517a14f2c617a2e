//! Engine tests without HTTP or a second process: the isolate pool of the executor process,
//! one per test on the shared process snapshot, fed through the main process's validation.
//! (The process boundary itself is tested end to end: tests/e2e/executor_isolation.rs.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::oneshot;

use super::pool::IsolatePool;
use super::worker::{IsolateRecycled, Job, RecycleReason};
use super::*;
use crate::config::ExecutorConfig;

struct TestPool {
    pool: IsolatePool,
    config: ExecutorConfig,
    recycled: Arc<Mutex<Vec<IsolateRecycled>>>,
}

fn start(cfg: ExecutorConfig) -> TestPool {
    let recycled: Arc<Mutex<Vec<IsolateRecycled>>> = Arc::default();
    let sink = recycled.clone();
    let pool = IsolatePool::start(
        &cfg,
        tokio::runtime::Handle::current(),
        Arc::new(move |e| sink.lock().unwrap().push(e.clone())),
    )
    .expect("pool starts");
    TestPool {
        pool,
        config: cfg,
        recycled,
    }
}

fn executor(f: impl FnOnce(&mut ExecutorConfig)) -> TestPool {
    let mut cfg = ExecutorConfig {
        pool_size: 2,
        execution_timeout: Duration::from_millis(1500),
        ..Default::default()
    };
    f(&mut cfg);
    start(cfg)
}

async fn run(ex: &TestPool, code: &str, input: serde_json::Value) -> Result<ExecOutput, ExecError> {
    let (code, input, timeout) = front::validate(
        &ex.config,
        ExecRequest {
            code: code.to_string(),
            input,
            timeout: None,
            tenant: String::new(),
        },
    )?;
    let (tx, rx) = oneshot::channel();
    ex.pool.submit(Job {
        code,
        tenant: String::new(),
        input_json: input.get().to_string(),
        timeout,
        enqueued: Instant::now(),
        reply: Box::new(move |o| {
            let _ = tx.send(o);
        }),
    });
    rx.await.expect("the pool answers every job")
}

fn err_type(r: Result<ExecOutput, ExecError>) -> String {
    match r {
        Ok(o) => panic!("expected an error, got {:?}", o.result),
        Err(e) => e.kind.type_name().to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libraries_and_semantics() {
    let ex = executor(|_| {});
    let out = run(&ex, "return input.a + 1", json!({"a": 41}))
        .await
        .expect("ok");
    assert_eq!(out.result, json!(42));

    let out = run(
        &ex,
        r#"const _ = require('lodash'); const C = require('crypto-js');
           const enc = C.AES.encrypt('hi', 'k').toString();
           console.log('enc', enc);
           return { sum: _.chain([1,2,3]).map(x => x * 2).sum().value(),
                    dec: C.AES.decrypt(enc, 'k').toString(C.enc.Utf8),
                    py: require('pinyin')('中文'),
                    v4: require('uuid').validate(require('uuid').v4()),
                    d: require('date-fns').format(new Date(2024, 0, 2), 'yyyy/MM/dd'),
                    q: require('qs').stringify({a: {b: 1}}) };"#,
        json!({}),
    )
    .await
    .expect("libraries work");
    assert_eq!(out.result["sum"], json!(12));
    assert_eq!(out.result["dec"], json!("hi"));
    assert_eq!(out.result["py"], json!([["zhōng"], ["wén"]]));
    assert_eq!(out.result["v4"], json!(true));
    assert_eq!(out.result["d"], json!("2024/01/02"));
    assert_eq!(out.result["q"], json!("a%5Bb%5D=1"));
    assert_eq!(out.logs.len(), 1);

    let out = run(
        &ex,
        "async function main(){ await new Promise(r => setTimeout(r, 5)); return 'late'; } return main();",
        json!({}),
    )
    .await
    .expect("async");
    assert_eq!(out.result, json!("late"));

    assert_eq!(
        err_type(run(&ex, "return (", json!({})).await),
        "SyntaxError"
    );
    assert_eq!(
        err_type(run(&ex, "return nope", json!({})).await),
        "ReferenceError"
    );
    assert_eq!(
        err_type(run(&ex, "return null.x", json!({})).await),
        "TypeError"
    );
    assert_eq!(
        err_type(run(&ex, "return new Array(-1)", json!({})).await),
        "RangeError"
    );
    assert_eq!(
        err_type(run(&ex, "return require('fs')", json!({})).await),
        "Error"
    );
    assert_eq!(
        err_type(run(&ex, "return Promise.reject(new TypeError('x'))", json!({})).await),
        "TypeError"
    );
    assert_eq!(
        err_type(run(&ex, "return new Promise(() => {})", json!({})).await),
        "Error"
    );
    assert_eq!(
        err_type(
            run(
                &ex,
                "return typeof process + typeof require('x')",
                json!({})
            )
            .await
        ),
        "Error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_state_leaks_between_calls() {
    let ex = executor(|c| c.pool_size = 1);
    run(
        &ex,
        "Object.prototype.polluted = 1; globalThis.leak = 2; require('lodash').leak = 3; return 1",
        json!({}),
    )
    .await
    .expect("ok");
    let out = run(
        &ex,
        "return [typeof ({}).polluted, typeof leak, typeof require('lodash').leak]",
        json!({}),
    )
    .await
    .expect("ok");
    assert_eq!(out.result, json!(["undefined", "undefined", "undefined"]));
    // A block that reaches `require` without naming it starts from the lean context, where
    // `require` evaluates the bundle into that context first; nothing of it outlives the call.
    let out = run(
        &ex,
        "const r = globalThis['req' + 'uire']; const _ = r('lodash'); _.leak = 4; return _.sum([1, 2])",
        json!({}),
    )
    .await
    .expect("indirect require");
    assert_eq!(out.result, json!(3));
    let out = run(
        &ex,
        "const r = globalThis['req' + 'uire']; return [typeof r('lodash').leak, typeof __keel_library_factories]",
        json!({}),
    )
    .await
    .expect("ok");
    assert_eq!(out.result, json!(["undefined", "undefined"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_heap_bombs_recycle_the_isolate() {
    let ex = executor(|c| {
        c.pool_size = 1;
        c.execution_timeout = Duration::from_millis(300);
    });
    assert_eq!(
        err_type(run(&ex, "while(true){}", json!({})).await),
        "TimeoutError"
    );
    assert_eq!(
        run(&ex, "return 1", json!({}))
            .await
            .expect("after loop")
            .result,
        json!(1)
    );
    assert_eq!(
        err_type(
            run(
                &ex,
                "async function spin(){ for(;;) await null; } return spin()",
                json!({})
            )
            .await
        ),
        "TimeoutError"
    );
    // A growing chain may hit the heap limit before the deadline: either is contained.
    let t = err_type(
        run(
            &ex,
            "function f(){ return Promise.resolve().then(f) } return f()",
            json!({}),
        )
        .await,
    );
    assert!(t == "TimeoutError" || t == "RangeError", "{t}");
    assert_eq!(
        err_type(
            run(
                &ex,
                "return new Promise(r => setTimeout(r, 60000))",
                json!({})
            )
            .await
        ),
        "TimeoutError"
    );
    let r = run(
        &ex,
        "const a = []; while (true) a.push({x: new Array(1000).fill(1)});",
        json!({}),
    )
    .await;
    let e = r.expect_err("heap bomb fails");
    assert!(
        e.kind == ErrorKind::OutOfMemory || e.kind == ErrorKind::Timeout,
        "got {e}"
    );
    assert_eq!(
        run(&ex, "return 2", json!({}))
            .await
            .expect("after bomb")
            .result,
        json!(2)
    );
    assert!(ex.pool.figures().recycled >= 3);
}

/// OSR is on (synchronous, see platform.rs): hot loops that allocate on every turn must
/// still be stopped at the heap limit, and each stop is one typed `executor.isolate_recycled`.
/// Every variant here ran past TerminateExecution with concurrent OSR; the generous heap and
/// deadline give OSR time to compile the loop before the limit is reached. Should one ever
/// run on, the bounded heap-limit headroom aborts this test binary instead of the machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heap_bombs_in_osr_compiled_loops_are_contained() {
    let mut cfg = ExecutorConfig {
        pool_size: 1,
        heap_limit_mb: 256,
        execution_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    cfg.max_concurrent = 4;
    let ex = start(cfg);
    let bombs = [
        "const a = []; while (true) a.push({x: new Array(1000)});",
        "const a = []; while (true) a.push({x: new Array(1000).fill(1)});",
        "function f() { const a = []; while (true) a.push(new Array(1000)); } f();",
        "const m = new Map(); for (let i = 0; ; i++) m.set(i, {i});",
    ];
    for code in bombs {
        let e = run(&ex, code, json!({})).await.expect_err(code);
        assert!(
            e.kind == ErrorKind::OutOfMemory || e.kind == ErrorKind::Timeout,
            "{code}: {e}"
        );
        assert_eq!(
            run(&ex, "return 2", json!({})).await.expect(code).result,
            json!(2)
        );
    }
    let recycled = ex.recycled.lock().unwrap().clone();
    assert_eq!(recycled.len(), bombs.len(), "{recycled:?}");
    assert!(recycled
        .iter()
        .all(|e| e.reason == RecycleReason::Heap || e.reason == RecycleReason::Timeout));
    assert!(recycled.iter().any(|e| e.reason == RecycleReason::Heap));
    assert_eq!(ex.pool.figures().recycled, bombs.len() as u64);
}

/// Builds a snapshot from a bundle whose `qs` factory throws. V8 aborted when a snapshot
/// creator ran while other tests' isolates were live (production makes the snapshot before
/// any isolate exists), so the build runs in a child process: this same test binary, filtered
/// to [`fail_fast_child`].
#[test]
fn a_failing_module_names_itself() {
    let exe = std::env::current_exe().expect("test binary path");
    let out = std::process::Command::new(exe)
        .args([
            "executor::tests::fail_fast_child",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("KEEL_FAIL_FAST_CHILD", "1")
        .output()
        .expect("run child");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {text}");
    assert!(
        text.contains("FAILED-MODULE qs: ") && text.contains("boom in qs"),
        "{text}"
    );
}

#[test]
fn fail_fast_child() {
    if std::env::var_os("KEEL_FAIL_FAST_CHILD").is_none() {
        return;
    }
    let mut libs = String::new();
    for m in snapshot::MODULES {
        let factory = if m == "qs" {
            "() => { throw new Error('boom in qs') }".to_string()
        } else {
            "() => ({})".to_string()
        };
        libs.push_str(&format!(
            "//# keel-module {m}\n(globalThis.__keel_library_factories ||= []).push(['{m}', {factory}]);\n"
        ));
    }
    match snapshot::build_from(&libs, snapshot::RUNTIME_JS) {
        Err(StartError::Module { module, error }) => println!("FAILED-MODULE {module}: {error}"),
        other => panic!("expected a module error, got {:?}", other.map(|_| ())),
    }
}

/// The Node prelude scripts (Buffer, crypto) and web.js live in every snapshot context, lean
/// and per-module alike, and work together: Buffers are bodies and parts, the libraries
/// that need `crypto.getRandomValues` find it, one `require` serves both kinds of module.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_web_preludes_in_every_context() {
    let ex = executor(|c| c.pool_size = 1);
    let common = "const b = Buffer.from('hi'); const fd = new FormData(); fd.append('f', new Blob([b]));
        return new Blob([b]).text().then((t) => [b.toString('base64'), btoa('hi'), Buffer.isBuffer(fd.getBuffer()),
          require('node:crypto').createHash('sha256').update(new TextEncoder().encode('a')).digest('hex').slice(0, 8),
          typeof crypto.getRandomValues, typeof require('buffer').Buffer, t])";
    let expected = json!(["aGk=", "aGk=", true, "ca978112", "function", "function", "hi"]);
    for prefix in [
        "",
        "require('lodash');",
        "require('xlsx');",
        "require('qs'); require('dayjs');",
    ] {
        let code = format!("{prefix} {common}");
        let out = run(&ex, &code, json!({})).await.expect(&code);
        assert_eq!(out.result, expected, "{code}");
    }
    let out = run(
        &ex,
        "return [require('uuid').v4().length, require('crypto-js').lib.WordArray.random(4).sigBytes]",
        json!({}),
    )
    .await
    .expect("uuid and crypto-js use the crypto global");
    assert_eq!(out.result, json!([36, 4]));
    // The Web Crypto object that crypto-js and sm-crypto-v2 read while loading is made apart
    // from the `crypto` module (see node_crypto.js); made in the snapshot or on the spot, it is
    // still the module's `webcrypto`, in the lean, one-, two- and many-module contexts.
    let same = "const c = require('crypto'); return [c.webcrypto === crypto, c.subtle === crypto.subtle,
        crypto instanceof Crypto, crypto.getRandomValues(new Uint8Array(8)).length, crypto.randomUUID().length,
        typeof c.randomBytes(4).readUInt32LE(0)]";
    for prefix in [
        "",
        "require('crypto-js');",
        "require('crypto-js'); require('lodash');",
        "require('sm-crypto-v2'); require('qs'); require('dayjs');",
    ] {
        let code = format!("{prefix} {same}");
        let out = run(&ex, &code, json!({})).await.expect(&code);
        assert_eq!(
            out.result,
            json!([true, true, true, 8, 36, "number"]),
            "{code}"
        );
    }
}

/// A block starts from the context holding what it names in `require('…')`; anything else
/// is loaded on `require` from its own bundle section, and no module state outlives a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_module_contexts_and_lazy_sections() {
    let ex = executor(|c| c.pool_size = 1);
    let blocks = [
        // the lodash context; xlsx is loaded on the spot
        "require('lodash'); const n = 'xl' + 'sx'; return [typeof require('lodash').sum, typeof require(n).utils.aoa_to_sheet]",
        // the lean context: qs comes from its section
        "const r = globalThis['req' + 'uire']; return [typeof r('qs').stringify, typeof r('dayjs/plugin/utc')]",
        // several modules: the common context
        "return [require('dayjs')(0).valueOf(), typeof require('fast-xml-parser').XMLParser, typeof require('sm-crypto-v2').sm3]",
    ];
    for b in blocks {
        let out = run(&ex, b, json!({})).await.expect(b);
        assert!(
            !out.result.to_string().contains("undefined"),
            "{b}: {}",
            out.result
        );
    }
    run(
        &ex,
        "require('dayjs').leak = 1; require('xlsx').leak = 2; return 1",
        json!({}),
    )
    .await
    .expect("ok");
    let out = run(
        &ex,
        "return [typeof require('dayjs').leak, typeof require('xlsx').leak, typeof __keel_library_factories]",
        json!({}),
    )
    .await
    .expect("ok");
    assert_eq!(out.result, json!(["undefined", "undefined", "undefined"]));
    let out = run(&ex, "return typeof require('fs')", json!({})).await;
    assert_eq!(err_type(out), "Error");
}

/// The reference's completion rule: the value is taken once nothing the block started is
/// pending; `undefined` is a ValidationError; cleared timers and unref'd ones hold nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_loop_runs_to_its_end() {
    let ex = executor(|_| {});
    let out = run(
        &ex,
        "const o = {n: 0}; setTimeout(() => { o.n = 1; setTimeout(() => o.n = 2, 5); }, 5); return o;",
        json!({}),
    )
    .await
    .expect("ok");
    assert_eq!(out.result, json!({"n": 2}));
    let out = run(
        &ex,
        "const t = setTimeout(() => {}, 100000); clearTimeout(t); AbortSignal.timeout(100000); return 'done';",
        json!({}),
    )
    .await
    .expect("cleared and unref'd timers hold nothing");
    assert_eq!(out.result, json!("done"));
    let e = run(&ex, "setTimeout(() => {}, 1)", json!({}))
        .await
        .expect_err("undefined");
    assert_eq!(e.kind, ErrorKind::Validation);
    assert_eq!(e.message, "the return value cannot be undefined");
    let e = run(&ex, "setInterval(() => {}, 10); return 1", json!({}))
        .await
        .expect_err("an interval never cleared runs into the timeout");
    assert_eq!(e.kind, ErrorKind::Timeout);
}

/// Hostile values for the natives' arguments, as JavaScript source.
fn hostile_value() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        Just("NaN".to_string()),
        Just("Infinity".to_string()),
        Just("-Infinity".to_string()),
        Just("1e300".to_string()),
        Just("-1e300".to_string()),
        Just("-1".to_string()),
        Just("2 ** 53".to_string()),
        Just("undefined".to_string()),
        Just("null".to_string()),
        Just("Symbol('s')".to_string()),
        Just("10n ** 30n".to_string()),
        Just("'x'.repeat(1 << 20)".to_string()),
        Just("{ get length() { throw new Error('getter') } }".to_string()),
        Just("new Proxy({}, { get() { throw new Error('trap') } })".to_string()),
        Just("{ toString() { throw new Error('toString') }, valueOf() { throw new Error('valueOf') } }".to_string()),
        Just("[1, [2, [3]]]".to_string()),
        Just("new Uint8Array(70000)".to_string()),
        Just("new Float64Array(3)".to_string()),
        proptest::num::f64::ANY.prop_map(|f| format!("{f:e}")),
        "[a-z:/\\\\.%]{0,40}".prop_map(|s| format!("{s:?}")),
    ]
}

/// Every native, called through the runtime with hostile arguments, answers with a value or
/// a JS exception: none panics (a panic inside a V8 callback would abort this test binary),
/// and the pool serves the next call on the same isolate.
#[test]
fn natives_answer_hostile_arguments_without_panicking() {
    use proptest::prelude::*;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let ex = {
        let _enter = rt.enter();
        executor(|c| {
            c.pool_size = 1;
            c.execution_timeout = Duration::from_millis(500);
        })
    };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    });
    runner
        .run(&(hostile_value(), hostile_value()), |(a, b)| {
            let code = format!(
                "const a = {a}, b = {b}; const out = [];
                 const t = f => {{ try {{ const r = f(); if (r && r.then) r.catch(() => {{}}); out.push('ok') }} catch (e) {{ out.push(String(e && e.name)) }} }};
                 t(() => fetch(a, {{ timeout: b, method: b, headers: a, body: b }}));
                 t(() => fetch('http://example.test/', {{ timeout: a }}));
                 t(() => setTimeout(() => {{}}, a));
                 t(() => crypto.getRandomValues(a));
                 t(() => console.log(a, b));
                 t(() => require(a));
                 return out.length"
            );
            let r = rt.block_on(run(&ex, &code, json!({})));
            match r {
                Ok(out) => prop_assert_eq!(out.result, json!(6)),
                Err(e) => prop_assert!(
                    matches!(
                        e.kind,
                        ErrorKind::Js(_) | ErrorKind::Timeout | ErrorKind::OutOfMemory
                    ),
                    "{}",
                    e
                ),
            }
            let next = rt.block_on(run(&ex, "return 7", json!({})));
            prop_assert_eq!(next.map(|o| o.result).ok(), Some(json!(7)));
            Ok(())
        })
        .expect("every hostile argument is answered");
}

/// Not a check but the context probe of bench/executor/RESULTS.md: for each kind of context,
/// the heap one fresh context adds (deterministic: what its snapshot context holds) and the
/// median time to create and boot one on one isolate, without HTTP or a second process.
/// `cargo test --release --lib context_probe -- --ignored --nocapture`
#[test]
#[ignore]
fn context_probe() {
    use super::isolate::prepare_context;
    use super::requires::ContextKind;
    let snap = snapshot::get().expect("snapshot");
    let params = v8::CreateParams::default().snapshot_blob(v8::StartupData::from(snap.blob));
    let mut iso = v8::Isolate::new(params);
    let m = |name: &str| {
        snapshot::MODULES
            .iter()
            .position(|n| *n == name)
            .expect(name)
    };
    let (cj, lodash) = (m("crypto-js"), m("lodash"));
    let kinds = [
        ("lean", ContextKind::Lean),
        ("lodash", ContextKind::Snapshot(snapshot::single(lodash))),
        ("crypto-js", ContextKind::Snapshot(snapshot::single(cj))),
        (
            "lodash + crypto-js",
            ContextKind::Snapshot(snapshot::pair(cj, lodash).expect("a pair context")),
        ),
        ("common", ContextKind::Snapshot(snapshot::COMMON)),
        ("xlsx", ContextKind::Snapshot(snapshot::single(m("xlsx")))),
    ];
    println!("| context | heap added (KiB) | create + boot, median of 200 (ms) |");
    for (name, kind) in kinds {
        iso.low_memory_notification();
        let before = iso.get_heap_statistics().used_heap_size();
        let context = prepare_context(&mut iso, kind).expect("context");
        let added = iso.get_heap_statistics().used_heap_size() - before;
        drop(context);
        let mut times: Vec<Duration> = (0..200)
            .map(|_| {
                let t = Instant::now();
                drop(prepare_context(&mut iso, kind).expect("context"));
                t.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "| {name} | {} | {:.3} |",
            added / 1024,
            times[100].as_secs_f64() * 1000.0
        );
    }
}
