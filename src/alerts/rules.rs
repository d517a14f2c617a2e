//! The rules as pure functions of the figures: given the latest second, the figures over
//! `rate_window` and each lock's held share, which alerts fire for which subject. No clock,
//! no registry — so each threshold is unit-tested directly.

use crate::config::AlertsConfig;
use crate::telemetry::dashboard_feed::{Figures, LockFigures};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

/// What each rule is: its name (the `alert` label), severity and a sentence template.
pub struct Rule {
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
}

/// Every rule, in display order; names are `config::ALERT_NAMES` (which config validates
/// `[alerts] disabled` against without importing this module).
pub const RULES: [Rule; 8] = [
    Rule {
        name: "gateway_error_rate",
        severity: Severity::Warning,
        summary: "gateway error rate above threshold",
    },
    Rule {
        name: "breaker_open",
        severity: Severity::Critical,
        summary: "circuit breaker open",
    },
    Rule {
        name: "queue_depth",
        severity: Severity::Warning,
        summary: "request queue backlog",
    },
    Rule {
        name: "memory_rss",
        severity: Severity::Warning,
        summary: "keel resident memory high",
    },
    Rule {
        name: "gateway_p99",
        severity: Severity::Warning,
        summary: "gateway p99 latency high",
    },
    Rule {
        name: "gpu_lock_held",
        severity: Severity::Warning,
        summary: "GPU lock held most of the window",
    },
    Rule {
        name: "heartbeat_stale",
        severity: Severity::Warning,
        summary: "task heartbeat is stale",
    },
    Rule {
        name: "heartbeat_failure_rate",
        severity: Severity::Warning,
        summary: "heartbeat failure rate above threshold",
    },
];

pub fn rule(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name)
}

/// The configured threshold of a rule, in the unit its value is reported in.
pub fn threshold(cfg: &AlertsConfig, name: &str) -> Option<f64> {
    Some(match name {
        "gateway_error_rate" => cfg.error_rate,
        "breaker_open" => 1.0,
        "queue_depth" => cfg.queue_depth,
        "memory_rss" => cfg.rss_bytes as f64,
        "gateway_p99" => cfg.p99.as_secs_f64(),
        "gpu_lock_held" => cfg.lock_held_ratio,
        "heartbeat_stale" => cfg.heartbeat_age.as_secs_f64(),
        "heartbeat_failure_rate" => cfg.heartbeat_failure_rate,
        _ => return None,
    })
}

/// One firing instance: a rule, the subject it fired for (node, lock, task) and the values.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub alert: &'static str,
    pub subject: Option<String>,
    pub value: f64,
    pub threshold: f64,
}

/// The figures a rule run looks at.
pub struct Inputs<'a> {
    /// The newest second (gauges: breakers, queue, memory, heartbeats).
    pub latest: &'a Figures,
    /// Rates over `rate_window` (error rate, p99).
    pub window: &'a Figures,
    /// Held share of `lock_held_window`, by lock.
    pub lock_held: &'a BTreeMap<String, f64>,
}

