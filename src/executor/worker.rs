//! One isolate on its own OS thread: takes jobs from the pool's queue, runs each in a fresh
//! context deserialized from the snapshot, drives its promises, timers and fetches to
//! completion (the event loop), and replaces its isolate after a termination.
//!
//! Latency: the context for the *next* job is created and booted right after a job is
//! answered, while the thread would otherwise sit idle, so a request only pays for
//! compiling and running its own code.

use std::collections::{BinaryHeap, HashMap};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::error::{ErrorKind, ExecError};
use super::fetch::{FetchError, FetchRequest, FetchResponse, Fetcher};
use super::metrics::{Counters, ExecutorMetrics, STATES};
use super::snapshot::Snapshot;
use super::watchdog::Watchdog;

/// A code block to run.
pub struct Job {
    pub code: String,
    pub input_json: String,
    pub timeout: Duration,
    pub enqueued: Instant,
    pub reply: oneshot::Sender<Result<ExecOutput, ExecError>>,
}

/// A successful run.
#[derive(Debug, Clone)]
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
    pub jobs: Mutex<mpsc::Receiver<Job>>,
    pub counters: Counters,
    pub metrics: ExecutorMetrics,
    /// Per-worker state index into [`STATES`] and last heap figures.
    pub states: Vec<AtomicU8>,
    pub heap_used: Vec<AtomicU64>,
    pub heap_total: Vec<AtomicU64>,
    pub heap_limit: Vec<AtomicU64>,
    /// Context creation time of the last context each worker prepared (ns), for health.
    pub last_context_ns: Vec<AtomicU64>,
}

const STARTING: u8 = 0;
const IDLE: u8 = 1;
const BUSY: u8 = 2;

