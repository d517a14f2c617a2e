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
//! So keel reads the whole request body once (up to `retry.max_body`) and drives the
//! attempts itself: per attempt it sends the header and the (re-mapped) body over a pooled or
//! new connection from Pingora's TLS-capable transport connector, reads the response header
//! with Pingora's HTTP/1 client session, and only then decides — a failed attempt means "try
//! another node" and nothing has been written to the client yet. The first header written
//! downstream is the commitment point: from then on an upstream failure ends the client's
//! response instead of retrying.
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
//!
//! # The phases of one request, in the order they run
//!
//! This file is the dispatcher: it runs the phases and holds no route's logic.
//!
//! 1. **Read the request head** ([`HttpServerApp::process_new_http`]): waits
//!    `header_read_timeout` on a new connection, `idle_timeout` on a kept-alive one, and
//!    stops waiting when shutdown begins. A malformed head gets a JSON 400, `CONNECT` a 405.
//!    The request's state ([`RequestCtx`]) starts here: its clock, its request id, its
//!    in-flight count.
//! 2. **Admit** ([`request::admit`]): client key, path, whole body. A refusal is answered
//!    there and ends the request.
//! 3. **Route** (`GatewayService::serve`): a generation request (chat completions,
//!    messages) takes the LLM route ([`LlmRoute::serve`], whose driver is
//!    [`super::llm::driver`]); anything else the generic route ([`generic::serve`]). A route
//!    answers completely — nodes, attempts, retry policy ([`super::retry`]), relaying —
//!    using the shared request module ([`super::request`]), never this file.
//! 4. **Answer a failure** (`GatewayService::answer_error`): runs when a route returned an
//!    error or panicked ([`request::answer::catching_panics`]). Before the commitment point
//!    the client gets a JSON 400/500/502; after it the connection is closed, which tells
//!    the client its response is incomplete.
//! 5. **Observe** (`GatewayService::observe`): the client-facing request metric, and the
//!    access line ([`access`]), for every request that got past phase 1.
//! 6. **Keep alive**: the connection goes back to Pingora for the next request only after a
//!    complete exchange, with pipelined requests kept for their turn.

use super::generic;
use super::llm::route::{llm_request, LlmRoute};
use super::request::access;
use super::request::answer::{catching_panics, error_answer, respond_error, respond_json};
use super::request::identity::{new_request_id, request_id};
use super::request::{self, RequestCtx};
use super::Gateway;
use crate::limits::CloseReason;
use async_trait::async_trait;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::prelude::*;
use pingora::protocols::http::ServerSession as Session;
use pingora::server::ShutdownWatch;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub(crate) struct GatewayService {
    gw: Arc<Gateway>,
    /// The LLM route (issue 7). One for all proxy threads (its dedup table and metrics are
    /// shared).
    llm: Arc<LlmRoute>,
    /// Set by Pingora's cleanup when this thread's listener stops: answers from now on close
    /// their connection, and idle keep-alive connections are dropped.
    stopping: AtomicBool,
    /// Wakes the connections waiting for their next request when `stopping` is set.
    stop: tokio::sync::Notify,
}

impl GatewayService {
    pub(crate) fn new(gw: Arc<Gateway>, llm: Arc<LlmRoute>) -> Self {
        GatewayService {
            gw,
            llm,
            stopping: AtomicBool::new(false),
            stop: tokio::sync::Notify::new(),
        }
    }
}

#[async_trait]
impl HttpServerApp for GatewayService {
    /// Runs once per request on a client connection, from reading its head to deciding
    /// whether the connection is kept: phases 1 to 6 of the module doc. `Some` hands the
    /// connection back to Pingora for the next request (keep-alive); `None` closes it.
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: Session,
        _shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        // Phase 1. A new connection has `header_read_timeout` for its first request head, a
        // kept-alive one `idle_timeout` for its next (Pingora itself would wait forever on
        // the latter).
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
            // Phases 2 and 3. Boxed: Pingora boxes this method's future per request and
            // moves it twice on the way; a route's future inline would make each move a
            // copy of several kilobytes (see docs/gateway.md, "Restructured").
            let request_id = ctx.request_id.clone();
            let serve = Box::pin(self.serve(&mut session, &mut ctx));
            catching_panics(&request_id, serve).await
        };
        let reusable = match served {
            Ok(()) => true,
            Err(e) => {
                self.answer_error(&mut session, &e, &mut ctx).await;
                false
            }
        };
        self.observe(&ctx);
        self.charge_key(&ctx);
        if self.gw.access.enabled() {
            ctx.access.settle(&self.gw.pool);
        }
        let req = session.req_header();
        self.gw.access.write(
            &ctx,
            req.method.as_str(),
            req.uri.path(),
            (session.body_bytes_read(), session.body_bytes_sent()),
        );
        if !reusable {
            session.shutdown().await;
            return None;
        }
        // Phase 6.
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
    /// Phases 2 and 3: admits the request, then hands it to its route, which answers it
    /// completely. `Err` when the response could not be completed.
    async fn serve(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        let Some(body) = request::admit(&self.gw, session, ctx).await? else {
            return Ok(());
        };
        // Generation requests (chat completions, messages) take the LLM route: held headers,
        // stream continuation, error classes, dedup. Anything else takes the generic route.
        let llm = llm_request(session.req_header(), &body);
        // The model is read for the access line and a key's `models` allow-list.
        if self.gw.access.enabled() || ctx.key_limits.is_some() {
            ctx.access.model = match &llm {
                Some(request) => Some(request.model.clone()),
                None => access::body_model(&body),
            };
        }
        if let Some(limits) = ctx.key_limits.take() {
            match limits.admit(ctx.access.model.as_deref(), Instant::now()) {
                Ok(permit) => ctx.key_permit = Some(permit),
                Err(refusal) => {
                    self.gw.key_metrics.refused(&refusal);
                    let (status, kind, code, after) = refusal.answer();
                    let message = refusal.to_string();
                    return respond_error(session, ctx, status, kind, Some(code), &message, after)
                        .await;
                }
            }
        }
        if let Some(name) = &ctx.access.key_name {
            self.gw
                .key_metrics
                .requests
                .with_label_values(&[name, "admitted"])
                .inc();
        }
        match llm {
            Some(request) => self.llm.serve(&self.gw, session, ctx, request, body).await,
            None => generic::serve(&self.gw, session, ctx, body).await,
        }
    }

    /// Resolves once shutdown began (see [`HttpServerApp::http_cleanup`]).
    async fn stopped(&self) {
        let notified = self.stop.notified();
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    /// Phase 4: the answer to a request whose serving failed — a JSON error unless a
    /// response header already went to the client (then the connection is simply closed).
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

    /// Phase 5, per client key: the request's tokens go to the key's metrics and its
    /// `tokens_per_minute`.
    fn charge_key(&self, ctx: &RequestCtx) {
        let (Some(name), Some(usage)) = (&ctx.access.key_name, ctx.access.usage) else {
            return;
        };
        let tokens = &self.gw.key_metrics.tokens;
        tokens
            .with_label_values(&[name, "input"])
            .inc_by(usage.input);
        tokens
            .with_label_values(&[name, "output"])
            .inc_by(usage.output);
        if let Some(permit) = &ctx.key_permit {
            permit.charge_tokens(usage.input + usage.output);
        }
    }

    /// Phase 5: the client-facing metrics of a finished request (answered or failed).
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

/// The user context of a connection's persistent settings: its next request is a kept-alive
/// one.
struct KeptAlive;
