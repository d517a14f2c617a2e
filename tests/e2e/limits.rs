//! What a client can hold of keel, bounded (issue 14, part 4): slow and idle connections are
//! closed and counted on both listeners, each listener's connection cap refuses the extras
//! and recovers, failed authentication is rate-limited per address (a right token included
//! while the address is blocked), and the admin token is never weak — a short one is a
//! config error, a missing one is generated into the data dir.

use crate::harness::{client, run_cli, Keel, Spec, ADMIN_TOKEN};
use crate::upstream::Upstream;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Short read timeouts for both listeners.
const SHORT_TIMEOUTS: &str = "header_read_timeout = \"1s\"\nidle_timeout = \"2s\"\n";

/// Half a request head: a request line and one header, no blank line.
const HALF_HEAD: &[u8] = b"GET /health HTTP/1.1\r\nHost: keel\r\n";

/// The value of one series in a Prometheus exposition (0 when absent).
fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0.0)
}

fn closed(text: &str, listener: &str, reason: &str) -> f64 {
    series(
        text,
        &format!("keel_connections_closed_total{{listener=\"{listener}\",reason=\"{reason}\"}}"),
    )
}

/// Whether the server closes `conn` within `limit` (EOF or reset). Bounded: a connection
/// still open at `limit` answers false.
async fn closed_by_server(conn: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // An answer (e.g. the JSON 400 for a broken head) may come before the close.
            Ok(Ok(_)) => continue,
        }
    }
}

async fn slow_clients(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::new();
    for _ in 0..n {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(HALF_HEAD).await.expect("half a head");
        conns.push(c);
    }
    conns
}

/// Sends one complete keep-alive request and reads its answer; the connection stays open.
async fn one_request(addr: SocketAddr, path: &str) -> TcpStream {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: keel\r\nContent-Length: 0\r\n\r\n");
    c.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 "),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    c
}

