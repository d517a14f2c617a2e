//! The GPU ledger against the real binary: the reference monitoring API's shapes and
//! values after scripted worker operations, lease expiry, FIFO waiters, fencing, orphan
//! recovery, durability across SIGTERM and kill -9, mutual exclusion under contention, the
//! no-driver GPU path and the SIGTERM drain of a waiting acquire.
//!
//! No assertion depends on how fast this machine is: waits poll for a state with a generous
//! deadline, and exclusion is checked through fencing tokens and overlap detection.

use crate::harness::{client, run_cli, validate_config, Keel, Spec, ADMIN_TOKEN};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const M: &str = "/api/v1/monitoring";

fn ledger_spec(ledger: &str) -> Spec {
    Spec {
        extra: format!("[ledger]\n{ledger}\n"),
        ..Spec::default()
    }
}

async fn get(k: &Keel, path: &str) -> (u16, Value) {
    let r = client().get(k.url(path)).send().await.expect("GET");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(k: &Keel, path: &str, body: Value) -> (u16, Value) {
    let r = client()
        .post(k.url(path))
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn admin_post(k: &Keel, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut rb = k.admin(client().post(k.url(path)));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("POST");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn acquire(k: &Keel, key: &str, body: Value) -> (u16, Value) {
    post(k, &format!("/api/v1/locks/{key}/acquire"), body).await
}

/// Polls `f` until it returns `Some`, for up to 60 s (a deadline, not a measurement).
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..600 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn is_unix_time(v: &Value) -> bool {
    v.as_f64().is_some_and(|t| t > 1.6e9)
}

#[tokio::test]
async fn reference_api_shapes_and_values_after_worker_sequence() {
    // A long check interval: this test drives checks itself.
    let k = Keel::start(ledger_spec(
        "locks = [\"gpu_lock:0\", \"gpu_lock:1\"]\ncheck_interval = \"1h\"\nheartbeat_timeout = \"2m\"",
    ))
    .await;

    // Worker sequence: w1 takes gpu_lock:0, w2 is refused, w1 releases, w2 takes it.
    let (s, a) = acquire(
        &k,
        "gpu_lock:0",
        json!({"holder": "ffmpeg.extract_audio", "task_id": "extract-001", "ttl_seconds": 600}),
    )
    .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["acquired"], true);
    let t1 = a["fencing_token"].as_u64().unwrap();
    assert!(is_unix_time(&a["expires_at"]));
    let (s, busy) = acquire(
        &k,
        "gpu_lock:0",
        json!({"holder": "faster_whisper.transcribe_audio", "ttl_seconds": 600}),
    )
    .await;
    assert_eq!(s, 409, "{busy}");
    assert_eq!(busy["acquired"], false);
    assert_eq!(busy["lock_holder"], "ffmpeg.extract_audio");
    assert!(busy["ttl_seconds"].as_u64().unwrap() > 0);
    assert_eq!(busy["error"]["type"], "lock_held");
    let (s, r) = post(
        &k,
        "/api/v1/locks/gpu_lock:0/release",
        json!({"fencing_token": t1}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["released"], true);
    let (s, a2) = acquire(&k, "gpu_lock:0", json!({"holder": "faster_whisper.transcribe_audio", "task_id": "whisper-002", "ttl_seconds": 3000})).await;
    assert_eq!(s, 200);
    let t2 = a2["fencing_token"].as_u64().unwrap();
    assert!(t2 > t1);
    // Renew by the holder.
    let (s, rn) = post(
        &k,
        "/api/v1/locks/gpu_lock:0/renew",
        json!({"fencing_token": t2, "ttl_seconds": 3000}),
    )
    .await;
    assert_eq!(s, 200, "{rn}");
    assert_eq!(rn["renewed"], true);

    // Heartbeats: one running task with progress, one stopped.
    let (s, _) = post(
        &k,
        &format!("{M}/heartbeat/task/whisper-002/start"),
        json!({"task_name": "faster_whisper.transcribe_audio", "gpu_lock": "gpu_lock:0"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, hb) = post(
        &k,
        "/api/v1/heartbeats/whisper-002",
        json!({"progress": 0.65}),
    )
    .await;
    assert_eq!(s, 200, "{hb}");
    let (s, st) = post(
        &k,
        &format!("{M}/heartbeat/task/extract-001/start"),
        json!({"task_name": "ffmpeg.extract_audio"}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        st,
        json!({"message": "heartbeat started for task extract-001", "success": true, "task_id": "extract-001"})
    );
    let r = client()
        .delete(k.url(&format!("{M}/heartbeat/task/extract-001")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stop: Value = r.json().await.unwrap();
    assert_eq!(stop["success"], true);
    assert!(stop["message"].is_string());

    // 1. GET /gpu-lock/status (held)
    let (s, st) = get(&k, &format!("{M}/gpu-lock/status?lock_key=gpu_lock:0")).await;
    assert_eq!(s, 200);
    assert_eq!(st["lock_key"], "gpu_lock:0");
    assert_eq!(st["is_locked"], true);
    assert_eq!(st["lock_holder"], "faster_whisper.transcribe_audio");
    let ttl = st["ttl_seconds"].as_u64().expect("integer ttl");
    assert!(ttl > 0 && ttl <= 3000, "{st}");
    assert!(is_unix_time(&st["timestamp"]));
    assert_eq!(st["health"]["status"], "healthy");
    assert!(is_unix_time(&st["health"]["last_check"]));
    assert_eq!(st["health"]["issues"], json!([]));
    let stats = &st["statistics"];
    assert_eq!(stats["total_attempts"], 3);
    assert_eq!(stats["success_count"], 2);
    assert_eq!(stats["timeout_count"], 0);
    assert_eq!(stats["failure_count"], 1);
    assert!(stats["average_execution_time"].as_f64().unwrap() >= 0.0);
    let hist = st["recent_history"].as_array().unwrap();
    let actions: Vec<(&str, bool)> = hist
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["success"].as_bool().unwrap(),
            )
        })
        .collect();
    // Newest first: acquire(w2), release(w1), failed acquire(w2), acquire(w1).
    assert_eq!(
        actions,
        vec![
            ("acquire", true),
            ("release", true),
            ("acquire", false),
            ("acquire", true)
        ],
        "{st}"
    );
    assert_eq!(hist[0]["task_name"], "faster_whisper.transcribe_audio");
    assert!(is_unix_time(&hist[0]["timestamp"]));
    assert_eq!(st["lock_type"], "GPU_LOCK");
    assert!(st["lock_age"].as_f64().unwrap() >= 0.0);
    assert_eq!(st["fencing_token"], t2);
    // Default key is gpu_lock:0.
    let (_, dflt) = get(&k, &format!("{M}/gpu-lock/status")).await;
    assert_eq!(dflt["lock_key"], "gpu_lock:0");
    assert_eq!(dflt["lock_holder"], "faster_whisper.transcribe_audio");
    // Free shape; unknown well-formed key reads free; malformed key is 400.
    for key in ["gpu_lock:1", "gpu_lock:42"] {
        let (s, free) = get(&k, &format!("{M}/gpu-lock/status?lock_key={key}")).await;
        assert_eq!(s, 200);
        assert_eq!(free["is_locked"], false);
        assert_eq!(free["lock_holder"], Value::Null);
        assert_eq!(free["ttl_seconds"], Value::Null);
        assert_eq!(free["lock_age"], Value::Null);
        assert_eq!(free["recent_history"], json!([]));
        assert_eq!(free["lock_type"], "GPU_LOCK");
        assert_eq!(free["statistics"]["total_attempts"], 0);
    }
    let (s, bad) = get(&k, &format!("{M}/gpu-lock/status?lock_key=gpu%20lock")).await;
    assert_eq!(s, 400);
    assert_eq!(bad["error"]["type"], "invalid_lock_key");

    // 2. GET /gpu-lock/health
    let (_, h) = get(&k, &format!("{M}/gpu-lock/health")).await;
    assert_eq!(h["overall_status"], "healthy");
    assert_eq!(h["issues_count"], 0);
    assert_eq!(h["total_attempts"], 3);
    assert!((h["success_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(h["timeout_rate"].as_f64(), Some(0.0));
    assert!(h["average_execution_time"].is_number());
    assert!((h["recent_success_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(h["lock_holder"], "faster_whisper.transcribe_audio");
    assert!(h["lock_age"].is_number());
    assert!(is_unix_time(&h["timestamp"]));

    // 3. GET /monitor/status (the monitor's first check runs at startup)
    eventually("the monitor's first check", || async {
        let (_, ms) = get(&k, &format!("{M}/monitor/status")).await;
        (ms["monitor_status"]["checks_performed"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    let (_, ms) = get(&k, &format!("{M}/monitor/status")).await;
    assert_eq!(ms["monitor_status"]["running"], true);
    assert!(is_unix_time(&ms["monitor_status"]["start_time"]));
    assert!(ms["monitor_status"]["checks_performed"].as_u64().unwrap() >= 1);
    assert!(is_unix_time(&ms["monitor_status"]["last_check"]));
    assert_eq!(ms["monitor_stats"]["gpu_locks_monitored"], 2);
    assert_eq!(ms["monitor_stats"]["tasks_monitored"], 1);
    assert_eq!(ms["monitor_stats"]["timeouts_detected"], 0);
    assert_eq!(ms["monitor_stats"]["tasks_recovered"], 0);
    assert_eq!(
        ms["config"],
        json!({"check_interval": 3600, "gpu_timeout": 300, "heartbeat_timeout": 120, "enabled": true, "auto_recovery": true})
    );
    assert_eq!(ms["is_running"], true);
    assert!(ms["uptime"].as_f64().unwrap() >= 0.0);

    // 4. GET /monitor/health
    let (_, mh) = get(&k, &format!("{M}/monitor/health")).await;
    assert_eq!(mh["status"], "healthy");
    assert_eq!(mh["issues"], json!([]));
    assert_eq!(mh["metrics"]["check_frequency"], "1h");
    assert_eq!(mh["metrics"]["gpu_lock_coverage"], "100%");
    assert_eq!(mh["metrics"]["task_monitoring_coverage"], "100%");
    assert!(mh["metrics"]["avg_response_time"]
        .as_str()
        .unwrap()
        .ends_with("ms"));
    assert!(is_unix_time(&mh["timestamp"]));

    // 7. GET /heartbeat/task/{id}: running, stopped, unknown
    let (_, t) = get(&k, &format!("{M}/heartbeat/task/whisper-002")).await;
    assert_eq!(t["task_id"], "whisper-002");
    assert_eq!(t["heartbeat_exists"], true);
    assert_eq!(t["is_registered"], true);
    assert_eq!(t["status"], "running");
    assert_eq!(
        t["heartbeat_data"]["task_name"],
        "faster_whisper.transcribe_audio"
    );
    assert_eq!(t["heartbeat_data"]["gpu_lock"], "gpu_lock:0");
    assert_eq!(t["heartbeat_data"]["progress"], 0.65);
    assert!(is_unix_time(&t["heartbeat_data"]["start_time"]));
    assert!(is_unix_time(&t["heartbeat_data"]["last_update"]));
    assert_eq!(t["last_update"], t["heartbeat_data"]["last_update"]);
    assert_eq!(t["is_running"], true);
    let (_, t) = get(&k, &format!("{M}/heartbeat/task/extract-001")).await;
    assert_eq!(t["heartbeat_exists"], false);
    assert_eq!(t["is_registered"], false);
    assert_eq!(t["status"], "completed");
    assert_eq!(t["heartbeat_data"], Value::Null);
    assert_eq!(t["last_update"], Value::Null);
    assert_eq!(t["is_running"], false);

    // 8. GET /heartbeat/all
    let (_, all) = get(&k, &format!("{M}/heartbeat/all")).await;
    assert_eq!(
        all["active_tasks"]["whisper-002"]["task_name"],
        "faster_whisper.transcribe_audio"
    );
    assert_eq!(all["active_tasks"]["whisper-002"]["status"], "running");
    assert!(is_unix_time(
        &all["active_tasks"]["whisper-002"]["last_update"]
    ));
    assert_eq!(all["dead_tasks"].as_array().unwrap().len(), 1);
    assert_eq!(all["dead_tasks"][0]["task_id"], "extract-001");
    assert_eq!(all["orphaned_tasks"], json!([]));
    let s8 = &all["statistics"];
    assert_eq!(
        (
            s8["total_tasks"].as_u64(),
            s8["active_count"].as_u64(),
            s8["dead_count"].as_u64(),
            s8["orphaned_count"].as_u64()
        ),
        (Some(2), Some(1), Some(1), Some(0))
    );
    assert!(s8["average_heartbeat_interval"].as_f64().unwrap() >= 0.0);
    assert!(is_unix_time(&all["timestamp"]));

    // 12. GET /timeout/status
    let (_, ts) = get(&k, &format!("{M}/timeout/status")).await;
    assert_eq!(ts["timeout_stats"]["total_timeouts_detected"], 0);
    assert_eq!(ts["timeout_stats"]["tasks_recovered"], 0);
    assert_eq!(ts["timeout_stats"]["resources_released"], 0);
    assert_eq!(ts["timeout_stats"]["current_timeouts"], 0);
    assert_eq!(ts["action_history"], json!([]));
    assert_eq!(
        ts["configured_actions"],
        json!([
            "force_release_gpu_lock",
            "update_task_status",
            "log_timeout_event"
        ])
    );
    assert!(is_unix_time(&ts["timestamp"]));

    // 13. GET /timeout/config
    let (_, tc) = get(&k, &format!("{M}/timeout/config")).await;
    assert_eq!(tc["gpu_lock_timeout"], 300);
    assert_eq!(tc["task_heartbeat_timeout"], 120);
    assert_eq!(tc["monitor_check_interval"], 3600);
    assert_eq!(tc["auto_recovery_enabled"], true);
    assert_eq!(tc["max_retry_attempts"], 3);
    assert!(is_unix_time(&tc["timestamp"]));

    // 14. POST /timeout/check (admin)
    let (s, _) = post(
        &k,
        &format!("{M}/timeout/check?lock_key=gpu_lock:0"),
        json!({}),
    )
    .await;
    assert_eq!(s, 401);
    let (s, chk) = admin_post(&k, &format!("{M}/timeout/check?lock_key=gpu_lock:0"), None).await;
    assert_eq!(s, 200, "{chk}");
    assert_eq!(chk["checked_locks"], json!(["gpu_lock:0"]));
    assert_eq!(chk["timeouts_detected"], 0);
    assert_eq!(chk["actions_taken"], json!([]));
    assert!(is_unix_time(&chk["timestamp"]));

    // 16. GET /statistics
    let (_, sx) = get(&k, &format!("{M}/statistics")).await;
    assert!(is_unix_time(&sx["timestamp"]));
    assert_eq!(sx["gpu_lock"]["overall_status"], "healthy");
    assert_eq!(sx["gpu_lock"]["total_attempts"], 3);
    assert!((sx["gpu_lock"]["success_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(sx["gpu_lock"]["timeout_rate"].as_f64(), Some(0.0));
    assert_eq!(sx["monitor"]["running"], true);
    assert!(sx["monitor"]["uptime"].is_number());
    assert!(sx["monitor"]["checks_performed"].as_u64().unwrap() >= 1);
    assert_eq!(sx["monitor"]["issues_detected"], 0);
    assert_eq!(sx["heartbeat"]["active_tasks"], 1);
    assert_eq!(sx["heartbeat"]["dead_tasks"], 1);
    assert_eq!(sx["heartbeat"]["orphaned_tasks"], 0);
    assert!(sx["heartbeat"]["average_interval"].is_number());
    assert_eq!(
        sx["timeout"],
        json!({"total_timeouts": 0, "tasks_recovered": 0, "resources_released": 0})
    );

    // 17. GET /health
    let (_, hh) = get(&k, &format!("{M}/health")).await;
    assert_eq!(hh["status"], "healthy", "{hh}");
    assert_eq!(hh["issues"], json!([]));
    assert_eq!(hh["components"]["monitor"]["status"], "healthy");
    assert_eq!(
        hh["components"]["monitor"]["metrics"]["check_frequency"],
        "1h"
    );
    assert!(is_unix_time(&hh["components"]["monitor"]["timestamp"]));
    assert_eq!(hh["components"]["heartbeat"]["total_tasks"], 2);
    assert_eq!(hh["components"]["heartbeat"]["active_count"], 1);
    assert_eq!(
        hh["components"]["heartbeat"]["failure_rate"].as_f64(),
        Some(0.0)
    );
    assert!(is_unix_time(&hh["timestamp"]));

    // 15. POST /lock/release (admin; audited; invalidates the token)
    let (s, _) = post(
        &k,
        &format!("{M}/lock/release"),
        json!({"lock_key": "gpu_lock:0"}),
    )
    .await;
    assert_eq!(s, 401);
    let (s, fr) = admin_post(
        &k,
        &format!("{M}/lock/release"),
        Some(json!({"lock_key": "gpu_lock:0"})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(fr["success"], true);
    assert!(
        fr["message"]
            .as_str()
            .unwrap()
            .starts_with("lock gpu_lock:0 released"),
        "{fr}"
    );
    assert_eq!(fr["lock_key"], "gpu_lock:0");
    assert_eq!(fr["task_name"], "manual");
    let (_, again) = admin_post(
        &k,
        &format!("{M}/lock/release"),
        Some(json!({"lock_key": "gpu_lock:0", "task_name": "ops"})),
    )
    .await;
    assert_eq!(again["success"], false);
    let (s, _) = admin_post(
        &k,
        &format!("{M}/lock/release"),
        Some(json!({"lock_key": "nope"})),
    )
    .await;
    assert_eq!(s, 400);
    let (_, st) = get(&k, &format!("{M}/gpu-lock/status")).await;
    assert_eq!(st["recent_history"][0]["action"], "force_release");
    assert_eq!(st["recent_history"][0]["success"], false);
    assert_eq!(st["recent_history"][0]["task_name"], "ops");
    assert_eq!(st["recent_history"][1]["action"], "force_release");
    assert_eq!(st["recent_history"][1]["task_name"], "manual");
    assert_eq!(st["recent_history"][1]["fencing_token"], t2);
    let (s, stale) = post(
        &k,
        "/api/v1/locks/gpu_lock:0/renew",
        json!({"fencing_token": t2, "ttl_seconds": 10}),
    )
    .await;
    assert_eq!(s, 409, "{stale}");
    assert_eq!(stale["renewed"], false);
    assert_eq!(stale["error"]["type"], "stale_token");

    // 9/10. heartbeat cleanup (admin) removes the dead task.
    let (s, _) = post(&k, &format!("{M}/heartbeat/cleanup"), json!({})).await;
    assert_eq!(s, 401);
    let (s, cl) = admin_post(&k, &format!("{M}/heartbeat/cleanup"), None).await;
    assert_eq!(s, 200);
    assert_eq!(cl["message"], "heartbeat cleanup done");
    assert_eq!(cl["success"], true);
    assert_eq!(cl["cleaned_dead_tasks"], 1);

    // 5/6. monitor stop/start (admin)
    let (s, _) = post(&k, &format!("{M}/monitor/stop"), json!({})).await;
    assert_eq!(s, 401);
    let (_, stop) = admin_post(&k, &format!("{M}/monitor/stop"), None).await;
    assert_eq!(stop, json!({"message": "monitor stopped", "success": true}));
    let (_, ms) = get(&k, &format!("{M}/monitor/status")).await;
    assert_eq!(ms["is_running"], false);
    let (_, mh) = get(&k, &format!("{M}/monitor/health")).await;
    assert_eq!(mh["status"], "warning");
    let (_, start) = admin_post(&k, &format!("{M}/monitor/start"), None).await;
    assert_eq!(
        start,
        json!({"message": "monitor started", "success": true})
    );
    let (_, ms) = get(&k, &format!("{M}/monitor/status")).await;
    assert_eq!(ms["is_running"], true);

    // The worker API's list.
    let (_, locks) = get(&k, "/api/v1/locks").await;
    let l0 = locks["locks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["lock_key"] == "gpu_lock:0")
        .unwrap()
        .clone();
    assert_eq!(l0["is_locked"], false);
    assert_eq!(l0["last_fencing_token"], t2);

    // Metrics.
    let text = k.metrics().await;
    for needle in [
        "keel_gpu_lock_held{lock=\"gpu_lock:0\"} 0",
        &format!("keel_gpu_lock_fencing_token{{lock=\"gpu_lock:0\"}} {t2}"),
        "keel_gpu_lock_acquisitions_total{result=\"acquired\"} 2",
        "keel_gpu_lock_acquisitions_total{result=\"conflict\"} 1",
        "keel_gpu_lock_wait_seconds_count 2",
        "keel_task_heartbeat_age_seconds{task=\"whisper-002\"}",
        "keel_ledger_timeouts_total{kind=\"lease_expired\"} 0",
        "keel_task_heartbeat_failure_ratio 0",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    // The stopped (and cleaned) task left the heartbeat gauge.
    assert!(!text.contains("task=\"extract-001\""));
    assert!(
        k.log().contains("lock.force_released"),
        "force-release event logged"
    );
}

#[tokio::test]
async fn bad_input_is_400_and_unknown_lock_404() {
    let k = Keel::start(ledger_spec("max_ttl = \"1h\"")).await;
    let cases = [
        json!({"ttl_seconds": 10}),
        json!({"holder": "", "ttl_seconds": 10}),
        json!({"holder": "w", "ttl_seconds": 0}),
        json!({"holder": "w", "ttl_seconds": -1}),
        json!({"holder": "w", "ttl_seconds": 3601}),
        json!({"holder": "w", "ttl_seconds": "10"}),
        json!({"holder": "w", "ttl_seconds": 10, "wait_seconds": -1}),
        json!({"holder": "w", "ttl_seconds": 10, "color": "red"}),
    ];
    for body in cases {
        let (s, r) = acquire(&k, "gpu_lock:0", body.clone()).await;
        assert_eq!(s, 400, "{body} -> {r}");
        assert!(
            r["error"]["type"].is_string() && r["error"]["message"].is_string(),
            "{r}"
        );
    }
    let (s, r) = acquire(&k, "gpu_lock", json!({"holder": "w"})).await;
    assert_eq!(
        (s, r["error"]["type"].as_str()),
        (400, Some("invalid_lock_key"))
    );
    let (s, r) = acquire(&k, "gpu_lock:9", json!({"holder": "w"})).await;
    assert_eq!(
        (s, r["error"]["type"].as_str()),
        (404, Some("unknown_lock"))
    );
    let (s, _) = post(&k, "/api/v1/heartbeats/t", json!({"progress": 2.0})).await;
    assert_eq!(s, 400);
    let (s, _) = post(&k, "/api/v1/heartbeats/t", json!({"bogus": 1})).await;
    assert_eq!(s, 400);
    // None of that wrote anything.
    let (_, st) = get(&k, &format!("{M}/gpu-lock/status")).await;
    assert_eq!(st["statistics"]["total_attempts"], 0);
    assert_eq!(st["recent_history"], json!([]));
    let (_, all) = get(&k, &format!("{M}/heartbeat/all")).await;
    assert_eq!(all["statistics"]["total_tasks"], 0);
}

#[tokio::test]
async fn lease_expires_without_the_monitor_and_stale_token_is_refused() {
    let k = Keel::start(ledger_spec("monitor_enabled = false")).await;
    let (_, ms) = get(&k, &format!("{M}/monitor/status")).await;
    assert_eq!(ms["is_running"], false);
    let (s, a) = acquire(
        &k,
        "gpu_lock:0",
        json!({"holder": "short", "ttl_seconds": 0.5}),
    )
    .await;
    assert_eq!(s, 200);
    let old = a["fencing_token"].as_u64().unwrap();
    // A queued acquire gets the lock when the lease runs out — nobody released it and no
    // monitor runs.
    let (s, b) = acquire(
        &k,
        "gpu_lock:0",
        json!({"holder": "next", "ttl_seconds": 60, "wait_seconds": 60}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["fencing_token"].as_u64().unwrap(), old + 1);
    for path in ["renew", "release"] {
        let (s, r) = post(
            &k,
            &format!("/api/v1/locks/gpu_lock:0/{path}"),
            json!({"fencing_token": old}),
        )
        .await;
        assert_eq!(s, 409, "{path}: {r}");
        assert_eq!(r["error"]["type"], "stale_token");
        assert_eq!(r["lock_holder"], "next");
        assert_eq!(r["fencing_token"], old + 1);
    }
    let (_, st) = get(&k, &format!("{M}/gpu-lock/status")).await;
    let actions: Vec<&str> = st["recent_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["acquire", "timeout", "acquire"], "{st}");
    assert_eq!(st["statistics"]["expired_count"], 1);

    // An immediate acquire after a TTL passes succeeds at once, also without waiters.
    let (_, r) = post(
        &k,
        "/api/v1/locks/gpu_lock:0/release",
        json!({"fencing_token": old + 1}),
    )
    .await;
    assert_eq!(r["released"], true);
    let (_, c) = acquire(&k, "gpu_lock:0", json!({"holder": "c", "ttl_seconds": 0.2})).await;
    let c_token = c["fencing_token"].as_u64().unwrap();
    let d = eventually("the 0.2 s lease to expire", || async {
        let (s, d) = acquire(&k, "gpu_lock:0", json!({"holder": "d", "ttl_seconds": 60})).await;
        (s == 200).then_some(d)
    })
    .await;
    assert_eq!(d["fencing_token"].as_u64().unwrap(), c_token + 1);
    let (_, ts) = get(&k, &format!("{M}/timeout/status")).await;
    assert_eq!(ts["timeout_stats"]["total_timeouts_detected"], 2);
    let text = k.metrics().await;
    assert!(
        text.contains("keel_ledger_timeouts_total{kind=\"lease_expired\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn waiters_are_served_fifo_and_a_disconnected_waiter_leaves_the_queue() {
    let k = Arc::new(Keel::start(ledger_spec("")).await);
    let (_, a) = acquire(&k, "gpu_lock:0", json!({"holder": "A", "ttl_seconds": 300})).await;
    let ta = a["fencing_token"].as_u64().unwrap();
    let waiters = |n: u64| {
        let k = k.clone();
        async move {
            eventually(&format!("{n} waiters"), || async {
                let (_, l) = get(&k, "/api/v1/locks").await;
                (l["locks"][0]["waiters"] == n).then_some(())
            })
            .await
        }
    };
    let mut handles = Vec::new();
    for (i, name) in ["B", "C", "D"].into_iter().enumerate() {
        let k2 = k.clone();
        handles.push(tokio::spawn(async move {
            acquire(
                &k2,
                "gpu_lock:0",
                json!({"holder": name, "ttl_seconds": 300, "wait_seconds": 120}),
            )
            .await
        }));
        waiters(i as u64 + 1).await;
    }
    // C goes away: its connection closes and it leaves the queue.
    let c = handles.remove(1);
    c.abort();
    let _ = c.await;
    waiters(2).await;
    // Release A: B is next, then D.
    let (_, r) = post(
        &k,
        "/api/v1/locks/gpu_lock:0/release",
        json!({"fencing_token": ta}),
    )
    .await;
    assert_eq!(r["released"], true);
    let (s, b) = handles.remove(0).await.unwrap();
    assert_eq!(s, 200);
    assert_eq!(b["holder"], "B");
    assert_eq!(b["fencing_token"], ta + 1);
    let (_, r) = post(
        &k,
        "/api/v1/locks/gpu_lock:0/release",
        json!({"fencing_token": ta + 1}),
    )
    .await;
    assert_eq!(r["released"], true);
    let (s, d) = handles.remove(0).await.unwrap();
    assert_eq!(s, 200);
    assert_eq!(d["holder"], "D");
    assert_eq!(d["fencing_token"], ta + 2);
    // A waiter whose wait runs out gets 409 with the holder, counted as a timeout.
    let (s, e) = acquire(
        &k,
        "gpu_lock:0",
        json!({"holder": "E", "ttl_seconds": 10, "wait_seconds": 0.3}),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(e["lock_holder"], "D");
    assert_eq!(e["reason"], "wait_timeout");
    let (_, h) = get(&k, &format!("{M}/gpu-lock/status")).await;
    assert_eq!(h["statistics"]["timeout_count"], 1);
}

#[tokio::test]
async fn orphaned_task_is_detected_and_its_lock_recovered() {
    let k = Keel::start(ledger_spec(
        "check_interval = \"200ms\"\nheartbeat_timeout = \"1s\"",
    ))
    .await;
    let (s, _) = post(
        &k,
        "/api/v1/heartbeats/zombie-003",
        json!({"task_name": "faster_whisper.transcribe_audio", "gpu_lock": "gpu_lock:0"}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, a) = acquire(&k, "gpu_lock:0", json!({"holder": "faster_whisper.transcribe_audio", "task_id": "zombie-003", "ttl_seconds": 3600})).await;
    let token = a["fencing_token"].as_u64().unwrap();
    // No more heartbeats: the monitor orphans the task and releases its lock.
    let ts = eventually("auto-recovery", || async {
        let (_, ts) = get(&k, &format!("{M}/timeout/status")).await;
        (ts["timeout_stats"]["tasks_recovered"] == 1).then_some(ts)
    })
    .await;
    let hist = ts["action_history"].as_array().unwrap();
    assert_eq!(hist[0]["action"], "timeout_recovery");
    assert_eq!(hist[0]["task_id"], "zombie-003");
    assert_eq!(hist[0]["result"], "success");
    assert_eq!(hist[1]["action"], "task_orphaned");
    assert_eq!(ts["timeout_stats"]["resources_released"], 1);
    assert!(
        ts["timeout_stats"]["total_timeouts_detected"]
            .as_u64()
            .unwrap()
            >= 1
    );
    let (_, st) = get(&k, &format!("{M}/gpu-lock/status")).await;
    assert_eq!(st["is_locked"], false);
    assert_eq!(st["recent_history"][0]["action"], "timeout_recovery");
    let (s, _) = post(
        &k,
        "/api/v1/locks/gpu_lock:0/renew",
        json!({"fencing_token": token}),
    )
    .await;
    assert_eq!(s, 409);
    let (_, all) = get(&k, &format!("{M}/heartbeat/all")).await;
    assert_eq!(all["orphaned_tasks"][0]["task_id"], "zombie-003");
    assert_eq!(all["orphaned_tasks"][0]["timeout"], true);
    let (_, t) = get(&k, &format!("{M}/heartbeat/task/zombie-003")).await;
    assert_eq!(t["status"], "orphaned");
    assert_eq!(t["is_running"], false);
    let (_, hh) = get(&k, &format!("{M}/health")).await;
    assert_eq!(hh["status"], "warning");
    assert_eq!(
        hh["components"]["heartbeat"]["failure_rate"].as_f64(),
        Some(1.0)
    );
    assert!(
        hh["issues"].as_array().unwrap().iter().any(|i| i
            .as_str()
            .unwrap()
            .contains("heartbeat failure rate too high")),
        "{hh}"
    );
    // The monitor counts its recovery once the check's commit is acknowledged.
    eventually("the monitor to count the recovery", || async {
        let (_, ms) = get(&k, &format!("{M}/monitor/status")).await;
        (ms["monitor_stats"]["tasks_recovered"] == 1).then_some(())
    })
    .await;
    let log = k.log();
    assert!(
        log.contains("task.orphaned") && log.contains("task.recovered"),
        "{log}"
    );
    // A late heartbeat brings the task back; cleanup then leaves it alone.
    post(
        &k,
        "/api/v1/heartbeats/zombie-003",
        json!({"progress": 0.9}),
    )
    .await;
    let (_, t) = get(&k, &format!("{M}/heartbeat/task/zombie-003")).await;
    assert_eq!(t["status"], "running");
}

#[tokio::test]
async fn restart_keeps_locks_history_and_token_counters_also_after_kill_9() {
    let mut k = Keel::start(ledger_spec("locks = [\"gpu_lock:0\", \"gpu_lock:1\"]")).await;
    let (_, a) = acquire(&k, "gpu_lock:0", json!({"holder": "w1", "ttl_seconds": 5})).await;
    let (_, r) = post(
        &k,
        "/api/v1/locks/gpu_lock:0/release",
        json!({"fencing_token": a["fencing_token"]}),
    )
    .await;
    assert_eq!(r["released"], true);
    let (_, b) = acquire(
        &k,
        "gpu_lock:0",
        json!({"holder": "w2", "ttl_seconds": 3600}),
    )
    .await;
    let (_, c) = acquire(
        &k,
        "gpu_lock:1",
        json!({"holder": "w3", "ttl_seconds": 3600}),
    )
    .await;
    admin_post(
        &k,
        &format!("{M}/lock/release"),
        Some(json!({"lock_key": "gpu_lock:1"})),
    )
    .await;
    let history_before = get(&k, &format!("{M}/gpu-lock/status")).await.1["recent_history"].clone();

    for crash in [false, true] {
        if crash {
            k.kill9().await;
        } else {
            k.stop().await;
        }
        k.spawn();
        k.wait_ready().await;
        let (_, st) = get(&k, &format!("{M}/gpu-lock/status")).await;
        assert_eq!(st["is_locked"], true, "crash={crash}: {st}");
        assert_eq!(st["lock_holder"], "w2");
        assert_eq!(st["fencing_token"], b["fencing_token"]);
        assert_eq!(st["expires_at"], b["expires_at"], "absolute expiry kept");
        assert_eq!(st["recent_history"], history_before, "crash={crash}");
        // The force-released token stays dead and the counter moves on.
        let (s, _) = post(
            &k,
            "/api/v1/locks/gpu_lock:1/release",
            json!({"fencing_token": c["fencing_token"]}),
        )
        .await;
        assert_eq!(s, 409);
    }
    let (_, d) = acquire(&k, "gpu_lock:1", json!({"holder": "w4", "ttl_seconds": 60})).await;
    assert_eq!(
        d["fencing_token"].as_u64().unwrap(),
        c["fencing_token"].as_u64().unwrap() + 1
    );
    // kill -9 right after an acknowledged acquire: it is there after the restart.
    k.kill9().await;
    k.spawn();
    k.wait_ready().await;
    let (_, l) = get(&k, "/api/v1/locks").await;
    let l1 = l["locks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["lock_key"] == "gpu_lock:1")
        .unwrap()
        .clone();
    assert_eq!(l1["lock_holder"], "w4");
    assert_eq!(l1["fencing_token"], d["fencing_token"]);
    let (_, e) = admin_post(
        &k,
        &format!("{M}/lock/release"),
        Some(json!({"lock_key": "gpu_lock:1"})),
    )
    .await;
    assert_eq!(e["success"], true);
    let (_, f) = acquire(&k, "gpu_lock:1", json!({"holder": "w5", "ttl_seconds": 60})).await;
    // After a crash the counter continues above the fencing high-water mark's reservation
    // (keel.fence), so there may be a gap; it never goes back.
    assert!(
        f["fencing_token"].as_u64().unwrap() > d["fencing_token"].as_u64().unwrap(),
        "{f} after {d}"
    );
    k.stop().await;
}

#[tokio::test]
async fn many_acquirers_one_lock_exactly_one_holder_at_a_time() {
    let k = Arc::new(Keel::start(ledger_spec("")).await);
    let inside = Arc::new(AtomicI64::new(0));
    let overlaps = Arc::new(AtomicI64::new(0));
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (k, inside, overlaps) = (k.clone(), inside.clone(), overlaps.clone());
        tasks.push(tokio::spawn(async move {
            let mut tokens = Vec::new();
            for _ in 0..8 {
                let (s, a) = acquire(
                    &k,
                    "gpu_lock:0",
                    json!({"holder": format!("w{w}"), "ttl_seconds": 120, "wait_seconds": 120}),
                )
                .await;
                assert_eq!(s, 200, "{a}");
                let token = a["fencing_token"].as_u64().unwrap();
                // Overlap detection: nobody else may be inside between our grant and release.
                if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                tokio::task::yield_now().await;
                let (_, st) = get(&k, &format!("{M}/gpu-lock/status")).await;
                assert_eq!(
                    st["fencing_token"].as_u64(),
                    Some(token),
                    "the ledger agrees who holds it"
                );
                inside.fetch_sub(1, Ordering::SeqCst);
                let (s, r) = post(
                    &k,
                    "/api/v1/locks/gpu_lock:0/release",
                    json!({"fencing_token": token}),
                )
                .await;
                assert_eq!(s, 200, "{r}");
                tokens.push(token);
            }
            tokens
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 16 * 8, "every grant had its own token");
    assert_eq!(all, (1..=128).collect::<Vec<u64>>());
}

#[tokio::test]
async fn sigterm_answers_a_waiting_acquire_and_exits_0() {
    let mut k = Keel::start(ledger_spec("")).await;
    acquire(&k, "gpu_lock:0", json!({"holder": "A", "ttl_seconds": 300})).await;
    let url = k.url("/api/v1/locks/gpu_lock:0/acquire");
    let waiter = tokio::spawn(async move {
        let r = client()
            .post(url)
            .json(&json!({"holder": "B", "ttl_seconds": 30, "wait_seconds": 120}))
            .send()
            .await
            .expect("answered");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap())
    });
    eventually("the waiter to queue", || async {
        let (_, l) = get(&k, "/api/v1/locks").await;
        (l["locks"][0]["waiters"] == 1).then_some(())
    })
    .await;
    k.signal(libc::SIGTERM);
    let (s, body) = waiter.await.unwrap();
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["reason"], "shutting_down");
    assert_eq!(
        k.wait_exit(Duration::from_secs(30)).await,
        Some(0),
        "{}",
        k.log()
    );
}

#[tokio::test]
async fn worker_token_guards_the_worker_api() {
    let k = Keel::start(ledger_spec("worker_token = \"w-secret\"")).await;
    let body = json!({"holder": "w", "ttl_seconds": 10});
    let url = k.url("/api/v1/locks/gpu_lock:0/acquire");
    let r = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .post(&url)
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .post(&url)
        .bearer_auth("w-secret")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .post(k.url("/api/v1/heartbeats/t1"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the admin token works too");
    let r = client()
        .post(k.url(&format!("{M}/heartbeat/task/t2/start")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Reads stay open; print-config hides the token.
    assert_eq!(get(&k, &format!("{M}/gpu-lock/status")).await.0, 200);
    let (code, out, _) = run_cli(
        &["print-config", "--config", k.config_path.to_str().unwrap()],
        &[],
        k.dir.path(),
    );
    assert_eq!(code, 0);
    assert!(
        !out.contains("w-secret") && out.contains("worker_token = \"***\""),
        "{out}"
    );
}

#[tokio::test]
async fn without_a_driver_gpu_is_disabled_with_the_reason_and_locks_still_work() {
    let k = Keel::start(ledger_spec("locks = [\"gpu_lock:0\", \"gpu_lock:1\"]")).await;
    let (_, d) = get(&k, "/health/detailed").await;
    let gpu = &d["components"]["gpu"];
    if gpu["status"] != "disabled" {
        eprintln!("an NVIDIA driver is present here; the no-driver path is not testable: {gpu}");
        return;
    }
    let reason = gpu["reason"].as_str().unwrap();
    assert!(reason.starts_with("NVML not available: "), "{reason}");
    let (_, g) = get(&k, "/api/v1/gpus").await;
    assert_eq!(g["enabled"], false);
    assert_eq!(g["reason"], reason);
    assert_eq!(g["gpus"], json!([]));
    assert_eq!(
        k.log().matches("NVML not available").count(),
        1,
        "logged once"
    );
    let (s, _) = acquire(&k, "gpu_lock:1", json!({"holder": "w", "ttl_seconds": 10})).await;
    assert_eq!(s, 200);
    assert_eq!(d["components"]["ledger"]["status"], "healthy");

    // enabled = true without a driver: a clear startup error, before binding.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("k.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}/data\"\n[control]\nlisten = \"127.0.0.1:{}\"\nadmin_token = \"test-admin-token\"\n[gpu]\nenabled = true\n",
            dir.path().display(),
            crate::harness::free_port()
        ),
    )
    .unwrap();
    let (code, _, err) = run_cli(&["run", "--config", cfg.to_str().unwrap()], &[], dir.path());
    assert_ne!(code, 0);
    assert!(
        err.contains("[gpu] enabled = true, but NVML not available"),
        "{err}"
    );
}

#[test]
fn ledger_config_errors_are_all_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = validate_config(
        dir.path(),
        "[control]\nadmin_token = \"test-admin-token\"\n[ledger]\nlocks = [\"gpu_lock:0\", \"gpu lock\", \"gpu_lock:0\"]\ncheck_interval = \"0s\"\nheartbeat_timeout = \"0s\"\nlock_timeout = \"2h\"\nmax_ttl = \"1h\"\nworker_token = \"\"\n[gpu]\nenabled = \"sometimes\"\nsample_interval = \"0s\"\n",
    );
    assert_eq!(code, 78, "{err}");
    for needle in [
        "ledger.locks[1]: malformed lock key",
        "ledger.locks[2]: duplicate lock key \"gpu_lock:0\"",
        "ledger.check_interval: duration must be greater than zero",
        "ledger.heartbeat_timeout: duration must be greater than zero",
        "ledger.lock_timeout: 2h is longer than max_ttl (1h)",
        "ledger.worker_token: must not be empty",
        "gpu.enabled: expected true, false or \"auto\"",
        "gpu.sample_interval: duration must be greater than zero",
    ] {
        assert!(err.contains(needle), "{needle} missing:\n{err}");
    }
}
