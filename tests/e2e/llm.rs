//! LLM-aware failover (issue 7): each provider fault injected by the scripted fake provider
//! ([`super::fake_llm`]), checked with raw HTTP and with the real `openai` and `anthropic`
//! Python SDKs (`tests/e2e/clients/llm_client.py`): the client's final text or error, the
//! attempts and their spacing seen by the provider.

use crate::fake_llm::{input_tokens, timeline, FakeLlm, Fault, ANSWER};
use crate::harness::{client, Keel, Spec};
use serde_json::{json, Value};
use std::time::Duration;

const CLIENT_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/clients/llm_client.py"
);

/// Runs one request through a real SDK. `None` (after printing why) when python3 or the SDK
/// is missing, so the test skips cleanly; CI installs both.
pub async fn sdk(sdk: &str, base_url: &str, stream: bool, extra: &[&str]) -> Option<Value> {
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(CLIENT_SCRIPT)
        .arg(sdk)
        .arg("--base-url")
        .arg(base_url);
    if stream {
        cmd.arg("--stream");
    }
    cmd.args(extra);
    let out = match cmd.output().await {
        Ok(o) => o,
        Err(e) => {
            return skip(&format!("cannot run python3 for the {sdk} SDK client: {e}"));
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let v: Value = serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "{sdk} client printed no JSON; stdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    if let Some(why) = v.get("skip") {
        return skip(&format!("{why} (pip install openai anthropic)"));
    }
    Some(v)
}

/// A missing SDK skips the SDK half of a test, except where `LLM_SDK_TESTS` is set (CI
/// installs the SDKs, so there a missing one is a failure, not a silent pass).
fn skip(why: &str) -> Option<Value> {
    if std::env::var_os("LLM_SDK_TESTS").is_some() {
        panic!("LLM_SDK_TESTS is set but the SDK client cannot run: {why}");
    }
    eprintln!("SKIP: {why}");
    None
}

fn chat(stream: bool) -> Value {
    json!({"model": "gpt-test", "stream": stream, "messages": [{"role": "user", "content": "Say it."}]})
}

#[tokio::test]
async fn fake_provider_speaks_both_apis_to_the_real_sdks() {
    let p = FakeLlm::start("fake-model").await;
    p.set_gap(Duration::from_millis(1));
    for (name, stream, extra) in [
        ("openai", false, vec![]),
        ("openai", true, vec!["--usage"]),
        ("anthropic", false, vec![]),
        ("anthropic", true, vec![]),
    ] {
        let Some(r) = sdk(name, &p.url(), stream, &extra).await else {
            return;
        };
        assert_eq!(r["ok"], true, "{name} stream={stream}: {r}");
        assert_eq!(r["text"], ANSWER, "{name} stream={stream}: {r}");
        assert_eq!(r["model"], "fake-model", "{name} stream={stream}: {r}");
        assert!(r["usage"]["output"].as_u64().unwrap_or(0) > 0, "{r}");
    }
    assert_eq!(p.attempt_count(), 4);
}

#[tokio::test]
async fn fake_provider_faults_are_what_they_claim() {
    let p = FakeLlm::start("m").await;
    p.set_gap(Duration::from_millis(1));
    let url = format!("{}/v1/chat/completions", p.url());
    let http = reqwest::Client::new();
    p.script([
        Fault::Reset,
        Fault::Status {
            status: 429,
            retry_after: Some("1"),
        },
        Fault::ContextLength,
        Fault::CutAfter(2),
        Fault::NoTerminator,
    ]);
    assert!(http.post(&url).json(&chat(false)).send().await.is_err());
    let r = http.post(&url).json(&chat(false)).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let r = http.post(&url).json(&chat(false)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("context_length_exceeded"));
    let r = http.post(&url).json(&chat(true)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.is_err(), "a cut stream is a body error");
    let r = http.post(&url).json(&chat(true)).send().await.unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("\"finish_reason\":\"stop\"") && !text.contains("[DONE]"));

    // A trailing assistant message is continued, not restarted.
    let mut body = chat(false);
    body["messages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "assistant", "content": "The quick brown"}));
    let r: Value = http
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["choices"][0]["message"]["content"],
        " fox jumps over the lazy dog."
    );
    let attempts = p.attempts();
    assert_eq!(attempts.len(), 6);
    assert_eq!(attempts[5].prefill().as_deref(), Some("The quick brown"));
}

