//! One isolate on its own OS thread: takes jobs from the pool's queue, runs each in a fresh
//! context deserialized from the snapshot (or, with `[executor] reuse_contexts`, the one its
//! token's last call of the same kind left warm: [`super::warm`]), drives its promises,
//! timers and fetches to completion (the event loop), and replaces its isolate after a
//! termination.
//!
//! Latency: each worker keeps booted contexts ready — the lean one, the common one and the
//! last other one (one module's or a pair's) a job used ([`Ready`]); after a job is answered it replaces the
//! one that job used, while the thread would otherwise sit idle, so a request usually pays
//! only for compiling and running its own code. A job whose context is not ready boots it
//! on the spot.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::{ErrorKind, ExecError};
use super::event_loop::{self, ExecState, Failure, OpDone};
use super::fetch::Fetcher;
use super::isolate::{self, LiveIsolate};
use super::pool::RecycleSink;
use super::requires::ContextKind;
use super::snapshot::{self, Snapshot};
use super::warm::{self, WarmContext, WarmContexts};
use super::watchdog::Watchdog;
use crate::telemetry::{Event, Level};

/// Where idle workers take jobs from. In the executor process that is its socket, read by
/// whichever worker is idle (no thread hop between the read and the run); in tests, a
/// channel fed by `IsolatePool::submit` (tests).
pub(crate) trait JobSource: Send {
    /// The next job, blocking; `None` once no more will come (the pool shuts down).
    fn next_job(&mut self) -> Option<Job>;
}

/// The in-process queue behind `IsolatePool::submit` (tests).
#[cfg(test)]
pub(super) struct ChannelJobs {
    pub rx: mpsc::Receiver<Job>,
    pub queued: Arc<AtomicUsize>,
}

#[cfg(test)]
impl JobSource for ChannelJobs {
    fn next_job(&mut self) -> Option<Job> {
        let job = self.rx.recv().ok()?;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        Some(job)
    }
}

/// Where a job's outcome goes; called exactly once, on the worker thread.
pub(super) type Reply = Box<dyn FnOnce(Result<ExecOutput, ExecError>) + Send>;

/// A code block to run.
pub(crate) struct Job {
    pub code: String,
    /// Which access token's call this is (an opaque key, not the token): calls of one
    /// tenant may share a warm context (`[executor] reuse_contexts`), others never.
    pub tenant: String,
    pub input_json: String,
    pub timeout: Duration,
    pub enqueued: Instant,
    pub reply: Reply,
}

/// A successful run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExecOutput {
    pub result: serde_json::Value,
    pub execution_time: Duration,
    /// Captured `console.*` lines (`level: text`), bounded.
    pub logs: Vec<String>,
    /// Lines dropped past the bounds.
    pub logs_dropped: usize,
}

/// Limits every worker applies.
#[derive(Debug, Clone)]
pub(super) struct WorkerLimits {
    pub heap_limit: usize,
    /// Bytes of array-buffer backing stores one isolate may hold (see [`super::alloc`]).
    pub array_buffer_limit: usize,
    pub max_result_size: usize,
    pub max_console_lines: usize,
    pub max_console_bytes: usize,
    pub max_fetches: usize,
    pub queue_timeout: Duration,
    /// Keep contexts warm between one token's calls ([`super::warm`]).
    pub reuse_contexts: bool,
}

/// Everything the workers share.
pub(super) struct Shared {
    pub snapshot: &'static Snapshot,
    pub limits: WorkerLimits,
    pub fetcher: Arc<Fetcher>,
    pub runtime: tokio::runtime::Handle,
    /// Where idle workers take their next job: one at a time, under this lock.
    pub jobs: Mutex<Box<dyn JobSource>>,
    /// Jobs submitted and not yet taken by a worker (in-process submissions only).
    pub queued: Arc<AtomicUsize>,
    /// Isolates replaced so far.
    pub recycled: AtomicU64,
    /// Calls that ran in a warm context.
    pub reused: AtomicU64,
    /// Per-worker state index into [`super::metrics::STATES`] and last heap figures.
    pub states: Vec<AtomicU8>,
    pub heap_used: Vec<AtomicU64>,
    pub heap_total: Vec<AtomicU64>,
    pub heap_limit: Vec<AtomicU64>,
    pub array_buffers: Vec<AtomicU64>,
    /// Per worker: the running job's deadline in ms after `epoch` (0 while idle), for the
    /// hang check of the executor process's monitor thread.
    pub deadlines: Vec<AtomicU64>,
    pub epoch: Instant,
    /// Creation time of the last lean context and the last other context each worker
    /// prepared (ns), for health and the bench: `[worker][lean, with modules]`.
    pub last_context_ns: Vec<[AtomicU64; 2]>,
    /// Where `executor.isolate_recycled` goes.
    pub on_recycle: RecycleSink,
    /// Executions that required each module.
    pub requires: Arc<crate::executor::natives::ModuleCounts>,
}

