//! keel's Pingora HTTP application: what runs for each client request on a proxy thread.
//!
//! # Why keel is an `HttpServerApp`, not a `ProxyHttp`
//!
//! Pingora's proxy loop (`ProxyHttp`: `upstream_peer` → connect → duplex streaming, retried
//! through `fail_to_connect`/`error_while_proxy`) cannot give keel two things it needs:
//! 1. **status-based retry** — there is no hook that turns an upstream 503 into a retry
//!    (cloudflare/pingora#873); returning an error from `upstream_response_filter` does
//!    abort before the header goes downstream, but then
//! 2. **body replay** — a retry resends the body only from Pingora's retry buffer, which is
//!    fixed at 64 KiB (`BODY_BUF_LIMIT`) and dropped when exceeded; a body read ahead of the
//!    loop (needed anyway to rewrite `model`) is not forwarded at all if it is larger
//!    (praxis-proxy/praxis#75). LLM prompts are routinely larger than 64 KiB.
//!
//! So keel reads the whole request body once (up to `retry.max_body`) and drives the tries
//! itself: per try it sends the header and the (re-mapped) body over a pooled or new
//! connection from Pingora's TLS-capable transport connector, reads the response header with
//! Pingora's HTTP/1 client session, and only then decides — a connect error, a timeout or a
//! status in `on_status` means "try another node" and nothing has been written to the client
//! yet. The first header written downstream is the commitment point: from then on bytes are
//! relayed as they arrive, and an upstream failure ends the client's response instead of
//! retrying.
//!
//! Since none of `ProxyHttp`'s later phases would ever run, keel implements Pingora's
//! [`HttpServerApp`] directly (one level below `ProxyHttp`, the layer `pingora-proxy` itself
//! is built on): Pingora's listener, HTTP/1 server session (parsing, framing, keep-alive,
//! connection reuse) and graceful shutdown stay; the per-request state machine of the proxy
//! framework (modules, cache phases, a boxed session per request) is skipped — it cost about
//! a tenth of keel's CPU per request on the benchmark. What that layer did that keel needs is
//! here: shutdown wakes idle keep-alive readers, malformed requests get a 400, `CONNECT` a
//! 405, an error before the commitment point a JSON answer (a panic included: 500), and the
//! connection is reused only after a complete exchange, with pipelined requests kept for
//! their turn.

use super::head::ClientHead;
use super::pool::Picked;
use super::retry::{Next, RetryState, TryFailure};
use super::usage::UsageMeter;
use super::{ClientKey, Gateway, InFlight};
use crate::limits::CloseReason;
use async_trait::async_trait;
use bytes::Bytes;
use futures::FutureExt;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::protocols::http::client::HttpSession as UpstreamSession;
use pingora::protocols::http::ServerSession as Session;
use pingora::server::ShutdownWatch;
use pingora::upstreams::peer::HttpPeer;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::time::Instant as TokioInstant;

/// Longest `x-request-id` taken from a client.
const MAX_REQUEST_ID: usize = 128;

pub struct GatewayService {
    gw: Arc<Gateway>,
    /// The LLM route (issue 7): generation requests take [`super::llm`]'s driver. One for
    /// all proxy threads (its dedup table and metrics are shared).
    llm: Arc<super::llm::gateway::LlmRoute>,
    /// Set by Pingora's cleanup when this thread's listener stops: answers from now on close
    /// their connection, and idle keep-alive connections are dropped.
    stopping: AtomicBool,
    /// Wakes the connections waiting for their next request when `stopping` is set.
    stop: tokio::sync::Notify,
}

impl GatewayService {
    pub fn new(gw: Arc<Gateway>, llm: Arc<super::llm::gateway::LlmRoute>) -> Self {
        GatewayService {
            gw,
            llm,
            stopping: AtomicBool::new(false),
            stop: tokio::sync::Notify::new(),
        }
    }
}

/// The state of one client request while keel answers it.
pub struct RequestCtx {
    pub(super) started: Instant,
    pub(super) request_id: String,
    /// Counts the request as in flight until it is dropped (shutdown drains on it).
    _in_flight: InFlight,
    /// Status sent to the client (0 until a header went out).
    pub(super) status: u16,
    /// A response header reached the client: no retry, no error answer any more.
    pub(super) committed: bool,
    /// The response broke after it was committed (the client got it cut short).
    cut_short: bool,
}