// ---------------------------------------------------------------------------------------
// Through keel: the real binary (Pingora listener) in front of fake providers.

/// Test-speed LLM settings: short timeouts, tiny backoff.
const FAST: &str = r#"
[proxy.retry]
backoff_min = "5ms"
backoff_max = "20ms"
max_attempts = 4
max_retry_after = "2s"
[proxy.timeouts]
first_byte = "1s"
first_token = "1s"
stream_idle = "1s"
total = "20s"
[proxy.breaker]
consecutive_failures = 3
cooldown = "1s"
max_cooldown = "2s"
[proxy.prewarm]
attempts = 1
timeout = "1s"
retry_interval = "200ms"
"#;

async fn keel(nodes: &[String]) -> Keel {
    Keel::start(Spec {
        extra: format!("{}\n{FAST}", nodes.concat()),
        ..Spec::default()
    })
    .await
}

/// A primary and a fallback provider, each with a short gap between stream deltas.
async fn pair(fallback_extra: &str) -> (FakeLlm, FakeLlm, Keel) {
    let p = FakeLlm::start("primary-model").await;
    let f = FakeLlm::start("fallback-model").await;
    for x in [&p, &f] {
        x.set_gap(Duration::from_millis(10));
    }
    let k = keel(&[
        p.node("primary", 1, ""),
        f.node("fallback", 2, fallback_extra),
    ])
    .await;
    (p, f, k)
}

fn base(k: &Keel) -> String {
    k.proxy_url("")
}

/// keel still serves and reports ready after the fault.
async fn healthy(k: &Keel) {
    let r = client().get(k.url("/health/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200, "keel not ready; log:\n{}", k.log());
}

async fn raw(k: &Keel, path: &str, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut rb = client().post(k.proxy_url(path)).json(body);
    for (n, v) in headers {
        rb = rb.header(*n, *v);
    }
    rb.send().await.expect("proxy request")
}

/// Providers that answered, in arrival order across them (0 = first given).
fn order(providers: &[&FakeLlm]) -> Vec<usize> {
    timeline(providers).into_iter().map(|(i, _)| i).collect()
}

fn gap(providers: &[&FakeLlm], n: usize) -> Duration {
    let t = timeline(providers);
    t[n + 1].1 - t[n].1
}

#[tokio::test]
async fn rate_limit_with_retry_after_waits_and_retries_the_same_node() {
    let (p, f, k) = pair("").await;
    p.script([Fault::Status {
        status: 429,
        retry_after: Some("1"),
    }]);
    let Some(r) = sdk("openai", &base(&k), false, &[]).await else {
        return;
    };
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["text"], ANSWER);
    assert_eq!(r["model"], "primary-model");
    assert_eq!(order(&[&p, &f]), [0, 0]);
    assert!(
        gap(&[&p, &f], 0) >= Duration::from_secs(1),
        "waited Retry-After"
    );
    healthy(&k).await;
}

#[tokio::test]
async fn rate_limit_without_retry_after_backs_off_and_fails_over() {
    let (p, f, k) = pair("").await;
    p.script([Fault::Status {
        status: 429,
        retry_after: None,
    }]);
    let Some(r) = sdk("anthropic", &base(&k), true, &[]).await else {
        return;
    };
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["text"], ANSWER);
    assert_eq!(r["model"], "fallback-model", "the node that answered");
    assert_eq!(order(&[&p, &f]), [0, 1]);
    healthy(&k).await;
}

