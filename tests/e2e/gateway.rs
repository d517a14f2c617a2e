//! The LLM gateway end to end: the real keel binary (Pingora listener) in front of fake
//! upstream nodes written in Rust (`upstream.rs`). Covers the spec's scenarios 1–3, retry,
//! the breaker cycle, body replay, the no-retry-after-first-byte rule, SSE passthrough
//! timing, token usage, the admin API and persistence, and shift rollback.

use crate::harness::{client, Keel, Spec};
use crate::upstream::{Script, Upstream};
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Test-speed resilience settings: short cooldowns and holds.
const FAST: &str = r#"
[proxy.retry]
backoff_min = "1ms"
backoff_max = "5ms"
[proxy.breaker]
consecutive_failures = 3
cooldown = "500ms"
max_cooldown = "2s"
half_open_probes = 3
[proxy.prewarm]
attempts = 2
timeout = "1s"
retry_interval = "300ms"
"#;

fn node(name: &str, url: &str, extra: &str) -> String {
    format!("\n[[proxy.nodes]]\nname = \"{name}\"\nbase_url = \"{url}\"\n{extra}\n")
}

async fn start(nodes: &[String], sections: &str) -> Keel {
    Keel::start(Spec {
        extra: format!("{}\n{}", nodes.concat(), sections),
        ..Spec::default()
    })
    .await
}

/// A scripted `node1` (priority 1), a healthy `node2` (priority 2) and keel in front of both
/// with [`FAST`] settings: the usual primary-and-fallback pair of a failover test.
async fn primary_and_fallback(script: Script) -> (Upstream, Upstream, Keel) {
    let primary = Upstream::with("node1", script).await;
    let fallback = Upstream::start("node2").await;
    let k = start(
        &[
            node("node1", &primary.url(), "priority = 1"),
            node("node2", &fallback.url(), "priority = 2"),
        ],
        FAST,
    )
    .await;
    (primary, fallback, k)
}

async fn post(k: &Keel, body: &Value) -> reqwest::Response {
    client()
        .post(k.proxy_url("/v1/messages"))
        .json(body)
        .send()
        .await
        .expect("proxy request")
}

