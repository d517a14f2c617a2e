//! One isolate on its own OS thread: takes jobs from the pool's queue, runs each in a fresh
//! context deserialized from the snapshot, drives its promises, timers and fetches to
//! completion (the event loop), and replaces its isolate after a termination.
//!
//! Latency: each worker keeps one booted context of each [`ContextKind`] ready; after a job
//! is answered it replaces only the one that job used, while the thread would otherwise sit
//! idle, so a request only pays for compiling and running its own code.

use std::collections::{BinaryHeap, HashMap};
use std::ffi::c_void;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::alloc::{self, Budget};
use super::error::{ErrorKind, ExecError};
use super::fetch::{FetchError, FetchRequest, FetchResponse, Fetcher};
use super::pool::RecycleSink;
use super::snapshot::{self, Snapshot, WITH_LIBRARIES};
use super::watchdog::Watchdog;
use crate::telemetry::{Event, Level};

/// Where idle workers take jobs from. In the executor process that is its socket, read by
/// whichever worker is idle (no thread hop between the read and the run); in tests, a
/// channel fed by [`super::pool::IsolatePool::submit`].
pub trait JobSource: Send {
    /// The next job, blocking; `None` once no more will come (the pool shuts down).
    fn next_job(&mut self) -> Option<Job>;
}

/// The in-process queue behind `IsolatePool::submit`.
pub struct ChannelJobs {
    pub rx: mpsc::Receiver<Job>,
    pub queued: Arc<AtomicUsize>,
}

impl JobSource for ChannelJobs {
    fn next_job(&mut self) -> Option<Job> {
        let job = self.rx.recv().ok()?;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        Some(job)
    }
}

/// Where a job's outcome goes; called exactly once, on the worker thread.
pub type Reply = Box<dyn FnOnce(Result<ExecOutput, ExecError>) + Send>;

/// A code block to run.
pub struct Job {
    pub code: String,
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
pub struct WorkerLimits {
    pub heap_limit: usize,
    /// Bytes of array-buffer backing stores one isolate may hold (see [`alloc`]).
    pub array_buffer_limit: usize,
    pub max_result_size: usize,
    pub max_console_lines: usize,
    pub max_console_bytes: usize,
    pub max_fetches: usize,
    pub queue_timeout: Duration,
}

/// Everything the workers share.
pub struct Shared {
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
    /// Creation time of the last context of each [`ContextKind`] each worker prepared (ns),
    /// for health and the bench: `[worker][kind]`.
    pub last_context_ns: Vec<[AtomicU64; 2]>,
    /// Where `executor.isolate_recycled` goes.
    pub on_recycle: RecycleSink,
}

/// Which of the snapshot's two contexts a job starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextKind {
    /// Runtime only; libraries are instantiated on `require`.
    Lean = 0,
    /// All seven libraries already instantiated.
    WithLibraries = 1,
}

impl ContextKind {
    const ALL: [ContextKind; 2] = [ContextKind::Lean, ContextKind::WithLibraries];

    /// A block that mentions `require` starts with the libraries in place. A textual hint
    /// only: a block that reaches `require` some other way still gets its module, from the
    /// lean context's lazy path.
    fn for_code(code: &str) -> ContextKind {
        if code.contains("require") {
            ContextKind::WithLibraries
        } else {
            ContextKind::Lean
        }
    }
}

/// Why a worker threw its isolate away and built a new one from the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecycleReason {
    /// Execution was terminated at its deadline (watchdog or event loop).
    Timeout,
    /// The block hit the isolate's heap limit.
    Heap,
    /// The isolate could not boot a fresh context.
    Crash,
}