#[tokio::test]
async fn persistent_rate_limit_returns_the_providers_429_within_the_budget() {
    let (p, f, k) = pair("").await;
    let limited = Fault::Status {
        status: 429,
        retry_after: Some("0"),
    };
    p.script([limited.clone(), limited.clone()]);
    f.script([limited.clone(), limited]);
    let Some(r) = sdk("openai", &base(&k), false, &[]).await else {
        return;
    };
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"], "RateLimitError", "{r}");
    // Same node once (it said when), then the fallback, each at most twice: bounded.
    assert_eq!(order(&[&p, &f]), [0, 0, 1, 1]);
    healthy(&k).await;
}

#[tokio::test]
async fn transient_5xx_and_resets_retry_the_same_node_once_then_fail_over() {
    let (p, f, k) = pair("").await;
    p.script([
        Fault::Status {
            status: 502,
            retry_after: None,
        },
        Fault::Reset,
    ]);
    let Some(r) = sdk("openai", &base(&k), true, &["--usage"]).await else {
        return;
    };
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["text"], ANSWER);
    assert_eq!(r["model"], "fallback-model");
    assert_eq!(order(&[&p, &f]), [0, 0, 1]);
    assert!(r["usage"]["output"].as_u64().unwrap() > 0, "{r}");
    healthy(&k).await;
}

#[tokio::test]
async fn status_503_fails_over_at_once() {
    let (p, f, k) = pair("").await;
    p.script([Fault::Status {
        status: 503,
        retry_after: None,
    }]);
    let Some(r) = sdk("anthropic", &base(&k), false, &[]).await else {
        return;
    };
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["model"], "fallback-model");
    assert_eq!(order(&[&p, &f]), [0, 1]);
    // The failed attempt is an attempt and a node failure, never a completion or tokens.
    let metrics = k.metrics().await;
    for line in [
        "keel_llm_attempts_total{node=\"primary\",outcome=\"unavailable\"} 1",
        "keel_llm_attempts_total{node=\"fallback\",outcome=\"answered\"} 1",
        "keel_llm_requests_total{outcome=\"complete\"} 1",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
    assert!(metrics.contains("keel_llm_tokens_total{kind=\"output\",node=\"fallback\"}"));
    assert!(!metrics.contains("keel_llm_tokens_total{kind=\"input\",node=\"primary\"}"));
    assert!(!metrics.contains("keel_llm_attempts_total{node=\"primary\",outcome=\"answered\"}"));
    healthy(&k).await;
}

#[tokio::test]
async fn silent_upstream_fails_over_at_once_after_first_byte() {
    let (p, f, k) = pair("").await;
    p.script([Fault::NoHeaders(Duration::from_secs(10))]);
    let Some(r) = sdk("openai", &base(&k), false, &[]).await else {
        return;
    };
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["model"], "fallback-model");
    assert_eq!(
        order(&[&p, &f]),
        [0, 1],
        "the silent node is not tried again"
    );
    // The provider records arrival after keel's first_byte clock started: allow for that.
    let waited = gap(&[&p, &f], 0);
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "failed over after first_byte, not after the node's silence: {waited:?}"
    );
    healthy(&k).await;
}

#[tokio::test]
async fn slow_first_token_fails_over_before_any_header_reaches_the_client() {
    for sdk_name in ["openai", "anthropic"] {
        let (p, f, k) = pair("").await;
        p.script([Fault::SlowFirstToken(Duration::from_secs(5))]);
        let Some(r) = sdk(sdk_name, &base(&k), true, &[]).await else {
            return;
        };
        assert_eq!(r["ok"], true, "{sdk_name}: {r}");
        assert_eq!(r["text"], ANSWER, "{sdk_name}");
        assert_eq!(
            r["model"], "fallback-model",
            "{sdk_name}: only the fallback's stream"
        );
        assert_eq!(order(&[&p, &f]), [0, 1]);
        healthy(&k).await;
    }
}

