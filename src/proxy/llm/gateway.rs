//! The LLM route inside the gateway's Pingora service.
//!
//! The gateway answers every request itself (a Pingora `HttpServerApp`) with its own attempt
//! loop (see `proxy::service` for why Pingora's proxy loop cannot retry on status or replay
//! large bodies). Generation requests — OpenAI chat completions and Anthropic messages with a
//! JSON body — branch off there into [`LlmRoute::serve`], which runs the LLM driver
//! ([`super::exchange::serve`]) with:
//! - [`GatewayUpstream`]: node choice by the gateway's pool (priority, weights, breakers,
//!   half-open probes, the wait queue) restricted by `fallback_for`/`supports_prefill`, and
//!   transport by the gateway's Pingora connector (pooled, TLS-capable);
//! - [`SessionSink`]: the client response written through the Pingora downstream `Session`
//!   (so Pingora keeps owning framing, keep-alive and graceful shutdown);
//! - duplicate suppression ([`super::dedup`]) for non-streaming requests with an
//!   idempotency key.
//!
//! Pingora stays the listener; every other route keeps the generic proxy path.

use super::budget::BudgetConfig;
use super::dedup::{self, Capture, Claim, Dedup, StoredResponse};
use super::dialect::{Dialect, LlmRequest};
use super::exchange::{
    self, ClientGone, ClientSink, LlmNode, Report, ResponseBody, SendError, Served, Settings,
    Upstream, UpstreamResponse,
};
use crate::config::{ErrorClass, ProxyConfig};
use crate::proxy::head::ClientHead;
use crate::proxy::node::Node;
use crate::proxy::retry::TryFailure;
use crate::proxy::service::{client_key, respond_json, GatewayService, NodeInFlight, RequestCtx};
use crate::proxy::Gateway;
use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::client::HttpSession as UpstreamSession;
use pingora::protocols::http::ServerSession as Session;
use pingora::upstreams::peer::HttpPeer;
use prometheus::IntCounterVec;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

pub use crate::telemetry::catalog::{
    LLM_ATTEMPTS_TOTAL, LLM_DEDUP_TOTAL, LLM_MALFORMED_EVENTS_TOTAL, LLM_REQUESTS_TOTAL,
};

/// Headers never copied from an upstream answer to the client. Names, not strings: a
/// `&str` key is parsed into a header name again on every lookup.
const HOP_BY_HOP: [HeaderName; 6] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
    http::header::TE,
];

/// The parsed generation request when this request takes the LLM route.
pub fn llm_request(header: &RequestHeader, body: &Bytes) -> Option<LlmRequest> {
    let dialect = Dialect::from_route(&header.method, header.uri.path())?;
    match LlmRequest::parse(dialect, body) {
        Ok(r) => Some(r),
        Err(e) => {
            // Not a generation body keel understands: the provider answers it as it is.
            tracing::debug!(error = %e, "LLM route without a generation body; generic path");
            None
        }
    }
}

/// What the LLM route keeps for the service's lifetime: dedup table and its metrics.
pub struct LlmRoute {
    dedup: Arc<Dedup>,
    /// `[proxy.dedup] header` parsed once (validated with the config); `None` when dedup
    /// is off.
    dedup_header: Option<HeaderName>,
    attempts: IntCounterVec,
    requests: IntCounterVec,
    malformed: IntCounterVec,
    dedup_outcomes: IntCounterVec,
    /// `requests` by outcome, resolved once (index as in [`LlmRoute::finish`]).
    outcomes: [std::sync::OnceLock<prometheus::IntCounter>; 5],
}