/// Runs every enabled rule; the result is the complete set of firing instances.
pub fn evaluate(cfg: &AlertsConfig, input: &Inputs<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut fire = |alert: &'static str, subject: Option<&str>, value: f64, threshold: f64| {
        if cfg.is_enabled(alert) {
            out.push(Finding {
                alert,
                subject: subject.map(str::to_owned),
                value,
                threshold,
            });
        }
    };
    let (latest, window) = (input.latest, input.window);
    if window.rps > 0.0 && window.error_rate > cfg.error_rate {
        fire(
            "gateway_error_rate",
            None,
            window.error_rate,
            cfg.error_rate,
        );
    }
    for (node, n) in &latest.nodes {
        if n.breaker.as_deref() == Some("open") {
            fire("breaker_open", Some(node), 1.0, 1.0);
        }
    }
    if let Some(depth) = latest.queue_depth.filter(|d| *d > cfg.queue_depth) {
        fire("queue_depth", None, depth, cfg.queue_depth);
    }
    if latest.rss_bytes > cfg.rss_bytes as f64 {
        fire("memory_rss", None, latest.rss_bytes, cfg.rss_bytes as f64);
    }
    let p99_limit = cfg.p99.as_secs_f64();
    if let Some(p99) = window.p99_seconds.filter(|p| *p > p99_limit) {
        fire("gateway_p99", None, p99, p99_limit);
    }
    for (lock, share) in input.lock_held {
        if *share > cfg.lock_held_ratio {
            fire("gpu_lock_held", Some(lock), *share, cfg.lock_held_ratio);
        }
    }
    let age_limit = cfg.heartbeat_age.as_secs_f64();
    for (task, age) in &latest.heartbeats {
        if *age > age_limit {
            fire("heartbeat_stale", Some(task), *age, age_limit);
        }
    }
    if let Some(rate) = latest
        .heartbeat_failure_ratio
        .filter(|r| *r > cfg.heartbeat_failure_rate)
    {
        fire(
            "heartbeat_failure_rate",
            None,
            rate,
            cfg.heartbeat_failure_rate,
        );
    }
    out
}

/// How long each lock was held within the last `window`, from the readings the engine
/// records at every evaluation. Time before the first reading counts as not held, so a
/// freshly started keel does not fire on a lock it has watched for seconds.
pub struct HeldTracker {
    window: Duration,
    readings: VecDeque<(Instant, BTreeMap<String, bool>)>,
}

impl HeldTracker {
    pub fn new(window: Duration) -> Self {
        HeldTracker {
            window,
            readings: VecDeque::new(),
        }
    }

    pub fn record(&mut self, at: Instant, locks: &BTreeMap<String, LockFigures>) {
        self.readings
            .push_back((at, locks.iter().map(|(k, l)| (k.clone(), l.held)).collect()));
        // Keep one reading older than the window: it says what held at the window's start.
        while self.readings.len() > 2
            && self
                .readings
                .get(1)
                .is_some_and(|(t, _)| at.saturating_duration_since(*t) >= self.window)
        {
            self.readings.pop_front();
        }
    }

