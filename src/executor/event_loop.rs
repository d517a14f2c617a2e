//! A call's event loop: compiles and runs the block as a function body, then drives its
//! promise, timers and fetches, and turns what it returned or threw into JSON or a
//! [`Failure`].
//!
//! Completion follows the reference: the loop runs to its end. The result is taken only
//! once the returned value has settled *and* nothing the block started is still pending
//! (timers, fetches) — so a block that returns an object and fills it in from a timer or a
//! fetch answers with the filled-in object — all within the call's deadline. Only unref'd
//! timers (`AbortSignal.timeout`) do not hold the call open, as they do not hold Node's
//! process open. A rejected returned promise answers at once. A block whose value is
//! `undefined` is the reference's `ValidationError`.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use super::fetch::{FetchError, FetchResponse, Fetcher};
use super::js_values::{get_str, make_error, set_string, set_val};
use super::natives::ModuleCounts;
use super::worker::Job;

/// The completion of an asynchronous operation started by a native.
pub(crate) struct OpDone {
    pub(crate) seq: u64,
    pub(crate) op: u64,
    pub(crate) result: Result<FetchResponse, FetchError>,
}

/// Per-execution state, stored in an isolate slot so native callbacks can reach it.
pub(crate) struct ExecState {
    pub(crate) seq: u64,
    pub(crate) deadline: Instant,
    pub(crate) pending: HashMap<u64, v8::Global<v8::PromiseResolver>>,
    /// Pending timers that do not hold the call open (unref'd).
    pub(crate) unref: HashSet<u64>,
    pub(crate) timers: BinaryHeap<std::cmp::Reverse<(Instant, u64)>>,
    /// Bodies of answered fetches until the prelude takes them (`takeBody`).
    pub(crate) bodies: HashMap<u64, Vec<u8>>,
    /// Fetches in flight on the runtime, aborted when cancelled or when the call ends.
    pub(crate) tasks: HashMap<u64, tokio::task::AbortHandle>,
    /// Per-module `require` counts of the pool.
    pub(crate) requires: Arc<ModuleCounts>,
    /// Modules this call has counted in `requires` (bit `i` for module `i`): a module is
    /// counted once per call, however often the block requires it and whether or not its
    /// context served an earlier call.
    pub(crate) noted: u32,
    pub(crate) next_op: u64,
    pub(crate) fetches: usize,
    pub(crate) logs: Vec<String>,
    pub(crate) log_bytes: usize,
    pub(crate) logs_dropped: usize,
    pub(crate) op_tx: mpsc::Sender<OpDone>,
    pub(crate) fetcher: Arc<Fetcher>,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) max_fetches: usize,
    pub(crate) max_console_lines: usize,
    pub(crate) max_console_bytes: usize,
}

impl ExecState {
    /// Forgets a pending operation: its promise is never settled and the call no longer
    /// waits for it; a fetch in flight is aborted.
    pub(crate) fn forget(&mut self, op: u64) {
        self.pending.remove(&op);
        self.unref.remove(&op);
        self.bodies.remove(&op);
        if let Some(task) = self.tasks.remove(&op) {
            task.abort();
        }
    }

    /// Whether nothing the call started is left: no operation, timer, unread body or fetch
    /// (a context used again must hold no handle to this call's work).
    pub(crate) fn is_idle(&self) -> bool {
        self.pending.is_empty()
            && self.timers.is_empty()
            && self.bodies.is_empty()
            && self.tasks.is_empty()
    }

    /// Operations the call still waits for.
    fn holding(&self) -> usize {
        self.pending.len().saturating_sub(self.unref.len())
    }
}

impl Drop for ExecState {
    /// A call that ends (answered, timed out, failed) takes its fetches with it.
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.abort();
        }
    }
}

/// Why a run ended without a value.
pub(crate) enum Failure {
    Js {
        name: String,
        message: String,
    },
    Terminated,
    NeverSettles,
    ResultTooLarge(usize),
    /// The block's value was `undefined` (the reference's ValidationError).
    Undefined,
    Internal(String),
}

pub(super) fn run_in_context(
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
    // A data property whatever was there: a setter an earlier call of a warm context put on
    // `input` never sees this call's value.
    if global.create_data_property(tc, key.into(), input) != Some(true) {
        return Err(Failure::Internal("the input global cannot be set".into()));
    }

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

    let promise = v8::Local::<v8::Promise>::try_from(value).ok();
    let value = loop {
        let settled = match promise {
            None => Some(value),
            Some(p) => match p.state() {
                v8::PromiseState::Fulfilled => Some(p.result(tc)),
                v8::PromiseState::Rejected => {
                    let e = p.result(tc);
                    return Err(js_failure(tc, e));
                }
                v8::PromiseState::Pending => None,
            },
        };
        let (holding, next_timer) = match tc.get_slot::<ExecState>() {
            Some(st) => (st.holding(), st.timers.peek().map(|t| t.0 .0)),
            None => return Err(Failure::Internal("execution state lost".into())),
        };
        if holding == 0 {
            match settled {
                Some(v) => break v,
                None => return Err(Failure::NeverSettles),
            }
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
    };

    if value.is_undefined() {
        return Err(Failure::Undefined);
    }
    if value.is_function() || value.is_symbol() {
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

fn complete_fetch(scope: &mut v8::PinScope<'_, '_>, done: OpDone) {
    let Some(st) = scope.get_slot_mut::<ExecState>() else {
        return;
    };
    st.tasks.remove(&done.op);
    let Some(resolver) = st.pending.remove(&done.op) else {
        return;
    };
    let resolver = v8::Local::new(scope, &resolver);
    match done.result {
        Ok(mut resp) => {
            let body = std::mem::take(&mut resp.body);
            let length = body.len();
            if let Some(st) = scope.get_slot_mut::<ExecState>() {
                st.bodies.insert(done.op, body);
            }
            let obj = v8::Object::new(scope);
            set_val(
                scope,
                obj,
                "status",
                v8::Integer::new(scope, resp.status as i32).into(),
            );
            set_string(scope, obj, "statusText", &resp.status_text);
            set_string(scope, obj, "url", &resp.url);
            // The body waits in Rust: the prelude allocates `length` bytes and takes it.
            set_val(
                scope,
                obj,
                "length",
                v8::Number::new(scope, length as f64).into(),
            );
            set_val(
                scope,
                obj,
                "op",
                v8::Number::new(scope, done.op as f64).into(),
            );
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
            st.unref.remove(&op);
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