impl LlmRoute {
    pub fn new(gw: &Arc<Gateway>) -> Self {
        let registry = &gw.pool.telemetry.metrics;
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(prometheus::Opts::new(name, help), labels)
                .expect("valid metric");
            registry.register(c.clone());
            c
        };
        let cfg = &gw.config().dedup;
        LlmRoute {
            dedup: Dedup::new(cfg.window, cfg.max_entries),
            dedup_header: cfg
                .enabled
                .then(|| HeaderName::try_from(cfg.header.as_str()).ok())
                .flatten(),
            attempts: counter(
                LLM_ATTEMPTS_TOTAL,
                "LLM attempts by node and outcome (answered, refused, or the failure class)",
                &["node", "outcome"],
            ),
            requests: counter(
                LLM_REQUESTS_TOTAL,
                "LLM requests by how they ended (complete, relayed, failed, stream_error, client_gone)",
                &["outcome"],
            ),
            malformed: counter(
                LLM_MALFORMED_EVENTS_TOTAL,
                "Malformed stream events dropped, by node",
                &["node"],
            ),
            dedup_outcomes: counter(
                LLM_DEDUP_TOTAL,
                "Idempotency-key outcomes (replayed, shared, mismatch)",
                &["outcome"],
            ),
            outcomes: Default::default(),
        }
    }

    /// Answers one generation request; `Err` only when the client connection is unusable.
    pub async fn serve(
        &self,
        service: &GatewayService,
        session: &mut Session,
        ctx: &mut RequestCtx,
        request: LlmRequest,
        body: Bytes,
    ) -> pingora::Result<()> {
        let gw = service.gateway();
        let cfg = gw.config();
        let settings = Settings {
            budget: budget_config(cfg),
            first_byte: cfg.timeouts.first_byte,
            first_token: cfg.timeouts.first_token,
            stream_idle: cfg.timeouts.stream_idle,
        };
        let key = self
            .dedup_header
            .as_ref()
            .filter(|_| !request.stream)
            .and_then(|name| session.req_header().headers.get(name))
            // Non-ASCII bytes survive as U+FFFD and fail validation below.
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let head = ClientHead::of(session.req_header());
        let upstream = GatewayUpstream {
            service,
            gw: gw.clone(),
            head: &head,
            request_id: ctx.request_id.clone(),
            started: ctx.started,
            route: self,
        };
        let started = ctx.started;
        // Every log line of the driver carries the request id.
        let span = tracing::info_span!(
            "llm",
            request_id = %ctx.request_id,
            api = request.dialect.name(),
            stream = request.stream
        );
        let Some(key) = key else {
            let mut sink = SessionSink { session, ctx };
            let served = exchange::serve(&upstream, &mut sink, &request, &settings, started)
                .instrument(span)
                .await;
            return self.finish(served);
        };
        if dedup::validate_key(&key).is_err() {
            let message = format!(
                "{} must be 1..={} visible ASCII characters",
                cfg.dedup.header,
                dedup::MAX_KEY_LEN
            );
            return respond_json(session, ctx, 400, "invalid_request_error", &message, None).await;
        }
        let scoped = scoped_key(session.req_header(), &key);
        loop {
            match self.dedup.claim(&scoped, &body, Instant::now()) {
                Claim::Replay(stored) => {
                    self.dedup_outcomes.with_label_values(&["replayed"]).inc();
                    return write_stored(session, ctx, &stored).await;
                }
                Claim::Follower(waiter) => match waiter.wait().await {
                    Some(stored) => {
                        self.dedup_outcomes.with_label_values(&["shared"]).inc();
                        return write_stored(session, ctx, &stored).await;
                    }
                    // The first request was abandoned: try to become the leader.
                    None => continue,
                },
                Claim::Mismatch => {
                    self.dedup_outcomes.with_label_values(&["mismatch"]).inc();
                    let message = format!(
                        "{} {key:?} was already used with a different request body",
                        cfg.dedup.header
                    );
                    return respond_json(
                        session,
                        ctx,
                        422,
                        "idempotency_key_mismatch",
                        &message,
                        None,
                    )
                    .await;
                }
                Claim::Leader(ticket) => {
                    let mut sink = SessionSink { session, ctx };
                    let mut capture = Capture::new(&mut sink);
                    let served =
                        exchange::serve(&upstream, &mut capture, &request, &settings, started)
                            .instrument(span.clone())
                            .await;
                    if let Some(response) = capture.into_response() {
                        ticket.complete(response, Instant::now());
                    }
                    return self.finish(served);
                }
            }
        }
    }

    fn finish(&self, served: Served) -> pingora::Result<()> {
        let (i, outcome) = match served {
            Served::Complete { .. } => (0, "complete"),
            Served::Relayed { .. } => (1, "relayed"),
            Served::Failed { .. } => (2, "failed"),
            Served::StreamError => (3, "stream_error"),
            Served::ClientGone => (4, "client_gone"),
        };
        self.outcomes[i]
            .get_or_init(|| self.requests.with_label_values(&[outcome]))
            .inc();
        if served == Served::ClientGone {
            return pingora::Error::e_explain(
                pingora::ErrorType::WriteError,
                "the client went away during an LLM answer",
            );
        }
        Ok(())
    }
}

