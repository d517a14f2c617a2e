//! The foundation: CLI, config validation, store exclusivity, health/metrics shapes, the
//! control listener's error and compression behaviour, and graceful shutdown.

use crate::harness::{client, run_cli, Keel, Spec, ADMIN_TOKEN};
use std::io::Read;
use std::time::Duration;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn validate_lists_every_error_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let file_in_the_way = write(dir.path(), "not-a-dir", "x");
    let cfg = write(
        dir.path(),
        "bad.toml",
        &format!(
            r#"
data_dir = "{}/sub"
shutdown_grace = "0s"
[control]
listen = "127.0.0.1:99999"
admin_tokn = "x"
[log]
format = "xml"
"#,
            file_in_the_way.display()
        ),
    );
    let (code, _out, err) = run_cli(
        &["validate", "--config", cfg.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 78, "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("keel:")).collect();
    assert!(
        lines.contains(&"control.listen: invalid socket address \"127.0.0.1:99999\""),
        "{err}"
    );
    assert!(
        lines.contains(
            &"control.admin_tokn: unknown key \"admin_tokn\" (did you mean \"admin_token\"?)"
        ),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("log.format: unknown variant `xml`")),
        "{err}"
    );
    assert!(
        lines.contains(&"shutdown_grace: duration must be greater than zero"),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("data_dir: ") && l.contains("not writable")),
        "{err}"
    );
    assert_eq!(lines.len(), 5, "{err}");
}

#[test]
fn validate_rejects_both_token_sources_and_negative_durations() {
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", "abc\n");
    let cfg = write(
        dir.path(),
        "c.toml",
        &format!(
            "data_dir = \"{d}/data\"\nshutdown_grace = \"-5s\"\n[control]\nadmin_token = \"a\"\nadmin_token_file = \"{t}\"\n",
            d = dir.path().display(),
            t = token.display()
        ),
    );
    let (code, _, err) = run_cli(
        &["validate", "--config", cfg.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 78);
    assert!(
        err.contains("control.admin_token: set either admin_token or admin_token_file, not both"),
        "{err}"
    );
    assert!(
        err.lines().any(|l| l.starts_with("shutdown_grace: ")),
        "{err}"
    );
}

#[test]
fn validate_ok_prints_summary_and_env_overrides_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &format!(
            "data_dir = \"{}/data\"\n[control]\nlisten = \"127.0.0.1:8081\"\nadmin_token = \"t0ps3cret-t0ps3cret\"\n",
            dir.path().display()
        ),
    );
    let path = cfg.to_str().unwrap();
    let (code, out, err) = run_cli(&["validate", "--config", path], &[], dir.path());
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1);
    assert!(out.contains("control=127.0.0.1:8081"), "{out}");

    let env = [("KEEL_CONTROL__LISTEN", "127.0.0.1:9000")];
    let (code, out, _) = run_cli(&["validate", "--config", path], &env, dir.path());
    assert_eq!(code, 0);
    assert!(out.contains("control=127.0.0.1:9000"), "{out}");

    let env = [("KEEL_CONTROL__LISTEN", "nonsense")];
    let (code, _, err) = run_cli(&["validate", "--config", path], &env, dir.path());
    assert_eq!(code, 78);
    assert!(
        err.contains("control.listen: invalid socket address \"nonsense\""),
        "{err}"
    );
}

#[test]
fn print_config_hides_secrets_and_shows_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &format!(
            "data_dir = \"{}/data\"\n[control]\nadmin_token = \"super-secret-value\"\n",
            dir.path().display()
        ),
    );
    let (code, out, err) = run_cli(
        &["print-config", "--config", cfg.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("super-secret-value"), "{out}");
    assert!(out.contains("admin_token = \"***\""), "{out}");
    assert!(out.contains("shutdown_grace = \"30s\""), "{out}");
    // The output is itself a valid config file.
    let round: toml::Value = toml::from_str(&out).expect("print-config emits TOML");
    assert_eq!(round["control"]["listen"].as_str(), Some("127.0.0.1:8081"));
}

#[test]
fn version_and_missing_config() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run_cli(&["--version"], &[], dir.path());
    assert_eq!(code, 0);
    assert!(out.starts_with("keel "), "{out}");
    let (code, _, err) = run_cli(&["validate"], &[], dir.path());
    assert_eq!(code, 78);
    assert!(err.contains("no config file found"), "{err}");
}