/// How one try ended.
enum TryOutcome {
    /// The response (or a client-facing part of it) was relayed.
    Relayed,
    /// Nothing reached the client; another node may be tried.
    Failed(TryFailure),
    /// The exchange broke after the commitment point (or the client went away).
    Aborted(Box<Error>),
}

impl RequestCtx {
    /// Counts the request as in flight (graceful shutdown waits for it).
    fn new(gw: &Arc<Gateway>, request_id: String) -> Self {
        RequestCtx {
            started: Instant::now(),
            request_id,
            _in_flight: InFlight::new(gw),
            status: 0,
            committed: false,
            cut_short: false,
        }
    }
}

#[async_trait]
impl HttpServerApp for GatewayService {
    /// One request on a client connection; `Some` hands the connection back to Pingora for
    /// the next request (keep-alive).
    ///
    /// Order: wait for the request header (or shutdown), refuse what keel cannot proxy, then
    /// [`GatewayService::serve`] answers completely. An `Err` from it means the response could
    /// not be completed: a JSON error answer when nothing reached the client yet, else the
    /// connection is closed (which tells the client its response is incomplete).
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: Session,
        _shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        // A new connection has `header_read_timeout` for its first request head, a kept-alive
        // one `idle_timeout` for its next (Pingora itself would wait forever on the latter).
        let kept_alive = session.take_connection_user_context().is_some();
        let (limit, reason) = if kept_alive {
            (self.gw.config().idle_timeout, CloseReason::IdleTimeout)
        } else {
            (
                self.gw.config().header_read_timeout,
                CloseReason::HeaderTimeout,
            )
        };
        let read = tokio::select! {
            // Biased: a request already buffered is served even when shutdown began.
            biased;
            // Pingora's timeout arms a timer only when the read has to wait.
            read = pingora::time::timeout(limit, session.read_request()) => match read {
                Ok(read) => read,
                Err(_) => {
                    self.gw.conns.closed(reason);
                    return None;
                }
            },
            () = self.stopped() => return None,
        };
        match read {
            Ok(true) => {}
            // The client closed an idle keep-alive connection: normal.
            Ok(false) => return None,
            Err(e) => {
                if matches!(e.etype(), ErrorType::InvalidHTTPHeader) {
                    let mut ctx = RequestCtx::new(&self.gw, new_request_id());
                    session.set_keepalive(None);
                    // Pingora's error text quotes the raw request; the cause says enough.
                    let message = match &e.cause {
                        Some(cause) => format!("malformed HTTP request: {cause}"),
                        None => "malformed HTTP request".to_string(),
                    };
                    let _ = respond_json(
                        &mut session,
                        &mut ctx,
                        400,
                        "invalid_request",
                        &message,
                        None,
                    )
                    .await;
                } else {
                    tracing::debug!(error = %e, "client connection ended before a request");
                }
                session.shutdown().await;
                return None;
            }
        }
        if self.stopping.load(Ordering::Acquire) {
            session.set_keepalive(None);
        }
        // Requests a client wrote ahead on this connection (pipelining) are kept for the
        // next turn and answered in order; without this, Pingora closes the connection
        // after this answer and the requests already sent are lost.
        session.set_pipelining_enabled(true);
        let mut ctx = RequestCtx::new(&self.gw, request_id(session.req_header()));
        let served = if session.req_header().method == http::Method::CONNECT {
            session.set_keepalive(None);
            respond_json(
                &mut session,
                &mut ctx,
                405,
                "invalid_request",
                "CONNECT is not proxied",
                None,
            )
            .await
        } else {
            let request_id = ctx.request_id.clone();
            catching_panics(&request_id, self.serve(&mut session, &mut ctx)).await
        };
        let reusable = match served {
            Ok(()) => true,
            Err(e) => {
                self.answer_error(&mut session, &e, &mut ctx).await;
                false
            }
        };
        self.observe(&ctx);
        if !reusable {
            session.shutdown().await;
            return None;
        }
        let mut settings = HttpPersistentSettings::for_session(&session);
        // Marks the next request on this connection as a kept-alive one (a unit struct: no
        // allocation).
        settings.set_user_context(Box::new(KeptAlive));
        session
            .finish()
            .await
            .ok()
            .flatten()
            .map(|stream| ReusedHttpStream::from_reusable_stream(stream, settings))
    }

    /// Called once this thread's listener stopped accepting (graceful shutdown).
    async fn http_cleanup(&self) {
        self.stopping.store(true, Ordering::Release);
        self.stop.notify_waiters();
    }
}