impl RecycleReason {
    /// The `reason` label of `keel_executor_isolate_recycles_total`.
    pub fn as_str(self) -> &'static str {
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
pub struct IsolateRecycled {
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

/// Set by the near-heap-limit callback; lives (boxed) as long as its isolate.
struct HeapGuard {
    handle: v8::IsolateHandle,
    hit: AtomicBool,
    /// Used-heap level after a GC at which the running block is terminated. Below the hard
    /// limit on purpose: V8 aborts the whole process when a scavenge cannot promote into a
    /// full old generation, and the near-heap-limit callback is not consulted on that path.
    soft_limit: usize,
    /// The most the near-heap-limit callback lets the heap grow to while a terminated block
    /// unwinds: should termination ever not take (see platform.rs on OSR), V8 then stops
    /// the process at a bounded size instead of doubling the limit until the machine swaps.
    ceiling: usize,
}

/// After every GC: terminate the running block once the heap passes the soft limit.
unsafe extern "C" fn gc_epilogue(
    isolate: v8::UnsafeRawIsolatePtr,
    _type: v8::GCType,
    _flags: v8::GCCallbackFlags,
    data: *mut c_void,
) {
    // SAFETY: as for `near_heap_limit`; the isolate pointer is the one V8 is collecting,
    // on this thread.
    let guard = unsafe { &*(data as *const HeapGuard) };
    let mut ptr = isolate;
    let iso = unsafe { v8::Isolate::ref_from_raw_isolate_ptr_mut(&mut ptr) };
    let used = iso.get_heap_statistics().used_heap_size();
    if used > guard.soft_limit && !guard.hit.swap(true, Ordering::SeqCst) {
        guard.handle.terminate_execution();
    }
}

extern "C" fn near_heap_limit(data: *mut c_void, current: usize, _initial: usize) -> usize {
    // SAFETY: `data` is the HeapGuard registered with this isolate; it is dropped only
    // after the isolate (field order of `LiveIsolate`).
    let guard = unsafe { &*(data as *const HeapGuard) };
    guard.hit.store(true, Ordering::SeqCst);
    guard.handle.terminate_execution();
    // Headroom so V8 can unwind the terminated script instead of aborting the process;
    // the isolate is thrown away right after.
    current.saturating_mul(2).min(guard.ceiling).max(current)
}

/// An isolate plus the guard its callback points at and its array-buffer budget. Field
/// order matters: the isolate is dropped before the guard.
struct LiveIsolate {
    isolate: v8::OwnedIsolate,
    guard: Box<HeapGuard>,
    budget: Arc<Budget>,
}

fn new_isolate(shared: &Shared) -> LiveIsolate {
    let budget = Budget::new(shared.limits.array_buffer_limit);
    let params = v8::CreateParams::default()
        .snapshot_blob(v8::StartupData::from(shared.snapshot.blob))
        .array_buffer_allocator(alloc::allocator(&budget))
        .heap_limits(0, shared.limits.heap_limit);
    let mut isolate = v8::Isolate::new(params);
    isolate.set_microtasks_policy(v8::MicrotasksPolicy::Explicit);
    let guard = Box::new(HeapGuard {
        handle: isolate.thread_safe_handle(),
        hit: AtomicBool::new(false),
        soft_limit: shared.limits.heap_limit / 4 * 3,
        ceiling: shared.limits.heap_limit.saturating_mul(4),
    });
    let data = &*guard as *const HeapGuard as *mut c_void;
    isolate.add_near_heap_limit_callback(near_heap_limit, data);
    isolate.add_gc_epilogue_callback(gc_epilogue, data, v8::GCType::kGCTypeAll);
    LiveIsolate {
        isolate,
        guard,
        budget,
    }
}

/// The completion of an asynchronous operation started by a native.
struct OpDone {
    seq: u64,
    op: u64,
    result: Result<FetchResponse, FetchError>,
}

/// Per-execution state, stored in an isolate slot so native callbacks can reach it.
struct ExecState {
    seq: u64,
    deadline: Instant,
    pending: HashMap<u64, v8::Global<v8::PromiseResolver>>,
    timers: BinaryHeap<std::cmp::Reverse<(Instant, u64)>>,
    next_op: u64,
    fetches: usize,
    logs: Vec<String>,
    log_bytes: usize,
    logs_dropped: usize,
    op_tx: mpsc::Sender<OpDone>,
    fetcher: Arc<Fetcher>,
    runtime: tokio::runtime::Handle,
    max_fetches: usize,
    max_console_lines: usize,
    max_console_bytes: usize,
}

/// Why a run ended without a value.
enum Failure {
    Js { name: String, message: String },
    Terminated,
    NeverSettles,
    ResultTooLarge(usize),
    Internal(String),
}

/// Worker thread body.
pub fn run(shared: Arc<Shared>, index: usize) {
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
        let mut live = new_isolate(&shared);
        watchdog.set_isolate(live.isolate.thread_safe_handle());
        let mut ready: [Option<v8::Global<v8::Context>>; 2] = [None, None];
        'jobs: loop {
            for kind in ContextKind::ALL {
                if ready[kind as usize].is_some() {
                    continue;
                }
                let t = Instant::now();
                match prepare_context(&mut live.isolate, kind) {
                    Ok(c) => ready[kind as usize] = Some(c),
                    Err(e) => {
                        tracing::error!(worker = index, error = %e, "executor context boot failed; recycling isolate");
                        shared.recycled(index, RecycleReason::Crash);
                        break 'jobs;
                    }
                }
                shared.last_context_ns[index][kind as usize]
                    .store(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
            shared.set_state(index, IDLE);
            let job = shared
                .jobs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .next_job();
            let Some(job) = job else {
                // Pool dropped: shut down. Contexts must go before the isolate.
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
            let Some(ctx) = ready[ContextKind::for_code(&job.code) as usize].take() else {
                (job.reply)(Err(ExecError::new(
                    ErrorKind::Unavailable,
                    "the isolate had no context ready",
                )));
                continue;
            };
            let (outcome, recycle) = execute(
                index, &shared, &mut live, &watchdog, &op_tx, &op_rx, ctx, &job, seq,
            );
            let heap = live.isolate.get_heap_statistics();
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
        drop(ready);
        drop(live);
    }
}

/// Creates a context of `kind` from the snapshot and hands it its natives.
fn prepare_context(
    isolate: &mut v8::OwnedIsolate,
    kind: ContextKind,
) -> Result<v8::Global<v8::Context>, String> {
    v8::scope!(let scope, isolate);
    let context = match kind {
        ContextKind::Lean => v8::Context::new(scope, Default::default()),
        ContextKind::WithLibraries => {
            v8::Context::from_snapshot(scope, WITH_LIBRARIES, Default::default())
                .ok_or("the snapshot has no context with libraries")?
        }
    };
    let scope = &mut v8::ContextScope::new(scope, context);
    let natives = v8::Object::new(scope);
    set_fn(scope, natives, "log", guarded!(native_log))?;
    set_fn(scope, natives, "fetch", guarded!(native_fetch))?;
    set_fn(scope, natives, "sleep", guarded!(native_sleep))?;
    set_fn(scope, natives, "random", guarded!(native_random))?;
    set_fn(
        scope,
        natives,
        "loadLibraries",
        guarded!(native_load_libraries),
    )?;
    let global = context.global(scope);
    let key = v8::String::new(scope, "__keel_boot").ok_or("string")?;
    let boot = global
        .get(scope, key.into())
        .and_then(|v| v8::Local::<v8::Function>::try_from(v).ok())
        .ok_or("__keel_boot missing from snapshot")?;
    if boot.call(scope, global.into(), &[natives.into()]).is_none() {
        return Err("__keel_boot threw".into());
    }
    Ok(v8::Global::new(scope, context))
}

fn set_fn(
    scope: &mut v8::PinScope<'_, '_>,
    obj: v8::Local<'_, v8::Object>,
    name: &str,
    f: impl v8::MapFnTo<v8::FunctionCallback>,
) -> Result<(), String> {
    let func = v8::Function::new(scope, f).ok_or("function")?;
    let key = v8::String::new(scope, name).ok_or("string")?;
    obj.set(scope, key.into(), func.into()).ok_or("set")?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn execute(
    worker: usize,
    shared: &Shared,
    live: &mut LiveIsolate,
    watchdog: &Watchdog,
    op_tx: &mpsc::Sender<OpDone>,
    op_rx: &mpsc::Receiver<OpDone>,
    ctx: v8::Global<v8::Context>,
    job: &Job,
    seq: u64,
) -> (Result<ExecOutput, ExecError>, Option<RecycleReason>) {
    let start = Instant::now();
    let deadline = start + job.timeout;
    let isolate = &mut live.isolate;
    isolate.set_slot(ExecState {
        seq,
        deadline,
        pending: HashMap::new(),
        timers: BinaryHeap::new(),
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
        let context = v8::Local::new(scope, &ctx);
        let scope = &mut v8::ContextScope::new(scope, context);
        run_in_context(
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
    drop(ctx);
    let elapsed = start.elapsed();
    let (logs, logs_dropped) = state.map(|s| (s.logs, s.logs_dropped)).unwrap_or_default();
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
    (outcome, recycle)
}

fn run_in_context(
    scope: &mut v8::PinScope<'_, '_>,
    job: &Job,
    deadline: Instant,
    op_rx: &mpsc::Receiver<OpDone>,
    seq: u64,
    max_result: usize,
) -> Result<String, Failure> {
    v8::tc_scope!(let tc, scope);
    let context = tc.get_current_context();
    let global = context.global(tc);

    let input_src = v8::String::new(tc, &job.input_json)
        .ok_or_else(|| Failure::Internal("input too large for V8".into()))?;
    let input = match v8::json::parse(tc, input_src) {
        Some(v) => v,
        None => return Err(take_failure(tc)),
    };
    let key = v8::String::new(tc, "input").ok_or_else(|| Failure::Internal("string".into()))?;
    global.set(tc, key.into(), input);

    let code = v8::String::new(tc, &job.code)
        .ok_or_else(|| Failure::Internal("code too large for V8".into()))?;
    let name =
        v8::String::new(tc, "codeblock.js").ok_or_else(|| Failure::Internal("string".into()))?;
    let origin = v8::ScriptOrigin::new(
        tc,
        name.into(),
        0,
        0,
        false,
        0,
        None,
        false,
        false,
        false,
        None,
    );
    let mut source = v8::script_compiler::Source::new(code, Some(&origin));
    let func = match v8::script_compiler::compile_function(
        tc,
        &mut source,
        &[],
        &[],
        v8::script_compiler::CompileOptions::NoCompileOptions,
        v8::script_compiler::NoCacheReason::NoReason,
    ) {
        Some(f) => f,
        None => return Err(take_failure(tc)),
    };
    let value = match func.call(tc, global.into(), &[]) {
        Some(v) => v,
        None => return Err(take_failure(tc)),
    };
    tc.perform_microtask_checkpoint();
    if tc.has_terminated() || tc.is_execution_terminating() {
        return Err(Failure::Terminated);
    }

    let value = if let Ok(promise) = v8::Local::<v8::Promise>::try_from(value) {
        loop {
            match promise.state() {
                v8::PromiseState::Fulfilled => break promise.result(tc),
                v8::PromiseState::Rejected => {
                    let e = promise.result(tc);
                    return Err(js_failure(tc, e));
                }
                v8::PromiseState::Pending => {}
            }
            let (pending, next_timer) = match tc.get_slot::<ExecState>() {
                Some(st) => (st.pending.len(), st.timers.peek().map(|t| t.0 .0)),
                None => return Err(Failure::Internal("execution state lost".into())),
            };
            if pending == 0 {
                return Err(Failure::NeverSettles);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Failure::Terminated);
            }
            let wake = next_timer.map_or(deadline, |t| t.min(deadline));
            match op_rx.recv_timeout(wake.saturating_duration_since(now)) {
                Ok(done) if done.seq == seq => complete_fetch(tc, done),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => fire_timers(tc),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Failure::Internal("event loop channel closed".into()))
                }
            }
            tc.perform_microtask_checkpoint();
            if tc.has_terminated() || tc.is_execution_terminating() {
                return Err(Failure::Terminated);
            }
        }
    } else {
        value
    };

    if value.is_undefined() || value.is_function() || value.is_symbol() {
        return Ok("null".to_string());
    }
    let json = match v8::json::stringify(tc, value) {
        Some(s) => s,
        None => return Err(take_failure(tc)),
    };
    let len = json.utf8_length(tc);
    if len > max_result {
        return Err(Failure::ResultTooLarge(len));
    }
    Ok(json.to_rust_string_lossy(tc))
}

/// The pending exception (or termination) of a TryCatch as a Failure.
fn take_failure(tc: &mut v8::PinnedRef<'_, v8::TryCatch<'_, '_, v8::HandleScope<'_>>>) -> Failure {
    if tc.has_terminated() || tc.is_execution_terminating() {
        return Failure::Terminated;
    }
    let Some(exc) = tc.exception() else {
        return Failure::Terminated;
    };
    let mut f = js_failure(tc, exc);
    if let Failure::Js { name, message } = &mut f {
        if name == "SyntaxError" {
            if let Some(line) = tc.message().and_then(|m| m.get_line_number(tc)) {
                message.push_str(&format!(" (line {line})"));
            }
        }
    }
    f
}

/// Name and message of a thrown value.
fn js_failure(scope: &mut v8::PinScope<'_, '_>, exc: v8::Local<'_, v8::Value>) -> Failure {
    if let Ok(obj) = v8::Local::<v8::Object>::try_from(exc) {
        let name = get_str(scope, obj, "name");
        let message = get_str(scope, obj, "message");
        if name.is_some() || message.is_some() {
            let name = name
                .filter(|n| !n.is_empty() && n.len() <= 64)
                .unwrap_or_else(|| "Error".to_string());
            return Failure::Js {
                name,
                message: message.unwrap_or_default(),
            };
        }
    }
    Failure::Js {
        name: "Error".into(),
        message: exc.to_rust_string_lossy(scope),
    }
}

fn get_str(
    scope: &mut v8::PinScope<'_, '_>,
    obj: v8::Local<'_, v8::Object>,
    key: &str,
) -> Option<String> {
    let k = v8::String::new(scope, key)?;
    let v = obj.get(scope, k.into())?;
    if v.is_string() {
        Some(v.to_rust_string_lossy(scope))
    } else {
        None
    }
}

fn complete_fetch(scope: &mut v8::PinScope<'_, '_>, done: OpDone) {
    let Some(resolver) = scope
        .get_slot_mut::<ExecState>()
        .and_then(|st| st.pending.remove(&done.op))
    else {
        return;
    };
    let resolver = v8::Local::new(scope, &resolver);
    match done.result {
        Ok(resp) => {
            let obj = v8::Object::new(scope);
            set_val(
                scope,
                obj,
                "status",
                v8::Integer::new(scope, resp.status as i32).into(),
            );
            set_string(scope, obj, "statusText", &resp.status_text);
            set_string(scope, obj, "url", &resp.url);
            set_string(scope, obj, "body", &resp.body);
            set_val(
                scope,
                obj,
                "redirected",
                v8::Boolean::new(scope, resp.redirected).into(),
            );
            let flat: Vec<v8::Local<v8::Value>> = resp
                .headers
                .iter()
                .flat_map(|(k, v)| [k.as_str(), v.as_str()])
                .filter_map(|s| v8::String::new(scope, s).map(Into::into))
                .collect();
            let arr = v8::Array::new_with_elements(scope, &flat);
            set_val(scope, obj, "headers", arr.into());
            resolver.resolve(scope, obj.into());
        }
        Err(e) => {
            let err = make_error(scope, e.js_name(), &e.to_string());
            resolver.reject(scope, err);
        }
    }
}

fn fire_timers(scope: &mut v8::PinScope<'_, '_>) {
    let now = Instant::now();
    let mut due = Vec::new();
    if let Some(st) = scope.get_slot_mut::<ExecState>() {
        while let Some(std::cmp::Reverse((at, op))) = st.timers.peek().copied() {
            if at > now {
                break;
            }
            st.timers.pop();
            if let Some(r) = st.pending.remove(&op) {
                due.push(r);
            }
        }
    }
    for r in due {
        let r = v8::Local::new(scope, &r);
        let undefined = v8::undefined(scope).into();
        r.resolve(scope, undefined);
    }
}

fn set_val(
    scope: &mut v8::PinScope<'_, '_>,
    obj: v8::Local<'_, v8::Object>,
    key: &str,
    value: v8::Local<'_, v8::Value>,
) {
    if let Some(k) = v8::String::new(scope, key) {
        obj.set(scope, k.into(), value);
    }
}

fn set_string(
    scope: &mut v8::PinScope<'_, '_>,
    obj: v8::Local<'_, v8::Object>,
    key: &str,
    value: &str,
) {
    if let Some(v) = v8::String::new(scope, value) {
        set_val(scope, obj, key, v.into());
    }
}

/// A JS error object with the given name (`TypeError` uses the real constructor).
fn make_error<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    name: &str,
    message: &str,
) -> v8::Local<'s, v8::Value> {
    let msg = v8::String::new(scope, message).unwrap_or_else(|| v8::String::empty(scope));
    let err = match name {
        "TypeError" => v8::Exception::type_error(scope, msg),
        "RangeError" => v8::Exception::range_error(scope, msg),
        _ => v8::Exception::error(scope, msg),
    };
    if name != "TypeError" && name != "RangeError" && name != "Error" {
        if let Ok(obj) = v8::Local::<v8::Object>::try_from(err) {
            set_string(scope, obj, "name", name);
        }
    }
    err
}

fn throw(scope: &mut v8::PinScope<'_, '_>, name: &str, message: &str) {
    let e = make_error(scope, name, message);
    scope.throw_exception(e);
}

// ---- natives -------------------------------------------------------------------------------
//
// A native runs inside a V8 callback: a Rust panic there cannot unwind through V8's C++
// frames and would abort the executor process. Every native therefore validates what user
// code hands it (NaN, ±Infinity, 1e300, huge strings, wrong types all become a JS
// exception or a clamped value), and [`guarded!`] still catches a panic that slips through
// and throws it as an `Error` into the calling block.

/// Wraps a native so that a panic inside it becomes a JS exception for that call only.
macro_rules! guarded {
    ($native:ident) => {
        |scope: &mut v8::PinScope<'_, '_>,
         args: v8::FunctionCallbackArguments<'_>,
         rv: v8::ReturnValue<'_, v8::Value>| {
            catch_native_panic(scope, stringify!($native), move |scope| {
                $native(scope, args, rv)
            })
        }
    };
}
use guarded;

fn catch_native_panic(
    scope: &mut v8::PinScope<'_, '_>,
    name: &str,
    f: impl FnOnce(&mut v8::PinScope<'_, '_>),
) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| f(scope))).is_err() {
        tracing::error!(
            native = name,
            "a native binding panicked; the call gets an Error"
        );
        if !scope.is_execution_terminating() {
            throw(scope, "Error", &format!("internal error in {name}"));
        }
    }
}

