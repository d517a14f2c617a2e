//! The ledger's Prometheus metrics.
//!
//! Counters and the wait histogram are ordinary collectors updated as things happen. The
//! per-lock and per-task gauges are computed from the ledger state at scrape time by
//! [`StateCollector`], so a heartbeat age is exact when scraped and a stopped task simply
//! stops appearing (the `task` label set is bounded by the running tasks).

use crate::telemetry::catalog::{
    GPU_LOCK_ACQUISITIONS_TOTAL, GPU_LOCK_FENCING_TOKEN, GPU_LOCK_HELD, GPU_LOCK_WAITERS,
    GPU_LOCK_WAIT_SECONDS, HEARTBEAT_FAILURE_RATIO, LEDGER_JOURNAL_COMMIT_OPS,
    LEDGER_JOURNAL_COMMIT_SECONDS, LEDGER_TIMEOUTS_TOTAL, TASK_HEARTBEAT_AGE_SECONDS,
};
use crate::telemetry::Metrics;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts};

/// `kind` label values of [`LEDGER_TIMEOUTS_TOTAL`].
pub const TIMEOUT_LEASE: &str = "lease_expired";
pub const TIMEOUT_HEARTBEAT: &str = "heartbeat_orphaned";

const WAIT_BUCKETS: &[f64] = &[
    0.0, 0.001, 0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

pub struct LedgerMetrics {
    pub acquisitions: IntCounterVec,
    pub wait_seconds: Histogram,
    pub timeouts: IntCounterVec,
    /// Journal commits: duration (fsync included) and changes per commit (group size).
    pub commit_seconds: Histogram,
    pub commit_ops: Histogram,
}

impl LedgerMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let acquisitions = IntCounterVec::new(
            Opts::new(
                GPU_LOCK_ACQUISITIONS_TOTAL,
                "Acquire attempts by result (acquired, conflict, timeout)",
            ),
            &["result"],
        )
        .expect("valid metric");
        let wait_seconds = Histogram::with_opts(
            HistogramOpts::new(
                GPU_LOCK_WAIT_SECONDS,
                "Time from an acquire request to the grant",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let timeouts = IntCounterVec::new(
            Opts::new(
                LEDGER_TIMEOUTS_TOTAL,
                "Timeouts detected: expired leases and orphaned tasks",
            ),
            &["kind"],
        )
        .expect("valid metric");
        for result in ["acquired", "conflict", "timeout"] {
            acquisitions.with_label_values(&[result]);
        }
        for kind in [TIMEOUT_LEASE, TIMEOUT_HEARTBEAT] {
            timeouts.with_label_values(&[kind]);
        }
        let commit_seconds = Histogram::with_opts(
            HistogramOpts::new(
                LEDGER_JOURNAL_COMMIT_SECONDS,
                "Ledger journal commits to redb, fsync included",
            )
            .buckets(crate::telemetry::metrics::LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let commit_ops = Histogram::with_opts(
            HistogramOpts::new(
                LEDGER_JOURNAL_COMMIT_OPS,
                "Changes per journal commit (group-commit size)",
            )
            .buckets(vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0,
            ]),
        )
        .expect("valid metric");
        metrics.register(acquisitions.clone());
        metrics.register(wait_seconds.clone());
        metrics.register(timeouts.clone());
        metrics.register(commit_seconds.clone());
        metrics.register(commit_ops.clone());
        LedgerMetrics {
            acquisitions,
            wait_seconds,
            timeouts,
            commit_seconds,
            commit_ops,
        }
    }
}

/// What the scrape-time gauges show.
#[derive(Default)]
pub struct GaugeReading {
    /// (lock key, held, last fencing token, waiters)
    pub locks: Vec<(String, bool, u64, usize)>,
    /// (task id, seconds since its last heartbeat) for running tasks.
    pub tasks: Vec<(String, f64)>,
    pub heartbeat_failure_ratio: f64,
}

type Reader = Box<dyn Fn() -> GaugeReading + Send + Sync>;

/// Computes lock and heartbeat gauges from the ledger state when scraped.
pub struct StateCollector {
    read: Reader,
    held: IntGaugeVec,
    token: IntGaugeVec,
    waiters: IntGaugeVec,
    age: GaugeVec,
    failure_ratio: Gauge,
    descs: Vec<Desc>,
    /// Serializes scrapes: each one resets and refills the shared vectors.
    scrape: std::sync::Mutex<()>,
}

impl StateCollector {
    pub fn new(read: impl Fn() -> GaugeReading + Send + Sync + 'static) -> Self {
        let (held, token, waiters, age) = Self::vectors();
        let failure_ratio = Gauge::with_opts(Opts::new(
            HEARTBEAT_FAILURE_RATIO,
            "Share of tracked tasks that are orphaned (no heartbeat within the timeout)",
        ))
        .expect("valid metric");
        let descs = [
            held.desc(),
            token.desc(),
            waiters.desc(),
            age.desc(),
            failure_ratio.desc(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        StateCollector {
            read: Box::new(read),
            held,
            token,
            waiters,
            age,
            failure_ratio,
            descs,
            scrape: std::sync::Mutex::new(()),
        }
    }

    fn vectors() -> (IntGaugeVec, IntGaugeVec, IntGaugeVec, GaugeVec) {
        let held = IntGaugeVec::new(
            Opts::new(GPU_LOCK_HELD, "1 while the lock is held"),
            &["lock"],
        )
        .expect("valid metric");
        let token = IntGaugeVec::new(
            Opts::new(
                GPU_LOCK_FENCING_TOKEN,
                "Last fencing token issued for the lock",
            ),
            &["lock"],
        )
        .expect("valid metric");
        let waiters = IntGaugeVec::new(
            Opts::new(GPU_LOCK_WAITERS, "Acquires queued for the lock"),
            &["lock"],
        )
        .expect("valid metric");
        let age = GaugeVec::new(
            Opts::new(
                TASK_HEARTBEAT_AGE_SECONDS,
                "Seconds since the task's last heartbeat (running tasks only)",
            ),
            &["task"],
        )
        .expect("valid metric");
        (held, token, waiters, age)
    }
}

impl Collector for StateCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        let snap = (self.read)();
        // Fresh vectors each scrape: labels of removed tasks disappear by construction.
        for v in [&self.held, &self.token, &self.waiters] {
            v.reset();
        }
        self.age.reset();
        for (lock, held, token, waiters) in &snap.locks {
            self.held.with_label_values(&[lock]).set(i64::from(*held));
            self.token
                .with_label_values(&[lock])
                .set(i64::try_from(*token).unwrap_or(i64::MAX));
            self.waiters
                .with_label_values(&[lock])
                .set(i64::try_from(*waiters).unwrap_or(i64::MAX));
        }
        for (task, age) in &snap.tasks {
            self.age.with_label_values(&[task]).set(*age);
        }
        self.failure_ratio.set(snap.heartbeat_failure_ratio);
        let mut out = self.held.collect();
        out.extend(self.token.collect());
        out.extend(self.waiters.collect());
        out.extend(self.age.collect());
        out.extend(self.failure_ratio.collect());
        out
    }
}