impl GatewayService {
    /// Resolves once shutdown began (see [`HttpServerApp::http_cleanup`]).
    async fn stopped(&self) {
        let notified = self.stop.notified();
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    /// The answer to a request whose serving failed: a JSON error unless a response header
    /// already went to the client (then the connection is simply closed).
    async fn answer_error(&self, session: &mut Session, e: &Error, ctx: &mut RequestCtx) {
        if ctx.committed {
            ctx.cut_short = true;
            return;
        }
        let (status, kind) = error_answer(e);
        tracing::debug!(request_id = %ctx.request_id, error = %e, status, "request failed before any answer");
        session.set_keepalive(None);
        if respond_json(session, ctx, status, kind, &e.to_string(), None)
            .await
            .is_err()
        {
            ctx.status = 0;
        }
    }

    /// The client-facing metrics of a finished request (answered or failed).
    fn observe(&self, ctx: &RequestCtx) {
        let class = if ctx.status == 0 || ctx.cut_short {
            "aborted"
        } else {
            crate::telemetry::metrics::status_class(ctx.status)
        };
        self.gw
            .pool
            .metrics
            .observe_proxy(class, ctx.started.elapsed().as_secs_f64());
    }
}

impl GatewayService {
    pub(super) fn gateway(&self) -> &Arc<Gateway> {
        &self.gw
    }

    async fn serve(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        let gw = &self.gw;
        let cfg = gw.config();
        let key = client_key(session.req_header());
        match gw.check_client_key(key, || client_ip(session)) {
            ClientKey::Accepted => {}
            ClientKey::Throttled(wait) => {
                session.set_keepalive(None);
                let secs = wait.as_secs().max(1);
                let message =
                    format!("too many wrong API keys from this address; retry in {secs} s");
                return respond_json(session, ctx, 429, "rate_limited", &message, Some(secs)).await;
            }
            ClientKey::Refused => {
                session.set_keepalive(None);
                return respond_json(
                    session,
                    ctx,
                    401,
                    "authentication_error",
                    "invalid or missing API key (x-api-key or Authorization: Bearer)",
                    None,
                )
                .await;
            }
        }
        if let Err(e) = super::path::check(session.req_header().uri.path()) {
            session.set_keepalive(None);
            return respond_json(session, ctx, 400, "invalid_request", &e.to_string(), None).await;
        }
        let body = match read_body(session, cfg.retry.max_body).await? {
            Some(b) => b,
            None => {
                session.set_keepalive(None);
                let message = format!(
                    "request body is larger than proxy.retry.max_body ({} bytes)",
                    cfg.retry.max_body
                );
                return respond_json(session, ctx, 413, "request_too_large", &message, None).await;
            }
        };
        // Generation requests (chat completions, messages) take the LLM route: held headers,
        // stream continuation, error classes, dedup. Anything else stays on the generic path.
        if let Some(request) = super::llm::gateway::llm_request(session.req_header(), &body) {
            return self.llm.serve(self, session, ctx, request, body).await;
        }
        let deadline = TokioInstant::from_std(ctx.started) + cfg.timeouts.total;
        let client_head = ClientHead::of(session.req_header());
        let mut retry = RetryState::new(&cfg.retry);
        loop {
            let picked = match gw.pool.pick(|n| retry.has_tried(n), Instant::now()) {
                Some(p) => p,
                None if retry.attempts() == 0 => match self.wait_in_queue(deadline).await {
                    Some(p) => p,
                    None => {
                        let after = gw.pool.retry_after(Instant::now()).as_secs().max(1);
                        return respond_json(
                            session,
                            ctx,
                            503,
                            "no_available_nodes",
                            "no available nodes: every node is disabled, ejected or warming up",
                            Some(after),
                        )
                        .await;
                    }
                },
                None => return self.all_failed(session, ctx, &retry).await,
            };
            let name = picked.node.name.clone();
            match self
                .try_node(session, ctx, &client_head, &picked, &body, deadline)
                .await
            {
                TryOutcome::Relayed => return Ok(()),
                TryOutcome::Aborted(e) => return Err(e),
                TryOutcome::Failed(failure) => {
                    tracing::warn!(
                        node = %name,
                        request_id = %ctx.request_id,
                        attempt = retry.attempts() + 1,
                        error = %failure,
                        "upstream try failed; retrying on another node if one is left"
                    );
                    gw.pool
                        .metrics
                        .retries
                        .with_label_values(&[&name, failure.kind()])
                        .inc();
                    match retry.failed(&name, failure) {
                        Next::RetryAfter(wait) => {
                            let until = (TokioInstant::now() + wait).min(deadline);
                            tokio::time::sleep_until(until).await;
                            if TokioInstant::now() >= deadline {
                                return self.all_failed(session, ctx, &retry).await;
                            }
                        }
                        Next::GiveUp => return self.all_failed(session, ctx, &retry).await,
                    }
                }
            }
        }
    }

