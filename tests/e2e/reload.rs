//! Live reload end to end (issue 17): the config file is rewritten under a running keel,
//! which is then told to reload (`keel reload` or a plain SIGHUP), and the effect is read
//! back from its answers, its admin API, its metrics and its log.

use crate::fake_llm::FakeLlm;
use crate::harness::{client, run_cli, Keel, Spec};
use keel::reload::{Outcome, ReloadReport};
use serde_json::{json, Value};
use std::time::Duration;

const NO_EXECUTOR: &str = "[executor]\nenabled = false\n";

fn node(name: &str, url: &str) -> String {
    format!("[[proxy.nodes]]\nname = \"{name}\"\nbase_url = \"{url}\"\n")
}

/// Replaces `from` by `to` in the running keel's config file (`from` must be there).
fn edit(k: &Keel, from: &str, to: &str) {
    let text = std::fs::read_to_string(&k.config_path).expect("config");
    assert!(text.contains(from), "{from:?} not in the config:\n{text}");
    std::fs::write(&k.config_path, text.replacen(from, to, 1)).expect("write config");
}

/// `keel reload --config <its file>`, off the test's runtime (it blocks until the report).
async fn keel_reload(k: &Keel) -> (i32, String, String) {
    let config = k.config_path.display().to_string();
    let cwd = k.dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || run_cli(&["reload", "--config", &config], &[], &cwd))
        .await
        .expect("keel reload")
}

/// SIGHUP, then the report of that reload from the data dir.
pub async fn sighup(k: &Keel) -> ReloadReport {
    let data = k.dir.path().join("data");
    let before = keel::reload::read_report(&data).map_or(0, |r| r.generation);
    k.signal(libc::SIGHUP);
    for _ in 0..600 {
        if let Some(r) = keel::reload::read_report(&data).filter(|r| r.generation > before) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no reload report after SIGHUP; log:\n{}", k.log());
}

fn message(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 64, "stream": stream,
           "messages": [{"role": "user", "content": "hi"}]})
}

async fn post(k: &Keel, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut rb = client().post(k.proxy_url("/v1/messages")).json(body);
    if let Some(key) = key {
        rb = rb.header("x-api-key", key);
    }
    rb.send().await.expect("proxy request")
}

