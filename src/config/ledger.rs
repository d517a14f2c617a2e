//! `[ledger]`: GPU locks, heartbeats, monitor and timeout manager.

use super::validate::Scope;
use super::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// Lock keys that always exist, also without a GPU driver (`gpu_lock:{index}` keys for
    /// every GPU NVML finds are added at startup).
    pub locks: Vec<String>,
    /// When set, the worker API (acquire/renew/release, heartbeats) requires
    /// `Authorization: Bearer <worker_token>`; the admin token is accepted too.
    pub worker_token: Option<Secret>,
    /// TTL of an acquire or renew that does not name one (the reference's `gpu_lock_timeout`).
    #[serde(with = "humantime_serde")]
    pub lock_timeout: Duration,
    /// Largest TTL a worker may ask for.
    #[serde(with = "humantime_serde")]
    pub max_ttl: Duration,
    /// Longest `wait_seconds` an acquire may queue for.
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    /// How often the monitor checks locks and heartbeats.
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    /// A task whose last heartbeat is older than this is orphaned.
    #[serde(with = "humantime_serde")]
    pub heartbeat_timeout: Duration,
    /// Force-release the locks of orphaned tasks.
    pub auto_recovery: bool,
    /// How often a failed recovery (store write) is retried within one check.
    pub max_retry_attempts: u32,
    /// Whether the monitor runs from startup (it can be started/stopped through the API).
    pub monitor_enabled: bool,
    /// Entries kept in the lock history and in the timeout manager's action history.
    pub history_limit: usize,
    /// Heartbeat updates and statistics are written to the store at most this often
    /// (batched); lock operations are never batched behind this.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            locks: vec!["gpu_lock:0".into()],
            worker_token: None,
            lock_timeout: Duration::from_secs(300),
            max_ttl: Duration::from_secs(24 * 3600),
            max_wait: Duration::from_secs(300),
            check_interval: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(120),
            auto_recovery: true,
            max_retry_attempts: 3,
            monitor_enabled: true,
            history_limit: 1000,
            flush_interval: Duration::from_secs(1),
        }
    }
}

impl LedgerConfig {
    pub(super) fn validate(&self, v: &mut Scope<'_>) {
        let mut seen = BTreeSet::new();
        for (i, key) in self.locks.iter().enumerate() {
            if let Err(reason) = super::lock_key::check_lock_key(key) {
                v.error(&format!("locks[{i}]"), reason.to_string());
            } else if !seen.insert(key.as_str()) {
                v.error(
                    &format!("locks[{i}]"),
                    format!("duplicate lock key {key:?}"),
                );
            }
        }
        if let Some(t) = &self.worker_token {
            if t.expose().trim().is_empty() {
                v.error(
                    "worker_token",
                    "must not be empty (leave it out to disable)",
                );
            }
        }
        for (key, d) in [
            ("lock_timeout", self.lock_timeout),
            ("max_ttl", self.max_ttl),
            ("check_interval", self.check_interval),
            ("heartbeat_timeout", self.heartbeat_timeout),
            ("flush_interval", self.flush_interval),
        ] {
            v.positive_duration(key, d);
        }
        if !self.lock_timeout.is_zero() && self.lock_timeout > self.max_ttl {
            v.error(
                "lock_timeout",
                format!(
                    "{} is longer than max_ttl ({})",
                    humantime::format_duration(self.lock_timeout),
                    humantime::format_duration(self.max_ttl)
                ),
            );
        }
        v.range("max_retry_attempts", self.max_retry_attempts, 1, 100);
        v.range("history_limit", self.history_limit, 10, 1_000_000);
    }
}
