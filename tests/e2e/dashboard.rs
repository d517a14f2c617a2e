//! The dashboard surface over real sockets: the embedded UI, browser sessions, the SSE
//! stream (snapshots, resume by `Last-Event-ID`, reset, shutdown with a client attached),
//! alerts, the shipped Prometheus/Grafana files, and the browser tests in `web/tests/`.

use crate::harness::{client, keel_bin, Keel, Spec, ADMIN_TOKEN};
use keel::telemetry::catalog;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// Reads SSE messages from a streaming response until `stop` returns true for one.
async fn read_sse(
    resp: &mut reqwest::Response,
    limit: Duration,
    mut stop: impl FnMut(&str) -> bool,
) -> Vec<String> {
    let mut buf = String::new();
    let mut messages = Vec::new();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await;
        let Ok(Ok(Some(bytes))) = chunk else { break };
        buf.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = buf.find("\n\n") {
            let msg = buf[..end].to_string();
            buf.drain(..end + 2);
            let done = stop(&msg);
            messages.push(msg);
            if done {
                return messages;
            }
        }
    }
    panic!("stream ended or timed out; got {messages:?}");
}

fn field<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
}

#[tokio::test]
async fn ui_is_embedded_and_sessions_guard_the_data() {
    let k = Keel::start_default().await;
    let c = client();
    let index = c.get(k.url("/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    let csp = index.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(index.text().await.unwrap().contains("/app/main.js"));
    let js = c
        .get(k.url("/vendor/preact.module.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    let etag = js.headers()["etag"].clone();
    let again = c
        .get(k.url("/vendor/preact.module.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let missing = c.get(k.url("/app/nope.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    // No credentials: 401 JSON; bad login bodies: 4xx JSON.
    let r = c.get(k.url("/api/v1/overview")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(k.url("/api/v1/session"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_json");
    let r = c
        .post(k.url("/api/v1/session"))
        .json(&serde_json::json!({"token": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = c
        .post(k.url("/api/v1/session"))
        .json(&serde_json::json!({"token": ADMIN_TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["csrf_token"].as_str().is_some_and(|t| t.len() >= 32));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    let o: serde_json::Value = c
        .get(k.url("/api/v1/overview"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(o["health"]["store"]["status"], "healthy");
    assert!(o["history"].is_array() && o["snapshot"].is_object(), "{o}");
    let s: serde_json::Value = c
        .get(k.url("/api/v1/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["csrf_token"], body["csrf_token"]);

    let r = c
        .delete(k.url("/api/v1/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(k.url("/api/v1/overview"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "logged out");
}

#[tokio::test]
async fn event_stream_snapshots_alerts_resume_and_shutdown() {
    // RSS above 1 byte: the memory alert fires at the first evaluation.
    let mut k = Keel::start(Spec {
        extra: "[alerts]\ninterval = \"1s\"\nrss_bytes = 1\n".into(),
        ..Spec::default()
    })
    .await;
    let c = client();
    // `after=0` replays the ring: the alert may fire (at the first evaluation, right after
    // startup) before this connection exists, and a fresh stream only carries newer events.
    let mut resp = k
        .admin(c.get(k.url("/api/v1/events?after=0")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut fired_id = 0u64;
    let mut snapshots = 0;
    let got = read_sse(&mut resp, Duration::from_secs(20), |m| {
        if field(m, "event") == Some("snapshot") {
            snapshots += 1;
        }
        if m.contains("alert.firing") {
            fired_id = field(m, "id").and_then(|i| i.parse().ok()).unwrap_or(0);
        }
        fired_id > 0 && snapshots >= 2
    })
    .await;
    assert_eq!(field(&got[0], "event"), Some("hello"), "{got:?}");
    assert!(fired_id > 0);

    let alerts: serde_json::Value = k.admin_get("/api/v1/alerts").await;
    let firing = alerts["alerts"].as_array().unwrap();
    assert!(
        firing
            .iter()
            .any(|a| a["alert"] == "memory_rss" && a["threshold"] == 1.0 && a["since"].is_string()),
        "{alerts}"
    );
    assert_eq!(alerts["rules"].as_array().unwrap().len(), 8);
    let metrics = k.metrics().await;
    assert!(metrics.contains("keel_alert_firing{alert=\"memory_rss\"} 1"));

    // Resume: the event after Last-Event-ID comes first, replayed from the ring.
    let mut resumed = k
        .admin(c.get(k.url("/api/v1/events")))
        .header("last-event-id", (fired_id - 1).to_string())
        .send()
        .await
        .unwrap();
    let got = read_sse(&mut resumed, Duration::from_secs(10), |m| {
        field(m, "id").is_some()
    })
    .await;
    assert_eq!(
        got.last().and_then(|m| field(m, "id")),
        Some(fired_id.to_string().as_str())
    );
    // An id this process never issued (a restart): reset.
    let mut reset = k
        .admin(c.get(k.url("/api/v1/events")))
        .header("last-event-id", "999999")
        .send()
        .await
        .unwrap();
    read_sse(&mut reset, Duration::from_secs(10), |m| {
        field(m, "event") == Some("reset")
    })
    .await;
    let bad = k
        .admin(c.get(k.url("/api/v1/events")))
        .header("last-event-id", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // An open stream does not hold up shutdown: keel exits before the harness's
    // shutdown_grace (10 s) would have forced it.
    let started = Instant::now();
    k.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(resp);
}

/// Metric names in a PromQL/JSON text (histogram series folded to their family).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("keel_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let before_ok =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if before_ok {
            let name = &text[start..end];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            names.insert(family.to_owned());
        }
        i = end.max(start + 1);
    }
    // `keel_alert` is a label of the rules file, not a metric.
    names.remove("keel_alert");
    names
}

/// Runs `promtool` with `args` in `dir`; `None` when promtool is not installed (Debian
/// `prometheus`, which `.ci/run` installs).
fn promtool(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    match std::process::Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "promtool {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            Some(out)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("promtool: {e}"),
    }
}

/// The names after `key` in a YAML text (`- alert: X`, `alertname: X`).
fn yaml_values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.trim_start().trim_start_matches("- ").strip_prefix(key))
        .map(str::trim)
        .collect()
}

/// The shipped alert rules are unit-tested (`promtool test rules`: each alert fires on one
/// keel, not on another at or under its threshold, with the `instance` label) and the
/// fleet's scrape config (file-based discovery) is valid.
#[test]
fn ops_prometheus_rules_are_unit_tested_and_scrape_config_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/prometheus");
    let rules = std::fs::read_to_string(dir.join("keel-alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("keel-alerts.test.yml")).unwrap();
    let scrape = std::fs::read_to_string(dir.join("prometheus.yml")).unwrap();

    // Every shipped alert has a test, and every expected alert names its instance.
    let alerts = yaml_values(&rules, "alert:");
    assert_eq!(alerts.len(), keel::alerts::rules::RULES.len(), "{alerts:?}");
    let tested: BTreeSet<&str> = yaml_values(&tests, "alertname:").into_iter().collect();
    for a in &alerts {
        assert!(
            tested.contains(a),
            "{a} has no test in keel-alerts.test.yml"
        );
    }
    let expected = tests.lines().filter(|l| l.contains("exp_labels:"));
    assert!(expected.clone().count() >= alerts.len());
    for l in expected {
        assert!(
            l.contains("instance:"),
            "an expected alert without instance: {l}"
        );
    }

    // The discovery files the scrape config reads: a list of target groups.
    assert!(scrape.contains("file_sd_configs:") && scrape.contains("targets/*.json"));
    assert!(
        scrape.contains("- keel-alerts.yml"),
        "rules loaded by the config"
    );
    let targets: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("targets/keel.json")).unwrap())
            .expect("targets/keel.json");
    let groups = targets.as_array().expect("a list of target groups");
    assert!(!groups.is_empty());
    for g in groups {
        let list = g["targets"].as_array().expect("targets");
        assert!(
            list.iter()
                .all(|t| t.as_str().is_some_and(|t| t.contains(':'))),
            "{g}"
        );
    }

    let Some(out) = promtool(&dir, &["test", "rules", "keel-alerts.test.yml"]) else {
        eprintln!(
            "promtool not installed (Debian package prometheus): rule unit tests and the \
             scrape-config check skipped; structure checked only"
        );
        return;
    };
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"));
    promtool(&dir, &["check", "rules", "keel-alerts.yml"]);
    // Offline: checks the YAML, the rule files it loads and the discovery files' contents.
    promtool(&dir, &["check", "config", "prometheus.yml"]);
}

/// Every Grafana panel is well formed: unique ids, inside the 24-column grid, not
/// overlapping; rows carry no queries, other panels each have distinct `refId`s.
fn check_grafana_layout(panels: &[serde_json::Value]) {
    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(u64, u64, u64, u64, &str)> = Vec::new();
    for p in panels {
        let title = p["title"].as_str().expect("title");
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "duplicate id: {p}"
        );
        let g = &p["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| g[k].as_u64().expect("gridPos"));
        assert!(w > 0 && h > 0 && x + w <= 24, "{title}: {g}");
        for (bx, by, bw, bh, other) in &boxes {
            let apart = x + w <= *bx || bx + bw <= x || y + h <= *by || by + bh <= y;
            assert!(apart, "{title} overlaps {other}");
        }
        boxes.push((x, y, w, h, title));
        if p["type"] == "row" {
            assert!(p.get("targets").is_none() && h == 1 && w == 24, "{p}");
            continue;
        }
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}");
        let refs: BTreeSet<&str> = targets.iter().filter_map(|t| t["refId"].as_str()).collect();
        assert_eq!(refs.len(), targets.len(), "{title}: refIds");
        assert!(targets.iter().all(|t| t["expr"].is_string()), "{title}");
    }
}

/// The panels of the row titled `prefix…`, up to the next row.
fn grafana_row<'a>(panels: &'a [serde_json::Value], prefix: &str) -> &'a [serde_json::Value] {
    let start = panels
        .iter()
        .position(|p| {
            p["type"] == "row" && p["title"].as_str().is_some_and(|t| t.starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no row {prefix}"))
        + 1;
    let len = panels[start..]
        .iter()
        .position(|p| p["type"] == "row")
        .unwrap_or(panels.len() - start);
    &panels[start..start + len]
}

#[tokio::test]
async fn ops_files_are_valid_and_use_live_metric_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules_path = root.join("ops/prometheus/keel-alerts.yml");
    let rules = std::fs::read_to_string(&rules_path).unwrap();
    let grafana = std::fs::read_to_string(root.join("ops/grafana/keel-dashboard.json")).unwrap();

    if promtool(root, &["check", "rules", "ops/prometheus/keel-alerts.yml"]).is_none() {
        // Without promtool: the structure keel's rules need, checked by hand.
        assert!(rules.contains("groups:") && rules.contains("rules:"));
        assert_eq!(
            rules.matches("- alert:").count(),
            rules.matches("expr:").count()
        );
    }
    // Every rule keel evaluates is shipped for Prometheus, under its own name.
    for r in &keel::alerts::rules::RULES {
        assert!(
            rules.contains(&format!("keel_alert: {} ", r.name))
                || rules.contains(&format!("keel_alert: {}}}", r.name)),
            "rule {} missing from keel-alerts.yml",
            r.name
        );
    }
    let dash: serde_json::Value = serde_json::from_str(&grafana).expect("grafana JSON");
    let panels = dash["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    check_grafana_layout(panels);
    // The fleet row: one figure per keel for each thing an operator of many boxes scans
    // for, every query keyed by `instance`.
    let fleet = grafana_row(panels, "Fleet");
    let fleet_exprs: Vec<&str> = fleet
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    for e in &fleet_exprs {
        assert!(e.contains("by (instance)") || e.starts_with("up{"), "{e}");
    }
    for name in [
        catalog::PROXY_NODES_AVAILABLE,
        catalog::BREAKER_STATE,
        catalog::GPU_LOCK_HELD,
        catalog::GPU_UTILIZATION_RATIO,
        catalog::EXECUTOR_POOL_ISOLATES,
        catalog::EXECUTOR_RESTARTS_TOTAL,
    ] {
        assert!(
            fleet_exprs.iter().any(|e| e.contains(name)),
            "fleet row lacks {name}"
        );
    }
    // The per-keel row repeats for each selected instance.
    let per_keel = panels
        .iter()
        .find(|p| p["type"] == "row" && p["repeat"] == "instance")
        .expect("a row repeated by instance");
    assert!(!grafana_row(panels, per_keel["title"].as_str().unwrap()).is_empty());

    // Each name is in the catalog (the one list), and present in a live keel's /metrics
    // unless its component is disabled in this build.
    let mut used = metric_names(&rules);
    used.extend(metric_names(&grafana));
    used.remove("keel_build_info");
    let k = Keel::start_default().await;
    let c = client();
    let exposition = k.metrics().await;
    let health: serde_json::Value = c
        .get(k.url("/health/detailed"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for name in &used {
        let Some((_, component)) = catalog::REFERENCED.iter().find(|(n, _)| n == name) else {
            panic!("{name} is used by ops/ but not listed in telemetry::catalog::REFERENCED");
        };
        let live = exposition.contains(&format!("# TYPE {name} "));
        if *component == "core" {
            assert!(live, "{name} is not in /metrics");
        } else if health["components"][component]["status"] != "disabled" {
            // A labelled family appears in /metrics only once it has a series (a node, a
            // lock); an idle keel may lack it, but some module must write it.
            assert!(
                live || written_outside_catalog(root, name),
                "{name} ({component}) is neither in /metrics nor written by any module"
            );
        }
    }
}

/// Whether a source file other than the catalog uses the catalog's constant for `name` (the
/// module that writes it: metric names are written only in the catalog).
fn written_outside_catalog(root: &Path, name: &str) -> bool {
    let catalog = std::fs::read_to_string(root.join("src/telemetry/catalog.rs")).unwrap();
    let Some(at) = catalog.find(&format!("\"{name}\"")) else {
        return false;
    };
    let Some(ident) = catalog[..at]
        .rsplit("pub const ")
        .next()
        .and_then(|decl| decl.split(':').next())
        .map(str::trim)
    else {
        return false;
    };
    let names_ident = |text: &str| {
        text.match_indices(ident).any(|(i, _)| {
            let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
            !text[..i].ends_with(word) && !text[i + ident.len()..].starts_with(word)
        })
    };
    fn walk(dir: &Path, uses: &dyn Fn(&str) -> bool) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            let p = e.path();
            if p.is_dir() {
                walk(&p, uses)
            } else {
                p.extension().is_some_and(|x| x == "rs")
                    && !p.ends_with("telemetry/catalog.rs")
                    && std::fs::read_to_string(&p).is_ok_and(|t| uses(&t))
            }
        })
    }
    walk(&root.join("src"), &names_ident)
}

/// Runs `web/tests` (playwright-core + Debian chromium) against this build's keel. Needs
/// `npm ci` in web/tests and /usr/bin/chromium; without them it is skipped with a note,
/// unless DASHBOARD_BROWSER_TESTS=1 (CI) makes their absence a failure.
#[test]
fn browser_dashboard() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/tests");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = dir.join("node_modules/playwright-core").exists() && Path::new(&chromium).exists();
    let required = std::env::var("DASHBOARD_BROWSER_TESTS").is_ok_and(|v| v == "1");
    if !ready {
        assert!(
            !required,
            "DASHBOARD_BROWSER_TESTS=1 but web/tests/node_modules or {chromium} is missing"
        );
        eprintln!(
            "browser_dashboard skipped: run `npm ci` in web/tests and install Debian's chromium"
        );
        return;
    }
    let out = std::process::Command::new("node")
        .args(["--test", "--test-concurrency=1", "dashboard.test.mjs"])
        .current_dir(&dir)
        .env("DASHBOARD_KEEL_BIN", keel_bin())
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "browser tests failed:\n{text}");
    eprintln!(
        "{}",
        text.lines()
            .filter(|l| l.starts_with("ok ") || l.starts_with("# "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