/// Sends until one request is answered 200 (a node added by a reload is prewarmed first).
async fn until_served(k: &Keel) {
    for _ in 0..300 {
        if post(k, None, &message("m", false)).await.status() == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no request served after the reload; log:\n{}", k.log());
}

async fn nodes(k: &Keel) -> Vec<Value> {
    let r = k.admin(client().get(k.url("/admin/api/nodes")));
    let v: Value = r.send().await.unwrap().json().await.unwrap();
    v["nodes"].as_array().cloned().unwrap_or_default()
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_change_applies_while_a_stream_on_the_old_node_completes() {
    let old = FakeLlm::start("m").await;
    // About 4.5 s of stream: the reload happens well inside it.
    let words: Vec<String> = (1..=30).map(|i| format!("w{i}")).collect();
    let text = words.join(" ");
    old.set_text(&text);
    old.set_gap(Duration::from_millis(150));
    let new = FakeLlm::start("m").await;
    let k = Keel::start(Spec {
        extra: format!("{NO_EXECUTOR}{}", node("old", &old.url())),
        ..Spec::default()
    })
    .await;

    let stream = {
        let url = k.proxy_url("/v1/messages");
        tokio::spawn(async move {
            let r = client()
                .post(url)
                .json(&message("m", true))
                .send()
                .await
                .expect("stream request");
            (
                r.status().as_u16(),
                r.text().await.expect("the whole stream"),
            )
        })
    };
    for _ in 0..100 {
        if old.attempt_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(old.attempt_count(), 1, "the stream reached the old node");

    edit(&k, &node("old", &old.url()), &node("new", &new.url()));
    let (code, out, err) = keel_reload(&k).await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("applied: node new added"), "{out}");
    assert!(out.contains("applied: node old removed"), "{out}");
    assert!(!stream.is_finished(), "the stream outlasts the reload");

    let (status, body) = stream.await.unwrap();
    assert_eq!(status, 200);
    for w in &words {
        assert!(body.contains(&format!("{w}\"")), "{w} missing:\n{body}");
    }
    assert!(body.contains("message_stop"), "{body}");

    until_served(&k).await;
    for _ in 0..3 {
        assert_eq!(post(&k, None, &message("m", false)).await.status(), 200);
    }
    assert_eq!(
        old.attempt_count(),
        1,
        "nothing new goes to the removed node"
    );
    assert!(new.attempt_count() >= 4);
    let names: Vec<String> = nodes(&k)
        .await
        .iter()
        .map(|n| n["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(names, ["new"]);
}

#[tokio::test]
async fn an_invalid_file_changes_nothing_and_keel_reload_exits_78() {
    let up = FakeLlm::start("m").await;
    let k = Keel::start(Spec {
        extra: format!("{NO_EXECUTOR}{}", node("a", &up.url())),
        ..Spec::default()
    })
    .await;
    let good = std::fs::read_to_string(&k.config_path).unwrap();
    edit(&k, &node("a", &up.url()), &node("a", "ftp://nowhere"));
    edit(&k, "[log]\n", "[log]\nlevl = \"debug\"\n");

    let (code, out, err) = keel_reload(&k).await;
    assert_eq!(code, 78, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("refused"), "{err}");
    assert!(err.contains("proxy.nodes[0].base_url"), "{err}");
    assert!(err.contains("log.levl: unknown key"), "{err}");

    // Still served by the node it had.
    assert_eq!(post(&k, None, &message("m", false)).await.status(), 200);
    assert_eq!(up.attempt_count(), 1);
    let metrics = k.metrics().await;
    assert_eq!(
        metric(&metrics, "keel_config_reloads_total{result=\"invalid\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&metrics, "keel_config_last_reload_successful"),
        Some(0.0)
    );
    assert!(
        k.log().contains("configuration reload refused"),
        "{}",
        k.log()
    );

    // The file fixed again: the next reload is accepted and changes nothing.
    std::fs::write(&k.config_path, good).unwrap();
    let r = sighup(&k).await;
    assert_eq!(r.result, Outcome::Ok, "{r:?}");
    assert!(r.applied.is_empty() && r.needs_restart.is_empty(), "{r:?}");
    assert_eq!(
        metric(&k.metrics().await, "keel_config_last_reload_successful"),
        Some(1.0)
    );
}

#[tokio::test]
async fn client_keys_added_by_a_reload_work_and_removed_ones_are_refused() {
    let up = FakeLlm::start("m").await;
    let k = Keel::start(Spec {
        proxy_extra: "client_keys = [\"key-old\"]\n".into(),
        extra: format!("{NO_EXECUTOR}{}", node("a", &up.url())),
        ..Spec::default()
    })
    .await;
    let body = message("m", false);
    assert_eq!(post(&k, Some("key-old"), &body).await.status(), 200);
    assert_eq!(post(&k, Some("key-new"), &body).await.status(), 401);

    edit(
        &k,
        "client_keys = [\"key-old\"]\n",
        "client_keys = [{ name = \"team\", key = \"key-new\", requests_per_minute = 1 }]\n",
    );
    let r = sighup(&k).await;
    assert_eq!(r.result, Outcome::Ok, "{r:?}");
    assert_eq!(r.applied, ["proxy.client_keys"]);
    assert_eq!(post(&k, Some("key-old"), &body).await.status(), 401);
    assert_eq!(post(&k, Some("key-new"), &body).await.status(), 200);
    // Its limit came with it.
    assert_eq!(post(&k, Some("key-new"), &body).await.status(), 429);
}

#[tokio::test]
async fn a_breaker_stays_open_across_a_reload_and_admin_nodes_stay() {
    let up = FakeLlm::start("m").await;
    let k = Keel::start(Spec {
        proxy_extra: "[proxy.breaker]\nconsecutive_failures = 2\ncooldown = \"60s\"\n\
                      max_cooldown = \"60s\"\n[proxy.retry]\nmax_attempts = 1\n"
            .into(),
        extra: format!("{NO_EXECUTOR}{}", node("down", "http://127.0.0.1:1")),
        ..Spec::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(post(&k, None, &message("m", false)).await.status(), 502);
    }
    let breaker = |n: &[Value], name: &str| {
        n.iter()
            .find(|v| v["name"] == name)
            .map(|v| v["breaker"]["state"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(breaker(&nodes(&k).await, "down").as_deref(), Some("open"));

    // A node added through the admin API.
    let r = k
        .admin(client().post(k.url("/admin/api/nodes")))
        .json(&json!({"name": "extra", "base_url": up.url(), "weight": 7}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

    // A reload that changes the retry settings (not the node).
    edit(&k, "max_attempts = 1\n", "max_attempts = 2\n");
    let r = sighup(&k).await;
    assert_eq!(r.result, Outcome::Ok, "{r:?}");
    assert_eq!(r.applied, ["proxy.retry.max_attempts"]);
    let after = nodes(&k).await;
    assert_eq!(
        breaker(&after, "down").as_deref(),
        Some("open"),
        "{after:#?}"
    );
    let extra = after
        .iter()
        .find(|v| v["name"] == "extra")
        .expect("admin node kept");
    assert_eq!(
        (extra["source"].as_str(), extra["weight"].as_u64()),
        (Some("runtime"), Some(7))
    );

    // The file names the admin node now: the file's version wins.
    edit(
        &k,
        "[[proxy.nodes]]",
        &format!("{}weight = 3\n\n[[proxy.nodes]]", node("extra", &up.url())),
    );
    let r = sighup(&k).await;
    assert_eq!(r.result, Outcome::Ok, "{r:?}");
    let after = nodes(&k).await;
    let extra = after
        .iter()
        .find(|v| v["name"] == "extra")
        .expect("named node");
    assert_eq!(
        (extra["source"].as_str(), extra["weight"].as_u64()),
        (Some("config"), Some(3))
    );
    assert_eq!(breaker(&after, "down").as_deref(), Some("open"));
}

#[tokio::test]
async fn the_log_level_changes_live_and_a_new_listen_address_needs_a_restart() {
    let k = Keel::start(Spec {
        extra: NO_EXECUTOR.into(),
        ..Spec::default()
    })
    .await;
    let debug_lines = |k: &Keel| k.log().matches("\"level\":\"DEBUG\"").count();
    client().get(k.url("/health")).send().await.unwrap();
    assert_eq!(debug_lines(&k), 0, "info level: no debug lines");

    edit(&k, "level = \"info\"", "level = \"debug\"");
    edit(&k, "listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\"");
    let (code, out, err) = keel_reload(&k).await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("applied: log.level"), "{out}");
    assert!(out.contains("needs a restart: control.listen"), "{out}");

    client().get(k.url("/health")).send().await.unwrap();
    for _ in 0..50 {
        if debug_lines(&k) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        debug_lines(&k) > 0,
        "debug lines after the reload:\n{}",
        k.log()
    );
    assert!(
        k.log().contains("need a restart") && k.log().contains("control.listen"),
        "{}",
        k.log()
    );
    // Still listening where it started.
    let r = client().get(k.url("/health/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn keel_reload_without_a_running_keel_says_so_and_signals_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.path().join("keel.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n", data.display().to_string()),
    )
    .unwrap();
    let path = config.display().to_string();
    let (code, _, err) = run_cli(&["reload", "--config", &path], &[], dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no running keel found"), "{err}");

    // A run file naming a process that is not `keel run` (this test binary) is not signalled.
    let me = keel::runfile::RunInfo {
        pid: std::process::id(),
        control: "127.0.0.1:1".parse().unwrap(),
        proxy: "127.0.0.1:2".parse().unwrap(),
    };
    keel::runfile::write(&data, &me).unwrap();
    let (code, _, err) = run_cli(&["reload", "--config", &path], &[], dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not a `keel run` process"), "{err}");
}
