//! The LLM request driver: runs the attempts of one generation request across nodes and
//! writes exactly one coherent answer to the client.
//!
//! # Why keel drives LLM attempts itself
//!
//! A pass-through proxy commits to a node when it forwards the response header. For an LLM
//! stream that is too early: the provider sends `200 OK` at once and may then stay silent,
//! break off mid-answer or report an error in-band. So on the LLM routes keel
//! - holds the response header until the first *content* event (nothing is committed while
//!   the node is only saying hello), which lets `first_token` fail over invisibly;
//! - re-frames the stream event by event ([`super::sse`]) so it knows the text delivered and
//!   can splice a continuation from a fallback node ([`super::continuation`]);
//! - reads error bodies before deciding, because "retry elsewhere" depends on what a 400
//!   says ([`super::classify`]).
//!
//! None of that fits Pingora's `ProxyHttp` hooks (which relay bytes once the upstream header
//! is accepted), and the gateway already answers every request itself (a Pingora
//! `HttpServerApp`, see `proxy::service`) with its own attempt loop over Pingora's connector. The LLM path plugs into that same place:
//! the gateway implements [`Upstream`] (node choice, Pingora connector, breaker and metrics)
//! and [`ClientSink`] (the Pingora downstream `Session`), and calls [`serve`]. Pingora stays
//! the listener; non-LLM routes keep the generic path.

use super::budget::{Budget, BudgetConfig, Failure, Plan};
use super::classify::{classify, ErrorClass, Verdict};
use super::continuation::{ClientStream, Ending};
use super::dialect::LlmRequest;
use super::event::inspect;
use super::sse::{SseEvent, SseItem, SseParser};
use super::usage::Usage;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

/// Largest error body read to classify (and possibly relay) a non-2xx answer.
pub const MAX_ERROR_BODY: usize = 1024 * 1024;
/// Largest non-streaming answer keel buffers before sending it.
pub const MAX_ANSWER_BODY: usize = 64 * 1024 * 1024;

/// A node as the LLM path needs to know it.
pub trait LlmNode: Clone + Send + Sync {
    fn name(&self) -> &str;
    /// Error classes this node takes over from another one.
    fn fallback_for(&self) -> &[ErrorClass];
    /// Accepts a trailing assistant message and continues it.
    fn supports_prefill(&self) -> bool;
    fn model_mapping(&self) -> &BTreeMap<String, String>;
}

/// Why an attempt got no response header.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Refused, unreachable: nothing suggests the same node works a moment later.
    #[error("connect failed: {0}")]
    Connect(String),
    /// The connection was accepted and then closed or reset before a header arrived.
    #[error("connection closed before the response header: {0}")]
    Reset(String),
}

/// A response header and the body still to be read.
pub struct UpstreamResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Box<dyn ResponseBody>,
}

#[async_trait]
pub trait ResponseBody: Send {
    /// The next chunk; `Ok(None)` at a clean end, `Err` when the connection broke.
    async fn next(&mut self) -> Result<Option<Bytes>, String>;
}

/// What happened on one node, for its breaker, metrics and token counts.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// The node's answer reached the client. `usage` as the node reported it.
    Answered { status: u16, usage: Option<Usage> },
    /// A failed attempt: a node failure and an attempt, never a completion. `usage` is only
    /// set for a stream that broke after delivering part of the answer (those tokens are
    /// in the client's usage too).
    Failed {
        class: ErrorClass,
        /// In the gateway's retry vocabulary: `connect`, `upstream` (closed before the
        /// header), `timeout`, `status`, or `stream` (broken or failing stream).
        reason: &'static str,
        detail: String,
        usage: Option<Usage>,
    },
    /// The node refused the request (a 4xx): not a node failure.
    Refused { status: u16 },
    /// An event that was not valid JSON was dropped from its stream.
    MalformedEvent,
}

/// Node choice, transport and accounting — implemented by the gateway.
#[async_trait]
pub trait Upstream: Send + Sync {
    type Node: LlmNode;
    /// The node for the first attempt (priority, weights, breaker, queue).
    async fn first(&self) -> Option<Self::Node>;
    /// An available node that takes over `class`, not yet `tried`, accepting a prefill when
    /// `need_prefill`.
    fn fallback(
        &self,
        class: ErrorClass,
        tried: &(dyn Fn(&str) -> bool + Sync),
        need_prefill: bool,
    ) -> Option<Self::Node>;
    /// Sends the request with `body` and returns at the response header.
    async fn send(&self, node: &Self::Node, body: Bytes) -> Result<UpstreamResponse, SendError>;
    fn report(&self, node: &Self::Node, report: Report);
}