/// The attempt budget of `[proxy.retry]` and `[proxy.timeouts]`.
fn budget_config(cfg: &ProxyConfig) -> BudgetConfig {
    BudgetConfig {
        max_attempts: cfg.retry.max_attempts,
        total: cfg.timeouts.total,
        max_retry_after: cfg.retry.max_retry_after,
        backoff_min: cfg.retry.backoff_min,
        backoff_max: cfg.retry.backoff_max,
    }
}

/// Idempotency keys are per client key and path: two tenants never share answers.
fn scoped_key(req: &RequestHeader, key: &str) -> String {
    let tenant = Sha256::digest(client_key(req).unwrap_or("").as_bytes());
    let tenant: String = tenant.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{tenant}|{}|{key}", req.uri.path())
}

async fn write_stored(
    session: &mut Session,
    ctx: &mut RequestCtx,
    stored: &StoredResponse,
) -> pingora::Result<()> {
    let mut headers = HeaderMap::new();
    for (k, v) in &stored.headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.append(k, v);
        }
    }
    headers.insert(dedup::REPLAYED_HEADER, HeaderValue::from_static("true"));
    let mut sink = SessionSink { session, ctx };
    let written = async {
        sink.head(stored.status, headers).await?;
        sink.body(stored.body.clone(), true).await
    };
    written.await.map_err(|ClientGone| {
        pingora::Error::explain(pingora::ErrorType::WriteError, "client went away")
    })
}

/// A node picked for an LLM attempt.
#[derive(Clone)]
pub struct GatewayNode {
    node: Arc<Node>,
    /// Admitted as a half-open probe (its outcome closes or reopens the breaker).
    probe: bool,
}

impl LlmNode for GatewayNode {
    fn name(&self) -> &str {
        &self.node.name
    }
    fn fallback_for(&self) -> &[ErrorClass] {
        &self.node.config.fallback_for
    }
    fn supports_prefill(&self) -> bool {
        self.node.config.supports_prefill
    }
    fn model_mapping(&self) -> &BTreeMap<String, String> {
        &self.node.config.model_mapping
    }
}

/// Node choice and transport of the gateway, for the LLM driver.
struct GatewayUpstream<'a> {
    service: &'a GatewayService,
    gw: Arc<Gateway>,
    head: &'a ClientHead,
    request_id: String,
    started: Instant,
    route: &'a LlmRoute,
}