#[tokio::test]
async fn slow_and_idle_clients_are_closed_and_counted_on_both_listeners() {
    let node = Upstream::start("node1").await;
    let k = Keel::start(Spec {
        control_extra: SHORT_TIMEOUTS.into(),
        proxy_extra: SHORT_TIMEOUTS.into(),
        extra: format!(
            "\n[[proxy.nodes]]\nname = \"node1\"\nbase_url = \"{}\"\n",
            node.url()
        ),
        ..Spec::default()
    })
    .await;
    let c = client();

    // Slowloris: ten connections per listener send half a head and go quiet.
    let mut control_slow = slow_clients(k.control, 10).await;
    let mut proxy_slow = slow_clients(k.proxy, 10).await;
    // Idle keep-alive: one complete request each, then silence.
    let mut control_idle = one_request(k.control, "/health").await;
    let mut proxy_idle = one_request(k.proxy, "/v1/models").await;

    // Meanwhile other clients are served normally.
    let health = c.get(k.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let proxied = c.get(k.proxy_url("/v1/models")).send().await.unwrap();
    assert_eq!(proxied.status(), 200);

    for conn in control_slow.iter_mut().chain(proxy_slow.iter_mut()) {
        assert!(
            closed_by_server(conn, Duration::from_secs(20)).await,
            "a half-sent head is closed after header_read_timeout"
        );
    }
    assert!(closed_by_server(&mut control_idle, Duration::from_secs(20)).await);
    assert!(closed_by_server(&mut proxy_idle, Duration::from_secs(20)).await);

    let m = k.metrics().await;
    assert!(closed(&m, "control", "header_timeout") >= 10.0, "{m}");
    assert!(closed(&m, "proxy", "header_timeout") >= 10.0, "{m}");
    assert!(closed(&m, "control", "idle_timeout") >= 1.0, "{m}");
    assert!(closed(&m, "proxy", "idle_timeout") >= 1.0, "{m}");
    // Still serving after all that.
    let proxied = c.get(k.proxy_url("/v1/models")).send().await.unwrap();
    assert_eq!(proxied.status(), 200);
}

/// Opens `n` connections that send nothing.
async fn idle_conns(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::new();
    for _ in 0..n {
        conns.push(TcpStream::connect(addr).await.expect("connect"));
    }
    conns
}

/// Counts the connections the server closes at once (within a short bounded wait).
async fn refused(conns: &mut [TcpStream]) -> usize {
    let mut n = 0;
    for c in conns.iter_mut() {
        if closed_by_server(c, Duration::from_secs(2)).await {
            n += 1;
        }
    }
    n
}

#[tokio::test]
async fn each_listener_refuses_connections_past_its_cap_and_recovers() {
    let caps = "header_read_timeout = \"60s\"\nidle_timeout = \"60s\"\nmax_connections = 4\n";
    let k = Keel::start(Spec {
        control_extra: caps.into(),
        proxy_extra: caps.into(),
        ..Spec::default()
    })
    .await;
    let c = client();

    // Proxy: four idle connections fill it; three more are closed at once.
    let mut held = idle_conns(k.proxy, 4).await;
    let mut extra = idle_conns(k.proxy, 3).await;
    assert_eq!(refused(&mut extra).await, 3, "the extras are refused");
    assert_eq!(refused(&mut held).await, 0, "the admitted stay open");
    let m = k.metrics().await;
    assert_eq!(closed(&m, "proxy", "limit"), 3.0, "{m}");
    assert_eq!(
        series(&m, "keel_connections_open{listener=\"proxy\"}"),
        4.0,
        "{m}"
    );
    drop(held);
    drop(extra);
    // Service resumes once they are gone (bounded wait for keel to see the closes).
    let mut answered = None;
    for _ in 0..100 {
        if let Ok(r) = c.get(k.proxy_url("/v1/models")).send().await {
            answered = Some(r.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // No node is configured: the complete JSON answer is keel's 503.
    assert_eq!(answered.map(|s| s.as_u16()), Some(503));

    // Control: the same (the harness's own readiness connection may still hold a place
    // for a moment, so at least the extras are refused).
    let mut conns = idle_conns(k.control, 7).await;
    assert!(refused(&mut conns).await >= 3);
    drop(conns);
    let mut ok = false;
    for _ in 0..100 {
        if let Ok(r) = c.get(k.url("/health")).send().await {
            ok = r.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the control listener serves again");
    let m = k.metrics().await;
    assert!(closed(&m, "control", "limit") >= 3.0, "{m}");
}

/// Sends `send` until it answers something other than 401 (bounded); returns the 401s seen
/// and the first other answer.
async fn until_not_401<F, Fut>(send: F) -> (usize, reqwest::Response)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    for refused in 0..500 {
        let r = send().await.expect("request");
        if r.status() != 401 {
            return (refused, r);
        }
    }
    panic!("never throttled after 500 wrong credentials");
}

async fn assert_throttled(r: reqwest::Response) -> u64 {
    assert_eq!(r.status(), 429);
    let wait: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!(wait >= 1);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limited", "{body}");
    assert!(body["error"]["message"].is_string());
    wait
}

#[tokio::test]
async fn failed_authentication_is_rate_limited_per_address() {
    let k = Keel::start(Spec {
        control_extra: "auth_failures_per_minute = 60\n".into(),
        proxy_extra: "auth_failures_per_minute = 60\nclient_keys = [\"sk-right-key-0001\"]\n"
            .into(),
        extra: "[ledger]\nworker_token = \"worker-token-0001\"\n".into(),
        ..Spec::default()
    })
    .await;
    let c = client();
    let nodes = k.url("/admin/api/nodes");

    // Control: wrong admin tokens are 401 until the address's budget is spent, then 429.
    let (refused, r) =
        until_not_401(|| c.get(&nodes).bearer_auth("wrong-token-wrong-token").send()).await;
    assert!(refused >= 60, "the budget is 60 failures: {refused}");
    let wait = assert_throttled(r).await;
    // While blocked, the right token gets 429 too (else 429 vs 200 would tell a guesser
    // when it guessed right), and so do the login and a worker route.
    assert_throttled(k.admin(c.get(&nodes)).send().await.unwrap()).await;
    let login = c
        .post(k.url("/api/v1/session"))
        .json(&serde_json::json!({"token": ADMIN_TOKEN}))
        .send()
        .await
        .unwrap();
    assert_throttled(login).await;
    let worker = c
        .post(k.url("/api/v1/locks/gpu_lock:0/acquire"))
        .bearer_auth("worker-token-0001")
        .json(&serde_json::json!({"holder": "w1", "ttl_seconds": 10}))
        .send()
        .await
        .unwrap();
    assert_throttled(worker).await;
    // Requests without a credential are not affected.
    assert_eq!(c.get(k.url("/health")).send().await.unwrap().status(), 200);
    // The budget refills: after Retry-After the right token works again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(k.admin(c.get(&nodes)).send().await.unwrap().status(), 200);

    // Proxy: the same for wrong client keys; a request without a key stays a plain 401.
    let models = k.proxy_url("/v1/models");
    let (refused, r) =
        until_not_401(|| c.get(&models).header("x-api-key", "sk-wrong").send()).await;
    assert!(refused >= 60, "{refused}");
    assert_throttled(r).await;
    let right = c
        .get(&models)
        .header("x-api-key", "sk-right-key-0001")
        .send()
        .await
        .unwrap();
    assert_throttled(right).await;
    assert_eq!(c.get(&models).send().await.unwrap().status(), 401);

    let m = k.metrics().await;
    for listener in ["control", "proxy"] {
        let failures = series(
            &m,
            &format!("keel_auth_failures_total{{listener=\"{listener}\"}}"),
        );
        let throttled = series(
            &m,
            &format!("keel_auth_throttled_total{{listener=\"{listener}\"}}"),
        );
        assert!(failures >= 60.0, "{listener}: {m}");
        assert!(throttled >= 2.0, "{listener}: {m}");
    }
}

#[test]
fn a_short_admin_token_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("k.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}/data\"\n[control]\nadmin_token = \"change-me\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let (code, _, err) = run_cli(
        &["validate", "--config", cfg.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 78, "{err}");
    assert!(
        err.lines()
            .any(|l| l == "control.admin_token: must be at least 16 characters long (it has 9)"),
        "{err}"
    );
}

#[tokio::test]
async fn without_a_configured_token_keel_generates_one_and_keeps_it() {
    use std::os::unix::fs::PermissionsExt;
    let mut k = Keel::start(Spec {
        no_admin_token: true,
        ..Spec::default()
    })
    .await;
    let path = k.dir.path().join("data").join("admin.token");
    let mode = std::fs::metadata(&path)
        .expect("admin.token created")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let token = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert!(token.len() >= 16);
    let c = client();
    let nodes = k.url("/admin/api/nodes");
    let ok = c.get(&nodes).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let wrong = c.get(&nodes).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let log = k.log();
    assert!(log.contains(&path.display().to_string()), "{log}");
    assert!(!log.contains(&token), "the token itself is never logged");

    // A restart reuses the file.
    k.stop().await;
    k.spawn();
    k.wait_ready().await;
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), token);
    // (New ports after a restart: the harness binds port 0.)
    let again = c
        .get(k.url("/admin/api/nodes"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
}
