//! One reading of the Prometheus registry, reduced to what the dashboard and the alert rules
//! need. Readers find metric families by name (see [`super::catalog`]), so the domains that
//! write them stay unknown here: a family that is absent (domain disabled, no label values
//! yet) simply reads as empty.

use super::catalog as names;
use prometheus::proto::{Metric, MetricFamily};
use std::collections::BTreeMap;
use std::time::Instant;

/// Cumulative latency buckets of one histogram: `(upper bound, cumulative count)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(pub Vec<(f64, u64)>);

impl Buckets {
    /// The exposition leaves out the `+Inf` bucket; it is added from the sample count so
    /// that slow requests beyond the last bound still count toward the total.
    fn of(m: &Metric) -> Self {
        let h = m.get_histogram();
        let mut buckets: Vec<(f64, u64)> = h
            .get_bucket()
            .iter()
            .map(|b| (b.upper_bound(), b.cumulative_count()))
            .collect();
        if buckets.last().is_none_or(|b| b.0.is_finite()) {
            buckets.push((f64::INFINITY, h.sample_count()));
        }
        Buckets(buckets)
    }

    /// Adds another histogram with the same bounds (one histogram family shares them).
    fn add(&mut self, other: &Buckets) {
        if self.0.is_empty() {
            self.0 = other.0.clone();
        } else if self.0.len() == other.0.len() {
            for (a, b) in self.0.iter_mut().zip(&other.0) {
                a.1 += b.1;
            }
        }
    }

    /// `self - older`, bucket by bucket; a counter reset (restart, node re-added) reads as
    /// the newer value alone, as Prometheus' `rate` treats resets.
    pub fn delta(&self, older: &Buckets) -> Buckets {
        if self.0.len() != older.0.len() || self.0.iter().zip(&older.0).any(|(a, b)| a.1 < b.1) {
            return self.clone();
        }
        Buckets(
            self.0
                .iter()
                .zip(&older.0)
                .map(|(a, b)| (a.0, a.1 - b.1))
                .collect(),
        )
    }

    /// The `q` quantile, interpolated linearly within a bucket like PromQL's
    /// `histogram_quantile`; `None` without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        quantile(&self.0, q)
    }
}

/// Quantile of cumulative `(upper bound, count)` buckets; the last finite bound caps `+Inf`.
pub(crate) fn quantile(buckets: &[(f64, u64)], q: f64) -> Option<f64> {
    let total = buckets.last().map(|b| b.1)?;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut prev_bound = 0.0;
    let mut prev_count = 0u64;
    for &(bound, count) in buckets {
        if count as f64 >= rank {
            if bound.is_infinite() {
                return Some(prev_bound);
            }
            let in_bucket = count.saturating_sub(prev_count) as f64;
            let frac = if in_bucket > 0.0 {
                (rank - prev_count as f64) / in_bucket
            } else {
                0.0
            };
            return Some(prev_bound + (bound - prev_bound) * frac);
        }
        prev_bound = bound;
        prev_count = count;
    }
    Some(prev_bound)
}

/// Cumulative figures of one upstream node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeRaw {
    pub requests: f64,
    /// Requests answered 5xx or not answered at all.
    pub errors: f64,
    pub tokens: f64,
    pub latency: Buckets,
    /// The breaker state whose gauge is 1, if the node has a breaker metric.
    pub breaker: Option<String>,
}

/// One named client key's counters (`[[proxy.client_keys]]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyRaw {
    pub admitted: f64,
    /// Refused for a limit or a model outside the key's allow-list.
    pub refused: f64,
    pub tokens: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LockRaw {
    pub held: bool,
    pub fencing_token: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuRaw {
    pub utilization: Option<f64>,
    pub memory_used_bytes: Option<f64>,
}

/// Everything read at one instant.
/// The executor's registry figures (absent while the executor is off).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutorRaw {
    /// Executions so far by outcome.
    pub outcomes: BTreeMap<String, f64>,
    pub duration: Buckets,
    pub queue_depth: f64,
    /// Isolates by state.
    pub isolates: BTreeMap<String, f64>,
    pub heap_used_bytes: f64,
}

#[derive(Debug, Clone)]
pub struct RawSample {
    pub at: Instant,
    /// Wall clock, Unix seconds (for chart axes).
    pub unix: f64,
    pub nodes: BTreeMap<String, NodeRaw>,
    /// By client key name.
    pub keys: BTreeMap<String, KeyRaw>,
    pub queue_depth: Option<f64>,
    pub locks: BTreeMap<String, LockRaw>,
    /// Heartbeat age in seconds by task id.
    pub heartbeats: BTreeMap<String, f64>,
    pub heartbeat_failure_ratio: Option<f64>,
    pub gpus: BTreeMap<String, GpuRaw>,
    pub executor: Option<ExecutorRaw>,
    pub rss_bytes: f64,
    pub cpu_percent: f64,
}

