//! Typed configuration: one TOML file, then `KEEL_<SECTION>__<KEY>` environment overrides,
//! validated once before anything binds.
//!
//! Every section is a `serde` struct with `deny_unknown_fields` and documented defaults, so a
//! config file only needs the keys it changes. Loading ([`load()`]) collects *every* structural
//! problem (unknown keys, wrong types); [`Config::validate`] then collects every semantic one
//! (ranges, zero durations, unwritable paths). Both report `ConfigError { path, message }`.

mod alerts;
mod client_keys;
mod clients;
mod control;
mod dashboard;
mod executor;
mod gpu;
mod ledger;
mod llm;
mod load;
mod lock_key;
mod log;
mod proxy;
mod tls;
mod types;
mod validate;

pub use alerts::{AlertsConfig, ALERT_NAMES, FEED_HISTORY};
pub use client_keys::{parse_key_hash, ClientKeyConfig, NamedClientKey};
pub use control::{
    AdminTokenSource, ControlConfig, GENERATED_ADMIN_TOKEN_FILE, MIN_ADMIN_TOKEN_CHARS,
};
pub use dashboard::DashboardConfig;
pub use executor::{
    default_denied_cidrs, ExecutorConfig, FetchConfig, RateLimitConfig, DEFAULT_DENIED_CIDRS,
    ENV_EXECUTION_TIMEOUT_MS, ENV_MAX_CODE_LENGTH, ENV_MAX_CONCURRENT, ENV_MAX_INPUT_SIZE,
    ENV_MAX_RESULT_SIZE,
};
pub use gpu::{GpuConfig, GpuMode};
pub use ledger::LedgerConfig;
pub use llm::{
    default_fallback_for, validate_fallback_for, validate_llm_timeouts, DedupConfig, ErrorClass,
    DEFAULT_FIRST_BYTE, DEFAULT_FIRST_TOKEN, DEFAULT_MAX_RETRY_AFTER, DEFAULT_STREAM_FIRST_BYTE,
    DEFAULT_STREAM_IDLE,
};
pub use load::{load, resolve_path, LoadError, CREDENTIAL_NAME};
pub use lock_key::{check_lock_key, LockKeyError, MAX_KEY_LEN};
pub use log::{LogConfig, LogFormat};
pub use proxy::{
    BreakerConfig, NodeConfig, PrewarmConfig, ProxyConfig, QueueConfig, RetryConfig, ShiftConfig,
    TimeoutConfig, MAX_PROXY_THREADS, MAX_VIA_ID, MAX_WEIGHT,
};
pub use tls::{TlsConfig, TlsFileProblem, TlsMaterial, TlsProblems};
pub use types::{Secret, SocketAddrString};
pub use validate::{ConfigError, Scope, Validator};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The whole effective configuration of one keel process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding `keel.redb` and `keel.fence`; created if missing.
    pub data_dir: PathBuf,
    /// How long SIGTERM waits for in-flight requests before exiting anyway.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// The first part of the grace: `/health/ready` already answers 503 `draining` while
    /// both listeners still accept and serve, so load balancers that poll readiness take
    /// keel out of rotation before it stops accepting. `0s`: stop accepting at once.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    pub control: ControlConfig,
    pub proxy: ProxyConfig,
    pub log: LogConfig,
    pub ledger: LedgerConfig,
    pub gpu: GpuConfig,
    pub executor: ExecutorConfig,
    pub alerts: AlertsConfig,
    pub dashboard: DashboardConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            shutdown_grace: Duration::from_secs(30),
            drain_delay: Duration::from_secs(5),
            control: ControlConfig::default(),
            proxy: ProxyConfig::default(),
            log: LogConfig::default(),
            ledger: LedgerConfig::default(),
            gpu: GpuConfig::default(),
            executor: ExecutorConfig::default(),
            alerts: AlertsConfig::default(),
            dashboard: DashboardConfig::default(),
        }
    }
}

impl Config {
    /// Every semantic problem of this config, each with its key path; empty when valid.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut v = Validator::default();
        v.writable_dir("data_dir", &self.data_dir);
        v.positive_duration("shutdown_grace", self.shutdown_grace);
        // A zero grace is reported above already; the delay's error would only repeat it.
        if !self.shutdown_grace.is_zero() && self.drain_delay > self.shutdown_grace {
            v.error(
                "drain_delay",
                format!(
                    "{} is longer than shutdown_grace ({}); the delay is part of the grace",
                    humantime::format_duration(self.drain_delay),
                    humantime::format_duration(self.shutdown_grace)
                ),
            );
        }
        self.control.validate(&mut v.at("control"));
        self.proxy.validate(&mut v.at("proxy"));
        self.log.validate(&mut v.at("log"));
        self.ledger.validate(&mut v.at("ledger"));
        self.gpu.validate(&mut v.at("gpu"));
        self.executor.validate(&mut v.at("executor"));
        self.alerts.validate(&mut v.at("alerts"));
        self.dashboard.validate(&mut v.at("dashboard"));
        v.into_errors()
    }

    /// The effective config as TOML with every secret replaced by `"***"`.
    pub fn to_redacted_toml(&self) -> String {
        // `Secret` always serializes as "***", so plain serialization is already redacted.
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    /// One line for `keel validate` and the startup log.
    pub fn summary(&self) -> String {
        format!(
            "config ok: control={} proxy={} data_dir={} nodes={} log={}/{}",
            self.control.listen,
            self.proxy.listen,
            self.data_dir.display(),
            self.proxy.node_count(),
            self.log.format,
            self.log.level
        )
    }
}

#[cfg(test)]
mod doc_tables;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_delay_must_fit_in_the_shutdown_grace() {
        let mut c = Config::default();
        let drain_errors = |c: &Config| {
            c.validate()
                .into_iter()
                .filter(|e| e.path == "drain_delay")
                .count()
        };
        assert_eq!(drain_errors(&c), 0, "the defaults fit");
        c.drain_delay = Duration::ZERO;
        assert_eq!(drain_errors(&c), 0, "0s: no delay");
        c.drain_delay = c.shutdown_grace + Duration::from_millis(1);
        assert_eq!(drain_errors(&c), 1);
    }
}
