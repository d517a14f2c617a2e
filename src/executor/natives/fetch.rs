//! `fetch`: validates what user code asks for, then hands the request to the Tokio runtime;
//! the event loop resolves the promise when the answer (or the policy's refusal) comes.
//! Bodies cross as bytes both ways: the request's from a typed array, the response's into
//! one the prelude allocates (so it counts against the array-buffer budget).

use std::time::Instant;

use super::super::event_loop::{ExecState, OpDone};
use super::super::fetch::FetchRequest;
use super::super::js_values::{bounded_string, make_error, throw};
use super::{millis, view_bytes};

/// Most header pairs and bytes of header text a `fetch` may send.
const MAX_FETCH_HEADERS: u32 = 256;
const MAX_FETCH_HEADER_BYTES: usize = 64 * 1024;
/// Longest URL a `fetch` may name.
const MAX_URL_LENGTH: usize = 16 * 1024;

pub(super) fn native_fetch(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(resolver) = v8::PromiseResolver::new(scope) else {
        return;
    };
    let promise = resolver.get_promise(scope);
    // `[promise, op]`; op -1 until the request is under way (a refusal rejects at once).
    let refused_pair = [promise.into(), v8::Number::new(scope, -1.0).into()];
    rv.set(v8::Array::new_with_elements(scope, &refused_pair).into());
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
        match view_bytes(body_arg) {
            Some(b) if b.len() <= max => Some(b.to_vec()),
            Some(_) => {
                return reject(
                    scope,
                    &format!("fetch: the request body is larger than {max} bytes (executor.fetch.max_request_size)"),
                )
            }
            None => return reject(scope, "fetch: the request body must be bytes"),
        }
    };
    let timeout_ms = args.get(4).number_value(scope);
    let manual = args.get(5).is_true();
    let global = v8::Global::new(scope, resolver);
    let mut op_id = None;
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
            op_id = Some(op);
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
            let task = st.runtime.spawn(async move {
                let result = fetcher.fetch(req).await;
                let _ = tx.send(OpDone { seq, op, result });
            });
            st.tasks.insert(op, task.abort_handle());
            None
        }
    };
    if let Some(msg) = refused {
        let e = make_error(scope, "TypeError", &msg);
        resolver.reject(scope, e);
    }
    let op = v8::Number::new(scope, op_id.map_or(-1.0, |o| o as f64));
    let pair = [promise.into(), op.into()];
    rv.set(v8::Array::new_with_elements(scope, &pair).into());
}

/// `takeBody(op, uint8array)`: copies a completed fetch's body (kept in Rust since the
/// answer came) into the array the prelude allocated for it, `length` bytes long.
pub(super) fn native_take_body(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    _rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(op) = args.get(0).number_value(scope).filter(|n| *n >= 0.0) else {
        return throw(scope, "TypeError", "takeBody: bad operation id");
    };
    let Ok(view) = v8::Local::<v8::ArrayBufferView>::try_from(args.get(1)) else {
        return throw(scope, "TypeError", "takeBody: expected a Uint8Array");
    };
    let Some(body) = scope
        .get_slot_mut::<ExecState>()
        .and_then(|st| st.bodies.remove(&(op as u64)))
    else {
        return throw(scope, "TypeError", "takeBody: no such body");
    };
    let len = view.byte_length();
    if len != body.len() {
        return throw(scope, "TypeError", "takeBody: wrong length");
    }
    let ptr = view.data() as *mut u8;
    if len == 0 || ptr.is_null() {
        return;
    }
    // SAFETY: `ptr` points at `len` bytes of the view's live backing store; no JS runs
    // while we hold the slice.
    let out = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
    out.copy_from_slice(&body);
}
