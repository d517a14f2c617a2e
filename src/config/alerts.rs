//! `[alerts]`: the rules keel evaluates itself (and ships as Prometheus rules). Defaults are
//! the references' thresholds: `ops-observability.md` for the gateway and the process,
//! `gpu-ledger-api.md` for locks and heartbeats.

use super::validate::Scope;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The rules keel evaluates (their `alert` label), as `disabled` may name them; each is
/// defined in `alerts::rules::RULES`, in this order (a test there keeps the lists equal).
pub const ALERT_NAMES: [&str; 8] = [
    "gateway_error_rate",
    "breaker_open",
    "queue_depth",
    "memory_rss",
    "gateway_p99",
    "gpu_lock_held",
    "heartbeat_stale",
    "heartbeat_failure_rate",
];

/// How much per-second history the dashboard feed keeps: the charts' 15 minutes, and so
/// the longest `rate_window` an alert rule can look back on.
pub const FEED_HISTORY: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Evaluate alerts at all (the `/api/v1/alerts` list stays empty when off).
    pub enabled: bool,
    /// How often the rules run.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Window of the gateway error-rate and p99 rules (Prometheus: `rate(...[5m])`).
    #[serde(with = "humantime_serde")]
    pub rate_window: Duration,
    /// Upstream 5xx/failed share of requests above which `gateway_error_rate` fires.
    pub error_rate: f64,
    /// Requests waiting for an upstream slot above which `queue_depth` fires.
    pub queue_depth: f64,
    /// Resident memory of keel above which `memory_rss` fires (2 GiB).
    pub rss_bytes: u64,
    /// Upstream p99 latency above which `gateway_p99` fires.
    #[serde(with = "humantime_serde")]
    pub p99: Duration,
    /// Share of `lock_held_window` a GPU lock may be held before `gpu_lock_held` fires.
    pub lock_held_ratio: f64,
    #[serde(with = "humantime_serde")]
    pub lock_held_window: Duration,
    /// Heartbeat age above which `heartbeat_stale` fires for that task.
    #[serde(with = "humantime_serde")]
    pub heartbeat_age: Duration,
    /// Share of failed (orphaned) heartbeats above which `heartbeat_failure_rate` fires.
    pub heartbeat_failure_rate: f64,
    /// Rules switched off by name.
    pub disabled: Vec<String>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            interval: Duration::from_secs(5),
            rate_window: Duration::from_secs(300),
            error_rate: 0.10,
            queue_depth: 500.0,
            rss_bytes: 2 * 1024 * 1024 * 1024,
            p99: Duration::from_secs(5),
            lock_held_ratio: 0.80,
            lock_held_window: Duration::from_secs(3600),
            heartbeat_age: Duration::from_secs(120),
            heartbeat_failure_rate: 0.10,
            disabled: Vec::new(),
        }
    }
}

impl AlertsConfig {
    pub(super) fn validate(&self, v: &mut Scope<'_>) {
        v.positive_duration("interval", self.interval);
        v.positive_duration("rate_window", self.rate_window);
        v.positive_duration("p99", self.p99);
        v.positive_duration("lock_held_window", self.lock_held_window);
        v.positive_duration("heartbeat_age", self.heartbeat_age);
        // The dashboard feed's history is the source of windowed rates.
        if self.rate_window > FEED_HISTORY {
            v.error(
                "rate_window",
                "must be at most 15m (the sample history kept)",
            );
        }
        for (key, value) in [
            ("error_rate", self.error_rate),
            ("lock_held_ratio", self.lock_held_ratio),
            ("heartbeat_failure_rate", self.heartbeat_failure_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                v.error(key, format!("{value} is not a ratio between 0 and 1"));
            }
        }
        if self.queue_depth.is_nan() || self.queue_depth < 0.0 {
            v.error("queue_depth", "must be zero or more");
        }
        for (i, name) in self.disabled.iter().enumerate() {
            if !ALERT_NAMES.contains(&name.as_str()) {
                v.error(
                    &format!("disabled[{i}]"),
                    format!("unknown alert {name:?} (one of {})", ALERT_NAMES.join(", ")),
                );
            }
        }
    }

    pub fn is_enabled(&self, alert: &str) -> bool {
        self.enabled && !self.disabled.iter().any(|d| d == alert)
    }
}