#[async_trait]
impl Upstream for GatewayUpstream<'_> {
    type Node = GatewayNode;

    async fn first(&self) -> Option<GatewayNode> {
        let picked = match self.gw.pool.pick(|_| false, Instant::now()) {
            Some(p) => Some(p),
            None => {
                let deadline =
                    tokio::time::Instant::from_std(self.started) + self.gw.config().timeouts.total;
                self.service.wait_in_queue(deadline).await
            }
        }?;
        Some(GatewayNode {
            node: picked.node,
            probe: picked.probe,
        })
    }

    fn fallback(
        &self,
        class: ErrorClass,
        tried: &(dyn Fn(&str) -> bool + Sync),
        need_prefill: bool,
    ) -> Option<GatewayNode> {
        let pool = &self.gw.pool;
        let unfit = |name: &str| {
            tried(name)
                || pool.get(name).is_none_or(|n| {
                    !n.config.fallback_for.contains(&class)
                        || (need_prefill && !n.config.supports_prefill)
                })
        };
        let picked = pool.pick(unfit, Instant::now())?;
        Some(GatewayNode {
            node: picked.node,
            probe: picked.probe,
        })
    }

    async fn send(&self, node: &GatewayNode, body: Bytes) -> Result<UpstreamResponse, SendError> {
        let head = self.head.for_node(&node.node, &self.request_id, body.len());
        node.node.in_flight.fetch_add(1, Ordering::AcqRel);
        let in_flight = NodeInFlight(&node.node);
        let (session, peer) =
            crate::proxy::conns::exchange(&self.gw.transport, &node.node, &head, &body)
                .await
                .map_err(|f| match f {
                    TryFailure::Connect(e) => SendError::Connect(e),
                    other => SendError::Reset(other.to_string()),
                })?;
        drop(in_flight);
        let header = session
            .response_header()
            .ok_or_else(|| SendError::Reset("no response header".into()))?;
        let status = header.status.as_u16();
        let headers = header.headers.clone();
        self.gw
            .pool
            .metrics
            .observe_ttfb(&node.node, self.started.elapsed().as_secs_f64());
        Ok(UpstreamResponse {
            status,
            headers,
            body: Box::new(PingoraBody {
                node: node.node.clone(),
                session: Some(session),
                peer,
            }),
        })
    }

    fn report(&self, node: &GatewayNode, report: Report) {
        let pool = &self.gw.pool;
        let m = &pool.metrics;
        let name = node.node.name.as_str();
        let now = Instant::now();
        match report {
            Report::Answered { status, usage } => {
                node.node
                    .series
                    .llm_answered
                    .get_or_init(|| self.route.attempts.with_label_values(&[name, "answered"]))
                    .inc();
                m.count_upstream(&node.node, crate::telemetry::metrics::status_class(status));
                pool.record(&node.node, true, node.probe, now);
                if let Some(u) = usage {
                    m.count_tokens(&node.node, u);
                }
            }
            Report::Failed {
                class,
                reason,
                usage,
                ..
            } => {
                self.route
                    .attempts
                    .with_label_values(&[name, class.name()])
                    .inc();
                m.count_upstream(&node.node, "error");
                m.retries.with_label_values(&[name, reason]).inc();
                // A prompt too long for this node says nothing about the node's health.
                let healthy = class == ErrorClass::ContextLength;
                pool.record(&node.node, healthy, node.probe, now);
                if let Some(u) = usage {
                    m.count_tokens(&node.node, u);
                }
            }
            Report::Refused { status } => {
                self.route
                    .attempts
                    .with_label_values(&[name, "refused"])
                    .inc();
                m.count_upstream(&node.node, crate::telemetry::metrics::status_class(status));
                pool.record(&node.node, true, node.probe, now);
            }
            Report::MalformedEvent => self.route.malformed.with_label_values(&[name]).inc(),
        }
    }
}

/// An upstream response body read through Pingora's client session; a fully read
/// connection goes back to the pool.
struct PingoraBody {
    node: Arc<Node>,
    session: Option<UpstreamSession>,
    peer: Arc<HttpPeer>,
}

impl ResponseBody for PingoraBody {
    /// Written out rather than as an `async fn`: the call that only reports the end (the
    /// body was read with the chunk before) is answered without building and boxing
    /// Pingora's body-read future, which is about 3 KB copied per call.
    fn next<'life0, 'async_trait>(
        &'life0 mut self,
    ) -> Pin<Box<dyn Future<Output = Result<Option<Bytes>, String>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        if self.session.is_none() {
            return Box::pin(std::future::ready(Ok(None)));
        }
        Box::pin(self.read())
    }
}

