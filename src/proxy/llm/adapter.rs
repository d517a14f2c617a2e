//! The LLM driver's ports implemented over the gateway — a Pingora adapter:
//! - [`GatewayUpstream`]: node choice by the gateway's pool (priority, weights, breakers,
//!   half-open probes, the wait queue) restricted by `fallback_for`/`supports_prefill`,
//!   transport by [`crate::proxy::conns::round_trip`] (pooled, TLS-capable), and each
//!   attempt's outcome into the node's breaker, metrics and token counts;
//! - `PingoraBody`: an answer body read through Pingora's client session;
//! - [`SessionSink`]: the client response written through the Pingora downstream `Session`
//!   (so Pingora keeps owning framing, keep-alive and graceful shutdown).

use super::driver::{
    BodyBroken, ClientGone, ClientSink, LlmNode, Report, ResponseBody, Upstream, UpstreamResponse,
};
use super::route::LlmRoute;
use super::token_usage::Usage;
use crate::config::ErrorClass;
use crate::proxy::attempt::AttemptError;
use crate::proxy::head::ClientHead;
use crate::proxy::node::Node;
use crate::proxy::request::access::Try;
use crate::proxy::request::guard::NodeInFlight;
use crate::proxy::request::{hop_by_hop, RequestCtx};
use crate::proxy::Gateway;
use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::protocols::http::client::HttpSession as UpstreamSession;
use pingora::protocols::http::ServerSession as Session;
use pingora::upstreams::peer::HttpPeer;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

/// A node picked for an LLM attempt.
#[derive(Clone)]
pub(crate) struct GatewayNode {
    node: Arc<Node>,
    /// Admitted as a half-open probe (its outcome closes or reopens the breaker).
    probe: bool,
}

impl LlmNode for GatewayNode {
    fn name(&self) -> &str {
        &self.node.name
    }
    fn model_mapping(&self) -> &BTreeMap<String, String> {
        &self.node.config.model_mapping
    }
    /// Asked after the failure was recorded: a failed probe left the breaker open, and
    /// two failures in a row mean the node's previous request failed as well.
    fn may_retry(&self) -> bool {
        let control = self.node.control();
        !self.probe
            && control.breaker.state() == crate::proxy::breaker::BreakerState::Closed
            && control.breaker.consecutive_failures() <= 1
    }
}

/// Node choice and transport of the gateway, for the LLM driver.
pub(crate) struct GatewayUpstream<'a> {
    gw: &'a Gateway,
    head: &'a ClientHead,
    request_id: String,
    started: Instant,
    route: &'a LlmRoute,
    /// When each node's current attempt was sent: its report observes
    /// `keel_upstream_request_duration_seconds` from here (header, body, stream). By node,
    /// because a hedge runs beside the attempt it hedges.
    attempt_sent: std::sync::Mutex<Vec<(Arc<Node>, Instant)>>,
    /// Each try and the usage reported, for the access line (taken by the route).
    notes: std::sync::Mutex<(Vec<Try>, Option<Usage>)>,
}

impl<'a> GatewayUpstream<'a> {
    /// The nodes and transport for the request `ctx`, whose header for the nodes is `head`.
    pub(crate) fn new(
        gw: &'a Gateway,
        head: &'a ClientHead,
        ctx: &RequestCtx,
        route: &'a LlmRoute,
    ) -> Self {
        GatewayUpstream {
            gw,
            head,
            request_id: ctx.request_id.clone(),
            started: ctx.started,
            route,
            attempt_sent: std::sync::Mutex::new(Vec::new()),
            notes: Default::default(),
        }
    }

