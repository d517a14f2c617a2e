//! The gateway's Prometheus metrics. Labels stay bounded: node names (configured by an
//! operator), status classes, fixed reason and kind sets — never request ids or paths.

use super::breaker::BreakerState;
use super::node::Node;
use crate::telemetry::metrics::Built;
use crate::telemetry::metrics::LATENCY_BUCKETS;
use crate::telemetry::Metrics;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};
use std::sync::{Arc, OnceLock};

// The names are the catalog's (the one list of metric names).
pub(crate) use crate::telemetry::catalog::{
    BREAKER_EJECTIONS_TOTAL, BREAKER_STATE, LLM_TOKENS_TOTAL, NODES_AVAILABLE,
    PREWARM_DURATION_SECONDS, PROXY_REQUESTS_TOTAL, PROXY_REQUEST_DURATION_SECONDS, QUEUE_DEPTH,
    QUEUE_WAIT_SECONDS, SHIFT_STAGE_PERCENT, UPSTREAM_REQUESTS_TOTAL,
    UPSTREAM_REQUEST_DURATION_SECONDS, UPSTREAM_RETRIES_TOTAL, UPSTREAM_TTFB_SECONDS,
    UPSTREAM_TTFT_SECONDS,
};

#[derive(Clone)]
pub struct GatewayMetrics {
    /// Tries per node by outcome: status class, or `error` when no response came.
    pub upstream_requests: IntCounterVec,
    pub upstream_duration: HistogramVec,
    pub upstream_ttfb: HistogramVec,
    /// Streamed LLM attempts: start to first content, by node.
    pub upstream_ttft: HistogramVec,
    /// Retries by the node that failed and why (`connect`, `timeout`, `status`, `upstream`).
    pub retries: IntCounterVec,
    pub breaker_state: IntGaugeVec,
    pub ejections: IntCounterVec,
    /// Client-facing answers by status class.
    pub proxy_requests: IntCounterVec,
    pub proxy_duration: HistogramVec,
    pub queue_depth: IntGauge,
    pub queue_wait: HistogramVec,
    pub prewarm: HistogramVec,
    pub shift_percent: IntGaugeVec,
    pub nodes_available: IntGauge,
    pub tokens: IntCounterVec,
    /// Client-facing series by class, looked up once instead of once per request.
    proxy_by_class: Arc<[ClassSeries; CLASSES.len()]>,
}

/// Time-to-first-token buckets: a generation's first token comes after the prompt's
/// prefill, from tens of milliseconds (short prompt, idle GPU) to tens of seconds (a long
/// context, a queue at the provider); the request-latency buckets are too coarse there.
const TTFT_BUCKETS: &[f64] = &[
    0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0,
    60.0,
];

/// The outcome classes a status label takes; index = position.
const CLASSES: [&str; 7] = ["1xx", "2xx", "3xx", "4xx", "5xx", "error", "aborted"];

fn class_index(class: &str) -> Option<usize> {
    CLASSES.iter().position(|c| *c == class)
}

#[derive(Default)]
struct ClassSeries {
    requests: OnceLock<IntCounter>,
    duration: OnceLock<Histogram>,
}

/// One node's labelled series, resolved on first use and then reused: the hot path does no
/// per-request label hashing or registry locking. Series are created lazily, exactly when the
/// uncached code would have created them.
#[derive(Debug, Default)]
pub struct NodeSeries {
    requests: [OnceLock<IntCounter>; CLASSES.len()],
    duration: OnceLock<Histogram>,
    ttfb: OnceLock<Histogram>,
    ttft: OnceLock<Histogram>,
    /// `keel_llm_attempts_total{node, outcome="answered"}` (the LLM route's counter).
    pub(super) llm_answered: OnceLock<IntCounter>,
}