impl RawSample {
    /// An empty sample at `at` (tests and the first tick build on it).
    pub fn empty(at: Instant, unix: f64) -> Self {
        RawSample {
            at,
            unix,
            nodes: BTreeMap::new(),
            keys: BTreeMap::new(),
            queue_depth: None,
            locks: BTreeMap::new(),
            heartbeats: BTreeMap::new(),
            heartbeat_failure_ratio: None,
            gpus: BTreeMap::new(),
            executor: None,
            rss_bytes: 0.0,
            cpu_percent: 0.0,
        }
    }

    /// Reads the gathered families; RSS/CPU come from the process sampler.
    pub fn read(families: &[MetricFamily], rss_bytes: f64, cpu_percent: f64) -> Self {
        let mut s = RawSample::empty(Instant::now(), crate::clock::unix_now());
        s.rss_bytes = rss_bytes;
        s.cpu_percent = cpu_percent;
        for f in families {
            match f.name() {
                names::UPSTREAM_REQUESTS_TOTAL => each(f, |m| {
                    let node = s.nodes.entry(label(m, "node").to_owned()).or_default();
                    let v = m.get_counter().value();
                    node.requests += v;
                    if is_error_status(label(m, "status")) {
                        node.errors += v;
                    }
                }),
                names::UPSTREAM_REQUEST_DURATION_SECONDS => each(f, |m| {
                    let node = s.nodes.entry(label(m, "node").to_owned()).or_default();
                    node.latency.add(&Buckets::of(m));
                }),
                names::LLM_TOKENS_TOTAL => each(f, |m| {
                    let node = s.nodes.entry(label(m, "node").to_owned()).or_default();
                    node.tokens += m.get_counter().value();
                }),
                names::BREAKER_STATE => each(f, |m| {
                    if m.get_gauge().value() >= 1.0 {
                        let node = s.nodes.entry(label(m, "node").to_owned()).or_default();
                        node.breaker = Some(label(m, "state").to_owned());
                    }
                }),
                names::CLIENT_KEY_REQUESTS_TOTAL => each(f, |m| {
                    let key = s.keys.entry(label(m, "key").to_owned()).or_default();
                    let v = m.get_counter().value();
                    if label(m, "outcome") == "admitted" {
                        key.admitted += v;
                    } else {
                        key.refused += v;
                    }
                }),
                names::CLIENT_KEY_TOKENS_TOTAL => each(f, |m| {
                    s.keys.entry(label(m, "key").to_owned()).or_default().tokens +=
                        m.get_counter().value();
                }),
                names::QUEUE_DEPTH => {
                    s.queue_depth = Some(f.get_metric().iter().map(|m| m.get_gauge().value()).sum())
                }
                names::GPU_LOCK_HELD => each(f, |m| {
                    s.locks.entry(label(m, "lock").to_owned()).or_default().held =
                        m.get_gauge().value() >= 1.0;
                }),
                names::GPU_LOCK_FENCING_TOKEN => each(f, |m| {
                    s.locks
                        .entry(label(m, "lock").to_owned())
                        .or_default()
                        .fencing_token = Some(gauge_or_counter(m));
                }),
                names::TASK_HEARTBEAT_AGE_SECONDS => each(f, |m| {
                    s.heartbeats
                        .insert(label(m, "task").to_owned(), m.get_gauge().value());
                }),
                names::HEARTBEAT_FAILURE_RATIO => {
                    s.heartbeat_failure_ratio =
                        f.get_metric().first().map(|m| m.get_gauge().value())
                }
                names::GPU_UTILIZATION_RATIO => each(f, |m| {
                    s.gpus
                        .entry(label(m, "gpu").to_owned())
                        .or_default()
                        .utilization = Some(m.get_gauge().value());
                }),
                names::EXECUTOR_EXECUTIONS_TOTAL => each(f, |m| {
                    let ex = s.executor.get_or_insert_with(Default::default);
                    *ex.outcomes
                        .entry(label(m, "outcome").to_owned())
                        .or_default() += m.get_counter().value();
                }),
                names::EXECUTOR_EXECUTION_DURATION_SECONDS => each(f, |m| {
                    let ex = s.executor.get_or_insert_with(Default::default);
                    ex.duration.add(&Buckets::of(m));
                }),
                names::EXECUTOR_QUEUE_DEPTH => each(f, |m| {
                    s.executor.get_or_insert_with(Default::default).queue_depth +=
                        m.get_gauge().value();
                }),
                names::EXECUTOR_POOL_ISOLATES => each(f, |m| {
                    let ex = s.executor.get_or_insert_with(Default::default);
                    *ex.isolates.entry(label(m, "state").to_owned()).or_default() +=
                        m.get_gauge().value();
                }),
                names::EXECUTOR_HEAP_USED_BYTES => each(f, |m| {
                    s.executor
                        .get_or_insert_with(Default::default)
                        .heap_used_bytes += m.get_gauge().value();
                }),
                names::GPU_MEMORY_USED_BYTES => each(f, |m| {
                    s.gpus
                        .entry(label(m, "gpu").to_owned())
                        .or_default()
                        .memory_used_bytes = Some(m.get_gauge().value());
                }),
                _ => {}
            }
        }
        s
    }
}

