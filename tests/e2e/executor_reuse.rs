//! `[executor] reuse_contexts`: a finished call's context serves the same access token's next
//! call (its libraries' objects, state included), never another token's, and a call that
//! failed, changed the global object or left work pending hands its context to no one. One
//! isolate, so every call meets the contexts the earlier ones left.

use crate::harness::{client, Keel, Spec};
use base64::Engine;
use serde_json::{json, Value};

const ALICE: &str = "e2e-token-alice";
const BOB: &str = "e2e-token-bob";

fn spec(reuse: bool) -> Spec {
    Spec {
        extra: format!(
            "[executor]\npool_size = 1\nexecution_timeout = \"1500ms\"\naccess_tokens = [\"{ALICE}\", \"{BOB}\"]\nreuse_contexts = {reuse}\n[executor.rate_limit]\nenabled = false\n"
        ),
        ..Default::default()
    }
}

async fn call(k: &Keel, token: &str, code: &str) -> Value {
    client()
        .post(k.url("/flow/codeblock"))
        .header("accessToken", token)
        .json(&json!({
            "input": {},
            "codebase64": base64::engine::general_purpose::STANDARD.encode(code),
        }))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json body")
}

/// The block's answer, which must be a success.
async fn result(k: &Keel, token: &str, code: &str) -> Value {
    let body = call(k, token, code).await;
    assert_eq!(body["success"], json!(true), "{code}: {body}");
    body["result"].clone()
}

/// Counts this call on lodash itself: state a block leaves in a library.
const COUNT: &str = "const _ = require('lodash'); _.calls = (_.calls || 0) + 1; return _.calls";

#[tokio::test]
async fn a_warm_context_serves_only_its_own_tokens_calls() {
    let k = Keel::start(spec(true)).await;
    assert_eq!(result(&k, ALICE, COUNT).await, json!(1));
    assert_eq!(
        result(&k, ALICE, COUNT).await,
        json!(2),
        "Alice's second call reuses her context"
    );
    assert_eq!(
        result(&k, BOB, COUNT).await,
        json!(1),
        "Bob never gets Alice's context"
    );
    assert_eq!(result(&k, ALICE, COUNT).await, json!(3));
    assert_eq!(result(&k, BOB, COUNT).await, json!(2));

    // A call that adds a global runs in the warm context, which then goes.
    let code = "globalThis.leftover = 'x'; return require('lodash').calls";
    assert_eq!(result(&k, ALICE, code).await, json!(3));
    let code = "return [typeof leftover, require('lodash').calls || 0]";
    assert_eq!(result(&k, ALICE, code).await, json!(["undefined", 0]));

    // An implicit global of sloppy code, a failure and an unref'd timer end a context too.
    let enders = [
        "require('lodash').calls = 50; implicitGlobal = 1; return 1",
        "require('lodash').calls = 60; throw new Error('no')",
        "require('lodash').calls = 70; setTimeout(() => {}, 60000).unref(); return 1",
    ];
    for ender in enders {
        // It runs in the warm context the call before left...
        call(&k, ALICE, ender).await;
        // ...which is gone after it.
        assert_eq!(result(&k, ALICE, COUNT).await, json!(1), "after: {ender}");
    }
    // A setter left on `input` never sees the next call's input.
    let trap = "Object.defineProperty(globalThis, 'input', { configurable: true, set(v) { require('lodash').seen = v }, get() { return 'trapped' } }); return 1";
    result(&k, ALICE, trap).await;
    let code = "return [input, require('lodash').seen === undefined]";
    let body = call(&k, ALICE, code).await;
    assert_eq!(body["result"], json!([{}, true]), "{body}");

    // Bob's context was kept all along.
    assert_eq!(result(&k, BOB, COUNT).await, json!(3));

    // Module statistics count each call that required lodash, warm or not: 5 + 2 + 3 × 2
    // + 1 + 1 above, in total.
    let modules = k
        .admin_get_until("/flow/stats/modules/lodash", |m| {
            m["data"]["requires"] == json!(15)
        })
        .await;
    assert_eq!(modules["data"]["requires"], json!(15), "{modules}");

    // Ten calls above ran in a warm context (Alice 2nd, 4th, the leftover call, the three
    // enders, the trap and the call after it; Bob 2nd and last): /flow/status and the metric
    // say so.
    let status = k
        .admin_get_until("/flow/status", |s| {
            s["executor"]["contextsReused"] == json!(10)
        })
        .await;
    assert_eq!(status["executor"]["contextsReused"], json!(10), "{status}");
    let metrics = k.metrics().await;
    assert_eq!(
        crate::harness::series(&metrics, "keel_executor_contexts_reused_total "),
        10.0
    );
}

#[tokio::test]
async fn what_a_warm_context_may_hold_is_bounded() {
    let k = Keel::start(spec(true)).await;
    let kept = "return require('lodash').hoard !== undefined";
    // 0.8 MB stays (the control: the case below is not kept for another reason)...
    let small = "require('lodash').hoard = new Array(1e5).fill(1.5); return 1";
    result(&k, ALICE, small).await;
    assert_eq!(result(&k, ALICE, kept).await, json!(true));
    // ...40 MB on the heap or in array buffers (a quarter of each limit is 32 MiB) does not.
    for hoard in [
        "require('lodash').hoard = new Array(5e6).fill(1.5); return 1",
        "require('lodash').hoard = Buffer.alloc(40 << 20); return 1",
    ] {
        result(&k, ALICE, hoard).await;
        assert_eq!(result(&k, ALICE, kept).await, json!(false), "{hoard}");
    }
}

#[tokio::test]
async fn without_reuse_every_call_starts_fresh() {
    let k = Keel::start(spec(false)).await;
    for _ in 0..3 {
        assert_eq!(result(&k, ALICE, COUNT).await, json!(1));
    }
    let status = k.admin_get("/flow/status").await;
    assert_eq!(status["executor"]["contextsReused"], json!(0), "{status}");
}
