//! Live reload: SIGHUP (`systemctl reload keel`, `keel reload`) re-reads the config file
//! and puts what can change without a restart in force.
//!
//! The new file is loaded and validated completely first; an invalid one changes nothing
//! (every error is logged with its key path, keel keeps serving with what it has). A valid
//! one is applied part by part — the gateway ([`crate::proxy::Gateway::apply`]: nodes,
//! retry, breaker, prewarm, shift, queue, timeouts, client keys), the access log, the log
//! level, the alert thresholds, the executor's access tokens — and what it changes that
//! only a restart can apply (listen addresses, `data_dir`, thread counts, …) is named.
//!
//! Each attempt has a generation number and leaves a [`ReloadReport`]: in the log, as a
//! `config.reloaded` / `config.reload_failed` event, in `keel_config_reloads_total{result}`,
//! in the `config` section of `/api/metrics`, and in `data_dir/keel.reload.json`, where
//! `keel reload` ([`request`]) waits for it.

use crate::config::{Config, ConfigError, LoadError};
use crate::telemetry::metrics::Built;
use crate::telemetry::{catalog, Event, Level, Telemetry};
use prometheus::{IntCounterVec, IntGauge, Opts};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The report's file name inside the data dir.
pub const RESULT_FILE: &str = "keel.reload.json";

/// Key paths a reload applies live; a changed key under any other path needs a restart.
/// `alerts` is live except the three in [`ALERTS_AT_START`].
const LIVE: &[&str] = &[
    "proxy.nodes",
    "proxy.client_keys",
    "proxy.retry",
    "proxy.breaker",
    "proxy.prewarm",
    "proxy.shift",
    "proxy.queue",
    "proxy.timeouts",
    "proxy.header_read_timeout",
    "proxy.idle_timeout",
    "log.level",
    "log.access",
    "log.access_sample",
    "executor.access_tokens",
    "executor.rate_limit",
    "alerts",
    // The files of a listener that serves TLS (turning TLS on or off changes `proxy.tls`
    // itself, which needs a restart).
    "proxy.tls.cert",
    "proxy.tls.key",
    "proxy.tls.client_ca",
    "control.tls.cert",
    "control.tls.key",
    "control.tls.client_ca",
];

/// Alert settings that shape the running evaluation task: only read at start.
const ALERTS_AT_START: &[&str] = &[
    "alerts.enabled",
    "alerts.interval",
    "alerts.lock_held_window",
];

/// How one reload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Valid and applied (`needs_restart` may still name keys it could not apply).
    Ok,
    /// Refused: nothing changed.
    Invalid,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Invalid => "invalid",
        }
    }
}

/// The result of one reload attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// The keel process that reloaded (a report left by an earlier process is not news).
    pub pid: u32,
    /// 1 for this process's first reload, then counting.
    pub generation: u64,
    /// RFC 3339, UTC.
    pub at: String,
    pub config: PathBuf,
    pub result: Outcome,
    /// Why it was refused, one `<key path>: <message>` each.
    pub errors: Vec<String>,
    /// What changed live: key paths, then one line per node change.
    pub applied: Vec<String>,
    /// Changed keys that only a restart puts in force (this file against the one keel
    /// started with, so they stay listed until the restart).
    pub needs_restart: Vec<String>,
}

/// `config.reloaded`.
#[derive(Serialize)]
struct Reloaded<'a>(&'a ReloadReport);

impl Event for Reloaded<'_> {
    fn kind(&self) -> &'static str {
        "config.reloaded"
    }
    fn component(&self) -> &'static str {
        "config"
    }
    fn message(&self) -> String {
        let r = self.0;
        let applied = if r.applied.is_empty() {
            "nothing changed".to_string()
        } else {
            r.applied.join("; ")
        };
        let restart = if r.needs_restart.is_empty() {
            String::new()
        } else {
            format!("; needs a restart to apply: {}", r.needs_restart.join(", "))
        };
        format!(
            "configuration reloaded (generation {}): {applied}{restart}",
            r.generation
        )
    }
    fn level(&self) -> Level {
        if self.0.needs_restart.is_empty() {
            Level::Info
        } else {
            Level::Warn
        }
    }
}

/// `config.reload_failed`.
#[derive(Serialize)]
struct ReloadFailed<'a>(&'a ReloadReport);

impl Event for ReloadFailed<'_> {
    fn kind(&self) -> &'static str {
        "config.reload_failed"
    }
    fn component(&self) -> &'static str {
        "config"
    }
    fn message(&self) -> String {
        format!(
            "configuration reload refused (generation {}), nothing changed: {} error(s): {}",
            self.0.generation,
            self.0.errors.len(),
            self.0.errors.join("; ")
        )
    }
    fn level(&self) -> Level {
        Level::Error
    }
}