#[tokio::test]
async fn stream_cut_mid_answer_is_continued_on_a_prefill_fallback() {
    for sdk_name in ["openai", "anthropic"] {
        let (p, f, k) = pair("supports_prefill = true").await;
        p.script([Fault::CutAfter(3)]);
        let extra: &[&str] = if sdk_name == "openai" {
            &["--usage"]
        } else {
            &[]
        };
        let Some(r) = sdk(sdk_name, &base(&k), true, extra).await else {
            return;
        };
        assert_eq!(r["ok"], true, "{sdk_name}: {r}");
        assert_eq!(r["text"], ANSWER, "{sdk_name}: one answer, nothing twice");
        assert_eq!(r["id"], "fake-primary-model", "{sdk_name}: the original id");
        assert_eq!(order(&[&p, &f]), [0, 1]);
        let cont = &f.attempts()[0];
        assert_eq!(
            cont.prefill().as_deref(),
            Some("The quick brown"),
            "{sdk_name}"
        );
        // Usage is the sum of both parts: the cut OpenAI part reported none, the Anthropic
        // one its message_start (input, 1 output token); the continuation its 6 words.
        let cont_input = input_tokens(&cont.body);
        let (input, output) = if sdk_name == "openai" {
            (cont_input, 6)
        } else {
            (input_tokens(&p.attempts()[0].body) + cont_input, 1 + 6)
        };
        assert_eq!(r["usage"]["input"], input, "{sdk_name}: {r}");
        assert_eq!(r["usage"]["output"], output, "{sdk_name}: {r}");
        healthy(&k).await;
    }
}

#[tokio::test]
async fn stalled_stream_without_a_prefill_node_ends_with_an_error_not_a_short_answer() {
    for sdk_name in ["openai", "anthropic"] {
        let (p, f, k) = pair("").await;
        p.script([Fault::StallAfter(3)]);
        let Some(r) = sdk(sdk_name, &base(&k), true, &[]).await else {
            return;
        };
        assert_eq!(
            r["ok"], false,
            "{sdk_name}: a truncated answer must not look complete: {r}"
        );
        assert_eq!(r["text"], "The quick brown", "{sdk_name}: {r}");
        let message = r["message"].as_str().unwrap_or("");
        assert!(
            message.contains("primary") && message.contains("stalled"),
            "{sdk_name}: {r}"
        );
        assert_eq!(f.attempt_count(), 0, "no fallback can continue it");
        healthy(&k).await;
    }
}

#[tokio::test]
async fn malformed_events_are_dropped_and_the_stream_goes_on() {
    let (p, _f, k) = pair("").await;
    p.script([Fault::Malformed]);
    let Some(r) = sdk("openai", &base(&k), true, &[]).await else {
        return;
    };
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["text"], ANSWER);
    let metrics = k.metrics().await;
    assert!(
        metrics.contains("keel_llm_malformed_events_total{node=\"primary\"} 1"),
        "{metrics}"
    );
    healthy(&k).await;
}

#[tokio::test]
async fn stream_without_its_terminator_is_terminated_by_keel() {
    let (p, _f, k) = pair("").await;
    p.script([Fault::NoTerminator, Fault::NoTerminator]);
    let r = raw(&k, "/v1/chat/completions", &chat(true), &[]).await;
    let text = r.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(
        !text.contains("\"usage\":{"),
        "keel asked for usage, the client did not: {text}"
    );
    let Some(r) = sdk("anthropic", &base(&k), true, &[]).await else {
        return;
    };
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["text"], ANSWER);
    healthy(&k).await;
}

