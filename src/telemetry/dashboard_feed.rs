//! The dashboard feed: keel's figures once a second — rates and percentiles computed from the
//! deltas between registry readings ([`RawSample`]), kept for 15 minutes for the charts and
//! for the alert rules' windows, and published as one pre-serialized JSON payload that
//! every SSE client shares (serialized once, not once per client).

use super::health::ComponentHealth;
use super::sample::{Buckets, ExecutorRaw, GpuRaw, KeyRaw, RawSample};
use super::Telemetry;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How much history the charts (and the alert windows) can look back on; a config bound
/// (`[alerts] rate_window` is checked against it), so config owns the number.
pub(crate) const HISTORY: Duration = crate::config::FEED_HISTORY;
/// Sampling period of the dashboard figures.
pub(crate) const TICK: Duration = Duration::from_secs(1);

/// Per-node figures over one interval.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct NodeFigures {
    pub rps: f64,
    pub error_rate: f64,
    pub p99_seconds: Option<f64>,
    pub tokens_per_second: f64,
    pub breaker: Option<String>,
}

/// Per client key (by name) over one interval: what the Gateway view's key table shows.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct KeyFigures {
    /// Requests admitted per second.
    pub rps: f64,
    /// Requests refused per second (a limit, or a model outside the allow-list).
    pub refused_per_second: f64,
    pub tokens_per_second: f64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LockFigures {
    pub held: bool,
    pub fencing_token: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct GpuFigures {
    pub utilization: Option<f64>,
    pub memory_used_bytes: Option<f64>,
}

/// The executor over one interval: what its dashboard view charts. Outcome totals are
/// cumulative (a handful of labels); rates and percentiles are the interval's.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ExecutorFigures {
    /// Executions answered per second (every outcome but `rejected`).
    pub rps: f64,
    pub p50_seconds: Option<f64>,
    pub p99_seconds: Option<f64>,
    pub queue_depth: f64,
    pub heap_used_bytes: f64,
    /// Isolates by state (`starting`, `idle`, `busy`).
    pub isolates: BTreeMap<String, f64>,
    /// Executions since start by outcome.
    pub outcomes: BTreeMap<String, f64>,
}

impl ExecutorFigures {
    fn between(older: Option<&ExecutorRaw>, newer: &ExecutorRaw, secs: f64) -> Self {
        let empty = ExecutorRaw::default();
        let older = older.unwrap_or(&empty);
        let lat = if secs > 0.0 {
            newer.duration.delta(&older.duration)
        } else {
            Buckets::default()
        };
        let answered = |r: &ExecutorRaw| {
            r.outcomes
                .iter()
                .filter(|(k, _)| k.as_str() != "rejected")
                .map(|(_, v)| v)
                .sum::<f64>()
        };
        let done = counter_delta(answered(newer), answered(older));
        ExecutorFigures {
            rps: if secs > 0.0 { done / secs } else { 0.0 },
            p50_seconds: lat.quantile(0.5),
            p99_seconds: lat.quantile(0.99),
            queue_depth: newer.queue_depth,
            heap_used_bytes: newer.heap_used_bytes,
            isolates: newer.isolates.clone(),
            outcomes: newer.outcomes.clone(),
        }
    }
}

/// Figures over the interval between two readings (one second for the charts, the rule
/// window for alerts); gauges are the newer reading's.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Figures {
    /// Unix seconds of the newer reading.
    pub t: f64,
    pub rss_bytes: f64,
    pub cpu_percent: f64,
    pub rps: f64,
    pub error_rate: f64,
    pub p99_seconds: Option<f64>,
    pub tokens_per_second: f64,
    pub queue_depth: Option<f64>,
    pub nodes: BTreeMap<String, NodeFigures>,
    /// Named client keys (absent when none is configured or none has been used).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, KeyFigures>,
    pub gpus: BTreeMap<String, GpuFigures>,
    pub locks: BTreeMap<String, LockFigures>,
    /// Heartbeat age in seconds by task id.
    pub heartbeats: BTreeMap<String, f64>,
    pub heartbeat_failure_ratio: Option<f64>,
    /// Absent while the executor is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorFigures>,
}