    /// Held share of the window ending at `now`, per lock seen in the window.
    pub fn shares(&self, now: Instant) -> BTreeMap<String, f64> {
        let start = now.checked_sub(self.window);
        let mut held: BTreeMap<String, Duration> = BTreeMap::new();
        let mut iter = self.readings.iter().peekable();
        while let Some((t, locks)) = iter.next() {
            let until = iter.peek().map(|(next, _)| *next).unwrap_or(now);
            let from = match start {
                Some(s) if *t < s => s,
                _ => *t,
            };
            let span = until.saturating_duration_since(from);
            for (lock, is_held) in locks {
                let entry = held.entry(lock.clone()).or_default();
                if *is_held {
                    *entry += span;
                }
            }
        }
        let window = self.window.as_secs_f64();
        held.into_iter()
            .map(|(k, d)| (k, (d.as_secs_f64() / window).min(1.0)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::dashboard_feed::NodeFigures;

    #[test]
    fn rule_names_are_the_ones_config_validates_against() {
        let names: Vec<&str> = RULES.iter().map(|r| r.name).collect();
        assert_eq!(names, crate::config::ALERT_NAMES);
    }

    fn run(
        cfg: &AlertsConfig,
        latest: &Figures,
        window: &Figures,
    ) -> Vec<(&'static str, Option<String>)> {
        let held = BTreeMap::new();
        evaluate(
            cfg,
            &Inputs {
                latest,
                window,
                lock_held: &held,
            },
        )
        .into_iter()
        .map(|f| (f.alert, f.subject))
        .collect()
    }

    #[test]
    fn quiet_figures_fire_nothing() {
        let cfg = AlertsConfig::default();
        let s = Figures {
            rps: 100.0,
            error_rate: 0.1,
            p99_seconds: Some(5.0),
            queue_depth: Some(500.0),
            rss_bytes: 2.0 * 1024.0 * 1024.0 * 1024.0,
            heartbeat_failure_ratio: Some(0.1),
            ..Figures::default()
        };
        // Every value sits exactly on its threshold: "above" means strictly above.
        assert!(run(&cfg, &s, &s).is_empty());
    }

    #[test]
    fn each_threshold_fires_above_its_default() {
        let cfg = AlertsConfig::default();
        let mut latest = Figures {
            queue_depth: Some(501.0),
            rss_bytes: 3.0 * 1024.0 * 1024.0 * 1024.0,
            heartbeat_failure_ratio: Some(0.15),
            ..Figures::default()
        };
        latest.nodes.insert(
            "a".into(),
            NodeFigures {
                breaker: Some("open".into()),
                ..NodeFigures::default()
            },
        );
        latest.nodes.insert("b".into(), NodeFigures::default());
        latest.heartbeats.insert("t1".into(), 121.0);
        latest.heartbeats.insert("t2".into(), 5.0);
        let window = Figures {
            rps: 1.0,
            error_rate: 0.11,
            p99_seconds: Some(5.5),
            ..Figures::default()
        };
        let fired = run(&cfg, &latest, &window);
        assert_eq!(
            fired,
            vec![
                ("gateway_error_rate", None),
                ("breaker_open", Some("a".into())),
                ("queue_depth", None),
                ("memory_rss", None),
                ("gateway_p99", None),
                ("heartbeat_stale", Some("t1".into())),
                ("heartbeat_failure_rate", None),
            ]
        );
        let mut quiet = cfg.clone();
        quiet.disabled = vec!["memory_rss".into(), "breaker_open".into()];
        assert_eq!(run(&quiet, &latest, &window).len(), 5);
        quiet.enabled = false;
        assert!(run(&quiet, &latest, &window).is_empty());
    }

    #[test]
    fn error_rate_needs_traffic() {
        let cfg = AlertsConfig::default();
        let window = Figures {
            rps: 0.0,
            error_rate: 1.0,
            ..Figures::default()
        };
        assert!(run(&cfg, &Figures::default(), &window).is_empty());
    }

    #[test]
    fn lock_held_share_over_the_window() {
        let window = Duration::from_secs(100);
        let mut t = HeldTracker::new(window);
        let base = Instant::now();
        let held = |h: bool| {
            let mut m = BTreeMap::new();
            m.insert(
                "gpu_lock:0".to_string(),
                LockFigures {
                    held: h,
                    fencing_token: None,
                },
            );
            m
        };
        // Held for the first 50 s seen, free for the next 50 s.
        t.record(base, &held(true));
        t.record(base + Duration::from_secs(50), &held(false));
        let share = t.shares(base + Duration::from_secs(100))["gpu_lock:0"];
        assert!((share - 0.5).abs() < 1e-6, "{share}");
        // Held from then on for 90 s: the window now sees 90 of 100 s held.
        t.record(base + Duration::from_secs(100), &held(true));
        let share = t.shares(base + Duration::from_secs(190))["gpu_lock:0"];
        assert!((share - 0.9).abs() < 1e-6, "{share}");
        // A young tracker counts unobserved time as free.
        let mut young = HeldTracker::new(window);
        young.record(base, &held(true));
        let share = young.shares(base + Duration::from_secs(10))["gpu_lock:0"];
        assert!((share - 0.1).abs() < 1e-6, "{share}");
        let cfg = AlertsConfig::default();
        let shares = t.shares(base + Duration::from_secs(190));
        let s = Figures::default();
        let fired = evaluate(
            &cfg,
            &Inputs {
                latest: &s,
                window: &s,
                lock_held: &shares,
            },
        );
        assert_eq!(fired[0].alert, "gpu_lock_held");
        assert_eq!(fired[0].subject.as_deref(), Some("gpu_lock:0"));
    }
}