#[tokio::test]
async fn context_length_goes_to_a_larger_node_or_back_unchanged() {
    let (p, f, k) = pair("").await;
    p.script([Fault::ContextLength]);
    let Some(r) = sdk("openai", &base(&k), false, &[]).await else {
        return;
    };
    assert_eq!(r["error"], "BadRequestError", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("maximum context length"),
        "{r}"
    );
    assert_eq!(
        f.attempt_count(),
        0,
        "the fallback does not take context_length"
    );
    assert_eq!(p.attempt_count(), 1, "never retried on the same node");

    let p = FakeLlm::start("small").await;
    let big = FakeLlm::start("big-context").await;
    p.script([Fault::ContextLength]);
    let k = keel(&[
        p.node("small", 1, ""),
        big.node(
            "big",
            2,
            "fallback_for = [\"context_length\"]\nmodel_mapping = { \"*\" = \"big-context\" }",
        ),
    ])
    .await;
    let Some(r) = sdk("anthropic", &base(&k), false, &[]).await else {
        return;
    };
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["model"], "big-context");
    assert_eq!(big.attempts()[0].body["model"], "big-context");
    healthy(&k).await;
}

#[tokio::test]
async fn content_policy_refusal_is_returned_as_is_and_never_retried() {
    let (p, f, k) = pair("").await;
    p.script([Fault::ContentPolicy]);
    let Some(r) = sdk("anthropic", &base(&k), true, &[]).await else {
        return;
    };
    assert_eq!(r["error"], "BadRequestError", "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("content policy"),
        "{r}"
    );
    assert_eq!(order(&[&p, &f]), [0]);
    healthy(&k).await;
}

#[tokio::test]
async fn idempotency_key_shares_in_flight_and_replays_completed_answers() {
    let (p, f, k) = pair("").await;
    p.script([Fault::NoHeaders(Duration::from_millis(400))]);
    let body = chat(false);
    let key = [("idempotency-key", "order-42")];
    let (a, b) = tokio::join!(raw(&k, "/v1/chat/completions", &body, &key), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        raw(&k, "/v1/chat/completions", &body, &key).await
    });
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    // Exactly one of them went upstream; the other waited and shared its answer.
    let replayed = |r: &reqwest::Response| r.headers().get("idempotent-replayed").is_some();
    assert!(replayed(&a) != replayed(&b), "exactly one shared answer");
    let (a, b) = (a.text().await.unwrap(), b.text().await.unwrap());
    assert_eq!(a, b);
    let c = raw(&k, "/v1/chat/completions", &body, &key).await;
    assert_eq!(c.headers()["idempotent-replayed"], "true");
    assert_eq!(c.text().await.unwrap(), a);
    assert_eq!(
        p.attempt_count() + f.attempt_count(),
        1,
        "one upstream call, one bill"
    );

    let mut other = body.clone();
    other["messages"][0]["content"] = json!("something else");
    let d = raw(&k, "/v1/chat/completions", &other, &key).await;
    assert_eq!(d.status(), 422);
    let e: Value = d.json().await.unwrap();
    assert_eq!(e["error"]["type"], "idempotency_key_mismatch");
    assert_eq!(p.attempt_count() + f.attempt_count(), 1);
    healthy(&k).await;
}

#[tokio::test]
async fn flapping_primary_is_ejected_then_probed_back_within_a_cooldown() {
    let (p, f, k) = pair("").await;
    let down = Fault::Status {
        status: 503,
        retry_after: None,
    };
    p.script([down.clone(), down.clone(), down]);
    for _ in 0..3 {
        let r = raw(&k, "/v1/chat/completions", &chat(false), &[]).await;
        assert_eq!(r.status(), 200);
    }
    // Breaker open: the fallback serves directly.
    let r = raw(&k, "/v1/chat/completions", &chat(false), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(p.attempt_count(), 3);
    assert_eq!(f.attempt_count(), 4);
    // After the cooldown the primary (recovered) is probed and gets the traffic back; the
    // fallback serves meanwhile. Polled, not timed: prewarm may take a tick.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut served_by_fallback = 0;
    let mut back = false;
    for _ in 0..100 {
        let r: Value = raw(&k, "/v1/chat/completions", &chat(false), &[])
            .await
            .json()
            .await
            .unwrap();
        if r["model"] == "primary-model" {
            back = true;
            break;
        }
        served_by_fallback += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        back,
        "traffic never returned to the primary; log:\n{}",
        k.log()
    );
    for _ in 0..3 {
        let r: Value = raw(&k, "/v1/chat/completions", &chat(false), &[])
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["model"], "primary-model", "{r}");
    }
    assert_eq!(f.attempt_count(), 4 + served_by_fallback);
    healthy(&k).await;
}