    /// Waits in the bounded queue for a node when the queue is enabled.
    pub(super) async fn wait_in_queue(&self, deadline: TokioInstant) -> Option<Picked> {
        let gw = &self.gw;
        if !gw.config().queue.enabled {
            return None;
        }
        gw.queue
            .wait(&gw.pool.metrics, &gw.pool.available, deadline, || {
                gw.pool.pick(|_| false, Instant::now())
            })
            .await
            .ok()
    }

    async fn all_failed(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        retry: &RetryState,
    ) -> Result<()> {
        let message = format!(
            "all nodes failed ({} tried): {}",
            retry.nodes().join(", "),
            retry.describe()
        );
        respond_json(session, ctx, 502, "all_nodes_failed", &message, None).await
    }

    /// One try on one node: send, read the response header, decide, then relay.
    async fn try_node(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        client_head: &ClientHead,
        picked: &Picked,
        body: &Bytes,
        deadline: TokioInstant,
    ) -> TryOutcome {
        let gw = &self.gw;
        let cfg = gw.config();
        let node = &picked.node;
        node.in_flight.fetch_add(1, Ordering::AcqRel);
        let _in_flight = NodeInFlight(node);
        let started = Instant::now();
        let try_deadline = deadline.min(TokioInstant::now() + cfg.retry.per_try_timeout);
        let body = node_body(node, body);
        let head = client_head.for_node(node, &ctx.request_id, body.len());
        let sent = tokio::time::timeout_at(
            try_deadline,
            super::conns::exchange(&gw.transport, node, &head, &body),
        )
        .await;
        let (mut upstream, peer) = match sent {
            Ok(Ok(pair)) => pair,
            Ok(Err(failure)) => return self.failed(picked, started, failure),
            Err(_) => return self.failed(picked, started, TryFailure::Timeout),
        };
        let Some(header) = upstream.response_header().cloned() else {
            return self.failed(
                picked,
                started,
                TryFailure::Upstream("no response header".into()),
            );
        };
        let status = header.status.as_u16();
        let m = &gw.pool.metrics;
        m.observe_ttfb(node, started.elapsed().as_secs_f64());
        if cfg.retry.on_status.contains(&status) {
            // Not committed: the client has seen nothing. Drop this connection (its body is
            // unread) and let the loop try another node.
            return self.failed(picked, started, TryFailure::Status(status));
        }

        // Commitment point: from here on, no retry.
        let meter = UsageMeter::for_response(
            header
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            header
                .headers
                .get("content-encoding")
                .and_then(|v| v.to_str().ok()),
        );
        let head_request = session.req_header().method == http::Method::HEAD;
        let downstream = downstream_header(&header, &ctx.request_id, head_request);
        let done_at_header = upstream.response_done() || head_request;
        ctx.status = status;
        ctx.committed = true;
        if let Err(e) = session.write_response_header(Box::new(downstream)).await {
            // The client went away before anything reached it; the node did its job.
            self.finish(picked, started, status, true);
            return TryOutcome::Aborted(e);
        }
        if done_at_header {
            if let Err(e) = session.write_response_body(Bytes::new(), true).await {
                return TryOutcome::Aborted(e);
            }
            self.finish(picked, started, status, true);
            super::conns::checkin(&node.conns, upstream, &peer).await;
            return TryOutcome::Relayed;
        }
        self.relay(
            session, picked, started, status, upstream, peer, meter, deadline,
        )
        .await
    }

