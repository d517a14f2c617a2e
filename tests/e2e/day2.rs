//! Day-2 operations of the gateway end to end (issue 17): the access log read back from
//! keel's JSON log.

use crate::fake_llm::{FakeLlm, Fault};
use crate::harness::{client, Keel, Spec};
use serde_json::{json, Value};

/// The access lines of keel's JSON log.
fn access_lines(k: &Keel) -> Vec<Value> {
    k.log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "keel::access")
        .collect()
}

#[tokio::test]
async fn access_log_names_key_model_tries_timings_and_tokens_and_samples_only_successes() {
    let down = FakeLlm::start("a-model").await;
    down.script(
        std::iter::repeat_n(
            Fault::Status {
                status: 503,
                retry_after: None,
            },
            10,
        )
        .collect::<Vec<_>>(),
    );
    let up = FakeLlm::start("b-model").await;
    let k = Keel::start(Spec {
        proxy_extra: "client_keys = [\"k-one-secret\", \"k-two-secret\"]\n\
                      [proxy.retry]\nbackoff_min = \"1ms\"\nbackoff_max = \"2ms\"\n"
            .into(),
        extra: format!(
            "[[proxy.nodes]]\nname = \"a\"\nbase_url = \"{}\"\npriority = 1\n\n\
             [[proxy.nodes]]\nname = \"b\"\nbase_url = \"{}\"\npriority = 2\n\
             model_mapping = {{ \"claude-x\" = \"claude-b\" }}\n",
            down.url(),
            up.url()
        ),
        // Successes sampled away entirely: only errors and failed tries are written.
        env: vec![("KEEL_LOG__ACCESS_SAMPLE".into(), "0".into())],
        ..Spec::default()
    })
    .await;

    // An LLM request that node a fails and node b answers.
    let body = json!({"model": "claude-x", "max_tokens": 16,
                      "messages": [{"role": "user", "content": "hi"}]});
    let r = client()
        .post(k.proxy_url("/v1/messages"))
        .header("x-api-key", "k-two-secret")
        .header("x-request-id", "access-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer = r.bytes().await.unwrap();
    // A clean success (generic route, node b now that a is failing or not): sampled away.
    let r = client()
        .get(k.proxy_url("/v1/models"))
        .header("x-api-key", "k-one-secret")
        .header("x-request-id", "access-2")
        .send()
        .await
        .unwrap();
    let clean = r.status().as_u16();
    // A wrong key: an error, always written, with no key name.
    let r = client()
        .post(k.proxy_url("/v1/messages"))
        .header("x-api-key", "wrong-key")
        .header("x-request-id", "access-3")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The lines are written when each request ends; the log file catches up quickly.
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = access_lines(&k);
        if lines.iter().any(|l| l["request_id"] == "access-3") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let find = |id: &str| lines.iter().find(|l| l["request_id"] == id).cloned();
    let first = find("access-1").unwrap_or_else(|| panic!("no access line; log:\n{}", k.log()));
    assert_eq!(first["key"], "key-2", "{first}");
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/v1/messages");
    assert_eq!(first["model"], "claude-x");
    assert_eq!(first["model_sent"], "claude-b");
    assert_eq!(first["status"], 200);
    assert_eq!(first["outcome"], "answered");
    let nodes = first["nodes"].as_str().unwrap();
    let tries: Vec<&str> = nodes.split(' ').collect();
    assert!(tries.len() >= 2, "{nodes}");
    assert!(tries[0].starts_with("a=") && tries[0] != "a=ok", "{nodes}");
    assert_eq!(*tries.last().unwrap(), "b=ok", "{nodes}");
    assert_eq!(first["attempts"], tries.len());
    for timing in ["ttfb_ms", "ttft_ms", "duration_ms"] {
        assert!(first[timing].as_f64().unwrap() > 0.0, "{timing}: {first}");
    }
    assert!(first["ttfb_ms"].as_f64() <= first["duration_ms"].as_f64());
    assert!(first["input_tokens"].as_u64().unwrap() > 0, "{first}");
    assert!(first["output_tokens"].as_u64().unwrap() > 0, "{first}");
    assert_eq!(first["bytes_in"], serde_json::to_vec(&body).unwrap().len());
    assert_eq!(first["bytes_out"], answer.len());
    assert!(first["timestamp"].is_string(), "{first}");

    if clean < 400 {
        assert!(find("access-2").is_none(), "a success was not sampled away");
    }
    let refused = find("access-3").expect("the 401 is always written");
    assert_eq!(refused["status"], 401);
    assert!(refused.get("key").is_none(), "{refused}");
    assert_eq!(refused["attempts"], 0);
    // The keys themselves appear nowhere in the log.
    let log = k.log();
    assert!(!log.contains("k-one-secret") && !log.contains("k-two-secret"));
}

#[tokio::test]
async fn named_client_keys_have_their_own_limits_and_model_lists() {
    use sha2::Digest;
    let up = FakeLlm::start("m").await;
    let b_hash: String = sha2::Sha256::digest(b"b-secret")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let k = Keel::start(Spec {
        extra: format!(
            "[[proxy.client_keys]]\nname = \"team-a\"\nkey = \"a-secret\"\nrequests_per_minute = 2\n\n\
             [[proxy.client_keys]]\nname = \"team-b\"\nkey_hash = \"{b_hash}\"\n\n\
             [[proxy.client_keys]]\nname = \"team-c\"\nkey = \"c-secret\"\nmodels = [\"allowed-model\"]\n\n\
             [[proxy.nodes]]\nname = \"n\"\nbase_url = \"{}\"\n",
            up.url()
        ),
        ..Spec::default()
    })
    .await;
    let ask = |key: &'static str, model: &'static str| {
        let url = k.proxy_url("/v1/messages");
        async move {
            client()
                .post(url)
                .header("x-api-key", key)
                .json(&json!({"model": model, "max_tokens": 8,
                              "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..2 {
        assert_eq!(ask("a-secret", "m").await.status(), 200);
    }
    let limited = ask("a-secret", "m").await;
    assert_eq!(limited.status(), 429);
    let after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&after), "retry-after {after}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    assert!(!body.to_string().contains("a-secret"));
    // Other keys are not affected; a hashed key is recognised by its SHA-256.
    for _ in 0..3 {
        assert_eq!(ask("b-secret", "m").await.status(), 200);
    }
    // The model allow-list.
    let denied = ask("c-secret", "other-model").await;
    assert_eq!(denied.status(), 403);
    let body: Value = denied.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_allowed", "{body}");
    assert_eq!(ask("c-secret", "allowed-model").await.status(), 200);
    assert_eq!(ask("wrong", "m").await.status(), 401);

    let metrics = k.metrics().await;
    for line in [
        "keel_client_key_requests_total{key=\"team-a\",outcome=\"admitted\"} 2",
        "keel_client_key_requests_total{key=\"team-a\",outcome=\"requests_limited\"} 1",
        "keel_client_key_requests_total{key=\"team-b\",outcome=\"admitted\"} 3",
        "keel_client_key_requests_total{key=\"team-c\",outcome=\"model_denied\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line}:\n{metrics}");
    }
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("keel_client_key_tokens_total{key=\"team-b\",kind=\"output\"}")),
        "{metrics}"
    );
}