#[tokio::test]
async fn llm_node_settings_through_the_admin_api_survive_a_restart() {
    let p = FakeLlm::start("primary-model").await;
    let big = FakeLlm::start("big").await;
    let mut k = keel(&[p.node("primary", 1, "")]).await;
    let added = k
        .admin(client().post(k.url("/admin/api/nodes")))
        .json(&json!({"name": "big", "base_url": big.url(), "priority": 2,
                      "fallback_for": ["context_length"], "supports_prefill": true}))
        .send()
        .await
        .unwrap();
    assert!(
        added.status().is_success(),
        "{}",
        added.text().await.unwrap()
    );
    let bad = k
        .admin(client().post(k.url("/admin/api/nodes")))
        .json(&json!({"name": "x", "base_url": big.url(), "fallback_for": ["sometimes"]}))
        .send()
        .await
        .unwrap();
    assert!(bad.status().is_client_error(), "{}", bad.status());
    k.stop().await;
    k.spawn();
    k.wait_ready().await;
    let nodes: Value = k.admin_get("/admin/api/nodes").await;
    let listed = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "big")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(listed["fallback_for"], json!(["context_length"]), "{nodes}");
    assert_eq!(listed["supports_prefill"], true, "{nodes}");
    assert_eq!(
        nodes["nodes"][0]["fallback_for"],
        json!(["unavailable", "rate_limited", "timeout", "stream_broken"])
    );
}

#[tokio::test]
async fn non_streaming_answer_cut_mid_body_is_retried_before_the_client_sees_it() {
    let (p, f, k) = pair("").await;
    p.script([Fault::CutAfter(0)]);
    let r = raw(
        &k,
        "/v1/messages",
        &json!({"model": "claude-test", "max_tokens": 64,
        "messages": [{"role": "user", "content": "Say it."}]}),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], ANSWER);
    assert_eq!(body["model"], "fallback-model");
    assert_eq!(order(&[&p, &f]), [0, 1]);
    healthy(&k).await;
}

/// keel with the DEFAULT `[proxy]` settings, as an operator runs it: a primary and a
/// priority-2 fallback that supports prefill and takes over every class.
async fn default_pair() -> (FakeLlm, FakeLlm, Keel) {
    let p = FakeLlm::start("primary-model").await;
    let f = FakeLlm::start("fallback-model").await;
    let all = r#"fallback_for = ["unavailable", "rate_limited", "timeout", "stream_broken", "context_length"]
supports_prefill = true"#;
    let k = Keel::start(Spec {
        extra: [p.node("primary", 1, ""), f.node("fallback", 2, all)].concat(),
        ..Spec::default()
    })
    .await;
    (p, f, k)
}

/// Item 1 with the defaults: a streaming request to a primary that never sends a header is
/// answered by the fallback after `stream_first_byte` (10 s), the primary tried once; by
/// raw HTTP and by both SDKs.
#[tokio::test]
async fn silent_primary_hands_a_stream_to_the_fallback_after_stream_first_byte() {
    let (p, f, k) = default_pair().await;
    let silent = Fault::NoHeaders(Duration::from_secs(120));
    p.script([silent.clone(), silent.clone(), silent]);
    let r = raw(&k, "/v1/chat/completions", &chat(true), &[]).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("fallback-model") && text.contains("[DONE]"),
        "{text}"
    );
    let mut clients = 1;
    for name in ["openai", "anthropic"] {
        let Some(r) = sdk(name, &base(&k), true, &[]).await else {
            continue;
        };
        clients += 1;
        assert_eq!(r["ok"], true, "{name}: {r}");
        assert_eq!(r["text"], ANSWER, "{name}");
    }
    let t = timeline(&[&p, &f]);
    assert_eq!(
        t.len(),
        2 * clients,
        "one primary + one fallback attempt per request: {t:?}"
    );
    for pair in t.chunks(2) {
        assert_eq!(
            (pair[0].0, pair[1].0),
            (0, 1),
            "primary once, then the fallback"
        );
        let waited = pair[1].1 - pair[0].1;
        assert!(
            // keel starts its clock before the connection, the fake after reading the request.
            waited >= Duration::from_secs(9) && waited < Duration::from_secs(12),
            "fallback after stream_first_byte: {waited:?}"
        );
    }
    healthy(&k).await;
}

