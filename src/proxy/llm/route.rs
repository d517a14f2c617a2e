//! The LLM route: which requests take it, and what it adds around the driver.
//!
//! The gateway answers every request itself (a Pingora `HttpServerApp`; see
//! `proxy::service` for why Pingora's proxy loop cannot retry on status or replay large
//! bodies). Generation requests — OpenAI chat completions and Anthropic messages with a
//! JSON body ([`llm_request`]) — branch off there into [`LlmRoute::serve`], which runs the
//! LLM driver ([`super::driver::serve`]) over the gateway's nodes and the client's session
//! ([`super::adapter`]), with duplicate suppression ([`super::dedup`]) for non-streaming
//! requests with an idempotency key, and counts how each request ended.
//!
//! Everything else takes the generic route (`proxy::generic`).

use super::adapter::{GatewayUpstream, SessionSink};
use super::continuation::PrefillMemory;
use super::dedup::{self, Capture, Claim, Dedup, StoredResponse};
use super::dialect::{Dialect, LlmRequest};
use super::driver::{self, ClientGone, ClientSink, Served, Settings};
use crate::proxy::head::ClientHead;
use crate::proxy::request::answer::respond_json;
use crate::proxy::request::identity::client_key;
use crate::proxy::request::RequestCtx;
use crate::proxy::retry::BudgetConfig;
use crate::proxy::Gateway;
use crate::telemetry::metrics::Built;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::protocols::http::ServerSession as Session;
use prometheus::IntCounterVec;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

pub(crate) use crate::telemetry::catalog::{
    LLM_ATTEMPTS_TOTAL, LLM_DEDUP_TOTAL, LLM_MALFORMED_EVENTS_TOTAL, LLM_REQUESTS_TOTAL,
};

/// The parsed generation request when this request takes the LLM route.
pub(crate) fn llm_request(header: &RequestHeader, body: &Bytes) -> Option<LlmRequest> {
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
pub(crate) struct LlmRoute {
    dedup: Arc<Dedup>,
    /// `[proxy.dedup] header` parsed once (validated with the config); `None` when dedup
    /// is off.
    dedup_header: Option<HeaderName>,
    /// `keel_llm_attempts_total{node,outcome}`, counted by the adapter.
    pub(super) attempts: IntCounterVec,
    requests: IntCounterVec,
    /// `keel_llm_malformed_events_total{node}`, counted by the adapter.
    pub(super) malformed: IntCounterVec,
    dedup_outcomes: IntCounterVec,
    /// Node and model pairs that refused an assistant prefill (see `continuation`).
    pub(super) prefill: PrefillMemory,
    /// `requests` by outcome, resolved once (index as in [`LlmRoute::finish`]).
    outcomes: [std::sync::OnceLock<prometheus::IntCounter>; 5],
}

impl LlmRoute {
    pub(crate) fn new(gw: &Arc<Gateway>) -> Self {
        let registry = &gw.pool.telemetry.metrics;
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(prometheus::Opts::new(name, help), labels).built();
            registry.register(c.clone());
            c
        };
        let config = gw.config();
        let cfg = &config.dedup;
        LlmRoute {
            dedup: Dedup::new(cfg.window, cfg.max_entries),
            dedup_header: cfg
                .enabled
                .then(|| HeaderName::try_from(cfg.header.as_str()).ok())
                .flatten(),
            attempts: counter(
                LLM_ATTEMPTS_TOTAL,
                "LLM attempts by node and outcome (answered, refused, lost, or the failure class)",
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
            prefill: PrefillMemory::default(),
            outcomes: Default::default(),
        }
    }

    /// Phase 3 on the LLM route: runs once `request::admit` passed the request and
    /// [`llm_request`] parsed its body. Answers completely (the driver's answer, a replayed
    /// or shared one, or keel's 400/422 for a bad idempotency key); `Err` only when the
    /// client connection is unusable.
    pub(crate) async fn serve(
        &self,
        gw: &Arc<Gateway>,
        session: &mut Session,
        ctx: &mut RequestCtx,
        request: LlmRequest,
        body: Bytes,
    ) -> pingora::Result<()> {
        let cfg = gw.config();
        let settings = Settings {
            budget: BudgetConfig::of(&cfg),
            first_byte: cfg.timeouts.first_byte,
            stream_first_byte: cfg.timeouts.stream_first_byte,
            first_token: cfg.timeouts.first_token,
            stream_idle: cfg.timeouts.stream_idle,
            hedge: cfg.retry.hedge,
        };
        let key = self
            .dedup_header
            .as_ref()
            .filter(|_| !request.stream)
            .and_then(|name| session.req_header().headers.get(name))
            // Non-ASCII bytes survive as U+FFFD and fail validation below.
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let head = ClientHead::of(session.req_header(), &gw.via);
        let upstream = GatewayUpstream::new(gw, &head, ctx, self);
        let started = tokio::time::Instant::from_std(ctx.started);
        // Every log line of the driver carries the request id.
        let span = tracing::info_span!(
            "llm",
            request_id = %ctx.request_id,
            api = request.dialect.name(),
            stream = request.stream
        );
        let Some(key) = key else {
            let mut sink = SessionSink::new(session, ctx);
            let served = driver::serve(&upstream, &mut sink, &request, &settings, started)
                .instrument(span)
                .await;
            let (tries, usage) = upstream.take_notes();
            ctx.access.absorb(tries, usage);
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
                    let mut sink = SessionSink::new(session, ctx);
                    let mut capture = Capture::new(&mut sink);
                    let served =
                        driver::serve(&upstream, &mut capture, &request, &settings, started)
                            .instrument(span.clone())
                            .await;
                    if let Some(response) = capture.into_response() {
                        ticket.complete(response, Instant::now());
                    }
                    let (tries, usage) = upstream.take_notes();
                    ctx.access.absorb(tries, usage);
                    return self.finish(served);
                }
            }
        }
    }

    /// Counts how the request ended; a client gone mid-answer is the dispatcher's error.
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

/// Idempotency keys are per client key and path: two tenants never share answers.
fn scoped_key(req: &RequestHeader, key: &str) -> String {
    let tenant = Sha256::digest(client_key(req).unwrap_or("").as_bytes());
    let tenant: String = tenant.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{tenant}|{}|{key}", req.uri.path())
}

/// A stored (replayed or shared) answer, marked `idempotent-replayed: true`.
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
    let mut sink = SessionSink::new(session, ctx);
    let written = async {
        sink.head(stored.status, headers).await?;
        sink.body(stored.body.clone(), true).await
    };
    written.await.map_err(|ClientGone| {
        pingora::Error::explain(pingora::ErrorType::WriteError, "client went away")
    })
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