/// Milliseconds from a JS number as a duration: NaN, negative and non-finite values are
/// `None`; anything past `cap` is `cap`.
pub(crate) fn millis(value: Option<f64>, cap: Duration) -> Option<Duration> {
    let ms = value.filter(|n| n.is_finite() && *n > 0.0)?;
    Some(Duration::try_from_secs_f64(ms / 1000.0).map_or(cap, |d| d.min(cap)))
}

/// Most header pairs and bytes of header text a `fetch` may send.
const MAX_FETCH_HEADERS: u32 = 256;
const MAX_FETCH_HEADER_BYTES: usize = 64 * 1024;
/// Longest URL a `fetch` may name.
const MAX_URL_LENGTH: usize = 16 * 1024;
/// The Web Crypto limit of one `getRandomValues` call.
const MAX_RANDOM_BYTES: usize = 65_536;

fn native_log(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_, v8::Value>,
) {
    let level = args.get(0).to_rust_string_lossy(scope);
    let Ok(text) = v8::Local::<v8::String>::try_from(args.get(1)) else {
        return;
    };
    let len = text.length();
    let Some(st) = scope.get_slot::<ExecState>() else {
        return;
    };
    let fits = st.logs.len() < st.max_console_lines
        && st.log_bytes.saturating_add(len) <= st.max_console_bytes;
    if !fits {
        if let Some(st) = scope.get_slot_mut::<ExecState>() {
            st.logs_dropped += 1;
        }
        return;
    }
    let line = format!("{level}: {}", text.to_rust_string_lossy(scope));
    if let Some(st) = scope.get_slot_mut::<ExecState>() {
        st.log_bytes += line.len();
        st.logs.push(line);
    }
}

