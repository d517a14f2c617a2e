//! Starts the real `keel` binary with a generated config on free ports and waits for
//! `/health/ready`. Logs (stderr) go to a file in the instance's temp dir for assertions.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// A port that was free a moment ago (bound to :0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

pub fn keel_bin() -> &'static str {
    env!("CARGO_BIN_EXE_keel")
}

/// Config pieces for one instance; `extra` is appended after the generated sections.
#[derive(Default, Clone)]
pub struct Spec {
    pub control_extra: String,
    pub proxy_extra: String,
    pub extra: String,
    pub env: Vec<(String, String)>,
    /// Leave `control.admin_token` out: keel generates one into `data_dir/admin.token`.
    pub no_admin_token: bool,
    /// The control listener serves TLS (`[control.tls]` in `control_extra`) with a
    /// certificate this CA (PEM) signed: [`Keel::url`] is `https://` and readiness is
    /// checked through a client that trusts it.
    pub control_ca_pem: Option<Vec<u8>>,
}

pub struct Keel {
    pub child: Option<Child>,
    pub control: SocketAddr,
    pub proxy: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub spec: Spec,
}

impl Keel {
    /// Starts keel with the given spec and waits until it is ready. Both listeners bind
    /// port 0; the ports keel got are read back from `data_dir/keel.run.json`, so parallel
    /// tests never race for a port.
    pub async fn start(spec: Spec) -> Keel {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut k = Keel::prepare(spec, dir);
        k.spawn();
        k.wait_ready().await;
        k
    }

    pub async fn start_default() -> Keel {
        Keel::start(Spec::default()).await
    }

    /// Writes the config without starting keel; `control` and `proxy` are known once it is
    /// ready (port 0 until then).
    pub fn prepare(spec: Spec, dir: tempfile::TempDir) -> Keel {
        let control: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let proxy: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let config_path = dir.path().join("keel.toml");
        let k = Keel {
            child: None,
            control,
            proxy,
            config_path,
            dir,
            spec,
        };
        k.write_config();
        k
    }

    fn write_config(&self) {
        let data_dir = self.dir.path().join("data");
        let token = if self.spec.no_admin_token {
            String::new()
        } else {
            format!("admin_token = \"{ADMIN_TOKEN}\"\n")
        };
        // No drain delay: tests that stop keel should not wait for load balancers; the drain
        // test sets one through KEEL_DRAIN_DELAY.
        let text = format!(
            "data_dir = {data:?}\nshutdown_grace = \"10s\"\ndrain_delay = \"0s\"\n\n[control]\nlisten = \"{c}\"\n{token}{ce}\n\n[proxy]\nlisten = \"{p}\"\n{pe}\n\n[log]\nformat = \"json\"\nlevel = \"info\"\n\n{extra}\n",
            data = data_dir.display().to_string(),
            c = self.control,
            ce = self.spec.control_extra,
            p = self.proxy,
            pe = self.spec.proxy_extra,
            extra = self.spec.extra,
        );
        std::fs::write(&self.config_path, text).expect("write config");
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("keel.log")
    }

    /// Starts the process (again, after a stop: same ports, same data dir).
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let mut cmd = Command::new(keel_bin());
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config_path)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null());
        for (k, v) in &self.spec.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn keel"));
    }

    pub async fn wait_ready(&mut self) {
        if let Err(log) = self.ready().await {
            panic!("keel exited early; log:\n{log}");
        }
    }

    /// Waits for `/health/ready`; `Err(log)` when the process exited first.
    async fn ready(&mut self) -> Result<(), String> {
        let client = self.control_client();
        let pid = self.child.as_ref().map(|c| c.id());
        let mut bound = false;
        for _ in 0..600 {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("(exit status {status})\n{}", self.log()));
                }
            }
            if !bound {
                // The ports this start got (a file from an earlier, killed keel names
                // another pid).
                match keel::runfile::read(&self.dir.path().join("data")) {
                    Some(info) if Some(info.pid) == pid => {
                        self.control = info.control;
                        self.proxy = info.proxy;
                        bound = true;
                    }
                    _ => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
            }
            if let Ok(r) = client.get(self.url("/health/ready")).send().await {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("keel not ready after 60 s; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = match self.spec.control_ca_pem {
            Some(_) => "https",
            None => "http",
        };
        format!("{scheme}://{}{}", self.control, path)
    }

    /// A client for the control listener: [`client`], trusting `control_ca_pem` if set.
    pub fn control_client(&self) -> reqwest::Client {
        let Some(pem) = &self.spec.control_ca_pem else {
            return client();
        };
        let ca = reqwest::Certificate::from_pem(pem).expect("control CA");
        reqwest::Client::builder()
            .no_gzip()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .build()
            .expect("client")
    }

    pub fn proxy_url(&self, path: &str) -> String {
        format!("http://{}{}", self.proxy, path)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with a pid we spawned.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("keel did not exit in time; log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM and wait for a clean exit (code 0).
    pub async fn stop(&mut self) {
        self.signal(libc::SIGTERM);
        let code = self.wait_exit(Duration::from_secs(30)).await;
        assert_eq!(code, Some(0), "keel exit code; log:\n{}", self.log());
    }

    /// SIGKILL: a crash, for durability tests.
    pub async fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.wait_exit(Duration::from_secs(10)).await;
    }

    /// The Prometheus exposition of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        let resp = client().get(self.url("/metrics")).send().await;
        resp.expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// `GET path` on the control listener with the admin token, as JSON.
    pub async fn admin_get(&self, path: &str) -> serde_json::Value {
        let resp = self.admin(client().get(self.url(path))).send().await;
        resp.expect("admin GET")
            .json()
            .await
            .expect("a JSON answer")
    }

    /// [`Keel::admin_get`] every 50 ms until `done` holds of the answer, for at most 5 s (for
    /// figures the executor process reports a few times a second); the last answer.
    pub async fn admin_get_until(
        &self,
        path: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        for _ in 0..100 {
            last = self.admin_get(path).await;
            if done(&last) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        last
    }

    pub fn admin(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        rb.bearer_auth(ADMIN_TOKEN)
    }
}

impl Drop for Keel {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `keel <args>` to completion: (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> (i32, String, String) {
    let mut cmd = Command::new(keel_bin());
    cmd.args(args).current_dir(cwd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run keel");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `keel validate` of a config file in `dir` made of `data_dir = "<dir>/data"` and `rest`:
/// (exit code, stdout, stderr).
pub fn validate_config(dir: &Path, rest: &str) -> (i32, String, String) {
    let cfg = dir.join("k.toml");
    let text = format!("data_dir = \"{}/data\"\n{rest}", dir.display());
    std::fs::write(&cfg, text).expect("write config");
    let path = cfg.to_str().expect("utf-8 temp path");
    run_cli(&["validate", "--config", path], &[], dir)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("client")
}

/// The value of one series (`name{labels}` exactly as exposed) in a Prometheus exposition,
/// 0 when absent (counters that never moved are not exposed).
pub fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0.0)
}
