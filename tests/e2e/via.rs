//! Cross-box failover made safe (issue 17): keel adds a `Via` entry with its own id, and a
//! request that already passed through a keel is never forwarded by it again (508).

use crate::fake_llm::FakeLlm;
use crate::harness::{client, series, Keel, Spec};
use serde_json::{json, Value};
use std::time::Duration;

/// Both keels: two tries per request, no prewarm (a keel node's health path is proxied to
/// that keel's own, failing, node), no executor.
fn spec(via_id: &str, nodes: &str) -> Spec {
    Spec {
        proxy_extra: format!(
            "via_id = \"{via_id}\"\n[proxy.retry]\nmax_attempts = 2\nbackoff_min = \"1ms\"\n\
             backoff_max = \"2ms\"\n[proxy.prewarm]\nenabled = false\n"
        ),
        extra: format!("{nodes}\n[executor]\nenabled = false\n"),
        ..Spec::default()
    }
}

fn node(name: &str, url: &str, priority: u32) -> String {
    format!("[[proxy.nodes]]\nname = \"{name}\"\nbase_url = \"{url}\"\npriority = {priority}\n")
}

/// The access lines of `request_id` in keel's JSON log, once `settled` holds for them.
async fn access_lines(
    k: &Keel,
    request_id: &str,
    settled: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = k
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["target"] == "keel::access" && v["request_id"] == request_id)
            .collect();
        if settled(&lines) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lines
}

/// The `via` header lines one upstream request carried.
fn via_of(attempt: &crate::fake_llm::Attempt) -> Vec<String> {
    attempt
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("via"))
        .map(|(_, v)| v.clone())
        .collect()
}

#[tokio::test]
async fn two_keels_listing_each_other_as_fallback_give_one_bounded_answer_without_ping_pong() {
    // Both boxes' own nodes are down.
    let a1 = FakeLlm::start("m").await;
    let b1 = FakeLlm::start("m").await;
    a1.down_for(Duration::from_secs(600));
    b1.down_for(Duration::from_secs(600));
    let a = Keel::start(spec("keel-box-a", &node("a1", &a1.url(), 1))).await;
    let b = Keel::start(spec(
        "keel-box-b",
        &format!(
            "{}\n{}",
            node("b1", &b1.url(), 1),
            node("box-a", &a.proxy_url(""), 2)
        ),
    ))
    .await;
    // A learns B's keel as its priority-2 node at runtime (B's address is known only now).
    let r = a
        .admin(client().post(a.url("/admin/api/nodes")))
        .json(&json!({"name": "box-b", "base_url": b.proxy_url(""), "priority": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    // Unprobed, it joins at the next supervisor tick: wait until it is ready.
    let mut nodes = Value::Null;
    let mut ready = false;
    for _ in 0..100 {
        nodes = a.admin_get("/admin/api/nodes").await;
        ready = nodes["nodes"]
            .as_array()
            .and_then(|ns| ns.iter().find(|n| n["name"] == "box-b"))
            .is_some_and(|n| n["ready"] == true);
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "box-b never became ready: {nodes}");

    let r = client()
        .post(a.proxy_url("/v1/messages"))
        .header("x-request-id", "loop-1")
        .json(&json!({"model": "m", "max_tokens": 8,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert!((500..600).contains(&status), "{status} {body}");
    let answer: Value = serde_json::from_str(&body).expect("a JSON error answer");
    assert!(answer["error"]["type"].is_string(), "{answer}");

    // Hops, counted at each keel by the request id every hop carries: A served the client
    // and then saw the request once more, from B, and refused it (508); B served it once.
    let at_a = access_lines(&a, "loop-1", |l| l.len() >= 2).await;
    let at_b = access_lines(&b, "loop-1", |l| !l.is_empty()).await;
    let loops: Vec<&Value> = at_a.iter().filter(|l| l["status"] == 508).collect();
    assert_eq!(loops.len(), 1, "one loop refusal at A: {at_a:#?}");
    assert_eq!(
        loops[0]["attempts"], 0,
        "the loop was not forwarded: {at_a:#?}"
    );
    assert_eq!(
        at_a.len(),
        2,
        "the client's request and the loop, nothing more: {at_a:#?}"
    );
    assert_eq!(at_b.len(), 1, "B saw the request once: {at_b:#?}");
    let b_nodes = at_b[0]["nodes"].as_str().unwrap_or_default();
    assert!(b_nodes.contains("box-a="), "B tried A once: {b_nodes}");
    let a_nodes = at_a
        .iter()
        .find(|l| l["status"] != 508)
        .and_then(|l| l["nodes"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(a_nodes.contains("box-b="), "A failed over to B: {a_nodes}");
    // A's 508 is no failure of A as B's node: counted as a refusal, nothing on its breaker.
    let m = b.metrics().await;
    let b_saw = |outcome: &str| {
        series(
            &m,
            &format!("keel_llm_attempts_total{{node=\"box-a\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(b_saw("refused"), 1.0, "{m}");
    assert_eq!(b_saw("unavailable"), 0.0, "{m}");

    // The real upstreams saw each keel's Via: A's own node one entry, B's node both.
    let a1_tries = a1.attempts();
    let b1_tries = b1.attempts();
    assert!(
        !a1_tries.is_empty() && a1_tries.len() <= 2,
        "{}",
        a1_tries.len()
    );
    assert!(
        !b1_tries.is_empty() && b1_tries.len() <= 2,
        "{}",
        b1_tries.len()
    );
    assert_eq!(via_of(&a1_tries[0]), ["1.1 keel-box-a"]);
    assert_eq!(
        via_of(&b1_tries[0]).join(", "),
        "1.1 keel-box-a, 1.1 keel-box-b",
        "B appended its entry after A's"
    );
}

#[tokio::test]
async fn a_request_naming_this_keel_in_via_gets_508_in_the_api_error_format() {
    let up = FakeLlm::start("m").await;
    let k = Keel::start(spec("keel-edge-1", &node("n", &up.url(), 1))).await;
    // On the generic route, with keel's entry after another proxy's, in another case.
    let r = client()
        .get(k.proxy_url("/v1/models"))
        .header("via", "1.1 lb.example (nginx), 1.1 KEEL-EDGE-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 508);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["error"]["type"], "loop_detected", "{answer}");
    assert_eq!(answer["error"]["code"], "loop_detected", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("keel-edge-1")),
        "{answer}"
    );
    assert_eq!(up.health_checks(), 0, "nothing was forwarded");
    // Another keel's entry is not a loop: forwarded, with this keel's entry appended.
    let r = client()
        .post(k.proxy_url("/v1/messages"))
        .header("via", "1.1 keel-edge-2")
        .json(&json!({"model": "m", "max_tokens": 8,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tries = up.attempts();
    assert_eq!(
        via_of(&tries[0]).join(", "),
        "1.1 keel-edge-2, 1.1 keel-edge-1"
    );
}