/// Evaluates the library bundle into the calling (lean) context, for a `require` there.
/// V8's compilation cache makes every call after an isolate's first skip the parse.
fn native_load_libraries(
    scope: &mut v8::PinScope<'_, '_>,
    _args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_, v8::Value>,
) {
    if let Err(e) = snapshot::run_script(scope, snapshot::LIBS_BUNDLE, snapshot::LIBS_NAME) {
        if !scope.is_execution_terminating() {
            throw(
                scope,
                "Error",
                &format!("loading the libraries failed: {e}"),
            );
        }
    }
}

fn native_random(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Ok(view) = v8::Local::<v8::ArrayBufferView>::try_from(args.get(0)) else {
        throw(scope, "TypeError", "getRandomValues: expected a TypedArray");
        return;
    };
    let len = view.byte_length();
    if len == 0 {
        return;
    }
    if len > MAX_RANDOM_BYTES {
        throw(
            scope,
            "QuotaExceededError",
            &format!("getRandomValues: {len} bytes requested, at most {MAX_RANDOM_BYTES}"),
        );
        return;
    }
    let ptr = view.data() as *mut u8;
    if ptr.is_null() {
        return;
    }
    // SAFETY: `ptr` points at `len` bytes of the view's live backing store; no JS runs
    // while we hold the slice.
    let bytes = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
    rand::fill(bytes);
}