/// The booted contexts a worker keeps, by [`ContextKind::slot`]: always the lean and the
/// common one, and at most one other (the last single-module or pair context a job used),
/// so an isolate never holds every module's context at once.
struct Ready {
    slots: Vec<Option<v8::Global<v8::Context>>>,
    /// The single-module or pair kind kept ready, if any.
    single: Option<ContextKind>,
}

impl Ready {
    fn new() -> Ready {
        Ready {
            slots: ContextKind::all().map(|_| None).collect(),
            single: None,
        }
    }

    /// Kinds to have booted before the next job: the fixed ones, then the kept single one.
    fn wanted(&self) -> Vec<ContextKind> {
        let mut kinds = vec![ContextKind::Lean, ContextKind::Snapshot(snapshot::COMMON)];
        kinds.extend(self.single);
        kinds
    }

    fn take(&mut self, kind: ContextKind) -> Option<v8::Global<v8::Context>> {
        self.slots[kind.slot()].take()
    }

    /// After a job of `kind`: keep that kind ready next; a different single-module or pair
    /// context kept until now is dropped.
    fn used(&mut self, kind: ContextKind) {
        if self.wanted().contains(&kind) {
            return;
        }
        if let Some(old) = self.single.replace(kind) {
            self.slots[old.slot()] = None;
        }
    }
}

/// Why a worker threw its isolate away and built a new one from the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RecycleReason {
    /// Execution was terminated at its deadline (watchdog or event loop).
    Timeout,
    /// The block hit the isolate's heap limit.
    Heap,
    /// The isolate could not boot a fresh context.
    Crash,
}

impl RecycleReason {
    /// The `reason` label of `keel_executor_isolate_recycles_total`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RecycleReason::Timeout => "timeout",
            RecycleReason::Heap => "heap",
            RecycleReason::Crash => "crash",
        }
    }
}

/// `executor.isolate_recycled`: an isolate was replaced. Operators see timeouts and heap
/// bombs here without reading request logs; a run of `crash` means a broken snapshot.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct IsolateRecycled {
    pub worker: usize,
    pub reason: RecycleReason,
    /// Isolates this pool has replaced so far, this one included.
    pub total: u64,
}

impl Event for IsolateRecycled {
    fn kind(&self) -> &'static str {
        "executor.isolate_recycled"
    }
    fn component(&self) -> &'static str {
        "executor"
    }
    fn message(&self) -> String {
        format!(
            "executor isolate {} recycled ({})",
            self.worker,
            self.reason.as_str()
        )
    }
    fn level(&self) -> Level {
        match self.reason {
            RecycleReason::Crash => Level::Error,
            RecycleReason::Timeout | RecycleReason::Heap => Level::Info,
        }
    }
}

const STARTING: u8 = 0;
const IDLE: u8 = 1;
const BUSY: u8 = 2;

impl Shared {
    /// Counts a replaced isolate once and reports it (keel's main process turns the report
    /// into the metric and the typed event).
    fn recycled(&self, worker: usize, reason: RecycleReason) {
        let total = self.recycled.fetch_add(1, Ordering::Relaxed) + 1;
        (self.on_recycle)(&IsolateRecycled {
            worker,
            reason,
            total,
        });
    }

    fn set_state(&self, worker: usize, new: u8) {
        self.states[worker].store(new, Ordering::Relaxed);
    }
}

