//! Issue 16, items 2 and 3, with the default `[proxy]` settings: a slow first token is
//! hedged on the fallback, and a fallback that refuses a prefill regenerates the answer
//! (spliced in when it repeats what the client already has). Raw HTTP and the real SDKs
//! (see [`crate::llm::sdk`]); timings from the fake provider's own timestamps.

use crate::fake_llm::{input_tokens, timeline, FakeLlm, Fault, ANSWER};
use crate::harness::{client, Keel, Spec};
use crate::llm::sdk;
use serde_json::{json, Value};
use std::time::Duration;

fn chat(stream: bool) -> Value {
    json!({"model": "gpt-test", "stream": stream, "messages": [{"role": "user", "content": "Say it."}]})
}

/// The operator's setup of issue 16 with every `[proxy]` default: a primary, and a
/// priority-2 fallback that supports prefills and takes over every class. `extra`: more
/// config (empty for the defaults).
async fn setup(extra: &str) -> (FakeLlm, FakeLlm, Keel) {
    let p = FakeLlm::start("primary-model").await;
    let f = FakeLlm::start("fallback-model").await;
    let all = r#"fallback_for = ["unavailable", "rate_limited", "timeout", "stream_broken", "context_length"]
supports_prefill = true"#;
    let k = Keel::start(Spec {
        extra: [
            p.node("primary", 1, ""),
            f.node("fallback", 2, all),
            extra.to_string(),
        ]
        .concat(),
        ..Spec::default()
    })
    .await;
    (p, f, k)
}