/// A value as a string when it is a string (or a primitive) of at most `max` UTF-16 units;
/// `None` for objects (no user `toString` runs inside a native) and longer strings.
fn bounded_string(
    scope: &mut v8::PinScope<'_, '_>,
    value: v8::Local<'_, v8::Value>,
    max: usize,
) -> Option<String> {
    if value.is_object() {
        return None;
    }
    let s = value.to_string(scope)?;
    if s.length() > max {
        return None;
    }
    Some(s.to_rust_string_lossy(scope))
}

fn promise_pair<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    rv: &mut v8::ReturnValue<'_, v8::Value>,
) -> Option<v8::Local<'s, v8::PromiseResolver>> {
    let resolver = v8::PromiseResolver::new(scope)?;
    let promise = resolver.get_promise(scope);
    rv.set(promise.into());
    Some(resolver)
}

fn native_sleep(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let number = args.get(0).number_value(scope);
    let delay = millis(number, Duration::from_secs(86_400)).unwrap_or_default();
    let Some(resolver) = promise_pair(scope, &mut rv) else {
        return;
    };
    let global = v8::Global::new(scope, resolver);
    if let Some(st) = scope.get_slot_mut::<ExecState>() {
        let op = st.next_op;
        st.next_op += 1;
        let at = Instant::now() + delay;
        st.pending.insert(op, global);
        st.timers.push(std::cmp::Reverse((at, op)));
    }
}