fn each(f: &MetricFamily, mut visit: impl FnMut(&Metric)) {
    f.get_metric().iter().for_each(&mut visit)
}

fn label<'a>(m: &'a Metric, name: &str) -> &'a str {
    m.get_label()
        .iter()
        .find(|l| l.name() == name)
        .map(|l| l.value())
        .unwrap_or("")
}

/// A fencing token may be exported as a gauge or a counter; read whichever is set.
fn gauge_or_counter(m: &Metric) -> f64 {
    let g = m.get_gauge().value();
    if g != 0.0 {
        g
    } else {
        m.get_counter().value()
    }
}

/// Anything but an informational, success, redirect or client-error class is an upstream
/// failure: `5xx`, `503`, `error`, `timeout`.
fn is_error_status(status: &str) -> bool {
    !matches!(status.as_bytes().first(), Some(b'1'..=b'4'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

    #[test]
    fn reads_families_by_name() {
        let r = Registry::new();
        let req = IntCounterVec::new(
            Opts::new(names::UPSTREAM_REQUESTS_TOTAL, "h"),
            &["node", "status"],
        )
        .unwrap();
        let lat = HistogramVec::new(
            HistogramOpts::new(names::UPSTREAM_REQUEST_DURATION_SECONDS, "h")
                .buckets(vec![0.1, 1.0]),
            &["node"],
        )
        .unwrap();
        let breaker =
            IntGaugeVec::new(Opts::new(names::BREAKER_STATE, "h"), &["node", "state"]).unwrap();
        let held = IntGaugeVec::new(Opts::new(names::GPU_LOCK_HELD, "h"), &["lock"]).unwrap();
        r.register(Box::new(req.clone())).unwrap();
        r.register(Box::new(lat.clone())).unwrap();
        r.register(Box::new(breaker.clone())).unwrap();
        r.register(Box::new(held.clone())).unwrap();
        req.with_label_values(&["a", "2xx"]).inc_by(8);
        req.with_label_values(&["a", "5xx"]).inc_by(1);
        req.with_label_values(&["a", "error"]).inc_by(1);
        req.with_label_values(&["a", "4xx"]).inc_by(2);
        lat.with_label_values(&["a"]).observe(0.05);
        breaker.with_label_values(&["a", "closed"]).set(0);
        breaker.with_label_values(&["a", "open"]).set(1);
        held.with_label_values(&["gpu_lock:0"]).set(1);

        let s = RawSample::read(&r.gather(), 10.0, 1.5);
        let a = &s.nodes["a"];
        assert_eq!(a.requests, 12.0);
        assert_eq!(a.errors, 2.0);
        assert_eq!(a.breaker.as_deref(), Some("open"));
        assert_eq!(a.latency.0.last().map(|b| b.1), Some(1));
        assert!(s.locks["gpu_lock:0"].held);
        assert_eq!(s.rss_bytes, 10.0);
    }

    #[test]
    fn client_keys_split_admitted_from_refused() {
        let r = Registry::new();
        let req = IntCounterVec::new(
            Opts::new(names::CLIENT_KEY_REQUESTS_TOTAL, "h"),
            &["key", "outcome"],
        )
        .unwrap();
        let tok = IntCounterVec::new(
            Opts::new(names::CLIENT_KEY_TOKENS_TOTAL, "h"),
            &["key", "kind"],
        )
        .unwrap();
        r.register(Box::new(req.clone())).unwrap();
        r.register(Box::new(tok.clone())).unwrap();
        req.with_label_values(&["team", "admitted"]).inc_by(5);
        req.with_label_values(&["team", "requests_limited"])
            .inc_by(2);
        req.with_label_values(&["team", "model_denied"]).inc_by(1);
        tok.with_label_values(&["team", "input"]).inc_by(30);
        tok.with_label_values(&["team", "output"]).inc_by(12);
        let s = RawSample::read(&r.gather(), 0.0, 0.0);
        assert_eq!(
            s.keys["team"],
            KeyRaw {
                admitted: 5.0,
                refused: 3.0,
                tokens: 42.0
            }
        );
    }

    #[test]
    fn quantile_and_delta_with_reset() {
        let newer = Buckets(vec![(1.0, 10), (2.0, 20), (f64::INFINITY, 20)]);
        let older = Buckets(vec![(1.0, 10), (2.0, 10), (f64::INFINITY, 10)]);
        let d = newer.delta(&older);
        assert_eq!(d.0[0].1, 0);
        let p = d.quantile(0.99).unwrap();
        assert!((1.0..=2.0).contains(&p), "{p}");
        // A reset: the newer histogram alone.
        assert_eq!(older.delta(&newer), older);
        assert_eq!(Buckets::default().quantile(0.5), None);
        // Everything beyond the last finite bound reads as that bound.
        assert_eq!(quantile(&[(1.0, 0), (f64::INFINITY, 5)], 0.99), Some(1.0));
    }
}