/// The client went away; nothing more can be written.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the client went away")]
pub struct ClientGone;

/// Where the answer goes — implemented over the Pingora downstream session. The driver sets
/// the framing headers itself (`content-length` for whole bodies, none for streams). The
/// header map is handed over, so the session can send it without copying it header by header.
#[async_trait]
pub trait ClientSink: Send {
    async fn head(&mut self, status: u16, headers: HeaderMap) -> Result<(), ClientGone>;
    async fn body(&mut self, data: Bytes, end: bool) -> Result<(), ClientGone>;
}

/// Timeouts and limits of the LLM path.
#[derive(Debug, Clone)]
pub struct Settings {
    pub budget: BudgetConfig,
    /// Response header of one attempt.
    pub first_byte: Duration,
    /// First content event of a streamed part, from the attempt's start.
    pub first_token: Duration,
    /// Silence between two events once content flows.
    pub stream_idle: Duration,
}

/// How the request ended, for the request log and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// A complete answer (possibly continued across nodes).
    Complete {
        status: u16,
    },
    /// An upstream refusal (4xx) returned as it was.
    Relayed {
        status: u16,
    },
    /// keel's own error answer after every attempt failed.
    Failed {
        status: u16,
    },
    /// The stream had begun and ended with an in-band error event.
    StreamError,
    ClientGone,
}

impl Served {
    /// Status the client received (200 for a stream that ended with an error event).
    pub fn status(self) -> u16 {
        match self {
            Served::Complete { status }
            | Served::Relayed { status }
            | Served::Failed { status } => status,
            Served::StreamError => 200,
            Served::ClientGone => 0,
        }
    }
}

/// The first upstream error answer, kept so the client gets the real error rather than a
/// fallback's.
#[derive(Debug, Clone)]
struct HeldError {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
    class: ErrorClass,
}

/// How one attempt ended.
enum Attempt {
    Done(Served),
    /// Nothing of this attempt reached the client.
    Failed(Failure, String),
    /// The stream broke after this node delivered content to the client.
    Broken(Box<ClientStream>, String),
}

/// Runs `request` against the upstream nodes and answers `client`. `started` is when the
/// request arrived (the time budget counts from there).
pub async fn serve<U: Upstream, C: ClientSink>(
    upstream: &U,
    client: &mut C,
    request: &LlmRequest,
    settings: &Settings,
    started: Instant,
) -> Served {
    let mut driver = Driver {
        up: upstream,
        client,
        request,
        settings,
        budget: Budget::new(settings.budget.clone(), started),
        failures: Vec::new(),
        held: None,
    };
    driver.run().await
}

struct Driver<'a, U: Upstream, C: ClientSink> {
    up: &'a U,
    client: &'a mut C,
    request: &'a LlmRequest,
    settings: &'a Settings,
    budget: Budget,
    /// `node: what went wrong` and its class, in order, for the final answer.
    failures: Vec<(String, ErrorClass)>,
    held: Option<HeldError>,
}

/// Waits until `at` when it lies ahead. A deadline already reached must not go through
/// `sleep_until`: tokio rounds every timer up to its next 1 ms tick, so a sleep "until now"
/// costs up to a millisecond of latency on every request's first attempt.
async fn wait_until(at: Instant) {
    if at > Instant::now() {
        tokio::time::sleep_until(at.into()).await;
    }
}