    /// Streams the response body to the client chunk by chunk as it arrives.
    #[allow(clippy::too_many_arguments)]
    async fn relay(
        &self,
        session: &mut Session,
        picked: &Picked,
        started: Instant,
        status: u16,
        mut upstream: UpstreamSession,
        peer: Arc<HttpPeer>,
        mut meter: UsageMeter,
        deadline: TokioInstant,
    ) -> TryOutcome {
        let cfg = self.gw.config();
        upstream.set_read_timeout(Some(cfg.timeouts.read));
        loop {
            let read = match tokio::time::timeout_at(deadline, upstream.read_response_body()).await
            {
                Ok(r) => r,
                Err(_) => Error::e_explain(
                    ReadTimedout,
                    format!(
                        "total request time ({:?}) exceeded mid-response",
                        cfg.timeouts.total
                    ),
                ),
            };
            match read {
                Ok(Some(chunk)) => {
                    // Forward first; usage accounting only looks at what already went out.
                    if let Err(e) = session.write_response_body(chunk.clone(), false).await {
                        self.finish(picked, started, status, true);
                        return TryOutcome::Aborted(e);
                    }
                    meter.feed(&chunk);
                }
                Ok(None) => {
                    let client = session.write_response_body(Bytes::new(), true).await;
                    self.finish(picked, started, status, true);
                    if let Some(usage) = meter.finish() {
                        self.gw.pool.metrics.count_tokens(&picked.node, usage);
                    }
                    super::conns::checkin(&picked.node.conns, upstream, &peer).await;
                    return match client {
                        Ok(()) => TryOutcome::Relayed,
                        Err(e) => TryOutcome::Aborted(e),
                    };
                }
                Err(e) => {
                    // The node broke mid-response: a node failure, and the client's response
                    // ends here (the connection closes without a clean end).
                    tracing::warn!(node = %picked.node.name, error = %e, "upstream failed mid-response");
                    self.finish(picked, started, status, false);
                    return TryOutcome::Aborted(e.into_up());
                }
            }
        }
    }

    fn failed(&self, picked: &Picked, started: Instant, failure: TryFailure) -> TryOutcome {
        let class = match &failure {
            TryFailure::Status(s) => crate::telemetry::metrics::status_class(*s),
            _ => "error",
        };
        let m = &self.gw.pool.metrics;
        m.count_upstream(&picked.node, class);
        m.observe_upstream_duration(&picked.node, started.elapsed().as_secs_f64());
        self.gw
            .pool
            .record(&picked.node, false, picked.probe, Instant::now());
        TryOutcome::Failed(failure)
    }

    /// Records a committed try: a 5xx answer or a broken body counts against the node.
    fn finish(&self, picked: &Picked, started: Instant, status: u16, body_ok: bool) {
        let m = &self.gw.pool.metrics;
        let class = if body_ok {
            crate::telemetry::metrics::status_class(status)
        } else {
            "error"
        };
        m.count_upstream(&picked.node, class);
        m.observe_upstream_duration(&picked.node, started.elapsed().as_secs_f64());
        let success = body_ok && status < 500;
        self.gw
            .pool
            .record(&picked.node, success, picked.probe, Instant::now());
    }
}

/// Decrements a node's in-flight count however the try ends (DELETE drains on it).
pub(super) struct NodeInFlight<'a>(pub(super) &'a super::node::Node);