impl Shared {
    fn set_state(&self, worker: usize, new: u8) {
        let old = self.states[worker].swap(new, Ordering::Relaxed);
        if old != new {
            self.metrics
                .isolates
                .with_label_values(&[STATES[old as usize]])
                .dec();
            self.metrics
                .isolates
                .with_label_values(&[STATES[new as usize]])
                .inc();
        }
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
    current.saturating_mul(2)
}

/// An isolate plus the guard its callback points at. Field order matters: the isolate is
/// dropped before the guard.
struct LiveIsolate {
    isolate: v8::OwnedIsolate,
    guard: Box<HeapGuard>,
}

fn new_isolate(shared: &Shared) -> LiveIsolate {
    let params = v8::CreateParams::default()
        .snapshot_blob(v8::StartupData::from(shared.snapshot.blob))
        .heap_limits(0, shared.limits.heap_limit);
    let mut isolate = v8::Isolate::new(params);
    isolate.set_microtasks_policy(v8::MicrotasksPolicy::Explicit);
    let guard = Box::new(HeapGuard {
        handle: isolate.thread_safe_handle(),
        hit: AtomicBool::new(false),
        soft_limit: shared.limits.heap_limit / 4 * 3,
    });
    let data = &*guard as *const HeapGuard as *mut c_void;
    isolate.add_near_heap_limit_callback(near_heap_limit, data);
    isolate.add_gc_epilogue_callback(gc_epilogue, data, v8::GCType::kGCTypeAll);
    LiveIsolate { isolate, guard }
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
        let mut next: Option<v8::Global<v8::Context>> = None;
        loop {
            if next.is_none() {
                let t = Instant::now();
                match prepare_context(&mut live.isolate) {
                    Ok(c) => next = Some(c),
                    Err(e) => {
                        tracing::error!(worker = index, error = %e, "executor context boot failed; recycling isolate");
                        break;
                    }
                }
                shared.last_context_ns[index]
                    .store(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
            shared.set_state(index, IDLE);
            let job = {
                let rx = shared.jobs.lock().unwrap_or_else(|p| p.into_inner());
                rx.recv()
            };
            let Ok(job) = job else {
                // Pool dropped: shut down. Contexts must go before the isolate.
                drop(next);
                drop(live);
                return;
            };
            shared.counters.queued.fetch_sub(1, Ordering::Relaxed);
            shared.metrics.queue_depth.dec();
            if job.reply.is_closed() {
                continue;
            }
            if job.enqueued.elapsed() > shared.limits.queue_timeout {
                let _ = job.reply.send(Err(ExecError::new(
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
            let Some(ctx) = next.take() else { continue };
            let (outcome, recycle) = execute(
                &shared, &mut live, &watchdog, &op_tx, &op_rx, ctx, &job, seq,
            );
            let heap = live.isolate.get_heap_statistics();
            let used = heap.used_heap_size() as u64;
            let old = shared.heap_used[index].swap(used, Ordering::Relaxed);
            shared.metrics.heap_used.add(used as i64 - old as i64);
            shared.heap_total[index].store(heap.total_heap_size() as u64, Ordering::Relaxed);
            shared.heap_limit[index].store(heap.heap_size_limit() as u64, Ordering::Relaxed);
            let _ = job.reply.send(outcome);
            if let Some(reason) = recycle {
                shared.counters.recycled.fetch_add(1, Ordering::Relaxed);
                shared.metrics.recycles.with_label_values(&[reason]).inc();
                tracing::info!(worker = index, reason, "executor isolate recycled");
                break;
            }
        }
        drop(next);
        drop(live);
    }
}

/// Creates a context from the snapshot and hands it its natives.
fn prepare_context(isolate: &mut v8::OwnedIsolate) -> Result<v8::Global<v8::Context>, String> {
    v8::scope!(let scope, isolate);
    let context = v8::Context::new(scope, Default::default());
    let scope = &mut v8::ContextScope::new(scope, context);
    let natives = v8::Object::new(scope);
    set_fn(scope, natives, "log", native_log)?;
    set_fn(scope, natives, "fetch", native_fetch)?;
    set_fn(scope, natives, "sleep", native_sleep)?;
    set_fn(scope, natives, "random", native_random)?;
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
    shared: &Shared,
    live: &mut LiveIsolate,
    watchdog: &Watchdog,
    op_tx: &mpsc::Sender<OpDone>,
    op_rx: &mpsc::Receiver<OpDone>,
    ctx: v8::Global<v8::Context>,
    job: &Job,
    seq: u64,
) -> (Result<ExecOutput, ExecError>, Option<&'static str>) {
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
    let oom = live.guard.hit.swap(false, Ordering::SeqCst);
    let terminating = isolate.is_execution_terminating();
    isolate.cancel_terminate_execution();
    let state = isolate.remove_slot::<ExecState>();
    drop(ctx);
    let elapsed = start.elapsed();
    let (logs, logs_dropped) = state.map(|s| (s.logs, s.logs_dropped)).unwrap_or_default();
    // Drain completions of this run that arrived too late (they hold no V8 handles).
    while op_rx.try_recv().is_ok() {}

    let timeout_ms = job.timeout.as_millis();
    let outcome = if oom {
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
        Some("heap_limit")
    } else if fired || terminating {
        Some("terminated")
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
    let ptr = view.data() as *mut u8;
    if ptr.is_null() {
        return;
    }
    // SAFETY: `ptr` points at `len` bytes of the view's live backing store; no JS runs
    // while we hold the slice.
    let bytes = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
    rand::fill(bytes);
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
    let ms = args
        .get(0)
        .number_value(scope)
        .filter(|n| n.is_finite() && *n > 0.0)
        .unwrap_or(0.0)
        .min(86_400_000.0);
    let Some(resolver) = promise_pair(scope, &mut rv) else {
        return;
    };
    let global = v8::Global::new(scope, resolver);
    if let Some(st) = scope.get_slot_mut::<ExecState>() {
        let op = st.next_op;
        st.next_op += 1;
        let at = Instant::now() + Duration::from_secs_f64(ms / 1000.0);
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
    let method = args.get(0).to_rust_string_lossy(scope);
    let url = args.get(1).to_rust_string_lossy(scope);
    let mut headers = Vec::new();
    if let Ok(arr) = v8::Local::<v8::Array>::try_from(args.get(2)) {
        let n = arr.length();
        let mut i = 0;
        while i + 1 < n {
            let k = arr
                .get_index(scope, i)
                .map(|v| v.to_rust_string_lossy(scope));
            let v = arr
                .get_index(scope, i + 1)
                .map(|v| v.to_rust_string_lossy(scope));
            if let (Some(k), Some(v)) = (k, v) {
                headers.push((k, v));
            }
            i += 2;
        }
    }
    let body_arg = args.get(3);
    let body = if body_arg.is_null_or_undefined() {
        None
    } else {
        Some(body_arg.to_rust_string_lossy(scope))
    };
    let timeout_ms = args
        .get(4)
        .number_value(scope)
        .filter(|n| n.is_finite() && *n > 0.0);
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
            let mut timeout = st.fetcher.default_timeout().min(remaining);
            if let Some(ms) = timeout_ms {
                timeout = timeout.min(Duration::from_secs_f64(ms / 1000.0));
            }
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