impl<U: Upstream, C: ClientSink> Driver<'_, U, C> {
    async fn run(&mut self) -> Served {
        let Some(mut node) = self.up.first().await else {
            return self
                .keel_error(
                    503,
                    "no_available_nodes",
                    "no available nodes: every node is disabled, ejected or warming up",
                    Some(1),
                )
                .await;
        };
        // When the next attempt may start (None: at once, without reading the clock again).
        let mut at: Option<Instant> = None;
        // The class the current node is taking over (None for the first attempt).
        let mut taking_over: Option<ErrorClass> = None;
        loop {
            if let Some(at) = at {
                wait_until(at).await;
            }
            let started = Instant::now();
            self.budget.record_attempt(node.name(), started);
            let (failure, detail) = match self.attempt(&node, taking_over, started).await {
                Attempt::Done(served) => return served,
                Attempt::Broken(stream, detail) => {
                    return self.continue_stream(node, *stream, detail).await
                }
                Attempt::Failed(failure, detail) => {
                    self.failures
                        .push((format!("{}: {detail}", node.name()), failure.class));
                    (failure, detail)
                }
            };
            let plan =
                self.budget
                    .after_failure(node.name(), &failure, Instant::now(), &mut rand::rng());
            let next_step = match plan {
                Plan::Same { .. } => "upstream try failed; retrying on the same node",
                Plan::Fallback { .. } => {
                    "upstream try failed; retrying on another node if one is left"
                }
                Plan::GiveUp => "upstream try failed; attempts exhausted",
            };
            tracing::warn!(
                node = node.name(),
                class = %failure.class,
                attempt = self.budget.attempts(),
                error = %detail,
                "{next_step}"
            );
            match plan {
                Plan::Same { at: when } => at = Some(when),
                Plan::Fallback { class, at: when } => {
                    let budget = &self.budget;
                    let next = self.up.fallback(class, &|n| budget.tried(n), false);
                    let Some(next) = next else {
                        return self.give_up().await;
                    };
                    at = Some(self.budget.earliest(next.name(), when));
                    node = next;
                    taking_over = Some(class);
                }
                Plan::GiveUp => return self.give_up().await,
            }
        }
    }

    /// One attempt (begun at `started`) before anything reached the client.
    async fn attempt(
        &mut self,
        node: &U::Node,
        taking_over: Option<ErrorClass>,
        started: Instant,
    ) -> Attempt {
        let body = self.request.body_for(node.model_mapping());
        let response = match self.send(node, body).await {
            Ok(r) => r,
            Err(failed) => return failed,
        };
        if !(200..300).contains(&response.status) {
            return self.refused_or_failed(node, response, taking_over).await;
        }
        if self.request.stream && is_event_stream(&response.headers) {
            let stream = ClientStream::new(self.request);
            return self
                .relay_stream(node, response, stream, false, started)
                .await;
        }
        self.relay_whole(node, response).await
    }

    /// Sends with the `first_byte` limit; a failure is already reported.
    async fn send(&self, node: &U::Node, body: Bytes) -> Result<UpstreamResponse, Attempt> {
        let (failure, reason, detail) =
            match tokio::time::timeout(self.settings.first_byte, self.up.send(node, body)).await {
                Ok(Ok(r)) => return Ok(r),
                Err(_) => (
                    Failure {
                        class: ErrorClass::Timeout,
                        retry_after: None,
                        same_node: false,
                    },
                    "timeout",
                    format!(
                        "no response header within first_byte ({:?})",
                        self.settings.first_byte
                    ),
                ),
                Ok(Err(e)) => (
                    Failure {
                        class: ErrorClass::Unavailable,
                        retry_after: None,
                        same_node: matches!(e, SendError::Reset(_)),
                    },
                    match e {
                        SendError::Connect(_) => "connect",
                        SendError::Reset(_) => "upstream",
                    },
                    e.to_string(),
                ),
            };
        self.up.report(
            node,
            Report::Failed {
                class: failure.class,
                reason,
                detail: detail.clone(),
                usage: None,
            },
        );
        Err(Attempt::Failed(failure, detail))
    }

    /// A non-2xx answer: a retryable failure, or a refusal returned to the client — but only
    /// when it is the first answer; a fallback's refusal never replaces the real error.
    async fn refused_or_failed(
        &mut self,
        node: &U::Node,
        mut response: UpstreamResponse,
        taking_over: Option<ErrorClass>,
    ) -> Attempt {
        let status = response.status;
        let body = match read_all(
            &mut *response.body,
            MAX_ERROR_BODY,
            self.settings.stream_idle,
        )
        .await
        {
            Ok(b) => b,
            Err(e) => Bytes::from(format!("(error body unreadable: {e})")),
        };
        let reason = match classify(status, &response.headers, &body, SystemTime::now()) {
            Verdict::Retry {
                class,
                retry_after,
                same_node,
            } => {
                let detail = format!("status {status} ({class})");
                self.up.report(
                    node,
                    Report::Failed {
                        class,
                        reason: "status",
                        detail: detail.clone(),
                        usage: None,
                    },
                );
                if self.held.is_none() {
                    self.held = Some(HeldError {
                        status,
                        headers: response.headers,
                        body,
                        class,
                    });
                }
                let failure = Failure {
                    class,
                    retry_after,
                    same_node,
                };
                return Attempt::Failed(failure, detail);
            }
            Verdict::Final { reason } => reason,
            // Callers handle 2xx before asking; should one arrive here, it is no failure.
            Verdict::Success => "success",
        };
        self.up.report(node, Report::Refused { status });
        match taking_over {
            None => {
                let served = self
                    .write_whole(status, response.headers, body)
                    .await
                    .map_or(Served::ClientGone, |()| Served::Relayed { status });
                Attempt::Done(served)
            }
            Some(class) => Attempt::Failed(
                Failure {
                    class,
                    retry_after: None,
                    same_node: false,
                },
                format!("fallback refused the request: status {status} ({reason})"),
            ),
        }
    }

    /// A whole (non-streaming) answer: read it completely, then send it.
    async fn relay_whole(&mut self, node: &U::Node, mut response: UpstreamResponse) -> Attempt {
        let body = match read_all(
            &mut *response.body,
            MAX_ANSWER_BODY,
            self.settings.stream_idle,
        )
        .await
        {
            Ok(b) => b,
            Err(e) => {
                let detail = format!("answer body broke off: {e}");
                self.up.report(
                    node,
                    Report::Failed {
                        class: ErrorClass::StreamBroken,
                        reason: "stream",
                        detail: detail.clone(),
                        usage: None,
                    },
                );
                return Attempt::Failed(
                    Failure {
                        class: ErrorClass::StreamBroken,
                        retry_after: None,
                        same_node: false,
                    },
                    detail,
                );
            }
        };
        let usage = Usage::from_response(&body);
        self.up.report(
            node,
            Report::Answered {
                status: response.status,
                usage,
            },
        );
        let status = response.status;
        Attempt::Done(
            self.write_whole(status, response.headers, body)
                .await
                .map_or(Served::ClientGone, |()| Served::Complete { status }),
        )
    }

    /// Relays one streamed part. `committed`: the client already has the response header
    /// (this part is a continuation). Returns `Failed` when this part delivered no content.
    async fn relay_stream(
        &mut self,
        node: &U::Node,
        mut response: UpstreamResponse,
        mut stream: ClientStream,
        mut committed: bool,
        started: Instant,
    ) -> Attempt {
        let mut parser = SseParser::new();
        let mut held: Vec<SseEvent> = Vec::new();
        let mut has_content = false;
        let token_deadline = started + self.settings.first_token;
        loop {
            let limit = if has_content {
                Instant::now() + self.settings.stream_idle
            } else {
                token_deadline
            };
            let read = tokio::time::timeout_at(limit.into(), response.body.next()).await;
            let (items, ended) = match read {
                Err(_) if has_content => {
                    let detail = format!(
                        "stream stalled: no event for stream_idle ({:?})",
                        self.settings.stream_idle
                    );
                    return self.broken(node, stream, detail);
                }
                Err(_) => {
                    let detail = format!(
                        "no content within first_token ({:?})",
                        self.settings.first_token
                    );
                    return self.failed_part(node, ErrorClass::Timeout, detail);
                }
                Ok(Err(e)) if has_content => {
                    return self.broken(node, stream, format!("stream broke off: {e}"))
                }
                Ok(Err(e)) => {
                    let detail = format!("stream broke off before any content: {e}");
                    return self.failed_part(node, ErrorClass::StreamBroken, detail);
                }
                Ok(Ok(Some(chunk))) => (parser.feed(&chunk), false),
                Ok(Ok(None)) => (parser.finish().into_iter().collect(), true),
            };
            let mut out = BytesMut::new();
            for item in items {
                let SseItem::Event(event) = item else {
                    self.malformed(node, "oversized event");
                    continue;
                };
                let seen = inspect(self.request.dialect, &event);
                if seen.malformed {
                    self.malformed(node, &event.data);
                    continue;
                }
                if seen.error {
                    let detail = format!("provider error in the stream: {}", event.data);
                    if has_content {
                        return self.broken(node, stream, detail);
                    }
                    return self.failed_part(node, ErrorClass::Unavailable, detail);
                }
                has_content |= seen.is_content() || seen.finished || seen.terminal;
                let events = stream.push(event, &seen);
                if has_content {
                    for e in held.drain(..).chain(events) {
                        out.extend_from_slice(&e.encode());
                    }
                } else {
                    held.extend(events);
                }
            }
            if has_content && !committed {
                if self.stream_head(&response.headers).await.is_err() {
                    return Attempt::Done(Served::ClientGone);
                }
                committed = true;
            }
            if stream.terminated() {
                self.up.report(
                    node,
                    Report::Answered {
                        status: 200,
                        usage: stream.part_usage(),
                    },
                );
                return Attempt::Done(self.finish_stream(out.freeze()).await);
            }
            if !out.is_empty() && self.client.body(out.freeze(), false).await.is_err() {
                return Attempt::Done(Served::ClientGone);
            }
            if !ended {
                continue;
            }
            match stream.end_of_upstream() {
                Ending::Complete(tail) => {
                    if !committed && self.stream_head(&response.headers).await.is_err() {
                        return Attempt::Done(Served::ClientGone);
                    }
                    let mut out = BytesMut::new();
                    for e in held.drain(..).chain(tail) {
                        out.extend_from_slice(&e.encode());
                    }
                    self.up.report(
                        node,
                        Report::Answered {
                            status: 200,
                            usage: stream.part_usage(),
                        },
                    );
                    return Attempt::Done(self.finish_stream(out.freeze()).await);
                }
                Ending::Broken if has_content => {
                    return self.broken(
                        node,
                        stream,
                        "stream closed before the answer was finished".into(),
                    )
                }
                Ending::Broken => {
                    let detail = "stream closed before any content".to_string();
                    return self.failed_part(node, ErrorClass::StreamBroken, detail);
                }
            }
        }
    }

    /// After the first part broke mid-answer: continue on fallback nodes from a prefill, or
    /// end the client's stream with an error event naming the real cause.
    async fn continue_stream(
        &mut self,
        mut node: U::Node,
        mut stream: ClientStream,
        detail: String,
    ) -> Served {
        let cause = format!(
            "the answer from node {} broke off after {} characters ({detail})",
            node.name(),
            stream.delivered().chars().count()
        );
        tracing::warn!(node = node.name(), error = %detail, "LLM stream broke mid-answer");
        self.budget.restart_clock(Instant::now());
        let mut last = detail;
        loop {
            if !stream.can_continue() {
                let why = "it contains content a text prefill cannot reproduce";
                return self
                    .stream_error(&stream, &format!("{cause}; not continued: {why}"))
                    .await;
            }
            let failure = Failure {
                class: ErrorClass::StreamBroken,
                retry_after: None,
                same_node: false,
            };
            let plan =
                self.budget
                    .after_failure(node.name(), &failure, Instant::now(), &mut rand::rng());
            let Plan::Fallback { at, .. } = plan else {
                return self
                    .stream_error(&stream, &format!("{cause}; attempts exhausted ({last})"))
                    .await;
            };
            let budget = &self.budget;
            let need_prefill = !stream.delivered().is_empty();
            let Some(next) =
                self.up
                    .fallback(ErrorClass::StreamBroken, &|n| budget.tried(n), need_prefill)
            else {
                let why = "no fallback node that supports a prefill continuation is available";
                return self.stream_error(&stream, &format!("{cause}; {why}")).await;
            };
            node = next;
            wait_until(self.budget.earliest(node.name(), at)).await;
            let started = Instant::now();
            self.budget.record_attempt(node.name(), started);
            let mut part = stream.clone();
            part.begin_continuation();
            let body = self
                .request
                .continuation_body(stream.delivered(), node.model_mapping());
            let response = match self.send(&node, body).await {
                Ok(r) => r,
                Err(Attempt::Failed(_, d)) => {
                    last = format!("{}: {d}", node.name());
                    continue;
                }
                Err(_) => continue,
            };
            if !(200..300).contains(&response.status) || !is_event_stream(&response.headers) {
                let status = response.status;
                let mut body = response.body;
                let text = read_all(&mut *body, MAX_ERROR_BODY, self.settings.stream_idle)
                    .await
                    .unwrap_or_default();
                let d = format!(
                    "continuation refused: status {status}: {}",
                    String::from_utf8_lossy(&text)
                );
                self.up.report(
                    &node,
                    Report::Failed {
                        class: ErrorClass::StreamBroken,
                        reason: "status",
                        detail: d.clone(),
                        usage: None,
                    },
                );
                last = format!("{}: {d}", node.name());
                continue;
            }
            match self
                .relay_stream(&node, response, part, true, started)
                .await
            {
                Attempt::Done(served) => return served,
                Attempt::Failed(_, d) => last = format!("{}: {d}", node.name()),
                Attempt::Broken(s, d) => {
                    stream = *s;
                    last = format!("{}: {d}", node.name());
                }
            }
        }
    }

    fn failed_part(&self, node: &U::Node, class: ErrorClass, detail: String) -> Attempt {
        let reason = if class == ErrorClass::Timeout {
            "timeout"
        } else {
            "stream"
        };
        self.up.report(
            node,
            Report::Failed {
                class,
                reason,
                detail: detail.clone(),
                usage: None,
            },
        );
        Attempt::Failed(
            Failure {
                class,
                retry_after: None,
                same_node: false,
            },
            detail,
        )
    }

    fn broken(&self, node: &U::Node, stream: ClientStream, detail: String) -> Attempt {
        self.up.report(
            node,
            Report::Failed {
                class: ErrorClass::StreamBroken,
                reason: "stream",
                detail: detail.clone(),
                usage: stream.part_usage(),
            },
        );
        Attempt::Broken(Box::new(stream), detail)
    }

    fn malformed(&self, node: &U::Node, data: &str) {
        let sample: String = data.chars().take(120).collect();
        tracing::warn!(node = node.name(), data = %sample, "dropped a malformed stream event");
        self.up.report(node, Report::MalformedEvent);
    }

    /// Every attempt failed before the client saw anything.
    async fn give_up(&mut self) -> Served {
        let summary = format!(
            "all attempts failed ({} in total): {}",
            self.budget.attempts(),
            self.failures
                .iter()
                .map(|(text, _)| text.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
        if let Some(held) = self.held.take() {
            // The provider's own answer is the most useful one for these: a 429 carries its
            // Retry-After for the client's SDK, a context-length 400 says what to shorten.
            if matches!(
                held.class,
                ErrorClass::RateLimited | ErrorClass::ContextLength
            ) {
                let status = held.status;
                return self
                    .write_whole(status, held.headers, held.body)
                    .await
                    .map_or(Served::ClientGone, |()| Served::Relayed { status });
            }
        }
        let only_timeouts = !self.failures.is_empty()
            && self
                .failures
                .iter()
                .all(|(_, class)| *class == ErrorClass::Timeout);
        if only_timeouts {
            self.keel_error(504, "upstream_timeout", &summary, None)
                .await
        } else {
            self.keel_error(502, "all_nodes_failed", &summary, None)
                .await
        }
    }

    async fn keel_error(
        &mut self,
        status: u16,
        kind: &str,
        message: &str,
        retry_after: Option<u64>,
    ) -> Served {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = retry_after {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(s));
        }
        let body = self.request.dialect.error_body(kind, message);
        match self.write_whole(status, headers, body).await {
            Ok(()) => Served::Failed { status },
            Err(ClientGone) => Served::ClientGone,
        }
    }

    async fn write_whole(
        &mut self,
        status: u16,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<(), ClientGone> {
        headers.remove(http::header::TRANSFER_ENCODING);
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        self.client.head(status, headers).await?;
        self.client.body(body, true).await
    }

    async fn stream_head(&mut self, upstream: &HeaderMap) -> Result<(), ClientGone> {
        let mut headers = upstream.clone();
        headers.remove(http::header::CONTENT_LENGTH);
        headers.remove(http::header::TRANSFER_ENCODING);
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
        self.client.head(200, headers).await
    }

    async fn finish_stream(&mut self, tail: Bytes) -> Served {
        match self.client.body(tail, true).await {
            Ok(()) => Served::Complete { status: 200 },
            Err(ClientGone) => Served::ClientGone,
        }
    }

    async fn stream_error(&mut self, stream: &ClientStream, message: &str) -> Served {
        tracing::warn!(error = %message, "LLM stream ended with an error event");
        match self
            .client
            .body(stream.error_event(message).encode(), true)
            .await
        {
            Ok(()) => Served::StreamError,
            Err(ClientGone) => Served::ClientGone,
        }
    }
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

/// Reads a body to its end, up to `max` bytes, with `idle` as the longest silence.
async fn read_all(
    body: &mut dyn ResponseBody,
    max: usize,
    idle: Duration,
) -> Result<Bytes, String> {
    let mut out = crate::proxy::body::Collected::default();
    loop {
        match tokio::time::timeout(idle, body.next()).await {
            Err(_) => return Err(format!("no data for {idle:?}")),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(None)) => return Ok(out.finish()),
            Ok(Ok(Some(chunk))) => {
                if out.size() + chunk.len() > max {
                    return Err(format!("body larger than {max} bytes"));
                }
                out.push(chunk);
            }
        }
    }
}

#[cfg(test)]
#[path = "exchange_tests.rs"]
mod tests;
