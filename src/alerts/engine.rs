//! Runs the rules every `[alerts] interval`, tracks which instances fire since when, and
//! reports each change once: an `alert.firing` / `alert.resolved` event (log line, SSE
//! message) and the `keel_alert_firing{alert}` gauge.

use super::rules::{self, Finding, HeldTracker, Inputs, Severity, RULES};
use crate::config::AlertsConfig;
use crate::telemetry::catalog;
use crate::telemetry::dashboard_feed::DashboardFeed;
use crate::telemetry::metrics::Built;
use crate::telemetry::{Event, Level, Telemetry};
use prometheus::{IntGaugeVec, Opts};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::task::JoinHandle;

/// One firing alert instance as `/api/v1/alerts` and the dashboard show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Firing {
    pub alert: &'static str,
    /// The node, lock or task it fired for; `null` for keel-wide alerts.
    pub subject: Option<String>,
    pub severity: Severity,
    pub summary: &'static str,
    /// The value at the last evaluation, and the threshold it is above.
    pub value: f64,
    pub threshold: f64,
    /// RFC 3339 time it started firing.
    pub since: String,
    #[serde(skip)]
    since_at: Instant,
}

type Key = (&'static str, Option<String>);

struct State {
    firing: BTreeMap<Key, Firing>,
    held: HeldTracker,
}

pub struct AlertEngine {
    /// Swapped by a reload ([`AlertEngine::apply`]); read once per evaluation.
    config: arc_swap::ArcSwap<AlertsConfig>,
    telemetry: Telemetry,
    feed: Arc<DashboardFeed>,
    state: Mutex<State>,
    gauge: IntGaugeVec,
}

impl AlertEngine {
    /// Registers `keel_alert_firing` with every rule at 0, so the series exist (and
    /// dashboards can graph them) before anything fires.
    pub fn new(config: AlertsConfig, telemetry: Telemetry, feed: Arc<DashboardFeed>) -> Arc<Self> {
        let gauge = IntGaugeVec::new(
            Opts::new(
                catalog::ALERT_FIRING,
                "1 while the alert has at least one firing instance",
            ),
            &["alert"],
        )
        .built();
        for r in &RULES {
            gauge.with_label_values(&[r.name]).set(0);
        }
        telemetry.metrics.register(gauge.clone());
        Arc::new(AlertEngine {
            state: Mutex::new(State {
                firing: BTreeMap::new(),
                held: HeldTracker::new(config.lock_held_window),
            }),
            config: arc_swap::ArcSwap::from_pointee(config),
            telemetry,
            feed,
            gauge,
        })
    }

    /// Evaluates every `interval` until aborted.
    pub fn spawn(self: &Arc<Self>) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.config.load().interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                this.evaluate();
            }
        })
    }

    /// One evaluation over the dashboard feed's history.
    pub fn evaluate(&self) {
        let config = self.config.load_full();
        let (Some(latest), Some(window)) = (self.feed.latest(), self.feed.over(config.rate_window))
        else {
            return;
        };
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.held.record(now, &latest.locks);
        let shares = state.held.shares(now);
        let findings = rules::evaluate(
            &config,
            &Inputs {
                latest: &latest,
                window: &window,
                lock_held: &shares,
            },
        );
        self.apply(&mut state, findings, now);
    }

    fn apply(&self, state: &mut State, findings: Vec<Finding>, now: Instant) {
        let mut still: BTreeMap<Key, Firing> = BTreeMap::new();
        for f in findings {
            let key: Key = (f.alert, f.subject.clone());
            let entry = match state.firing.remove(&key) {
                Some(mut existing) => {
                    existing.value = f.value;
                    existing.threshold = f.threshold;
                    existing
                }
                None => {
                    let Some(rule) = rules::rule(f.alert) else {
                        continue;
                    };
                    let firing = Firing {
                        alert: f.alert,
                        subject: f.subject,
                        severity: rule.severity,
                        summary: rule.summary,
                        value: f.value,
                        threshold: f.threshold,
                        since: crate::clock::now_rfc3339(),
                        since_at: now,
                    };
                    self.telemetry.events.emit(&AlertFiring(&firing));
                    firing
                }
            };
            still.insert(key, entry);
        }
        for (_, gone) in std::mem::take(&mut state.firing) {
            self.telemetry.events.emit(&AlertResolved {
                firing: &gone,
                duration_seconds: now.saturating_duration_since(gone.since_at).as_secs_f64(),
            });
        }
        state.firing = still;
        for r in &RULES {
            let on = state.firing.keys().any(|(a, _)| *a == r.name);
            self.gauge.with_label_values(&[r.name]).set(i64::from(on));
        }
    }

    pub fn config(&self) -> Arc<AlertsConfig> {
        self.config.load_full()
    }

    /// Puts reloaded thresholds, windows and `disabled` rules in force from the next
    /// evaluation. `enabled`, `interval` and `lock_held_window` shape the running task
    /// and tracker: the reload names them as needing a restart.
    pub fn reconfigure(&self, config: &AlertsConfig) {
        self.config.store(Arc::new(config.clone()));
    }

    pub fn threshold(&self, alert: &str) -> Option<f64> {
        rules::threshold(&self.config.load(), alert)
    }

    /// The firing instances, critical first, then oldest first.
    pub fn firing(&self) -> Vec<Firing> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<Firing> = state.firing.values().cloned().collect();
        list.sort_by_key(|f| (f.severity != Severity::Critical, f.since_at));
        list
    }
}