/// Worker thread body.
pub(super) fn run(shared: Arc<Shared>, index: usize) {
    let watchdog = match Watchdog::spawn(format!("keel-v8-wd-{index}")) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, worker = index, "cannot start executor watchdog thread");
            return;
        }
    };
    let (op_tx, op_rx) = mpsc::channel::<OpDone>();
    let mut seq: u64 = 0;
    loop {
        shared.set_state(index, STARTING);
        let mut live = isolate::new_isolate(&shared);
        watchdog.set_isolate(live.isolate.thread_safe_handle());
        let mut ready = Ready::new();
        let mut warm = WarmContexts::default();
        // The heap of the isolate when new (snapshot and ready contexts): what warm
        // contexts add is measured from here.
        let mut floor: Option<usize> = None;
        'jobs: loop {
            for kind in ready.wanted() {
                if ready.slots[kind.slot()].is_some() {
                    continue;
                }
                match boot(&shared, index, &mut live, kind) {
                    Some(c) => ready.slots[kind.slot()] = Some(c),
                    None => break 'jobs,
                }
            }
            let heap_floor =
                *floor.get_or_insert_with(|| live.isolate.get_heap_statistics().used_heap_size());
            shared.set_state(index, IDLE);
            let job = shared
                .jobs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .next_job();
            let Some(job) = job else {
                // Pool dropped: shut down. Contexts must go before the isolate.
                drop(warm);
                drop(ready);
                drop(live);
                return;
            };
            if job.enqueued.elapsed() > shared.limits.queue_timeout {
                (job.reply)(Err(ExecError::new(
                    ErrorKind::QueueTimeout,
                    format!(
                        "no isolate became free within {:?} (executor.queue_timeout)",
                        shared.limits.queue_timeout
                    ),
                )));
                continue;
            }
            shared.set_state(index, BUSY);
            seq += 1;
            let kind = ContextKind::for_code(&job.code);
            let reused = if shared.limits.reuse_contexts {
                warm.take(&job.tenant, kind)
            } else {
                None
            };
            let ctx = match reused {
                Some(w) => {
                    shared.reused.fetch_add(1, Ordering::Relaxed);
                    w
                }
                None => {
                    ready.used(kind);
                    let fresh = match ready.take(kind) {
                        Some(c) => Some(c),
                        None => boot(&shared, index, &mut live, kind),
                    };
                    let Some(c) = fresh else {
                        (job.reply)(Err(ExecError::new(
                            ErrorKind::Unavailable,
                            "the isolate could not boot a context",
                        )));
                        break 'jobs;
                    };
                    let globals = if shared.limits.reuse_contexts {
                        warm::global_count(&mut live.isolate, &c)
                    } else {
                        None
                    };
                    WarmContext::fresh(c, globals.unwrap_or(u32::MAX))
                }
            };
            let (outcome, recycle, settled) = execute(
                index,
                &shared,
                &mut live,
                &watchdog,
                &op_tx,
                &op_rx,
                &ctx.context,
                &job,
                seq,
            );
            let heap = live.isolate.get_heap_statistics();
            let small = warm::within_share(
                heap.used_heap_size().saturating_sub(heap_floor),
                shared.limits.heap_limit,
                live.budget.used(),
                shared.limits.array_buffer_limit,
            );
            if shared.limits.reuse_contexts
                && recycle.is_none()
                && settled
                && small
                && outcome.is_ok()
            {
                keep_warm(&mut live, &mut warm, &job.tenant, kind, ctx);
            } else {
                drop(ctx);
            }
            shared.heap_used[index].store(heap.used_heap_size() as u64, Ordering::Relaxed);
            shared.heap_total[index].store(heap.total_heap_size() as u64, Ordering::Relaxed);
            shared.heap_limit[index].store(heap.heap_size_limit() as u64, Ordering::Relaxed);
            shared.array_buffers[index].store(live.budget.used() as u64, Ordering::Relaxed);
            (job.reply)(outcome);
            if let Some(reason) = recycle {
                shared.recycled(index, reason);
                break;
            }
        }
        drop(warm);
        drop(ready);
        drop(live);
    }
}

/// Keeps a context whose call succeeded for its tenant's next call, unless the call changed
/// what its global object holds (then its next call starts fresh, as without reuse).
fn keep_warm(
    live: &mut LiveIsolate,
    warm: &mut WarmContexts,
    tenant: &str,
    kind: ContextKind,
    mut ctx: WarmContext,
) {
    if warm::global_count(&mut live.isolate, &ctx.context) == Some(ctx.globals) {
        ctx.uses += 1;
        warm.keep(tenant, kind, ctx);
    }
}