fn native_fetch(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(resolver) = promise_pair(scope, &mut rv) else {
        return;
    };
    let reject = |scope: &mut v8::PinScope<'_, '_>, msg: &str| {
        let e = make_error(scope, "TypeError", msg);
        resolver.reject(scope, e);
    };
    let Some(method) = bounded_string(scope, args.get(0), 32) else {
        return reject(scope, "fetch: the method must be a short string");
    };
    let Some(url) = bounded_string(scope, args.get(1), MAX_URL_LENGTH) else {
        return reject(
            scope,
            &format!("fetch: the URL must be a string of at most {MAX_URL_LENGTH} characters"),
        );
    };
    let mut headers = Vec::new();
    if let Ok(arr) = v8::Local::<v8::Array>::try_from(args.get(2)) {
        let n = arr.length();
        if n > MAX_FETCH_HEADERS * 2 {
            return reject(
                scope,
                &format!("fetch: more than {MAX_FETCH_HEADERS} request headers"),
            );
        }
        let mut bytes = 0usize;
        let mut i = 0;
        while i + 1 < n {
            let k = arr.get_index(scope, i);
            let v = arr.get_index(scope, i + 1);
            let (Some(k), Some(v)) = (k, v) else {
                // A throwing getter or proxy trap: its exception is pending in the caller.
                return;
            };
            let room = MAX_FETCH_HEADER_BYTES.saturating_sub(bytes);
            let (Some(k), Some(v)) = (
                bounded_string(scope, k, room),
                bounded_string(scope, v, room),
            ) else {
                return reject(
                    scope,
                    &format!("fetch: request headers larger than {MAX_FETCH_HEADER_BYTES} bytes"),
                );
            };
            bytes += k.len() + v.len();
            if bytes > MAX_FETCH_HEADER_BYTES {
                return reject(
                    scope,
                    &format!("fetch: request headers larger than {MAX_FETCH_HEADER_BYTES} bytes"),
                );
            }
            headers.push((k, v));
            i += 2;
        }
    }
    let body_arg = args.get(3);
    let body = if body_arg.is_null_or_undefined() {
        None
    } else {
        let max = scope
            .get_slot::<ExecState>()
            .map_or(0, |st| st.fetcher.max_request_size());
        match bounded_string(scope, body_arg, max) {
            Some(b) if b.len() <= max => Some(b),
            _ => {
                return reject(
                    scope,
                    &format!("fetch: the request body is larger than {max} bytes (executor.fetch.max_request_size)"),
                )
            }
        }
    };
    let timeout_ms = args.get(4).number_value(scope);
    let manual = args.get(5).is_true();
    let global = v8::Global::new(scope, resolver);

    let refused = {
        let Some(st) = scope.get_slot_mut::<ExecState>() else {
            return;
        };
        if st.fetches >= st.max_fetches {
            Some(format!(
                "fetch refused: more than {} requests in one execution (executor.fetch.max_requests_per_execution)",
                st.max_fetches
            ))
        } else {
            st.fetches += 1;
            let remaining = st.deadline.saturating_duration_since(Instant::now());
            let cap = st.fetcher.default_timeout().min(remaining);
            let timeout = millis(timeout_ms, cap).unwrap_or(cap);
            let op = st.next_op;
            st.next_op += 1;
            st.pending.insert(op, global);
            let req = FetchRequest {
                method,
                url,
                headers,
                body,
                timeout,
                manual_redirect: manual,
            };
            let tx = st.op_tx.clone();
            let fetcher = st.fetcher.clone();
            let seq = st.seq;
            st.runtime.spawn(async move {
                let result = fetcher.fetch(req).await;
                let _ = tx.send(OpDone { seq, op, result });
            });
            None
        }
    };
    if let Some(msg) = refused {
        let e = make_error(scope, "TypeError", &msg);
        resolver.reject(scope, e);
    }
}