impl Figures {
    /// Rates between `older` and `newer`; with no time between them every rate is zero.
    pub fn between(older: &RawSample, newer: &RawSample) -> Figures {
        let secs = newer.at.saturating_duration_since(older.at).as_secs_f64();
        let per_sec = |d: f64| if secs > 0.0 { d / secs } else { 0.0 };
        let mut all_latency = Buckets::default();
        let (mut requests, mut errors, mut tokens) = (0.0, 0.0, 0.0);
        let nodes = newer
            .nodes
            .iter()
            .map(|(name, n)| {
                let o = older.nodes.get(name).cloned().unwrap_or_default();
                let dreq = counter_delta(n.requests, o.requests);
                let derr = counter_delta(n.errors, o.errors).min(dreq);
                let dtok = counter_delta(n.tokens, o.tokens);
                let lat = if secs > 0.0 {
                    n.latency.delta(&o.latency)
                } else {
                    Buckets::default()
                };
                requests += dreq;
                errors += derr;
                tokens += dtok;
                merge(&mut all_latency, &lat);
                let figures = NodeFigures {
                    rps: per_sec(dreq),
                    error_rate: ratio(derr, dreq),
                    p99_seconds: lat.quantile(0.99),
                    tokens_per_second: per_sec(dtok),
                    breaker: n.breaker.clone(),
                };
                (name.clone(), figures)
            })
            .collect();
        Figures {
            t: newer.unix,
            rss_bytes: newer.rss_bytes,
            cpu_percent: newer.cpu_percent,
            rps: per_sec(requests),
            error_rate: ratio(errors, requests),
            p99_seconds: all_latency.quantile(0.99),
            tokens_per_second: per_sec(tokens),
            queue_depth: newer.queue_depth,
            nodes,
            keys: newer
                .keys
                .iter()
                .map(|(name, k)| {
                    let o = older.keys.get(name).cloned().unwrap_or_default();
                    (name.clone(), key(k, &o, per_sec))
                })
                .collect(),
            gpus: newer
                .gpus
                .iter()
                .map(|(k, g)| (k.clone(), gpu(g)))
                .collect(),
            locks: newer
                .locks
                .iter()
                .map(|(k, l)| {
                    let f = LockFigures {
                        held: l.held,
                        fencing_token: l.fencing_token,
                    };
                    (k.clone(), f)
                })
                .collect(),
            heartbeats: newer.heartbeats.clone(),
            heartbeat_failure_ratio: newer.heartbeat_failure_ratio,
            executor: newer
                .executor
                .as_ref()
                .map(|ex| ExecutorFigures::between(older.executor.as_ref(), ex, secs)),
        }
    }
}

fn key(newer: &KeyRaw, older: &KeyRaw, per_sec: impl Fn(f64) -> f64) -> KeyFigures {
    KeyFigures {
        rps: per_sec(counter_delta(newer.admitted, older.admitted)),
        refused_per_second: per_sec(counter_delta(newer.refused, older.refused)),
        tokens_per_second: per_sec(counter_delta(newer.tokens, older.tokens)),
    }
}

fn gpu(g: &GpuRaw) -> GpuFigures {
    GpuFigures {
        utilization: g.utilization,
        memory_used_bytes: g.memory_used_bytes,
    }
}

/// Counter increase; a reset (value went down) counts the new value, as PromQL does.
fn counter_delta(newer: f64, older: f64) -> f64 {
    if newer >= older {
        newer - older
    } else {
        newer
    }
}

fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole
    } else {
        0.0
    }
}

fn merge(into: &mut Buckets, other: &Buckets) {
    if other.0.is_empty() {
        return;
    }
    if into.0.is_empty() {
        *into = other.clone();
    } else if into.0.len() == other.0.len() {
        for (a, b) in into.0.iter_mut().zip(&other.0) {
            a.1 += b.1;
        }
    }
}

/// The SSE `snapshot` event's data (the wire name stays the dashboard's).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LivePayload {
    /// The newest second's figures (`null` before the first reading): rates, latency,
    /// memory and CPU, and per node, GPU, lock, heartbeat and the executor.
    #[schema(value_type = Option<Object>)]
    pub snapshot: Option<Arc<Figures>>,
    pub health: BTreeMap<String, ComponentHealth>,
    /// Each domain's section by name.
    pub sections: BTreeMap<String, Value>,
}

struct History {
    raw: VecDeque<RawSample>,
    figures: VecDeque<Arc<Figures>>,
}

/// Samples the registry every [`TICK`], keeps [`HISTORY`], publishes the live payload.
pub struct DashboardFeed {
    telemetry: Telemetry,
    history: Mutex<History>,
    live: watch::Sender<Arc<str>>,
}

impl DashboardFeed {
    pub fn new(telemetry: Telemetry) -> Arc<Self> {
        let capacity = (HISTORY.as_secs() / TICK.as_secs().max(1)) as usize + 1;
        Arc::new(DashboardFeed {
            telemetry,
            history: Mutex::new(History {
                raw: VecDeque::with_capacity(capacity),
                figures: VecDeque::with_capacity(capacity),
            }),
            live: watch::channel(Arc::from("{}")).0,
        })
    }

