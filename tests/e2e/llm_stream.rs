//! The LLM stream path's upkeep (issue 16): streamed answers hand their upstream
//! connection back to the pool, each node's time to first token is a histogram, and failed
//! upstream attempts are typed events on the event feed.

use crate::fake_llm::{FakeLlm, Fault, ANSWER};
use crate::harness::{client, Keel, Spec};
use serde_json::{json, Value};
use std::time::Duration;

/// Test-speed settings: short timeouts, tiny backoff, no prewarm traffic to count.
const FAST: &str = r#"
[proxy.retry]
backoff_min = "5ms"
backoff_max = "20ms"
[proxy.timeouts]
first_byte = "2s"
first_token = "2s"
stream_idle = "2s"
total = "20s"
[proxy.prewarm]
enabled = false
"#;

async fn keel(nodes: &[String]) -> Keel {
    Keel::start(Spec {
        extra: format!("{}\n{FAST}", nodes.concat()),
        ..Spec::default()
    })
    .await
}

/// The text of an SSE answer (OpenAI or Anthropic deltas) and whether it ended with the
/// API's terminal event.
fn streamed_text(body: &str) -> (String, bool) {
    let mut text = String::new();
    let mut terminated = false;
    for data in body.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if data == "[DONE]" {
            terminated = true;
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if v["type"] == "message_stop" {
            terminated = true;
        }
        let delta = v["choices"][0]["delta"]["content"]
            .as_str()
            .or_else(|| v["delta"]["text"].as_str());
        text.push_str(delta.unwrap_or(""));
    }
    (text, terminated)
}

/// The value of a Prometheus sample line `name{labels} value`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn streamed_answers_reuse_upstream_connections_and_time_the_first_token() {
    let p = FakeLlm::start("m").await;
    p.set_gap(Duration::from_millis(1));
    p.keep_alive();
    let k = keel(&[p.node("primary", 1, "")]).await;
    let c = client();
    const STREAMS: usize = 50;
    for i in 0..STREAMS {
        // Both APIs: each ends its stream differently (`[DONE]`, `message_stop`).
        let (path, body) = if i % 2 == 0 {
            (
                "/v1/chat/completions",
                json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "Say it."}]}),
            )
        } else {
            (
                "/v1/messages",
                json!({"model": "m", "stream": true, "max_tokens": 64, "messages": [{"role": "user", "content": "Say it."}]}),
            )
        };
        let r = c.post(k.proxy_url(path)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200, "stream {i}; log:\n{}", k.log());
        let (text, terminated) = streamed_text(&r.text().await.unwrap());
        assert_eq!(text, ANSWER, "stream {i}");
        assert!(terminated, "stream {i} ended with its terminal event");
    }
    assert_eq!(p.attempt_count(), STREAMS);
    assert!(
        p.api_connections() <= 2,
        "{STREAMS} streams opened {} upstream connections",
        p.api_connections()
    );

    // Every stream produced content: one time-to-first-token observation each.
    let metrics = k.metrics().await;
    let name = keel::telemetry::catalog::UPSTREAM_TTFT_SECONDS;
    assert_eq!(
        sample(&metrics, &format!("{name}_count{{node=\"primary\"}}")),
        Some(STREAMS as f64),
        "{metrics}"
    );
    assert!(metrics.contains(&format!("{name}_bucket{{node=\"primary\",le=\"0.1\"}}")));

    // A client that abandons a stream midway: that connection may close, the next stream
    // still completes.
    p.set_gap(Duration::from_millis(50));
    let mut r = c
        .post(k.proxy_url("/v1/chat/completions"))
        .json(&json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "Say it."}]}))
        .send()
        .await
        .unwrap();
    let first = r.chunk().await.unwrap();
    assert!(first.is_some());
    drop(r);
    p.set_gap(Duration::from_millis(1));
    let r = c
        .post(k.proxy_url("/v1/chat/completions"))
        .json(&json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "Say it."}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed_text(&r.text().await.unwrap()).0, ANSWER);
}

#[tokio::test]
async fn failed_upstream_attempts_are_typed_events() {
    let p = FakeLlm::start("primary-model").await;
    let f = FakeLlm::start("fallback-model").await;
    for x in [&p, &f] {
        x.set_gap(Duration::from_millis(1));
    }
    p.script([Fault::Status {
        status: 503,
        retry_after: None,
    }]);
    let k = keel(&[p.node("primary", 1, ""), f.node("fallback", 2, "")]).await;
    let c = client();
    let r = c
        .post(k.proxy_url("/v1/chat/completions"))
        .header("x-request-id", "req-events-1")
        .json(&json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "Say it."}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(streamed_text(&r.text().await.unwrap()).0, ANSWER);

    let overview: Value = k.admin_get("/api/v1/overview").await;
    let failed: Vec<&Value> = overview["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "upstream.failed")
        .collect();
    assert_eq!(failed.len(), 1, "{overview}");
    let e = failed[0];
    assert_eq!(e["component"], "proxy");
    assert_eq!(e["level"], "warn");
    let data = &e["data"];
    assert_eq!(data["node"], "primary", "{e}");
    assert_eq!(data["route"], "llm");
    assert_eq!(data["class"], "unavailable");
    assert_eq!(data["reason"], "status");
    assert_eq!(data["status"], 503);
    assert_eq!(data["request_id"], "req-events-1");
    assert!(
        !e["message"].as_str().unwrap().contains("127.0.0.1"),
        "no addresses in events: {e}"
    );

    // A node that refuses connections: class and reason say so.
    drop(p);
    // The listener closes once its task sees the abort.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = c
        .post(k.proxy_url("/v1/chat/completions"))
        .json(&json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": "Say it."}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "fallback answered; log:\n{}", k.log());
    let overview: Value = k.admin_get("/api/v1/overview").await;
    let refused = overview["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "upstream.failed" && e["data"]["reason"] == "connect")
        .count();
    assert_eq!(refused, 1, "{overview}");

    // The generic route (not a generation request) reports its failed attempts too.
    let r = c.get(k.proxy_url("/v1/models")).send().await.unwrap();
    assert_eq!(r.status(), 200, "fallback answered; log:\n{}", k.log());
    let overview: Value = k.admin_get("/api/v1/overview").await;
    let generic: Vec<&Value> = overview["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "upstream.failed" && e["data"]["route"] == "generic")
        .collect();
    assert_eq!(generic.len(), 1, "{overview}");
    assert_eq!(generic[0]["data"]["node"], "primary");
    assert_eq!(generic[0]["data"]["reason"], "connect");
}