/// Boots a context of `kind` and records how long it took; `None` (after reporting the
/// isolate as crashed) when it cannot.
fn boot(
    shared: &Shared,
    worker: usize,
    live: &mut LiveIsolate,
    kind: ContextKind,
) -> Option<v8::Global<v8::Context>> {
    let t = Instant::now();
    match isolate::prepare_context(&mut live.isolate, kind) {
        Ok(c) => {
            let which = usize::from(kind != ContextKind::Lean);
            shared.last_context_ns[worker][which]
                .store(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            Some(c)
        }
        Err(e) => {
            tracing::error!(worker, error = %e, "executor context boot failed; recycling isolate");
            shared.recycled(worker, RecycleReason::Crash);
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn execute(
    worker: usize,
    shared: &Shared,
    live: &mut LiveIsolate,
    watchdog: &Watchdog,
    op_tx: &mpsc::Sender<OpDone>,
    op_rx: &mpsc::Receiver<OpDone>,
    ctx: &v8::Global<v8::Context>,
    job: &Job,
    seq: u64,
) -> (Result<ExecOutput, ExecError>, Option<RecycleReason>, bool) {
    let start = Instant::now();
    let deadline = start + job.timeout;
    let isolate = &mut live.isolate;
    isolate.set_slot(ExecState {
        seq,
        deadline,
        pending: HashMap::new(),
        unref: HashSet::new(),
        timers: BinaryHeap::new(),
        bodies: HashMap::new(),
        tasks: HashMap::new(),
        requires: shared.requires.clone(),
        noted: 0,
        next_op: 0,
        fetches: 0,
        logs: Vec::new(),
        log_bytes: 0,
        logs_dropped: 0,
        op_tx: op_tx.clone(),
        fetcher: shared.fetcher.clone(),
        runtime: shared.runtime.clone(),
        max_fetches: shared.limits.max_fetches,
        max_console_lines: shared.limits.max_console_lines,
        max_console_bytes: shared.limits.max_console_bytes,
    });
    watchdog.arm(seq, deadline);
    let deadline_ms = deadline.saturating_duration_since(shared.epoch).as_millis() as u64 + 1;
    shared.deadlines[worker].store(deadline_ms, Ordering::Relaxed);
    let result = {
        v8::scope!(let scope, isolate);
        let context = v8::Local::new(scope, ctx);
        let scope = &mut v8::ContextScope::new(scope, context);
        event_loop::run_in_context(
            scope,
            job,
            deadline,
            op_rx,
            seq,
            shared.limits.max_result_size,
        )
    };
    let fired = watchdog.disarm(seq);
    shared.deadlines[worker].store(0, Ordering::Relaxed);
    let oom = live.guard.hit.swap(false, Ordering::SeqCst);
    let buffers_refused = live.budget.take_refused();
    let terminating = isolate.is_execution_terminating();
    isolate.cancel_terminate_execution();
    let state = isolate.remove_slot::<ExecState>();
    let elapsed = start.elapsed();
    // Nothing the block started is left (an unref'd timer or an unread body would be a
    // stale handle in a context used again).
    let settled = state.as_ref().is_some_and(ExecState::is_idle);
    let (logs, logs_dropped) = state
        .map(|mut s| (std::mem::take(&mut s.logs), s.logs_dropped))
        .unwrap_or_default();
    // Drain completions of this run that arrived too late (they hold no V8 handles).
    while op_rx.try_recv().is_ok() {}

    let timeout_ms = job.timeout.as_millis();
    let outcome = if buffers_refused && result.is_err() {
        // The block failed after an array buffer was refused: name the limit, whatever the
        // block made of V8's RangeError (caught and rethrown, or left uncaught).
        Err(ExecError::new(
            ErrorKind::OutOfMemory,
            format!(
                "Array buffer allocation failed: the block's ArrayBuffers, typed arrays and Buffers exceeded executor.array_buffer_limit_mb ({} MiB)",
                shared.limits.array_buffer_limit / (1024 * 1024)
            ),
        ))
    } else if oom {
        Err(ExecError::new(
            ErrorKind::OutOfMemory,
            format!(
                "JavaScript heap out of memory: the block exceeded the isolate heap limit of {} MiB",
                shared.limits.heap_limit / (1024 * 1024)
            ),
        ))
    } else {
        match result {
            Ok(json) => match serde_json::from_str::<serde_json::Value>(&json) {
                Ok(v) => Ok(ExecOutput {
                    result: v,
                    execution_time: elapsed,
                    logs,
                    logs_dropped,
                }),
                Err(e) => Err(ExecError::new(
                    ErrorKind::Js("TypeError".into()),
                    format!("result is not JSON-serialisable: {e}"),
                )),
            },
            Err(Failure::Terminated) => Err(ExecError::new(
                ErrorKind::Timeout,
                format!("execution timed out after {timeout_ms} ms"),
            )),
            Err(Failure::Js { name, message }) => Err(ExecError::new(ErrorKind::Js(name), message)),
            Err(Failure::NeverSettles) => Err(ExecError::new(
                ErrorKind::Js("Error".into()),
                "the returned Promise can never settle: nothing is pending (no timer, no fetch)",
            )),
            Err(Failure::ResultTooLarge(n)) => Err(ExecError::new(
                ErrorKind::ResultTooLarge,
                format!(
                    "result is {n} bytes, more than executor.max_result_size ({} bytes)",
                    shared.limits.max_result_size
                ),
            )),
            Err(Failure::Undefined) => Err(ExecError::new(
                ErrorKind::Validation,
                "the return value cannot be undefined",
            )),
            Err(Failure::Internal(m)) => Err(ExecError::new(ErrorKind::Js("Error".into()), m)),
        }
    };
    let outcome = outcome.map_err(|e| e.with_time(elapsed));
    let recycle = if oom {
        Some(RecycleReason::Heap)
    } else if fired || terminating {
        Some(RecycleReason::Timeout)
    } else {
        None
    };
    (outcome, recycle, settled)
}