    /// Runs [`DashboardFeed::tick`] every second until the task is aborted.
    pub fn spawn(self: &Arc<Self>) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                this.tick();
            }
        })
    }

    /// One reading: figures since the previous reading, history trim, live publish.
    pub fn tick(&self) {
        let t = &self.telemetry;
        let raw = RawSample::read(
            &t.metrics.registry.gather(),
            t.process.rss_bytes() as f64,
            t.process.cpu_percent(),
        );
        self.push(raw);
        let payload = serde_json::to_string(&self.live_payload()).unwrap_or_default();
        self.live.send_replace(Arc::from(payload));
    }

    fn push(&self, raw: RawSample) {
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let figures = match h.raw.back() {
            Some(prev) => Figures::between(prev, &raw),
            None => Figures::between(&raw, &raw),
        };
        h.figures.push_back(Arc::new(figures));
        h.raw.push_back(raw);
        let now = h.raw.back().map(|r| r.at);
        while let (Some(front), Some(now)) = (h.raw.front(), now) {
            if now.saturating_duration_since(front.at) <= HISTORY {
                break;
            }
            h.raw.pop_front();
            h.figures.pop_front();
        }
    }

    /// The figures of the newest second.
    pub fn latest(&self) -> Option<Arc<Figures>> {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        h.figures.back().cloned()
    }

    /// Up to 15 minutes of per-second figures, oldest first.
    pub fn history(&self) -> Vec<Arc<Figures>> {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        h.figures.iter().cloned().collect()
    }

    /// Figures over the last `window` (or all the history there is), for alert rules.
    pub fn over(&self, window: Duration) -> Option<Figures> {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let newest = h.raw.back()?;
        let oldest = h
            .raw
            .iter()
            .find(|r| newest.at.saturating_duration_since(r.at) <= window)
            .unwrap_or(newest);
        Some(Figures::between(oldest, newest))
    }

    /// The newest figures with component health and domain sections: what the SSE
    /// `snapshot` event carries and what the overview starts from.
    pub fn live_payload(&self) -> LivePayload {
        let t = &self.telemetry;
        LivePayload {
            snapshot: self.latest(),
            health: t.health.components(),
            sections: t.sections.collect().into_iter().collect(),
        }
    }

    /// The latest published payload; changes once a second.
    pub fn subscribe(&self) -> watch::Receiver<Arc<str>> {
        self.live.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::sample::NodeRaw;
    use std::time::Instant;

    fn at(base: Instant, secs: u64, requests: f64, errors: f64) -> RawSample {
        let mut s = RawSample::empty(base + Duration::from_secs(secs), secs as f64);
        s.nodes.insert(
            "a".into(),
            NodeRaw {
                requests,
                errors,
                tokens: requests * 10.0,
                latency: Buckets(vec![
                    (0.1, requests as u64),
                    (f64::INFINITY, requests as u64),
                ]),
                breaker: Some("closed".into()),
            },
        );
        s
    }

    #[test]
    fn rates_come_from_deltas() {
        let base = Instant::now();
        let s = Figures::between(&at(base, 0, 100.0, 0.0), &at(base, 2, 120.0, 5.0));
        assert_eq!(s.rps, 10.0);
        assert_eq!(s.error_rate, 0.25);
        assert_eq!(s.tokens_per_second, 100.0);
        assert!(s.p99_seconds.is_some_and(|p| p <= 0.1));
        assert_eq!(s.nodes["a"].breaker.as_deref(), Some("closed"));
        // No time between readings: no rates, no division by zero.
        let same = at(base, 0, 100.0, 0.0);
        assert_eq!(Figures::between(&same, &same).rps, 0.0);
    }

    #[test]
    fn client_keys_get_rates_of_their_own() {
        let base = Instant::now();
        let mut older = at(base, 0, 0.0, 0.0);
        let mut newer = at(base, 2, 0.0, 0.0);
        older.keys.insert(
            "team-a".into(),
            KeyRaw {
                admitted: 10.0,
                refused: 0.0,
                tokens: 100.0,
            },
        );
        newer.keys.insert(
            "team-a".into(),
            KeyRaw {
                admitted: 16.0,
                refused: 4.0,
                tokens: 160.0,
            },
        );
        // A key first seen in the newer reading counts from zero.
        newer.keys.insert(
            "team-b".into(),
            KeyRaw {
                admitted: 2.0,
                refused: 0.0,
                tokens: 0.0,
            },
        );
        let f = Figures::between(&older, &newer);
        assert_eq!(
            f.keys["team-a"],
            KeyFigures {
                rps: 3.0,
                refused_per_second: 2.0,
                tokens_per_second: 30.0
            }
        );
        assert_eq!(f.keys["team-b"].rps, 1.0);
        let json = serde_json::to_value(Figures::between(&older, &older)).unwrap();
        assert!(json["keys"]["team-a"].is_object(), "{json}");
        let none = serde_json::to_value(Figures::default()).unwrap();
        assert!(none.get("keys").is_none(), "no keys, no field: {none}");
    }

    #[test]
    fn window_uses_the_oldest_reading_inside_it() {
        let snaps = DashboardFeed::new(Telemetry::new());
        let base = Instant::now();
        for (i, (req, err)) in [(0.0, 0.0), (10.0, 0.0), (20.0, 10.0), (30.0, 20.0)]
            .into_iter()
            .enumerate()
        {
            snaps.push(at(base, i as u64 * 10, req, err));
        }
        let last_20s = snaps.over(Duration::from_secs(20)).unwrap();
        assert_eq!(last_20s.error_rate, 1.0);
        let all = snaps.over(Duration::from_secs(3600)).unwrap();
        assert!((all.error_rate - 20.0 / 30.0).abs() < 1e-9);
        assert_eq!(snaps.history().len(), 4);
    }
}