async fn stream_raw(k: &Keel) -> String {
    let r = client()
        .post(k.proxy_url("/v1/chat/completions"))
        .json(&chat(true))
        .send()
        .await
        .expect("proxy request");
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The answer text of a raw OpenAI stream.
fn streamed_text(body: &str) -> String {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

/// `keel_llm_attempts_total` for `node` and `outcome`.
async fn attempts(k: &Keel, node: &str, outcome: &str) -> u64 {
    let text = client()
        .get(k.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("keel_llm_attempts_total{"))
        .filter(|l| {
            l.contains(&format!("node=\"{node}\"")) && l.contains(&format!("outcome=\"{outcome}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Item 2: headers at once, the first token after 20 s on the primary: the fallback is
/// started beside it at `first_token` (10 s) and its answer is the client's, well within
/// 15 s of the request; the primary counts as a timed-out attempt. Raw HTTP and both SDKs.
#[tokio::test]
async fn slow_first_token_is_hedged_on_the_fallback_with_the_defaults() {
    let (p, f, k) = setup("").await;
    let slow = Fault::SlowFirstToken(Duration::from_secs(20));
    p.script([slow.clone(), slow.clone(), slow]);
    let body = stream_raw(&k).await;
    assert_eq!(streamed_text(&body), ANSWER);
    assert!(
        body.contains("fallback-model") && !body.contains("primary-model"),
        "only the fallback's stream: {body}"
    );
    let mut clients = 1u64;
    for name in ["openai", "anthropic"] {
        let Some(r) = sdk(name, &k.proxy_url(""), true, &[]).await else {
            continue;
        };
        clients += 1;
        assert_eq!(r["ok"], true, "{name}: {r}");
        assert_eq!(r["text"], ANSWER, "{name}");
        assert_eq!(r["model"], "fallback-model", "{name}: {r}");
    }
    let t = timeline(&[&p, &f]);
    assert_eq!(t.len() as u64, 2 * clients, "{t:?}");
    for pair in t.chunks(2) {
        assert_eq!((pair[0].0, pair[1].0), (0, 1), "primary, then the hedge");
        let hedged = pair[1].1 - pair[0].1;
        assert!(
            hedged >= Duration::from_secs(9) && hedged < Duration::from_secs(12),
            "the hedge starts at first_token: {hedged:?}"
        );
    }
    // The fallback answers at once (its 9 words 20 ms apart): the answer is complete
    // within 15 s of the request, against 20 s for the primary's first token.
    assert!(t[1].1 - t[0].1 + Duration::from_secs(1) < Duration::from_secs(15));
    assert_eq!(attempts(&k, "primary", "timeout").await, clients);
    assert_eq!(attempts(&k, "fallback", "answered").await, clients);
}

/// Item 2: a primary whose first token (12 s) comes before the hedge's (10 s + 5 s) is
/// the one delivered; the hedge is closed and counted as a lost attempt. With `hedge =
/// false` the same primary is given up at `first_token` and the slower fallback answers.
#[tokio::test]
async fn the_first_node_with_content_wins_and_hedging_can_be_turned_off() {
    let primary = Fault::SlowFirstToken(Duration::from_secs(12));
    let fallback = Fault::SlowFirstToken(Duration::from_secs(5));

    let (p, f, k) = setup("").await;
    p.script([primary.clone()]);
    f.script([fallback.clone()]);
    let body = stream_raw(&k).await;
    assert_eq!(streamed_text(&body), ANSWER);
    assert!(
        body.contains("primary-model") && !body.contains("fallback-model"),
        "{body}"
    );
    assert_eq!(f.attempt_count(), 1, "the hedge was started");
    assert_eq!(attempts(&k, "fallback", "lost").await, 1);
    assert_eq!(attempts(&k, "primary", "answered").await, 1);
    assert_eq!(attempts(&k, "fallback", "answered").await, 0);

    let (p, f, k) = setup("[proxy.retry]\nhedge = false\n").await;
    p.script([primary]);
    f.script([fallback]);
    let body = stream_raw(&k).await;
    assert_eq!(streamed_text(&body), ANSWER);
    assert!(body.contains("fallback-model"), "{body}");
    assert_eq!(attempts(&k, "primary", "timeout").await, 1);
    assert_eq!(attempts(&k, "fallback", "answered").await, 1);
    let t = timeline(&[&p, &f]);
    let waited = t[1].1 - t[0].1;
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(12),
        "the fallback only after first_token: {waited:?}"
    );
}

/// Item 3: a stream cut after 3 words, the fallback's model refuses the prefill with a
/// 400: keel regenerates there without it, skips the 3 words the client has and splices
/// the rest — one answer under the primary's id, the usage of both parts. A second
/// request regenerates at once (the refusal is remembered for that node and model).
#[tokio::test]
async fn a_refused_prefill_is_regenerated_and_the_matching_rest_spliced_in() {
    let (p, f, k) = setup("").await;
    f.refuse_prefill();
    p.script([Fault::CutAfter(3), Fault::CutAfter(3)]);
    let mut body = chat(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = client()
        .post(k.proxy_url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert_eq!(streamed_text(&text), ANSWER, "{text}");
    assert!(
        text.contains("fake-primary-model") && !text.contains("fake-fallback-model"),
        "{text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let fa = f.attempts();
    assert_eq!(fa.len(), 2);
    assert_eq!(fa[0].prefill().as_deref(), Some("The quick brown"));
    assert_eq!(fa[1].prefill(), None, "regenerated without the prefill");
    // The cut OpenAI part reported no usage; the regeneration its 9 words.
    let usage = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find_map(|v| v.get("usage").filter(|u| !u.is_null()).cloned())
        .unwrap_or(Value::Null);
    assert_eq!(usage["prompt_tokens"], input_tokens(&fa[1].body), "{text}");
    assert_eq!(usage["completion_tokens"], 9, "{text}");

    let text = stream_raw(&k).await;
    assert_eq!(streamed_text(&text), ANSWER, "{text}");
    let fa = f.attempts();
    assert_eq!(fa.len(), 3, "remembered: no second prefill");
    assert_eq!(fa[2].prefill(), None);

    for name in ["openai", "anthropic"] {
        p.script([Fault::CutAfter(3)]);
        let Some(r) = sdk(name, &k.proxy_url(""), true, &[]).await else {
            continue;
        };
        assert_eq!(r["ok"], true, "{name}: {r}");
        assert_eq!(r["text"], ANSWER, "{name}: nothing twice");
        assert_eq!(r["id"], "fake-primary-model", "{name}: the original id");
        assert_eq!(f.attempts().last().and_then(|a| a.prefill()), None);
    }
}

/// Item 3: the regenerated answer says something else: the client's stream ends with an
/// in-band error naming the primary's cut — never the fallback's 400.
#[tokio::test]
async fn a_diverging_regeneration_ends_with_the_primarys_cut_not_the_400() {
    let (p, f, k) = setup("").await;
    f.refuse_prefill();
    f.set_text("Something else entirely, said differently.");
    p.script([Fault::CutAfter(3)]);
    let text = stream_raw(&k).await;
    assert_eq!(streamed_text(&text), "The quick brown", "{text}");
    assert!(
        text.contains("node primary broke off") && !text.contains("[DONE]"),
        "{text}"
    );
    assert!(
        !text.contains("400") && !text.contains("invalid_prefill"),
        "{text}"
    );
    for name in ["openai", "anthropic"] {
        p.script([Fault::CutAfter(3)]);
        let Some(r) = sdk(name, &k.proxy_url(""), true, &[]).await else {
            continue;
        };
        assert_eq!(r["ok"], false, "{name}: {r}");
        assert_eq!(r["text"], "The quick brown", "{name}: {r}");
        let message = r["message"].as_str().unwrap_or("");
        assert!(
            message.contains("primary") && !message.contains("400"),
            "{name}: {r}"
        );
    }
}