fn msg() -> Value {
    json!({"model": "claude-x", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
}

async fn nodes(k: &Keel) -> Value {
    k.admin_get("/admin/api/nodes").await
}

async fn node_status(k: &Keel, name: &str) -> Value {
    let all = nodes(k).await;
    all["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Log events of one kind (the event bus writes `kind` into each JSON log line).
fn events(k: &Keel, kind: &str) -> Vec<Value> {
    k.log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["kind"] == kind)
        .collect()
}

async fn eventually(what: &str, k: &Keel, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}; log:\n{}", k.log());
}

#[tokio::test]
async fn scenario1_unreachable_node_is_retried_on_the_healthy_one() {
    let healthy = Upstream::start("node2").await;
    // Bound but never listening: connections to it are refused, and no other test's server
    // can take the port meanwhile (a port that was merely free could be reused by one).
    let hold = tokio::net::TcpSocket::new_v4().unwrap();
    hold.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let dead = format!("http://{}", hold.local_addr().unwrap());
    let k = start(
        &[
            node("node1", &dead, "priority = 1"),
            node("node2", &healthy.url(), "priority = 2"),
        ],
        FAST,
    )
    .await;
    for _ in 0..5 {
        let r = post(&k, &msg()).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["node"], "node2");
    }
    let log = k.log();
    assert!(
        log.contains("upstream try failed; retrying on another node") && log.contains("node1"),
        "the retry is logged:\n{log}"
    );
    let metrics = k.metrics().await;
    assert!(
        metrics.contains("keel_upstream_retries_total{node=\"node1\",reason=\"connect\"}"),
        "{metrics}"
    );
    // Three connect failures opened node1's breaker; the health reason says so.
    eventually("proxy health degraded with the reason", &k, async || {
        let detailed: Value = client()
            .get(k.url("/health/detailed"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let proxy = &detailed["components"]["proxy"];
        proxy["status"] == "degraded" && proxy["reason"] == "1/2 nodes available"
    })
    .await;
}

#[tokio::test]
async fn scenario2_breaker_opens_then_half_opens_after_cooldown_then_recovers() {
    let (flaky, _backup, k) = primary_and_fallback(Script {
        fail_next: 3,
        fail_status: 503,
        ..Script::default()
    })
    .await;
    for _ in 0..3 {
        let r = post(&k, &msg()).await;
        assert_eq!(r.status(), 200, "retried on node2");
    }
    let n1 = node_status(&k, "node1").await;
    assert_eq!(n1["status"], "circuit_breaker_open", "{n1}");
    assert_eq!(n1["breaker"]["state"], "open", "{n1}");
    // While open, traffic goes to node2 only.
    assert_eq!(
        post(&k, &msg()).await.json::<Value>().await.unwrap()["node"],
        "node2"
    );
    assert_eq!(flaky.request_count(), 3);

    eventually(
        "half-open after the cooldown and a passing prewarm",
        &k,
        async || node_status(&k, "node1").await["status"] == "circuit_breaker_half_open",
    )
    .await;
    for _ in 0..3 {
        let body: Value = post(&k, &msg()).await.json().await.unwrap();
        assert_eq!(body["node"], "node1", "half-open probes go to node1");
    }
    let n1 = node_status(&k, "node1").await;
    assert_eq!(n1["breaker"]["state"], "closed", "{n1}");
    assert_eq!(n1["state"], "active", "{n1}");
    for kind in [
        "breaker.opened",
        "node.prewarmed",
        "breaker.half_open",
        "breaker.closed",
    ] {
        assert_eq!(events(&k, kind).len(), 1, "{kind}; log:\n{}", k.log());
    }
}

#[tokio::test]
async fn scenario3_added_node_is_prewarmed_then_takes_traffic() {
    let node1 = Upstream::start("node1").await;
    let node3 = Upstream::start("node3").await;
    let k = start(&[node("node1", &node1.url(), "")], FAST).await;
    let r = k
        .admin(client().post(k.url("/admin/api/nodes")))
        .json(&json!({"name": "node3", "base_url": node3.url(), "weight": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["source"], "runtime");
    eventually("node3 prewarmed", &k, async || {
        k.log()
            .contains("[warmup] node node3 prewarmed successfully (2/2)")
    })
    .await;
    let log = k.log();
    assert!(log.contains("[warmup] prewarming node node3..."), "{log}");
    assert!(
        log.contains("[warmup] node node3 probe 1/2 success (latency: "),
        "{log}"
    );
    assert!(
        log.contains("[warmup] node node3 probe 2/2 success (latency: "),
        "{log}"
    );
    assert!(
        log.contains("switched to node node3 (reason: joined the pool, prewarmed)"),
        "{log}"
    );
    assert_eq!(node3.health_checks(), 2);
    let mut served = std::collections::HashSet::new();
    for _ in 0..6 {
        let body: Value = post(&k, &msg()).await.json().await.unwrap();
        served.insert(body["node"].as_str().unwrap().to_string());
    }
    assert!(
        served.contains("node3") && served.contains("node1"),
        "{served:?}"
    );
}

#[tokio::test]
async fn post_retried_after_503_arrives_intact_at_the_second_node() {
    let (first, second, k) = primary_and_fallback(Script {
        fail_next: 1,
        ..Script::default()
    })
    .await;
    // 300 KiB: far above Pingora's 64 KiB retry buffer.
    let big = "x".repeat(300 * 1024);
    let body = json!({"model": "claude-x", "messages": [{"role": "user", "content": big}]});
    let sent = serde_json::to_vec(&body).unwrap();
    let r = client()
        .post(k.proxy_url("/v1/messages?beta=true"))
        .header("content-type", "application/json")
        .body(sent.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["node"], "node2");
    let got1 = first.requests();
    let got2 = second.requests();
    assert_eq!(got1.len(), 1);
    assert_eq!(got2.len(), 1);
    assert_eq!(got1[0].body.as_ref(), sent.as_slice());
    assert_eq!(
        got2[0].body.as_ref(),
        sent.as_slice(),
        "replayed byte for byte"
    );
    assert_eq!(got2[0].method, "POST");
    assert_eq!(got2[0].path, "/v1/messages?beta=true");
}

#[tokio::test]
async fn no_retry_after_the_first_byte_reached_the_client() {
    let ev = |i: u32| {
        (
            Duration::from_millis(30),
            format!("data: {{\"i\":{i}}}\n\n"),
        )
    };
    let (_breaking, other, k) = primary_and_fallback(Script {
        sse: Some((0..5).map(ev).collect()),
        drop_after: Some(2),
        ..Script::default()
    })
    .await;
    let r = post(&k, &json!({"model": "m", "stream": true})).await;
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let mut received = Vec::new();
    let mut ended_with_error = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(b) => received.extend_from_slice(&b),
            Err(_) => {
                ended_with_error = true;
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.contains("{\"i\":0}") && text.contains("{\"i\":1}"),
        "{text}"
    );
    assert!(!text.contains("{\"i\":2}"), "{text}");
    assert!(ended_with_error, "the client sees its response cut short");
    assert_eq!(
        other.request_count(),
        0,
        "never retried after bytes went out"
    );
    eventually(
        "the mid-stream failure counted against node1",
        &k,
        async || node_status(&k, "node1").await["failures_total"] == 1,
    )
    .await;
}

#[tokio::test]
async fn sse_events_arrive_as_the_upstream_produces_them() {
    let gaps = [0u64, 300, 300, 300];
    let events: Vec<(Duration, String)> = gaps
        .iter()
        .enumerate()
        .map(|(i, g)| {
            (
                Duration::from_millis(*g),
                format!("event: tick\ndata: {{\"n\":{i}}}\n\n"),
            )
        })
        .collect();
    let up = Upstream::with(
        "node1",
        Script {
            sse: Some(events),
            ..Script::default()
        },
    )
    .await;
    let k = start(&[node("node1", &up.url(), "")], FAST).await;
    let r = post(&k, &json!({"model": "m", "stream": true})).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = r.bytes_stream();
    let mut buf = String::new();
    let mut arrivals: Vec<(usize, Instant)> = Vec::new();
    while let Some(chunk) = stream.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let n: usize = event
                .split("\"n\":")
                .nth(1)
                .and_then(|s| s.trim_end_matches(['}', '\n']).parse().ok())
                .expect("event number");
            arrivals.push((n, Instant::now()));
        }
    }
    let order: Vec<usize> = arrivals.iter().map(|(n, _)| *n).collect();
    assert_eq!(order, vec![0, 1, 2, 3], "in order, none lost");
    let sent = up.sent_at();
    assert_eq!(sent.len(), 4);
    for i in 1..4 {
        let upstream_gap = sent[i] - sent[i - 1];
        let client_gap = arrivals[i].1 - arrivals[i - 1].1;
        assert!(
            client_gap * 2 >= upstream_gap,
            "event {i} was held back: upstream gap {upstream_gap:?}, client gap {client_gap:?}"
        );
    }
    // The first event reached the client before the upstream produced the last one.
    assert!(arrivals[0].1 < sent[3], "stream was buffered");
}

#[tokio::test]
async fn token_usage_is_counted_for_both_api_styles() {
    let anthropic = Upstream::with(
        "anthropic",
        Script {
            sse: Some(vec![
                (Duration::ZERO, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":11,\"output_tokens\":1}}}\n\n".into()),
                (Duration::from_millis(10), "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"hi\"}}\n\n".into()),
                (Duration::from_millis(10), "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":22}}\n\n".into()),
            ]),
            ..Script::default()
        },
    )
    .await;
    let openai = Upstream::with(
        "openai",
        Script {
            json: Some(json!({"id": "c1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}})),
            ..Script::default()
        },
    )
    .await;
    let k = start(
        &[
            node("anthropic", &anthropic.url(), "priority = 1"),
            node("openai", &openai.url(), "priority = 2"),
        ],
        FAST,
    )
    .await;
    let r = post(&k, &json!({"model": "m", "stream": true})).await;
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    // Send the OpenAI-style request to the second node by disabling the first.
    let r = k
        .admin(client().patch(k.url("/admin/api/nodes/anthropic")))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .post(k.proxy_url("/v1/chat/completions"))
        .json(&json!({"model": "gpt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["usage"]["prompt_tokens"],
        5
    );
    let metrics = k.metrics().await;
    for line in [
        "keel_llm_tokens_total{kind=\"input\",node=\"anthropic\"} 11",
        "keel_llm_tokens_total{kind=\"output\",node=\"anthropic\"} 22",
        "keel_llm_tokens_total{kind=\"input\",node=\"openai\"} 5",
        "keel_llm_tokens_total{kind=\"output\",node=\"openai\"} 7",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
}

#[tokio::test]
async fn client_keys_upstream_key_style_and_model_mapping() {
    let up = Upstream::start("node1").await;
    let k = Keel::start(Spec {
        proxy_extra: "client_keys = [\"sk-keel-1\"]".into(),
        extra: node(
            "node1",
            &up.url(),
            "api_key = \"sk-upstream\"\nmodel_mapping = { \"claude-x\" = \"claude-x-2025\" }",
        ) + FAST,
        ..Spec::default()
    })
    .await;
    let r = post(&k, &msg()).await;
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "authentication_error");
    let r = client()
        .post(k.proxy_url("/v1/messages"))
        .header("x-api-key", "wrong")
        .json(&msg())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(up.request_count(), 0);

    let r = client()
        .post(k.proxy_url("/v1/messages"))
        .header("x-api-key", "sk-keel-1")
        .json(&msg())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["model"], "claude-x-2025");
    let r = client()
        .post(k.proxy_url("/v1/chat/completions"))
        .bearer_auth("sk-keel-1")
        .json(&json!({"model": "other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = up.requests();
    assert_eq!(got[0].header("x-api-key").as_deref(), Some("sk-upstream"));
    assert_eq!(got[0].header("authorization"), None);
    assert_eq!(got[0].json()["model"], "claude-x-2025");
    assert_eq!(
        got[1].header("authorization").as_deref(),
        Some("Bearer sk-upstream")
    );
    assert_eq!(got[1].header("x-api-key"), None);
    assert_eq!(
        got[1].json()["model"],
        "other",
        "unmapped models pass unchanged"
    );
}

#[tokio::test]
async fn no_node_is_503_with_retry_after_and_all_failing_is_502_naming_them() {
    let k = start(&[], FAST).await;
    let r = post(&k, &msg()).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "no_available_nodes", "{e}");

    let a = Upstream::with(
        "a",
        Script {
            always_status: Some(502),
            ..Script::default()
        },
    )
    .await;
    let b = Upstream::with(
        "b",
        Script {
            always_status: Some(503),
            ..Script::default()
        },
    )
    .await;
    let k = start(&[node("a", &a.url(), ""), node("b", &b.url(), "")], FAST).await;
    let r = post(&k, &msg()).await;
    assert_eq!(r.status(), 502);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "all_nodes_failed", "{e}");
    let m = e["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("a: status 502") && m.contains("b: status 503"),
        "{m}"
    );
}

#[tokio::test]
async fn admin_api_requires_the_token_and_rejects_bad_input() {
    let up = Upstream::start("n1").await;
    let k = start(&[node("n1", &up.url(), "")], FAST).await;
    let c = client();
    let r = c.get(k.url("/admin/api/nodes")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(k.url("/admin/api/nodes"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "unauthorized"
    );
    let r = c
        .post(k.url("/admin/api/nodes"))
        .json(&json!({"name": "x", "base_url": "http://127.0.0.1:1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "writes need the token too");

    let cases = [
        (
            json!({"name": "bad", "base_url": "ftp://x", "weight": 101}),
            422,
            "invalid_node",
        ),
        (json!({"name": "n1", "base_url": up.url()}), 409, "conflict"),
        (json!({"name": "x"}), 400, "invalid_request"),
        (
            json!({"name": "x", "base_url": "http://h", "wieght": 1}),
            400,
            "invalid_request",
        ),
    ];
    for (body, status, kind) in cases {
        let r = k
            .admin(c.post(k.url("/admin/api/nodes")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{body}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["type"], kind, "{body} -> {e}");
    }
    let r = k
        .admin(c.post(k.url("/admin/api/nodes")))
        .json(&json!({"name": "bad", "base_url": "ftp://x", "weight": 101}))
        .send()
        .await
        .unwrap();
    let m = r.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        m.contains("base_url") && m.contains("weight: 101 is out of range"),
        "{m}"
    );
    let r = k
        .admin(c.post(k.url("/admin/api/nodes")))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let r = k
        .admin(c.patch(k.url("/admin/api/nodes/ghost")))
        .json(&json!({"weight": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = k
        .admin(c.patch(k.url("/admin/api/nodes/n1")))
        .json(&json!({"weight": 500}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = k
        .admin(c.patch(k.url("/admin/api/nodes/n1")))
        .json(&json!({"base_url": "http://x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "only weight, priority, enabled change at runtime"
    );
    let r = k
        .admin(c.delete(k.url("/admin/api/nodes/ghost")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = k
        .admin(c.patch(k.url("/admin/api/nodes/n1")))
        .json(&json!({"weight": 40, "priority": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let n: Value = r.json().await.unwrap();
    assert_eq!(
        (n["weight"].as_u64(), n["priority"].as_u64()),
        (Some(40), Some(3))
    );
    assert_eq!(n["status"], "circuit_breaker_closed");
}

#[tokio::test]
async fn runtime_node_changes_survive_a_restart() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let c = Upstream::start("c").await;
    let mut k = start(&[node("a", &a.url(), ""), node("b", &b.url(), "")], FAST).await;
    let http = client();
    let r = k
        .admin(http.post(k.url("/admin/api/nodes")))
        .json(&json!({"name": "c", "base_url": c.url(), "weight": 30, "api_key": "sk-c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["api_key"], "***");
    let r = k
        .admin(http.patch(k.url("/admin/api/nodes/a")))
        .json(&json!({"weight": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = k
        .admin(http.delete(k.url("/admin/api/nodes/b")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["drained"], true);

    k.stop().await;
    k.spawn();
    k.wait_ready().await;
    let all = nodes(&k).await;
    let names: Vec<&str> = all["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["a", "c"], "{all}");
    let a_node = node_status(&k, "a").await;
    assert_eq!(a_node["weight"], 7);
    let c_node = node_status(&k, "c").await;
    assert_eq!(
        (c_node["weight"].as_u64(), c_node["source"].as_str()),
        (Some(30), Some("runtime"))
    );
    // The stored key is used upstream after the restart.
    k.admin(http.patch(k.url("/admin/api/nodes/a")))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    let r = client()
        .post(k.proxy_url("/v1/messages"))
        .header("x-api-key", "client")
        .json(&msg())
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["node"], "c");
    assert_eq!(c.requests()[0].header("x-api-key").as_deref(), Some("sk-c"));
}

#[tokio::test]
async fn shift_rolls_a_failing_new_node_back() {
    let stable = Upstream::start("stable").await;
    // Healthy for probes, but every API request fails with a retryable 503.
    let bad = Upstream::with(
        "fresh",
        Script {
            always_status: Some(503),
            ..Script::default()
        },
    )
    .await;
    let shift = r#"
[proxy.shift]
enabled = true
stages = [10, 50, 100]
stage_hold = "30s"
rollback_on_failure_rate = 0.5
min_requests = 2
"#;
    let sections = FAST.replace("consecutive_failures = 3", "consecutive_failures = 100");
    let k = start(
        &[node("stable", &stable.url(), "")],
        &format!("{sections}{shift}"),
    )
    .await;
    let r = k
        .admin(client().post(k.url("/admin/api/nodes")))
        .json(&json!({"name": "fresh", "base_url": bad.url(), "weight": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    eventually("fresh at its first stage", &k, async || {
        node_status(&k, "fresh").await["shift"]["phase"] == "stage_1"
    })
    .await;
    assert_eq!(node_status(&k, "fresh").await["shift"]["percent"], 10);
    // At 10 % the new node gets about one request in eleven.
    for _ in 0..40 {
        let r = post(&k, &msg()).await;
        assert_eq!(r.status(), 200, "clients never see the bad node's 503");
        if node_status(&k, "fresh").await["shift"]["phase"] == "rolled_back" {
            break;
        }
    }
    let fresh = node_status(&k, "fresh").await;
    assert_eq!(fresh["shift"]["phase"], "rolled_back", "{fresh}");
    assert_eq!(fresh["effective_weight"], 0, "{fresh}");
    assert_eq!(
        bad.request_count(),
        2,
        "rolled back after min_requests failures"
    );
    assert_eq!(events(&k, "shift.rolled_back").len(), 1);
    for _ in 0..10 {
        assert_eq!(
            post(&k, &msg()).await.json::<Value>().await.unwrap()["node"],
            "stable"
        );
    }
}

#[tokio::test]
async fn queued_request_waits_for_a_node_that_joins() {
    let late = Upstream::start("late").await;
    let queue = "\n[proxy.queue]\nenabled = true\nsize = 10\ntimeout = \"5s\"\n";
    let k = start(&[], &format!("{FAST}{queue}")).await;
    let url = k.proxy_url("/v1/messages");
    let waiting = tokio::spawn(async move { client().post(url).json(&msg()).send().await });
    eventually("the request waits in the queue", &k, async || {
        let m = k.metrics().await;
        m.contains("keel_proxy_queue_depth 1")
    })
    .await;
    let r = k
        .admin(client().post(k.url("/admin/api/nodes")))
        .json(&json!({"name": "late", "base_url": late.url()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = waiting.await.unwrap().unwrap();
    assert_eq!(r.status(), 200, "served once the node was prewarmed");
    assert_eq!(r.json::<Value>().await.unwrap()["node"], "late");
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_proxy_request_finish() {
    let slow = Upstream::with(
        "slow",
        Script {
            delay: Duration::from_millis(800),
            ..Script::default()
        },
    )
    .await;
    let mut k = start(&[node("slow", &slow.url(), "")], FAST).await;
    let url = k.proxy_url("/v1/messages");
    let request = tokio::spawn(async move { client().post(url).json(&msg()).send().await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while slow.request_count() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(slow.request_count(), 1);
    k.stop().await; // SIGTERM, then exit code 0
    let r = request
        .await
        .unwrap()
        .expect("the in-flight request completed");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["node"], "slow");
    assert!(k.log().contains("proxy drained"), "{}", k.log());
}

/// keel writes requests to the nodes itself (one write for header and body), so Pingora's
/// client never sees a `HEAD` go out: the answer's `content-length` must not make keel wait
/// for a body — neither for a client's `HEAD` nor for a prewarm probe (`health_path = ""`).
#[tokio::test]
async fn head_requests_and_head_probes_do_not_wait_for_a_body() {
    let node1 = Upstream::start("node1").await;
    let node3 = Upstream::start("node3").await;
    let k = start(&[node("node1", &node1.url(), "")], FAST).await;
    let head = client()
        .head(k.proxy_url("/v1/models"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("HEAD answered");
    assert_eq!(head.status(), 200);
    let announced: usize = head.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(announced > 0, "the node announced a body length");
    // The node and keel's connection to it still serve the next request normally.
    let body: Value = post(&k, &msg()).await.json().await.unwrap();
    assert_eq!(body["node"], "node1");
    let seen: Vec<_> = node1.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(seen, ["HEAD", "POST"]);

    let r = k
        .admin(client().post(k.url("/admin/api/nodes")))
        .json(&json!({"name": "node3", "base_url": node3.url(), "health_path": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    eventually("node3 prewarmed with HEAD probes", &k, async || {
        k.log()
            .contains("[warmup] node node3 prewarmed successfully (2/2)")
    })
    .await;
    let probes: Vec<_> = node3
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        probes,
        [("HEAD".into(), "/".into()), ("HEAD".into(), "/".into())]
    );
}

/// Sends raw bytes on a new client connection and reads until keel closes it.
async fn raw_exchange(k: &Keel, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(k.proxy).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer))
        .await
        .expect("keel closes the connection after an error answer")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// The JSON body of a raw HTTP/1 answer.
fn raw_json_body(answer: &str) -> Value {
    let (_, body) = answer.split_once("\r\n\r\n").expect("header and body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON body ({e}): {answer}"))
}

/// What the proxy framework used to do around keel's handler, now that keel is a Pingora
/// `HttpServerApp`: a malformed request gets a 400 and `CONNECT` a 405 (keel's JSON error
/// shape, connection closed, no node asked), and a client's idle keep-alive connection does
/// not hold up shutdown: keel closes it and exits.
#[tokio::test]
async fn malformed_and_connect_requests_get_json_errors_and_idle_clients_do_not_block_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let node1 = Upstream::start("node1").await;
    let mut k = start(&[node("node1", &node1.url(), "")], FAST).await;

    let refused: [(&[u8], &str); 2] = [
        (
            b"GET /v1/models HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
            "HTTP/1.1 400",
        ),
        (
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            "HTTP/1.1 405",
        ),
    ];
    for (request, status_line) in refused {
        let answer = raw_exchange(&k, request).await;
        assert!(answer.starts_with(status_line), "{answer}");
        let error = &raw_json_body(&answer)["error"];
        assert_eq!(error["type"], "invalid_request");
        assert!(!error["message"].as_str().unwrap().is_empty(), "{answer}");
    }
    assert!(node1.requests().is_empty(), "no request reached the node");

    // One complete exchange on a keep-alive connection, which then stays idle.
    let mut idle = tokio::net::TcpStream::connect(k.proxy).await.unwrap();
    idle.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\"node\"") {
        let n = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(
            n > 0,
            "keel closed a keep-alive connection after one answer"
        );
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));

    k.stop().await; // SIGTERM, then exit code 0 — not held up by the idle connection
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("the idle connection is closed by the shutdown")
        .unwrap_or(0);
    assert_eq!(n, 0, "nothing more arrives on the idle connection");
}
