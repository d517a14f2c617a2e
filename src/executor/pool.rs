//! The isolate pool and its admission control.
//!
//! `pool_size` isolate threads take jobs from one queue. A call is admitted only while fewer
//! than `max_concurrent` are admitted (running + queued) — otherwise it is refused at once —
//! and a queued call that waits longer than `queue_timeout` is refused by the worker that
//! finally picks it up. A worker whose isolate was terminated (timeout, heap limit) builds a
//! new one from the snapshot before taking the next job, so the pool never shrinks.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Semaphore};

use super::error::{ErrorKind, ExecError, StartError};
use super::fetch::Fetcher;
use super::metrics::{ExecutorMetrics, STATES};
use super::snapshot::{self, Snapshot, WarmupReport};
use super::worker::{self, ExecOutput, Job, Shared, WorkerLimits};
use crate::config::ExecutorConfig;

/// One call: the decoded code, the `input` value and an optional lower timeout.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub code: String,
    pub input: serde_json::Value,
    pub timeout: Option<Duration>,
}

/// The reference's executor statistics (`/flow/status`, `/flow/health`).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorStatus {
    pub pool_size: usize,
    pub max_concurrent: usize,
    pub current_executions: usize,
    pub queue_length: usize,
    pub total_executions: u64,
    pub successful: u64,
    pub failed: u64,
    pub success_rate: String,
    pub isolates_recycled: u64,
    pub isolates_idle: usize,
    pub isolates_busy: usize,
    pub isolates_starting: usize,
}

/// V8 heap figures summed over the pool, as of each isolate's last execution.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeapFigures {
    pub used: u64,
    pub total: u64,
    pub limit: u64,
    /// Time the most recent fresh context took to create and boot (any worker).
    pub last_context_creation: Duration,
}

/// The running executor. Dropping it stops the workers (after their current job).
pub struct Executor {
    shared: Arc<Shared>,
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    admission: Arc<Semaphore>,
    config: ExecutorConfig,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("pool_size", &self.config.pool_size)
            .finish()
    }
}