/// The executor API's parent-side state a reload reaches: access tokens, rate limits.
pub type ExecutorApiState = (
    Arc<crate::executor::tokens::TokenStore>,
    Arc<crate::api::ratelimit::RateLimits>,
);

/// The running pieces a reload reaches, and the configs it compares against.
pub struct Reloader {
    telemetry: Telemetry,
    gateway: Arc<crate::proxy::Gateway>,
    alerts: Arc<crate::alerts::AlertEngine>,
    /// The executor API's access tokens and rate limits (when the executor runs).
    executor: Option<ExecutorApiState>,
    /// The certificates both listeners serve.
    tls: crate::tls::ListenerTls,
    /// The config keel started with: what needs a restart is measured against it.
    started: Config,
    /// The config in force (its live parts); reloads are serialized by this lock.
    current: tokio::sync::Mutex<Config>,
    last: std::sync::Mutex<Option<ReloadReport>>,
    reloads: IntCounterVec,
    last_ok: IntGauge,
}

impl Reloader {
    pub fn new(
        config: &Config,
        telemetry: Telemetry,
        gateway: Arc<crate::proxy::Gateway>,
        alerts: Arc<crate::alerts::AlertEngine>,
        executor: Option<ExecutorApiState>,
        tls: crate::tls::ListenerTls,
    ) -> Arc<Self> {
        let reloads = IntCounterVec::new(
            Opts::new(
                catalog::CONFIG_RELOADS_TOTAL,
                "Configuration reloads by result (ok, invalid)",
            ),
            &["result"],
        )
        .built();
        for o in [Outcome::Ok, Outcome::Invalid] {
            reloads.with_label_values(&[o.label()]);
        }
        let last_ok = IntGauge::new(
            catalog::CONFIG_LAST_RELOAD_SUCCESSFUL,
            "1 unless the last configuration reload was refused",
        )
        .built();
        last_ok.set(1);
        telemetry.metrics.register(reloads.clone());
        telemetry.metrics.register(last_ok.clone());
        let reloader = Arc::new(Reloader {
            telemetry: telemetry.clone(),
            gateway,
            alerts,
            executor,
            tls,
            started: config.clone(),
            current: tokio::sync::Mutex::new(config.clone()),
            last: std::sync::Mutex::new(None),
            reloads,
            last_ok,
        });
        let weak = Arc::downgrade(&reloader);
        telemetry.sections.add("config", move || {
            weak.upgrade().map_or(Value::Null, |r| {
                serde_json::json!({ "last_reload": *r.last.lock().unwrap_or_else(|p| p.into_inner()) })
            })
        });
        reloader
    }

    /// The last reload's report, if there was one.
    pub fn last(&self) -> Option<ReloadReport> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-reads `path`, validates it and applies it, or refuses it whole. Never fails:
    /// the report says what happened (and is logged, counted and written to the data dir).
    pub async fn reload(&self, path: &Path) -> ReloadReport {
        let mut current = self.current.lock().await;
        let generation = self.last().map_or(1, |r| r.generation + 1);
        tracing::info!(config = %path.display(), generation, "reloading the configuration");
        let mut report = ReloadReport {
            pid: std::process::id(),
            generation,
            at: crate::clock::now_rfc3339(),
            config: path.to_path_buf(),
            result: Outcome::Ok,
            errors: Vec::new(),
            applied: Vec::new(),
            needs_restart: Vec::new(),
        };
        match crate::config::load(path) {
            Err(LoadError(errors)) => refuse(&mut report, &errors),
            Ok(new) => match self.apply(&current, &new).await {
                Ok(applied) => {
                    report.applied = applied;
                    report.needs_restart = needs_restart(&self.started, &new);
                    *current = new;
                }
                Err(message) => refuse(
                    &mut report,
                    &[ConfigError {
                        path: String::new(),
                        message,
                    }],
                ),
            },
        }
        self.finish(&report);
        report
    }

    /// Applies the live parts of `new`. The two parts that can still refuse go first and
    /// then change nothing: the certificates are read and checked (not yet served), then
    /// the gateway applies (an unreadable `key_file`, a store error); only then are the new
    /// certificates swapped in. The parts after them cannot fail.
    async fn apply(&self, current: &Config, new: &Config) -> Result<Vec<String>, String> {
        let certificates = self.tls.prepare(new).map_err(|e| e.to_string())?;
        let node_changes = self
            .gateway
            .apply(&new.proxy)
            .await
            .map_err(|e| e.to_string())?;
        certificates.commit();
        self.gateway.access.apply(&new.log);
        if let Err(e) = crate::telemetry::logging::apply(&new.log) {
            tracing::warn!(error = %e, "log level not changed");
        }
        self.alerts.reconfigure(&new.alerts);
        if let Some((tokens, limits)) = &self.executor {
            if current.executor.rate_limit != new.executor.rate_limit {
                limits.reconfigure(&new.executor.rate_limit);
            }
            let fixed: Vec<String> = new
                .executor
                .access_tokens
                .iter()
                .map(|t| t.expose().to_string())
                .collect();
            tokens.set_fixed(&fixed);
        }
        let mut applied: Vec<String> = changed_keys(current, new)
            .into_iter()
            .filter(|k| is_live(k))
            .collect();
        applied.extend(node_changes);
        Ok(applied)
    }