impl Drop for NodeInFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The client's `x-request-id` when it is short printable ASCII, else a new UUID.
fn request_id(req: &RequestHeader) -> String {
    req.headers
        .get(super::head::X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID)
        .map(str::to_string)
        .unwrap_or_else(new_request_id)
}

/// A fresh UUIDv4 request id from the thread-local RNG (`Uuid::new_v4` without the
/// `fast-rng` feature makes one `getrandom` syscall per request).
fn new_request_id() -> String {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    // Encoded into a stack buffer: `to_string` goes through the formatting machinery.
    let mut buf = uuid::Uuid::encode_buffer();
    id.hyphenated().encode_lower(&mut buf).to_owned()
}

/// The client's IP address (`None` on a Unix socket).
fn client_ip(session: &Session) -> Option<std::net::IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// The user context of a connection's persistent settings: its next request is a kept-alive
/// one.
struct KeptAlive;

/// The key a client presented: `x-api-key`, else `Authorization: Bearer`.
pub(super) fn client_key(req: &RequestHeader) -> Option<&str> {
    let headers = &req.headers;
    if let Some(k) = headers
        .get(super::head::X_API_KEY)
        .and_then(|v| v.to_str().ok())
    {
        return Some(k.trim());
    }
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The error type of a request whose handling panicked (see [`catching_panics`]).
const HANDLER_PANIC: ErrorType = ErrorType::new("HandlerPanic");

/// Runs keel's handling of one request with panics caught at this boundary, so that a bug
/// costs one request instead of the connection task: the panic is logged with its message
/// and becomes a [`HANDLER_PANIC`] error, which [`GatewayService::answer_error`] answers
/// with a 500 JSON when nothing reached the client yet. Guards the future held (the node
/// in-flight counts) are dropped by the unwind; the request's own in-flight guard lives in
/// its `RequestCtx`, outside the future, and is dropped when the request ends.
///
/// `AssertUnwindSafe`: after a panic the session is only used to write that one answer
/// and is then closed (an error is never followed by keep-alive), and the state shared
/// across requests is atomics and poison-tolerant locks.
async fn catching_panics(request_id: &str, serve: impl Future<Output = Result<()>>) -> Result<()> {
    match AssertUnwindSafe(serve).catch_unwind().await {
        Ok(served) => served,
        Err(payload) => {
            let panic = crate::telemetry::logging::panic_message(&*payload);
            tracing::error!(request_id, %panic, "a proxy request handler panicked");
            Error::e_explain(
                HANDLER_PANIC,
                "internal error: the request failed unexpectedly (see keel's log)",
            )
        }
    }
}

/// Status and error type of the JSON answer to a request that failed before anything was
/// sent: a caught panic is keel's fault (500), a client that sent something unreadable
/// (a malformed chunked body, a body cut short) gets a 400, anything else happened on the
/// way to the nodes (502).
fn error_answer(e: &Error) -> (u16, &'static str) {
    if e.etype() == &HANDLER_PANIC {
        return (500, "internal");
    }
    match e.esource() {
        ErrorSource::Downstream => (400, "invalid_request"),
        _ => (502, "upstream_error"),
    }
}

/// Reads the whole request body; `None` when it exceeds `max`.
async fn read_body(session: &mut Session, max: usize) -> Result<Option<Bytes>> {
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Ok(None);
    }
    let expects_continue = session
        .req_header()
        .headers
        .get("expect")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue {
        session
            .write_continue_response()
            .await
            .map_err(|e| e.into_down())?;
    }
    let mut body = super::body::Collected::with_capacity(declared.unwrap_or(0));
    // A body that cannot be read (bad chunk framing, cut short, too slow) is the client's
    // fault: marked downstream, it is answered 400, never 502.
    while let Some(chunk) = session
        .read_request_body()
        .await
        .map_err(|e| e.into_down())?
    {
        if body.size() + chunk.len() > max {
            return Ok(None);
        }
        body.push(chunk);
    }
    Ok(Some(body.finish()))
}

