//! The executor as keel's main process serves it: request validation, admission
//! (`max_concurrent`, refused at once past it), outcome counters and metrics — and the
//! call itself, which runs in the executor process behind [`Supervisor`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::sync::Semaphore;

use super::error::{ErrorKind, ExecError, StartError};
use super::metrics::{Counters, ExecutorMetrics};
use super::snapshot::WarmupReport;
use super::supervisor::{ChildView, Supervisor};
use super::worker::ExecOutput;
use crate::config::{ExecutorConfig, LogConfig};
use crate::telemetry::Telemetry;

/// One call: the decoded code, the `input` value and an optional lower timeout.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub code: String,
    pub input: serde_json::Value,
    pub timeout: Option<Duration>,
    /// Whose call it is: an opaque key of the access token (never the token), which decides
    /// who may share a warm context (`[executor] reuse_contexts`).
    pub tenant: String,
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
    /// Calls that ran in a context kept warm from their token's previous call
    /// (`[executor] reuse_contexts`; 0 while it is off).
    pub contexts_reused: u64,
    pub isolates_idle: usize,
    pub isolates_busy: usize,
    pub isolates_starting: usize,
    /// Restarts of the executor process since keel started.
    pub process_restarts: u64,
    /// Pid of the executor process (absent while it restarts).
    pub process_pid: Option<u32>,
    /// What the executor process's sandbox enforces.
    pub sandbox: Option<String>,
}

/// V8 heap figures summed over the pool, as of each isolate's last execution.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeapFigures {
    pub used: u64,
    pub total: u64,
    pub limit: u64,
    /// Array-buffer bytes held by the pool now.
    pub array_buffers: u64,
    /// Time the most recent lean context (libraries on `require`) took to create and boot,
    /// slowest worker.
    pub last_context_creation: Duration,
    /// The same for the last context with modules instantiated (one module's, or the
    /// common one; see snapshot.rs).
    pub last_context_with_libraries: Duration,
}

/// One access token's calls (`/flow/stats/users`).
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    pub executions: u64,
    pub successful: u64,
    pub failed: u64,
    /// RFC 3339 time of the last call.
    pub last_used: String,
}

/// Most tokens `/flow/stats/users` keeps figures for; calls of further tokens are counted
/// under one `other` row, so issuing tokens without end cannot grow this map without end.
const MAX_TOKENS_TRACKED: usize = 10_000;

/// The running executor. [`Executor::shutdown`] stops its process.
pub struct Executor {
    supervisor: Supervisor,
    admission: Arc<Semaphore>,
    config: ExecutorConfig,
    counters: Counters,
    metrics: ExecutorMetrics,
    /// Calls per access token name since keel started.
    usage: std::sync::Mutex<std::collections::HashMap<String, TokenUsage>>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("pool_size", &self.config.pool_size)
            .finish()
    }
}

impl Executor {
    /// Starts the executor process and waits until its pool is warm. Blocking — about a
    /// second for the snapshot — so call it from `spawn_blocking`.
    pub fn start(
        config: &ExecutorConfig,
        log: &LogConfig,
        runtime: tokio::runtime::Handle,
        telemetry: Option<Telemetry>,
    ) -> Result<Executor, StartError> {
        let registry = telemetry.as_ref().map(|t| t.metrics.registry.clone());
        let metrics = ExecutorMetrics::new(registry.as_ref())
            .map_err(|e| StartError::Runtime(format!("metrics: {e}")))?;
        let supervisor = Supervisor::start(config, log, runtime, metrics.clone(), telemetry)?;
        Ok(Executor {
            supervisor,
            admission: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            config: config.clone(),
            counters: Counters::default(),
            metrics,
            usage: Default::default(),
        })
    }

    /// Runs one code block. Validation and admission errors come back at once; everything
    /// else after the block ran (or timed out) in the executor process.
    pub async fn execute(&self, mut req: ExecRequest) -> Result<ExecOutput, ExecError> {
        let tenant = std::mem::take(&mut req.tenant);
        let (code, input, timeout) = validate(&self.config, req)?;
        let Ok(permit) = self.admission.clone().try_acquire_owned() else {
            self.metrics
                .executions
                .with_label_values(&["rejected"])
                .inc();
            return Err(ExecError::new(
                ErrorKind::Overloaded,
                format!(
                    "{} executions already running or queued (MAX_CONCURRENT_EXECUTIONS)",
                    self.config.max_concurrent
                ),
            ));
        };
        let counters = &self.counters;
        counters.current.fetch_add(1, Ordering::Relaxed);
        let outcome = self.supervisor.call(code, input, timeout, tenant).await;
        drop(permit);
        counters.current.fetch_sub(1, Ordering::Relaxed);
        self.record(&outcome);
        outcome
    }