impl PingoraBody {
    async fn read(&mut self) -> Result<Option<Bytes>, String> {
        let Some(session) = self.session.as_mut() else {
            return Ok(None);
        };
        match session.read_response_body().await {
            Ok(Some(chunk)) => {
                // The last chunk: the connection can go back to the pool already.
                if session.response_done() {
                    self.check_in().await;
                }
                Ok(Some(chunk))
            }
            Ok(None) => {
                self.check_in().await;
                Ok(None)
            }
            Err(e) => {
                self.session = None;
                Err(e.to_string())
            }
        }
    }

    /// Hands the fully read connection back to the node's pool.
    async fn check_in(&mut self) {
        if let Some(session) = self.session.take() {
            crate::proxy::conns::checkin(&self.node.conns, session, &self.peer).await;
        }
    }
}

/// The client response through the Pingora downstream session.
pub struct SessionSink<'a> {
    session: &'a mut Session,
    ctx: &'a mut RequestCtx,
}

#[async_trait]
impl ClientSink for SessionSink<'_> {
    async fn head(&mut self, status: u16, mut headers: HeaderMap) -> Result<(), ClientGone> {
        // One pass to see whether any is there (rarely): a removal costs a hash lookup each.
        if headers.keys().any(|n| HOP_BY_HOP.contains(n)) {
            for name in &HOP_BY_HOP {
                headers.remove(name);
            }
        }
        if !headers.contains_key(http::header::CONTENT_LENGTH) {
            headers.insert(
                http::header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
        let id = HeaderValue::from_str(&self.ctx.request_id).map_err(|_| ClientGone)?;
        headers.insert(crate::proxy::head::X_REQUEST_ID, id);
        // The map becomes the response header as it is: no copy header by header, and no
        // case map (the names come from a `HeaderMap`, lowercase already).
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.status = http::StatusCode::from_u16(status).map_err(|_| ClientGone)?;
        parts.headers = headers;
        let resp = ResponseHeader::from(parts);
        self.ctx.status = status;
        self.ctx.committed = true;
        self.session
            .write_response_header(Box::new(resp))
            .await
            .map_err(|_| ClientGone)
    }

    async fn body(&mut self, data: Bytes, end: bool) -> Result<(), ClientGone> {
        self.session
            .write_response_body(data, end)
            .await
            .map_err(|_| ClientGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(method: &str, path: &str, key: Option<&str>) -> RequestHeader {
        let mut h = RequestHeader::build(method, path.as_bytes(), None).unwrap();
        if let Some(k) = key {
            h.insert_header("x-api-key", k).unwrap();
        }
        h
    }

    #[test]
    fn only_generation_bodies_take_the_llm_route() {
        let messages = &Bytes::from_static(br#"{"model":"m","messages":[]}"#);
        let no_messages = &Bytes::from_static(br#"{"model":"m"}"#);
        assert!(llm_request(&header("POST", "/v1/messages", None), messages).is_some());
        assert!(llm_request(&header("POST", "/v1/chat/completions", None), messages).is_some());
        assert!(llm_request(&header("POST", "/v1/messages", None), no_messages).is_none());
        assert!(llm_request(&header("POST", "/v1/embeddings", None), messages).is_none());
        assert!(llm_request(&header("GET", "/v1/messages", None), messages).is_none());
    }

    #[test]
    fn idempotency_keys_are_scoped_by_tenant_and_path() {
        let a = scoped_key(&header("POST", "/v1/messages", Some("tenant-a")), "k");
        let b = scoped_key(&header("POST", "/v1/messages", Some("tenant-b")), "k");
        let c = scoped_key(
            &header("POST", "/v1/chat/completions", Some("tenant-a")),
            "k",
        );
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert!(
            !a.contains("tenant-a"),
            "the client key itself is never kept: {a}"
        );
    }
}