/// The body for this node: `model` rewritten by its `model_mapping` when it applies.
fn node_body(node: &super::node::Node, body: &Bytes) -> Bytes {
    let mapping = &node.config.model_mapping;
    if mapping.is_empty() || body.first() != Some(&b'{') {
        return body.clone();
    }
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.clone();
    };
    let Some(to) = doc
        .get("model")
        .and_then(|m| m.as_str())
        .and_then(|m| super::llm::dialect::map_model(mapping, m))
        .map(str::to_string)
    else {
        return body.clone();
    };
    doc["model"] = serde_json::Value::String(to);
    serde_json::to_vec(&doc)
        .map(Bytes::from)
        .unwrap_or_else(|_| body.clone())
}

/// The client's response header: the upstream's status and headers minus hop-by-hop ones,
/// chunked when the upstream framed by closing, and the request id.
fn downstream_header(
    upstream: &ResponseHeader,
    request_id: &str,
    head_request: bool,
) -> ResponseHeader {
    let mut resp = upstream.clone();
    for h in ["connection", "keep-alive", "proxy-connection", "upgrade"] {
        resp.remove_header(h);
    }
    resp.set_version(http::Version::HTTP_11);
    let status = resp.status.as_u16();
    let bodiless = head_request || matches!(status, 204 | 304);
    if !bodiless
        && resp.headers.get("content-length").is_none()
        && resp.headers.get("transfer-encoding").is_none()
    {
        let _ = resp.insert_header("transfer-encoding", "chunked");
    }
    let _ = resp.insert_header("x-request-id", request_id);
    resp
}

/// A complete JSON error answer in keel's shape, `{"error":{"type","message"}}`.
pub(super) async fn respond_json(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
    kind: &str,
    message: &str,
    retry_after: Option<u64>,
) -> Result<()> {
    let body =
        Bytes::from(serde_json::json!({"error": {"type": kind, "message": message}}).to_string());
    let mut resp = ResponseHeader::build_no_case(status, Some(5))?;
    resp.insert_header("content-type", "application/json")?;
    resp.insert_header("content-length", body.len().to_string())?;
    resp.insert_header("x-request-id", ctx.request_id.as_str())?;
    if let Some(secs) = retry_after {
        resp.insert_header("retry-after", secs.to_string())?;
    }
    ctx.status = status;
    ctx.committed = true;
    session.write_response_header(Box::new(resp)).await?;
    session.write_response_body(body, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_in_request_handling_becomes_a_500_error_and_releases_its_guards() {
        let gauge = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        /// Stands for the guards a handler holds (node in-flight counts, permits).
        struct Guard(Arc<std::sync::atomic::AtomicUsize>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let held = gauge.clone();
        let failed = catching_panics("rid", async move {
            held.fetch_add(1, Ordering::SeqCst);
            let _guard = Guard(held);
            tokio::task::yield_now().await;
            if true {
                panic!("handler bug");
            }
            Ok(())
        })
        .await
        .expect_err("a panic is an error");
        assert_eq!(failed.etype(), &HANDLER_PANIC);
        assert_eq!(error_answer(&failed), (500, "internal"));
        assert!(
            !failed.to_string().contains("handler bug"),
            "the client is not told the panic's text: {failed}"
        );
        assert_eq!(gauge.load(Ordering::SeqCst), 0, "the guard was dropped");

        // Without a panic the outcome passes through untouched.
        assert!(catching_panics("rid", async { Ok(()) }).await.is_ok());
        let e = catching_panics("rid", async { Error::e_explain(ReadError, "x") })
            .await
            .expect_err("an error stays an error");
        assert_eq!(e.etype(), &ReadError);
    }

    #[test]
    fn client_body_errors_are_400_upstream_errors_502() {
        let client = Error::explain(ReadError, "bad chunk size").into_down();
        assert_eq!(error_answer(&client), (400, "invalid_request"));
        let upstream = Error::explain(ConnectRefused, "node down").into_up();
        assert_eq!(error_answer(&upstream), (502, "upstream_error"));
        let unset = Error::explain(ReadError, "no source");
        assert_eq!(error_answer(&unset), (502, "upstream_error"));
    }

    #[test]
    fn generated_request_ids_are_distinct_v4_uuids() {
        let a = super::new_request_id();
        let b = super::new_request_id();
        assert_ne!(a, b);
        let u = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version_num(), 4);
        assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(a.len(), 36);
    }
}