fn describe(f: &Firing) -> String {
    match &f.subject {
        Some(s) => format!("{} ({s})", f.summary),
        None => f.summary.to_string(),
    }
}

/// `alert.firing`: an alert instance started firing.
struct AlertFiring<'a>(&'a Firing);

impl Serialize for AlertFiring<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl Event for AlertFiring<'_> {
    fn kind(&self) -> &'static str {
        "alert.firing"
    }
    fn component(&self) -> &'static str {
        "alerts"
    }
    fn message(&self) -> String {
        format!(
            "alert {} firing: {}, value {} above {}",
            self.0.alert,
            describe(self.0),
            round(self.0.value),
            round(self.0.threshold)
        )
    }
    fn level(&self) -> Level {
        match self.0.severity {
            Severity::Critical => Level::Error,
            Severity::Warning => Level::Warn,
        }
    }
}

/// `alert.resolved`: a firing instance is no longer above its threshold.
#[derive(Serialize)]
struct AlertResolved<'a> {
    #[serde(flatten)]
    firing: &'a Firing,
    duration_seconds: f64,
}

impl Event for AlertResolved<'_> {
    fn kind(&self) -> &'static str {
        "alert.resolved"
    }
    fn component(&self) -> &'static str {
        "alerts"
    }
    fn message(&self) -> String {
        format!(
            "alert {} resolved: {} after {:.0}s",
            self.firing.alert,
            describe(self.firing),
            self.duration_seconds
        )
    }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(alert: &'static str, subject: Option<&str>, value: f64) -> Finding {
        Finding {
            alert,
            subject: subject.map(str::to_owned),
            value,
            threshold: 1.0,
        }
    }

    #[test]
    fn transitions_emit_once_and_drive_the_gauge() {
        let telemetry = Telemetry::new();
        let engine = AlertEngine::new(
            AlertsConfig::default(),
            telemetry.clone(),
            DashboardFeed::new(telemetry.clone()),
        );
        let now = Instant::now();
        let apply = |findings| {
            let mut s = engine.state.lock().unwrap();
            engine.apply(&mut s, findings, now);
        };
        apply(vec![finding("breaker_open", Some("a"), 1.0)]);
        apply(vec![
            finding("breaker_open", Some("a"), 1.0),
            finding("memory_rss", None, 3.0),
        ]);
        let firing = engine.firing();
        assert_eq!(firing.len(), 2);
        assert_eq!(firing[0].alert, "breaker_open", "critical first");
        assert_eq!(firing[1].value, 3.0);
        let text = telemetry.metrics.render();
        assert!(
            text.contains("keel_alert_firing{alert=\"breaker_open\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("keel_alert_firing{alert=\"queue_depth\"} 0"),
            "{text}"
        );

        apply(vec![finding("memory_rss", None, 2.5)]);
        let kinds: Vec<(&str, String)> = telemetry
            .events
            .since(0)
            .iter()
            .map(|e| (e.kind, e.data["alert"].as_str().unwrap_or("").to_owned()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("alert.firing", "breaker_open".into()),
                ("alert.firing", "memory_rss".into()),
                ("alert.resolved", "breaker_open".into()),
            ]
        );
        assert_eq!(engine.firing()[0].value, 2.5);
        let text = telemetry.metrics.render();
        assert!(
            text.contains("keel_alert_firing{alert=\"breaker_open\"} 0"),
            "{text}"
        );
    }
}