    /// The tries and usage reported so far (for the access line), leaving none.
    pub(crate) fn take_notes(&self) -> (Vec<Try>, Option<Usage>) {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn note(&self, node: &str, failure: Option<&'static str>, usage: Option<Usage>) {
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        notes.0.push(Try {
            node: node.to_string(),
            failure,
        });
        if let Some(u) = usage {
            notes.1 = Some(notes.1.map_or(u, |have| have + u));
        }
    }
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
                self.gw.wait_in_queue(deadline).await
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

    async fn send(
        &self,
        node: &GatewayNode,
        body: Bytes,
    ) -> Result<UpstreamResponse, AttemptError> {
        {
            let mut sent = self.attempt_sent.lock().unwrap_or_else(|p| p.into_inner());
            sent.retain(|(n, _)| !Arc::ptr_eq(n, &node.node));
            sent.push((node.node.clone(), Instant::now()));
        }
        let head = self.head.for_node(&node.node, &self.request_id, body.len());
        let in_flight = NodeInFlight::new(&node.node);
        let (session, peer) =
            crate::proxy::conns::round_trip(&self.gw.transport, &node.node, &head, &body).await?;
        drop(in_flight);
        let header = session
            .response_header()
            .ok_or_else(|| AttemptError::Upstream("no response header".into()))?;
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

    fn first_token(&self, node: &GatewayNode, after: std::time::Duration) {
        self.gw
            .pool
            .metrics
            .observe_ttft(&node.node, after.as_secs_f64());
    }

    fn report(&self, node: &GatewayNode, report: Report) {
        let pool = &self.gw.pool;
        let m = &pool.metrics;
        let name = node.node.name.as_str();
        let now = Instant::now();
        if !matches!(report, Report::MalformedEvent) {
            let sent = {
                let mut sent = self.attempt_sent.lock().unwrap_or_else(|p| p.into_inner());
                let at = sent.iter().position(|(n, _)| Arc::ptr_eq(n, &node.node));
                at.map(|i| sent.swap_remove(i).1)
            };
            if let Some(sent) = sent {
                m.observe_upstream_duration(&node.node, now.duration_since(sent).as_secs_f64());
            }
        }
        match &report {
            Report::Answered { usage, .. } => self.note(name, None, *usage),
            Report::Failed { class, usage, .. } => self.note(name, Some(class.name()), *usage),
            Report::Refused { .. } => self.note(name, Some("refused"), None),
            Report::Lost => self.note(name, Some("lost"), None),
            Report::MalformedEvent => {}
        }
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
                error,
                usage,
            } => {
                self.route
                    .attempts
                    .with_label_values(&[name, class.name()])
                    .inc();
                m.count_upstream(&node.node, "error");
                m.retries.with_label_values(&[name, error.label()]).inc();
                pool.upstream_failed(
                    &node.node,
                    crate::proxy::node_events::UpstreamFailed {
                        node: name.to_string(),
                        route: "llm",
                        class: class.name(),
                        reason: error.label(),
                        status: error.answer_status(),
                        request_id: self.request_id.clone(),
                        error: error.public(),
                    },
                    now,
                );
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
            // Neither a failure of the node nor an answer: no breaker record, no tokens; a
            // probe slot it held goes back, so the half-open budget cannot leak.
            Report::Lost => {
                self.route.attempts.with_label_values(&[name, "lost"]).inc();
                if node.probe {
                    node.node.control().breaker.release_probe();
                }
            }
            Report::MalformedEvent => self.route.malformed.with_label_values(&[name]).inc(),
        }
    }

    fn prefill_refused(&self, node: &GatewayNode, model: &str) -> bool {
        self.route
            .prefill
            .refused(&node.node.name, model, Instant::now())
    }

    fn remember_prefill_refusal(&self, node: &GatewayNode, model: &str) {
        self.route
            .prefill
            .remember(&node.node.name, model, Instant::now());
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
    ) -> Pin<Box<dyn Future<Output = Result<Option<Bytes>, BodyBroken>> + Send + 'async_trait>>
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
    async fn read(&mut self) -> Result<Option<Bytes>, BodyBroken> {
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
                Err(BodyBroken(e))
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
pub(crate) struct SessionSink<'a> {
    session: &'a mut Session,
    ctx: &'a mut RequestCtx,
}

impl<'a> SessionSink<'a> {
    pub(crate) fn new(session: &'a mut Session, ctx: &'a mut RequestCtx) -> Self {
        SessionSink { session, ctx }
    }
}

#[async_trait]
impl ClientSink for SessionSink<'_> {
    async fn head(&mut self, status: u16, mut headers: HeaderMap) -> Result<(), ClientGone> {
        hop_by_hop::strip(&mut headers);
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
        self.ctx.commit(status);
        self.session
            .write_response_header(Box::new(resp))
            .await
            .map_err(|_| ClientGone)
    }

    async fn body(&mut self, data: Bytes, end: bool) -> Result<(), ClientGone> {
        self.ctx.relaying(data.len());
        self.session
            .write_response_body(data, end)
            .await
            .map_err(|_| ClientGone)
    }
}