/// Item 1: a primary that stays silent and then closes the connection (15 s) is a silent
/// node, not a blip: never retried, the fallback answers at once — even for a
/// non-streaming request, whose header wait (`first_byte`, 60 s) exceeds `total` (30 s).
#[tokio::test]
async fn primary_closing_after_a_silence_is_not_retried_and_the_fallback_answers() {
    let (p, f, k) = default_pair().await;
    p.script([
        Fault::SilentThenClose(Duration::from_secs(15)),
        Fault::SilentThenClose(Duration::from_secs(15)),
    ]);
    let r = raw(&k, "/v1/chat/completions", &chat(false), &[]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "fallback-model");
    assert_eq!(order(&[&p, &f]), [0, 1]);
    let waited = gap(&[&p, &f], 0);
    assert!(
        waited >= Duration::from_secs(14) && waited < Duration::from_secs(16),
        "{waited:?}"
    );
    healthy(&k).await;
}

/// Item 1, worst case of a non-streaming request: silent past `first_byte` (60 s, longer
/// than `total`), the fallback still gets its turn.
#[tokio::test]
async fn silent_primary_past_total_still_leaves_the_fallback_its_turn() {
    let (p, f, k) = default_pair().await;
    p.script([Fault::NoHeaders(Duration::from_secs(120))]);
    let Some(r) = sdk("anthropic", &base(&k), false, &["--timeout", "150"]).await else {
        return;
    };
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["model"], "fallback-model");
    assert_eq!(order(&[&p, &f]), [0, 1]);
    let waited = gap(&[&p, &f], 0);
    assert!(
        waited >= Duration::from_secs(59) && waited < Duration::from_secs(62),
        "{waited:?}"
    );
    healthy(&k).await;
}

/// Item 4 with the defaults: the primary answers 503 for 60 s while a client asks every
/// 4 s; the fallback serves throughout, the primary never sees more attempts than there
/// were requests, and gets its traffic back within 30 s of becoming healthy.
#[tokio::test]
async fn recovered_primary_gets_traffic_back_within_30s_after_a_long_outage() {
    let (p, f, k) = default_pair().await;
    let healthy_at = p.down_for(Duration::from_secs(60));
    let mut requests_in_outage = 0;
    let mut back_at = None;
    for _ in 0..40 {
        let asked = std::time::Instant::now();
        let r = raw(&k, "/v1/chat/completions", &chat(false), &[]).await;
        assert_eq!(r.status(), 200, "answers throughout; log:\n{}", k.log());
        let v: Value = r.json().await.unwrap();
        if asked < healthy_at {
            requests_in_outage += 1;
        }
        if v["model"] == "primary-model" && asked >= healthy_at {
            back_at = p.attempts().last().map(|a| a.at);
            break;
        }
        tokio::time::sleep(Duration::from_secs(4).saturating_sub(asked.elapsed())).await;
    }
    let back_at =
        back_at.unwrap_or_else(|| panic!("primary never got traffic back; log:\n{}", k.log()));
    let primary_in_outage = p.attempts().iter().filter(|a| a.at < healthy_at).count();
    assert!(
        primary_in_outage <= requests_in_outage,
        "{primary_in_outage} primary attempts for {requests_in_outage} requests"
    );
    assert!(f.attempt_count() >= 1);
    let recovery = back_at - healthy_at;
    assert!(
        recovery <= Duration::from_secs(30),
        "recovered after {recovery:?}"
    );
    healthy(&k).await;
}
