//! Executor metrics (prometheus) and the plain counters behind `/flow/status` and
//! `/flow/health`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::telemetry::catalog;

// The names the dashboard reads are the catalog's, so writer and reader cannot drift.
pub(crate) const EXECUTIONS_TOTAL: &str = catalog::EXECUTOR_EXECUTIONS_TOTAL;
pub(crate) const EXECUTION_DURATION: &str = catalog::EXECUTOR_EXECUTION_DURATION_SECONDS;
pub(crate) const QUEUE_DEPTH: &str = catalog::EXECUTOR_QUEUE_DEPTH;
pub(crate) const POOL_ISOLATES: &str = catalog::EXECUTOR_POOL_ISOLATES;
pub(crate) const HEAP_USED: &str = catalog::EXECUTOR_HEAP_USED_BYTES;
pub(crate) const ISOLATE_RECYCLES: &str = catalog::EXECUTOR_ISOLATE_RECYCLES_TOTAL;
pub(crate) const CONTEXTS_REUSED: &str = catalog::EXECUTOR_CONTEXTS_REUSED_TOTAL;
pub(crate) const RESTARTS: &str = catalog::EXECUTOR_RESTARTS_TOTAL;
pub(crate) const PROCESS_RSS: &str = catalog::EXECUTOR_PROCESS_RESIDENT_MEMORY_BYTES;
pub(crate) const ARRAY_BUFFERS: &str = catalog::EXECUTOR_ARRAY_BUFFER_BYTES;

/// `reason`s of `keel_executor_isolate_recycles_total` (see `worker::RecycleReason`).
pub(crate) const RECYCLE_REASONS: [&str; 3] = ["timeout", "heap", "crash"];
/// `reason`s of `keel_executor_restarts_total` (see `supervisor::Death`).
pub(crate) const RESTART_REASONS: [&str; 5] =
    ["crashed", "memory_limit", "unresponsive", "hung", "exited"];

/// States of `keel_executor_pool_isolates{state}`.
pub(crate) const STATES: [&str; 3] = ["starting", "idle", "busy"];

/// Prometheus collectors, registered once on keel's registry (in the main process: the
/// executor process reports its figures over its socket, see [`super::supervisor`]).
#[derive(Clone)]
pub(crate) struct ExecutorMetrics {
    pub executions: IntCounterVec,
    pub duration: Histogram,
    pub queue_depth: IntGauge,
    pub isolates: IntGaugeVec,
    pub heap_used: IntGauge,
    pub array_buffers: IntGauge,
    pub recycles: IntCounterVec,
    pub reused: IntCounter,
    pub restarts: IntCounterVec,
    pub process_rss: IntGauge,
}

impl ExecutorMetrics {
    pub(crate) fn new(registry: Option<&Registry>) -> Result<Self, prometheus::Error> {
        let m = Self {
            executions: IntCounterVec::new(
                Opts::new(EXECUTIONS_TOTAL, "Code-block executions by outcome"),
                &["outcome"],
            )?,
            duration: Histogram::with_opts(
                HistogramOpts::new(EXECUTION_DURATION, "Time a code block spent on an isolate")
                    .buckets(vec![
                        0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                        1.0, 2.5, 5.0, 10.0, 30.0,
                    ]),
            )?,
            queue_depth: IntGauge::new(QUEUE_DEPTH, "Executions waiting for an isolate")?,
            isolates: IntGaugeVec::new(
                Opts::new(POOL_ISOLATES, "Isolates in the executor pool by state"),
                &["state"],
            )?,
            heap_used: IntGauge::new(HEAP_USED, "V8 heap used, summed over the pool's isolates")?,
            array_buffers: IntGauge::new(
                ARRAY_BUFFERS,
                "Array-buffer backing stores held by the executor's isolates",
            )?,
            recycles: IntCounterVec::new(
                Opts::new(
                    ISOLATE_RECYCLES,
                    "Isolates replaced from the snapshot, by reason",
                ),
                &["reason"],
            )?,
            reused: IntCounter::new(
                CONTEXTS_REUSED,
                "Calls that ran in a context kept warm from their token's previous call",
            )?,
            restarts: IntCounterVec::new(
                Opts::new(RESTARTS, "Restarts of the executor process, by reason"),
                &["reason"],
            )?,
            process_rss: IntGauge::new(PROCESS_RSS, "Resident memory of the executor process")?,
        };
        if let Some(r) = registry {
            r.register(Box::new(m.executions.clone()))?;
            r.register(Box::new(m.duration.clone()))?;
            r.register(Box::new(m.queue_depth.clone()))?;
            r.register(Box::new(m.isolates.clone()))?;
            r.register(Box::new(m.heap_used.clone()))?;
            r.register(Box::new(m.array_buffers.clone()))?;
            r.register(Box::new(m.recycles.clone()))?;
            r.register(Box::new(m.reused.clone()))?;
            r.register(Box::new(m.restarts.clone()))?;
            r.register(Box::new(m.process_rss.clone()))?;
        }
        for s in STATES {
            m.isolates.with_label_values(&[s]).set(0);
        }
        // Every series from startup, at 0: a rate() over a counter that appears only with its
        // first increment misses that increment.
        for r in RECYCLE_REASONS {
            m.recycles.with_label_values(&[r]).inc_by(0);
        }
        for r in RESTART_REASONS {
            m.restarts.with_label_values(&[r]).inc_by(0);
        }
        Ok(m)
    }
}

/// Counters for the reference's status/health blocks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Admitted and not yet answered (running + queued).
    pub current: AtomicUsize,
    pub total: AtomicU64,
    pub successful: AtomicU64,
    pub failed: AtomicU64,
    pub timeouts: AtomicU64,
}

impl Counters {
    pub(crate) fn success_rate(&self) -> String {
        let total = self.total.load(Ordering::Relaxed);
        let ok = self.successful.load(Ordering::Relaxed);
        if total == 0 {
            "0.0%".to_string()
        } else {
            format!("{:.1}%", ok as f64 * 100.0 / total as f64)
        }
    }
}