    /// Logs, counts, publishes and writes the report.
    fn finish(&self, report: &ReloadReport) {
        self.reloads
            .with_label_values(&[report.result.label()])
            .inc();
        self.last_ok.set(i64::from(report.result == Outcome::Ok));
        match report.result {
            Outcome::Ok => {
                self.telemetry.events.emit(&Reloaded(report));
                if !report.needs_restart.is_empty() {
                    tracing::warn!(
                        keys = %report.needs_restart.join(", "),
                        "configuration changes that need a restart (keel keeps the values it started with)"
                    );
                }
            }
            Outcome::Invalid => {
                for e in &report.errors {
                    tracing::error!(error = %e, "configuration reload: invalid");
                }
                self.telemetry.events.emit(&ReloadFailed(report));
            }
        }
        let data_dir = &self.started.data_dir;
        if let Err(e) = write_report(data_dir, report) {
            tracing::warn!(error = %e, "cannot write {RESULT_FILE} in the data dir");
        }
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(report.clone());
    }
}

fn refuse(report: &mut ReloadReport, errors: &[ConfigError]) {
    report.result = Outcome::Invalid;
    report.errors = errors.iter().map(ToString::to_string).collect();
}

fn is_live(key: &str) -> bool {
    let under = |prefix: &str| {
        key == prefix
            || key
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    };
    LIVE.iter().any(|p| under(p)) && !ALERTS_AT_START.iter().any(|p| under(p))
}

/// The keys of `new` that differ from `started` and only a restart applies.
fn needs_restart(started: &Config, new: &Config) -> Vec<String> {
    changed_keys(started, new)
        .into_iter()
        .filter(|k| !is_live(k))
        .collect()
}

/// Every key path whose value differs, tables walked key by key, lists compared whole.
/// Secrets serialize as `"***"`, so they are compared by value on their own.
fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    match (serde_json::to_value(old), serde_json::to_value(new)) {
        (Ok(a), Ok(b)) => diff("", &a, &b, &mut out),
        // Not expected (a loaded config always serializes); then assume all changed.
        _ => out.push("*".to_string()),
    }
    let mut secret = |key: &str, differs: bool| {
        if differs && !out.iter().any(|k| k == key) {
            out.push(key.to_string());
        }
    };
    secret(
        "control.admin_token",
        old.control.admin_token != new.control.admin_token,
    );
    secret(
        "ledger.worker_token",
        old.ledger.worker_token != new.ledger.worker_token,
    );
    secret(
        "executor.access_tokens",
        old.executor.access_tokens != new.executor.access_tokens,
    );
    secret(
        "proxy.client_keys",
        old.proxy.client_keys != new.proxy.client_keys,
    );
    secret("proxy.nodes", old.proxy.nodes != new.proxy.nodes);
    out.sort();
    out
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(a), Some(b)) => diff(&sub, a, b, out),
                    _ => out.push(sub),
                }
            }
        }
        _ if a != b => out.push(path.to_string()),
        _ => {}
    }
}

/// Writes the report (temporary name, then rename: a reader never sees half of it).
fn write_report(data_dir: &Path, report: &ReloadReport) -> std::io::Result<()> {
    let tmp = data_dir.join(format!("{RESULT_FILE}.tmp"));
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, data_dir.join(RESULT_FILE))
}