    fn record(&self, outcome: &Result<ExecOutput, ExecError>) {
        let c = &self.counters;
        let m = &self.metrics;
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

    /// Counts one call of the token named `token` (after [`Executor::execute`]).
    pub fn record_usage(&self, token: &str, outcome: &Result<ExecOutput, ExecError>) {
        let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let key = if usage.contains_key(token) || usage.len() < MAX_TOKENS_TRACKED {
            token
        } else {
            "other"
        };
        let u = usage.entry(key.to_string()).or_default();
        u.executions += 1;
        match outcome {
            Ok(_) => u.successful += 1,
            Err(_) => u.failed += 1,
        }
        u.last_used = crate::clock::now_rfc3339();
    }

    /// Calls per token name, most used first.
    pub fn usage(&self) -> Vec<(String, TokenUsage)> {
        let usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows: Vec<(String, TokenUsage)> =
            usage.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        rows.sort_by(|a, b| b.1.executions.cmp(&a.1.executions).then(a.0.cmp(&b.0)));
        rows
    }

    /// Executions that required each module since keel started, in `snapshot::MODULES`
    /// order (counted in the executor process, from the `require` calls blocks made).
    pub fn module_requires(&self) -> Vec<(&'static str, u64)> {
        let counts = self.supervisor.view().module_requires;
        super::snapshot::MODULES
            .iter()
            .copied()
            .zip(counts)
            .collect()
    }

    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    /// The warmup of the running executor process (of the last one while it restarts).
    pub fn warmup(&self) -> WarmupReport {
        self.supervisor
            .view()
            .warmup
            .unwrap_or_else(WarmupReport::not_started)
    }

    /// Why the executor process is not serving now (`None` while it is).
    pub fn down_reason(&self) -> Option<String> {
        self.supervisor.view().down
    }

    pub fn status(&self) -> ExecutorStatus {
        let c = &self.counters;
        let view: ChildView = self.supervisor.view();
        let f = view.figures;
        ExecutorStatus {
            pool_size: self.config.pool_size,
            max_concurrent: self.config.max_concurrent,
            current_executions: c.current.load(Ordering::Relaxed),
            queue_length: f.queued,
            total_executions: c.total.load(Ordering::Relaxed),
            successful: c.successful.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            success_rate: c.success_rate(),
            isolates_recycled: f.recycled,
            contexts_reused: self.metrics.reused.get(),
            isolates_starting: f.isolates[0],
            isolates_idle: f.isolates[1],
            isolates_busy: f.isolates[2],
            process_restarts: view.restarts,
            process_pid: view.pid,
            sandbox: view.sandbox.map(|s| s.summary()),
        }
    }

    pub fn heap(&self) -> HeapFigures {
        let f = self.supervisor.view().figures;
        HeapFigures {
            used: f.heap_used,
            total: f.heap_total,
            limit: f.heap_limit,
            array_buffers: f.array_buffers,
            last_context_creation: Duration::from_nanos(f.context_ns[0]),
            last_context_with_libraries: Duration::from_nanos(f.context_ns[1]),
        }
    }

    /// The memory ceiling of the executor process, in bytes.
    pub fn memory_ceiling(&self) -> u64 {
        self.supervisor.ceiling()
    }

    /// The dashboard's `sections.executor`: pool shape and the figures the registry does
    /// not carry (per-state isolates, rates and percentiles come from the registry).
    pub fn dashboard_section(&self) -> serde_json::Value {
        let st = self.status();
        let heap = self.heap();
        serde_json::json!({
            "pool_size": st.pool_size,
            "max_concurrent": st.max_concurrent,
            "running": st.current_executions.saturating_sub(st.queue_length),
            "isolates_recycled": st.isolates_recycled,
            "heap_limit_bytes": heap.limit,
            "array_buffer_bytes": heap.array_buffers,
            "memory_limit_bytes": self.memory_ceiling(),
            "process_restarts": st.process_restarts,
            "context_ms": heap.last_context_creation.as_secs_f64() * 1000.0,
            "context_with_libraries_ms": heap.last_context_with_libraries.as_secs_f64() * 1000.0,
            "modules": self.warmup().modules.len(),
        })
    }

    /// Stops the executor process; running blocks finish first. Blocking.
    pub fn shutdown(&self) {
        self.supervisor.shutdown();
    }
}

/// Checks a call against the limits and prepares what crosses to the executor process:
/// the code, the input as JSON text, and the effective timeout.
pub(crate) fn validate(
    config: &ExecutorConfig,
    req: ExecRequest,
) -> Result<(String, Box<RawValue>, Duration), ExecError> {
    if req.code.len() > config.max_code_length {
        return Err(ExecError::validation(format!(
            "code is {} bytes, more than the limit of {} (MAX_CODE_LENGTH)",
            req.code.len(),
            config.max_code_length
        )));
    }
    if req.code.trim().is_empty() {
        return Err(ExecError::validation("code is empty"));
    }
    let input = serde_json::value::to_raw_value(&req.input)
        .map_err(|e| ExecError::validation(format!("input: {e}")))?;
    if input.get().len() > config.max_input_size {
        return Err(ExecError::validation(format!(
            "input is {} bytes, more than the limit of {} (MAX_INPUT_SIZE)",
            input.get().len(),
            config.max_input_size
        )));
    }
    let timeout = match req.timeout {
        Some(t) if !t.is_zero() => t.min(config.execution_timeout),
        _ => config.execution_timeout,
    };
    Ok((req.code, input, timeout))
}
