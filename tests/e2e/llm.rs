//! LLM-aware failover (issue 7): each provider fault injected by the scripted fake provider
//! ([`super::fake_llm`]), checked with raw HTTP and with the real `openai` and `anthropic`
//! Python SDKs (`tests/e2e/clients/llm_client.py`): the client's final text or error, the
//! attempts and their spacing seen by the provider.

use super::fake_llm::{FakeLlm, Fault, ANSWER};
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
            eprintln!("SKIP: cannot run python3 for the {sdk} SDK client: {e}");
            return None;
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
        eprintln!("SKIP: {why} (pip install openai anthropic)");
        return None;
    }
    Some(v)
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