/// Reads the report in `data_dir`, if there is one.
pub fn read_report(data_dir: &Path) -> Option<ReloadReport> {
    let bytes = std::fs::read(data_dir.join(RESULT_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Why `keel reload` could not get a report.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("no running keel found: {} has no {file} (is keel running with this config?)", .0.display(), file = crate::runfile::FILE)]
    NotRunning(PathBuf),
    #[error("keel (pid {pid}) is not running any more; {file} is left from it", file = crate::runfile::FILE)]
    Gone { pid: u32 },
    #[error("pid {pid} of {file} is not a `keel run` process (a file left by a keel that was killed, its pid reused); not signalling it", file = crate::runfile::FILE)]
    NotKeel { pid: u32 },
    #[error("cannot signal keel (pid {pid}): {source}")]
    Signal {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("keel (pid {pid}) did not report a reload within {waited:?}")]
    NoAnswer { pid: u32, waited: Duration },
}

/// `keel reload`: finds the keel running on `data_dir` (its run file), sends it SIGHUP and
/// waits up to `wait` for the report of that reload.
pub async fn request(data_dir: &Path, wait: Duration) -> Result<ReloadReport, RequestError> {
    let run =
        crate::runfile::read(data_dir).ok_or_else(|| RequestError::NotRunning(data_dir.into()))?;
    let pid = run.pid;
    let before = read_report(data_dir)
        .filter(|r| r.pid == pid)
        .map_or(0, |r| r.generation);
    let pid_t = libc::pid_t::try_from(pid).map_err(|_| RequestError::Gone { pid })?;
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Err(_) => return Err(RequestError::Gone { pid }),
        // SIGHUP ends most other processes: only a `keel … run` gets it.
        Ok(cmdline) if !is_keel_run(&cmdline) => return Err(RequestError::NotKeel { pid }),
        Ok(_) => {}
    }
    // SAFETY: kill(2) takes plain integers and has no memory effects in this process.
    if unsafe { libc::kill(pid_t, libc::SIGHUP) } != 0 {
        let source = std::io::Error::last_os_error();
        return Err(match source.raw_os_error() {
            Some(libc::ESRCH) => RequestError::Gone { pid },
            _ => RequestError::Signal { pid, source },
        });
    }
    let poll = Duration::from_millis(50);
    let rounds = (wait.as_millis() / poll.as_millis()).max(1);
    for _ in 0..rounds {
        tokio::time::sleep(poll).await;
        if let Some(r) = read_report(data_dir).filter(|r| r.pid == pid && r.generation > before) {
            return Ok(r);
        }
    }
    Err(RequestError::NoAnswer { pid, waited: wait })
}

/// Whether a `/proc/<pid>/cmdline` (NUL-separated arguments) is `keel … run …`.
fn is_keel_run(cmdline: &[u8]) -> bool {
    let mut args = cmdline.split(|b| *b == 0);
    let program = args.next().unwrap_or_default();
    let name = program.rsplit(|b| *b == b'/').next().unwrap_or_default();
    name.starts_with(b"keel") && args.any(|a| a == b"run")
}

/// The data dir a config file names, read leniently (just `data_dir`, with its
/// environment override and default): `keel reload` must find the running keel even
/// when the file it is asked to load has errors — the running keel reports those.
pub fn data_dir_of(path: &Path) -> PathBuf {
    #[derive(Deserialize)]
    struct DataDir {
        data_dir: Option<PathBuf>,
    }
    use figment::providers::{Env, Format, Toml};
    figment::Figment::new()
        .merge(Toml::file(path))
        .merge(Env::prefixed("KEEL_").split("__").only(&["data_dir"]))
        .extract::<DataDir>()
        .ok()
        .and_then(|d| d.data_dir)
        .unwrap_or_else(|| Config::default().data_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_keys_and_restart_keys_are_told_apart() {
        let old = Config::default();
        let mut new = Config::default();
        new.proxy.retry.max_attempts = 5;
        new.proxy.listen = "127.0.0.1:9"
            .parse()
            .map(crate::config::SocketAddrString)
            .unwrap();
        new.log.level = "debug".into();
        new.alerts.error_rate = 0.9;
        new.alerts.interval = Duration::from_secs(99);
        new.data_dir = "/elsewhere".into();
        new.control.admin_token = Some(crate::config::Secret::new("another"));
        let changed = changed_keys(&old, &new);
        let live: Vec<&String> = changed.iter().filter(|k| is_live(k)).collect();
        assert_eq!(
            live,
            ["alerts.error_rate", "log.level", "proxy.retry.max_attempts"]
        );
        assert_eq!(
            needs_restart(&old, &new),
            [
                "alerts.interval",
                "control.admin_token",
                "data_dir",
                "proxy.listen"
            ]
        );
    }

    #[test]
    fn only_a_keel_run_process_is_signalled() {
        assert!(is_keel_run(b"/usr/local/bin/keel\0run\0"));
        assert!(is_keel_run(b"keel\0run\0--config\0/etc/keel/keel.toml\0"));
        assert!(!is_keel_run(b"/usr/local/bin/keel\0executor-child\0"));
        assert!(!is_keel_run(b"/usr/bin/bash\0run\0"));
        assert!(!is_keel_run(b""));
    }

    #[test]
    fn the_data_dir_is_found_in_a_file_with_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keel.toml");
        std::fs::write(&path, "data_dir = \"/var/lib/x\"\n[proxy]\nbogus = 1\n").unwrap();
        assert_eq!(data_dir_of(&path), PathBuf::from("/var/lib/x"));
        std::fs::write(&path, "[proxy]\n").unwrap();
        assert_eq!(data_dir_of(&path), Config::default().data_dir);
    }
}