#[tokio::test]
async fn health_endpoints_and_shapes() {
    let k = Keel::start_default().await;
    let c = client();
    let ready = c.get(k.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let live: serde_json::Value = c
        .get(k.url("/health/live"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(live["status"], "alive");
    let basic: serde_json::Value = c
        .get(k.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(basic["status"], "healthy");
    let detailed: serde_json::Value = c
        .get(k.url("/health/detailed"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for comp in ["store", "proxy", "ledger", "gpu", "executor"] {
        let s = detailed["components"][comp]["status"]
            .as_str()
            .unwrap_or_else(|| panic!("{comp}: {detailed}"));
        assert!(
            ["healthy", "degraded", "down", "disabled"].contains(&s),
            "{comp}={s}"
        );
        assert!(detailed["components"][comp]["reason"].is_string());
    }
    assert_eq!(detailed["components"]["store"]["status"], "healthy");
}

#[tokio::test]
async fn metrics_and_perf_json() {
    let k = Keel::start_default().await;
    let c = client();
    for _ in 0..3 {
        c.get(k.url("/health")).send().await.unwrap();
    }
    let text = k.metrics().await;
    assert!(text.contains("keel_build_info{version=\""), "{text}");
    assert!(text.contains("keel_process_resident_memory_bytes"));
    assert!(text.contains("keel_process_open_fds"));
    assert!(text.contains("keel_process_start_time_seconds"));
    assert!(
        text.contains(
            "keel_http_requests_total{method=\"GET\",route=\"/health\",status=\"2xx\"} 3"
        ),
        "{text}"
    );
    assert!(text.contains("keel_http_request_duration_seconds_bucket{route=\"/health\""));
    let same = c
        .get(k.url("/health/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(same.contains("keel_build_info"));

    tokio::time::sleep(Duration::from_millis(1100)).await; // one sampler tick for RSS
    let perf: serde_json::Value = c
        .get(k.url("/api/metrics"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(perf["status"], "ok");
    assert!(perf["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(perf["performance"]["requests_total"].as_u64().unwrap() >= 5);
    assert!(
        perf["system"]["memory_mb"].as_f64().unwrap() > 1.0,
        "{perf}"
    );
    assert!(perf["system"]["cpu_percent"].is_number());
    assert!(
        perf["system"]["active_sessions"].as_i64().unwrap() >= 1,
        "this request is in flight"
    );
}

#[tokio::test]
async fn request_ids_gzip_and_json_errors() {
    let k = Keel::start_default().await;
    let c = client();
    // Request id: echoed when given, generated when not.
    let r = c
        .get(k.url("/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = c.get(k.url("/health")).send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"].len(), 36);

    // Large bodies are gzipped, small ones are not.
    let r = c
        .get(k.url("/metrics"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let bytes = r.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("keel_build_info"));
    let r = c
        .get(k.url("/health/live"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("content-encoding").is_none());

    // Unknown route and method: JSON errors.
    let r = c.get(k.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "not_found");
    let r = c.delete(k.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "method_not_allowed");
    assert_eq!(ADMIN_TOKEN.len(), 16);
}

#[tokio::test]
async fn second_instance_on_same_data_dir_is_refused() {
    let k = Keel::start_default().await;
    let (code, _, err) = run_cli(
        &["run", "--config", k.config_path.to_str().unwrap()],
        &[
            ("KEEL_CONTROL__LISTEN", "127.0.0.1:0"),
            ("KEEL_PROXY__LISTEN", "127.0.0.1:0"),
        ],
        k.dir.path(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("keel.redb") && err.contains("already open"),
        "{err}"
    );
}

#[tokio::test]
async fn corrupt_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let k = Keel::prepare(Spec::default(), dir);
    std::fs::create_dir_all(k.dir.path().join("data")).unwrap();
    std::fs::write(k.dir.path().join("data/keel.redb"), vec![7u8; 4096]).unwrap();
    let (code, _, err) = run_cli(
        &["run", "--config", k.config_path.to_str().unwrap()],
        &[],
        k.dir.path(),
    );
    // EX_DATAERR: an operator must act (see store_integrity.rs for the whole story).
    assert_eq!(code, 65, "{err}");
    assert!(err.contains("keel.redb"), "{err}");
}

#[tokio::test]
async fn run_with_bad_config_exits_78_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let k = Keel::prepare(
        Spec {
            control_extra: "bogus_key = 1".into(),
            ..Spec::default()
        },
        dir,
    );
    let (code, _, err) = run_cli(
        &["run", "--config", k.config_path.to_str().unwrap()],
        &[],
        k.dir.path(),
    );
    assert_eq!(code, 78);
    assert!(err.contains("control.bogus_key: unknown key"), "{err}");
    assert!(
        std::net::TcpListener::bind(k.control).is_ok(),
        "nothing was bound"
    );
}