impl Executor {
    /// Makes (or reuses) the snapshot and starts the isolate threads. Blocking — about a
    /// second for the snapshot the first time — so call it from `spawn_blocking`.
    pub fn start(
        config: &ExecutorConfig,
        runtime: tokio::runtime::Handle,
        registry: Option<&prometheus::Registry>,
    ) -> Result<Executor, StartError> {
        let snapshot: &'static Snapshot = snapshot::get()?;
        let metrics = ExecutorMetrics::new(registry)
            .map_err(|e| StartError::Runtime(format!("metrics: {e}")))?;
        let fetcher = Arc::new(Fetcher::new(&config.fetch)?);
        let (tx, rx) = mpsc::channel::<Job>();
        let n = config.pool_size.max(1);
        let shared = Arc::new(Shared {
            snapshot,
            limits: WorkerLimits {
                heap_limit: config.heap_limit_bytes(),
                max_result_size: config.max_result_size,
                max_console_lines: config.max_console_lines,
                max_console_bytes: config.max_console_bytes,
                max_fetches: config.fetch.max_requests_per_execution,
                queue_timeout: config.queue_timeout,
            },
            fetcher,
            runtime,
            jobs: Mutex::new(rx),
            counters: Default::default(),
            metrics,
            states: (0..n).map(|_| AtomicU8::new(0)).collect(),
            heap_used: (0..n).map(|_| AtomicU64::new(0)).collect(),
            heap_total: (0..n).map(|_| AtomicU64::new(0)).collect(),
            heap_limit: (0..n).map(|_| AtomicU64::new(0)).collect(),
            last_context_ns: (0..n).map(|_| AtomicU64::new(0)).collect(),
        });
        shared
            .metrics
            .isolates
            .with_label_values(&[STATES[0]])
            .set(n as i64);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let s = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("keel-v8-{i}"))
                    // Deep recursion in user code must hit V8's stack guard, not ours.
                    .stack_size(8 * 1024 * 1024)
                    .spawn(move || worker::run(s, i))?,
            );
        }
        Ok(Executor {
            shared,
            sender: Mutex::new(Some(tx)),
            admission: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            config: config.clone(),
            threads: Mutex::new(threads),
        })
    }

    /// Blocks until every isolate has its first context ready (startup "warm").
    pub fn wait_warm(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self
                .shared
                .states
                .iter()
                .all(|s| s.load(Ordering::Relaxed) != 0)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    /// Runs one code block. Validation and admission errors come back at once; everything
    /// else after the block ran (or timed out) on an isolate.
    pub async fn execute(&self, req: ExecRequest) -> Result<ExecOutput, ExecError> {
        let counters = &self.shared.counters;
        if req.code.len() > self.config.max_code_length {
            return Err(ExecError::validation(format!(
                "code is {} bytes, more than the limit of {} (MAX_CODE_LENGTH)",
                req.code.len(),
                self.config.max_code_length
            )));
        }
        if req.code.trim().is_empty() {
            return Err(ExecError::validation("code is empty"));
        }
        let input_json = serde_json::to_string(&req.input)
            .map_err(|e| ExecError::validation(format!("input: {e}")))?;
        if input_json.len() > self.config.max_input_size {
            return Err(ExecError::validation(format!(
                "input is {} bytes, more than the limit of {} (MAX_INPUT_SIZE)",
                input_json.len(),
                self.config.max_input_size
            )));
        }
        let timeout = match req.timeout {
            Some(t) if !t.is_zero() => t.min(self.config.execution_timeout),
            _ => self.config.execution_timeout,
        };
        let Ok(permit) = self.admission.clone().try_acquire_owned() else {
            self.record_rejection();
            return Err(ExecError::new(
                ErrorKind::Overloaded,
                format!(
                    "{} executions already running or queued (MAX_CONCURRENT_EXECUTIONS)",
                    self.config.max_concurrent
                ),
            ));
        };
        let (reply, rx) = oneshot::channel();
        let job = Job {
            code: req.code,
            input_json,
            timeout,
            enqueued: Instant::now(),
            reply,
        };
        counters.current.fetch_add(1, Ordering::Relaxed);
        counters.queued.fetch_add(1, Ordering::Relaxed);
        self.shared.metrics.queue_depth.inc();
        let sent = {
            let guard = self.sender.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_ref() {
                Some(tx) => tx.send(job).is_ok(),
                None => false,
            }
        };
        let outcome = if sent {
            match rx.await {
                Ok(r) => r,
                Err(_) => Err(ExecError::new(
                    ErrorKind::Unavailable,
                    "the executor stopped before running the block",
                )),
            }
        } else {
            counters.queued.fetch_sub(1, Ordering::Relaxed);
            self.shared.metrics.queue_depth.dec();
            Err(ExecError::new(
                ErrorKind::Unavailable,
                "the executor is shutting down",
            ))
        };
        drop(permit);
        counters.current.fetch_sub(1, Ordering::Relaxed);
        self.record(&outcome);
        outcome
    }

    fn record_rejection(&self) {
        self.shared
            .metrics
            .executions
            .with_label_values(&["rejected"])
            .inc();
    }

    fn record(&self, outcome: &Result<ExecOutput, ExecError>) {
        let c = &self.shared.counters;
        let m = &self.shared.metrics;
        match outcome {
            Ok(out) => {
                c.total.fetch_add(1, Ordering::Relaxed);
                c.successful.fetch_add(1, Ordering::Relaxed);
                m.executions.with_label_values(&["success"]).inc();
                m.duration.observe(out.execution_time.as_secs_f64());
            }
            Err(e) => {
                let outcome = e.kind.outcome();
                m.executions.with_label_values(&[outcome]).inc();
                if outcome != "rejected" {
                    c.total.fetch_add(1, Ordering::Relaxed);
                    c.failed.fetch_add(1, Ordering::Relaxed);
                    m.duration.observe(e.execution_time.as_secs_f64());
                }
                if e.kind == ErrorKind::Timeout {
                    c.timeouts.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    pub fn warmup(&self) -> &'static WarmupReport {
        &self.shared.snapshot.warmup
    }

    pub fn status(&self) -> ExecutorStatus {
        let c = &self.shared.counters;
        let mut by_state = [0usize; 3];
        for s in &self.shared.states {
            let i = s.load(Ordering::Relaxed) as usize;
            if i < 3 {
                by_state[i] += 1;
            }
        }
        ExecutorStatus {
            pool_size: self.config.pool_size,
            max_concurrent: self.config.max_concurrent,
            current_executions: c.current.load(Ordering::Relaxed),
            queue_length: c.queued.load(Ordering::Relaxed),
            total_executions: c.total.load(Ordering::Relaxed),
            successful: c.successful.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            success_rate: c.success_rate(),
            isolates_recycled: c.recycled.load(Ordering::Relaxed),
            isolates_starting: by_state[0],
            isolates_idle: by_state[1],
            isolates_busy: by_state[2],
        }
    }

    pub fn heap(&self) -> HeapFigures {
        let sum = |v: &Vec<AtomicU64>| v.iter().map(|a| a.load(Ordering::Relaxed)).sum();
        HeapFigures {
            used: sum(&self.shared.heap_used),
            total: sum(&self.shared.heap_total),
            limit: sum(&self.shared.heap_limit),
            last_context_creation: Duration::from_nanos(
                self.shared
                    .last_context_ns
                    .iter()
                    .map(|a| a.load(Ordering::Relaxed))
                    .max()
                    .unwrap_or(0),
            ),
        }
    }

    /// Stops taking jobs; workers finish their current one and exit. Blocking.
    pub fn shutdown(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}