impl GatewayMetrics {
    pub fn register(m: &Metrics) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).built();
            m.register(c.clone());
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                labels,
            )
            .built();
            m.register(h.clone());
            h
        };
        let ttft = HistogramVec::new(
            HistogramOpts::new(
                UPSTREAM_TTFT_SECONDS,
                "Streamed LLM attempts from their start to the first content event, by node",
            )
            .buckets(TTFT_BUCKETS.to_vec()),
            &["node"],
        )
        .built();
        m.register(ttft.clone());
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).built();
            m.register(g.clone());
            g
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).built();
            m.register(g.clone());
            g
        };
        GatewayMetrics {
            upstream_requests: counter(
                UPSTREAM_REQUESTS_TOTAL,
                "Tries sent to upstream nodes, by node and status class",
                &["node", "status"],
            ),
            upstream_duration: histogram(
                UPSTREAM_REQUEST_DURATION_SECONDS,
                "Upstream tries from connect to the last response byte",
                &["node"],
            ),
            upstream_ttfb: histogram(
                UPSTREAM_TTFB_SECONDS,
                "Upstream tries from connect to the response header",
                &["node"],
            ),
            upstream_ttft: ttft,
            retries: counter(
                UPSTREAM_RETRIES_TOTAL,
                "Tries retried on another node, by the failed node and reason",
                &["node", "reason"],
            ),
            breaker_state: gauge_vec(
                BREAKER_STATE,
                "Circuit breaker state per node (1 for the current state)",
                &["node", "state"],
            ),
            ejections: counter(
                BREAKER_EJECTIONS_TOTAL,
                "Times a node's breaker opened",
                &["node"],
            ),
            proxy_requests: counter(
                PROXY_REQUESTS_TOTAL,
                "Client requests answered by the gateway, by status class",
                &["status"],
            ),
            proxy_duration: histogram(
                PROXY_REQUEST_DURATION_SECONDS,
                "Client requests from arrival to the last response byte",
                &["status"],
            ),
            queue_depth: gauge(QUEUE_DEPTH, "Requests waiting for an available node"),
            queue_wait: histogram(
                QUEUE_WAIT_SECONDS,
                "Time requests waited in the queue, by outcome",
                &["outcome"],
            ),
            prewarm: histogram(
                PREWARM_DURATION_SECONDS,
                "Prewarm probe latency, by node",
                &["node"],
            ),
            shift_percent: gauge_vec(
                SHIFT_STAGE_PERCENT,
                "Percent of its weight a node gets in the gradual shift",
                &["node"],
            ),
            nodes_available: gauge(NODES_AVAILABLE, "Nodes that can take traffic now"),
            tokens: counter(
                LLM_TOKENS_TOTAL,
                "LLM tokens by node and kind (input, output)",
                &["node", "kind"],
            ),
            proxy_by_class: Arc::new(Default::default()),
        }
    }

    /// Counts one try on `node` by outcome class (`2xx`…, `error`).
    pub fn count_upstream(&self, node: &Node, class: &str) {
        let vec = &self.upstream_requests;
        match class_index(class) {
            Some(i) => node.series.requests[i]
                .get_or_init(|| vec.with_label_values(&[&node.name, class]))
                .inc(),
            None => vec.with_label_values(&[&node.name, class]).inc(),
        }
    }

    /// Counts the tokens of one answer of `node` (metrics and the node's own totals).
    pub fn count_tokens(&self, node: &Node, usage: super::llm::token_usage::Usage) {
        self.tokens
            .with_label_values(&[&node.name, "input"])
            .inc_by(usage.input);
        self.tokens
            .with_label_values(&[&node.name, "output"])
            .inc_by(usage.output);
        node.tokens_input
            .fetch_add(usage.input, std::sync::atomic::Ordering::Relaxed);
        node.tokens_output
            .fetch_add(usage.output, std::sync::atomic::Ordering::Relaxed);
    }

    /// Observes a try's duration on `node`.
    pub fn observe_upstream_duration(&self, node: &Node, secs: f64) {
        node.series
            .duration
            .get_or_init(|| self.upstream_duration.with_label_values(&[&node.name]))
            .observe(secs);
    }

    /// Observes a try's time to the response header on `node`.
    pub fn observe_ttfb(&self, node: &Node, secs: f64) {
        node.series
            .ttfb
            .get_or_init(|| self.upstream_ttfb.with_label_values(&[&node.name]))
            .observe(secs);
    }

    /// Observes a streamed attempt's time to its first content event on `node`.
    pub fn observe_ttft(&self, node: &Node, secs: f64) {
        node.series
            .ttft
            .get_or_init(|| self.upstream_ttft.with_label_values(&[&node.name]))
            .observe(secs);
    }

    /// Counts one client-facing answer and its duration by class.
    pub fn observe_proxy(&self, class: &str, secs: f64) {
        match class_index(class) {
            Some(i) => {
                let c = &self.proxy_by_class[i];
                c.requests
                    .get_or_init(|| self.proxy_requests.with_label_values(&[class]))
                    .inc();
                c.duration
                    .get_or_init(|| self.proxy_duration.with_label_values(&[class]))
                    .observe(secs);
            }
            None => {
                self.proxy_requests.with_label_values(&[class]).inc();
                self.proxy_duration
                    .with_label_values(&[class])
                    .observe(secs);
            }
        }
    }

    /// Sets the breaker gauges of `node` so exactly `state` is 1.
    pub fn set_breaker(&self, node: &str, state: BreakerState) {
        for s in BreakerState::ALL {
            self.breaker_state
                .with_label_values(&[node, s.as_str()])
                .set(i64::from(s == state));
        }
    }

    /// Drops a removed node's labelled series.
    pub fn forget_node(&self, node: &str) {
        for s in BreakerState::ALL {
            let _ = self.breaker_state.remove_label_values(&[node, s.as_str()]);
        }
        let _ = self.shift_percent.remove_label_values(&[node]);
    }
}
