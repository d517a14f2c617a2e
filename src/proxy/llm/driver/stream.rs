//! Streamed answers: one part relayed event by event with its response header held until
//! the first content, and the continuation of a stream that broke mid-answer on another
//! node.
//!
//! A part ends in one of three ways: complete (the answer, or the client's stream, reached
//! its end), failed before any content reached the client (an ordinary failed attempt: the
//! header was still held), or broken mid-answer ([`Attempt::Broken`]), which
//! [`Driver::continue_stream`] takes over.

use super::{read_all, wait_until, Attempt, Driver, Served, MAX_ERROR_BODY};
use super::{ClientGone, ClientSink, LlmNode, Report, Upstream, UpstreamResponse};
use crate::proxy::attempt::AttemptError;
use crate::proxy::llm::classify::ErrorClass;
use crate::proxy::llm::continuation::{ClientStream, Ending};
use crate::proxy::llm::sse::{SseEvent, SseItem, SseParser};
use crate::proxy::llm::stream_event::inspect;
use crate::proxy::retry::{Failure, Plan};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use tokio::time::Instant;

/// A streamed answer (`content-type: text/event-stream`).
pub(super) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

/// One streamed part while it is relayed.
struct Part {
    parser: SseParser,
    /// Events before the first content: they go out with the header once content arrives.
    held: Vec<SseEvent>,
    /// Content of this part reached (or is about to reach) the client.
    has_content: bool,
    /// The client has the response header.
    committed: bool,
    /// When this part's first content is due (`first_token` from the attempt's start).
    token_deadline: Instant,
}

/// Why a part stopped before its end.
enum Cut {
    /// After content reached the client: the stream broke mid-answer.
    MidAnswer(AttemptError),
    /// Before any content: an ordinary failed attempt of this class.
    BeforeContent(ErrorClass, AttemptError),
}

impl Cut {
    /// `mid_answer` for a part that delivered content, else `before` of class `class`.
    fn of(part: &Part, mid_answer: AttemptError, class: ErrorClass, before: AttemptError) -> Cut {
        if part.has_content {
            Cut::MidAnswer(mid_answer)
        } else {
            Cut::BeforeContent(class, before)
        }
    }
}

impl<U: Upstream, C: ClientSink> Driver<'_, U, C> {
    /// Relays one streamed part. `committed`: the client already has the response header
    /// (this part is a continuation). Returns `Failed` when this part delivered no content.
    pub(super) async fn relay_stream(
        &mut self,
        node: &U::Node,
        mut response: UpstreamResponse,
        mut stream: ClientStream,
        committed: bool,
        started: Instant,
    ) -> Attempt {
        let mut part = Part {
            parser: SseParser::new(),
            held: Vec::new(),
            has_content: false,
            committed,
            token_deadline: started + self.settings.first_token,
        };
        loop {
            let (items, ended) = match self.read_part(&mut response, &mut part).await {
                Ok(read) => read,
                Err(cut) => return self.cut(node, stream, cut),
            };
            let out = match self.take_events(node, items, &mut part, &mut stream) {
                Ok(out) => out,
                Err(cut) => return self.cut(node, stream, cut),
            };
            if part.has_content && !part.committed {
                if self.stream_head(&response.headers).await.is_err() {
                    return Attempt::Done(Served::ClientGone);
                }
                part.committed = true;
            }
            if stream.terminated() {
                return self.part_complete(node, &stream, out.freeze()).await;
            }
            if !out.is_empty() && self.client.body(out.freeze(), false).await.is_err() {
                return Attempt::Done(Served::ClientGone);
            }
            if ended {
                return self
                    .end_of_upstream(node, &response.headers, stream, part)
                    .await;
            }
        }
    }

    /// The next chunk's events, within `first_token` (before content) or `stream_idle`
    /// (once content flows); `true` with the last ones.
    async fn read_part(
        &self,
        response: &mut UpstreamResponse,
        part: &mut Part,
    ) -> Result<(Vec<SseItem>, bool), Cut> {
        let idle = self.settings.stream_idle;
        let limit = if part.has_content {
            Instant::now() + idle
        } else {
            part.token_deadline
        };
        match tokio::time::timeout_at(limit, response.body.next()).await {
            Ok(Ok(Some(chunk))) => Ok((part.parser.feed(&chunk), false)),
            Ok(Ok(None)) => Ok((part.parser.finish().into_iter().collect(), true)),
            Err(_) => Err(Cut::of(
                part,
                AttemptError::Stream(format!(
                    "stream stalled: no event for stream_idle ({idle:?})"
                )),
                ErrorClass::Timeout,
                AttemptError::Timeout(format!(
                    "no content within first_token ({:?})",
                    self.settings.first_token
                )),
            )),
            Ok(Err(e)) => Err(Cut::of(
                part,
                AttemptError::Stream(format!("stream broke off: {e}")),
                ErrorClass::StreamBroken,
                AttemptError::Stream(format!("stream broke off before any content: {e}")),
            )),
        }
    }

    /// Looks at each event: malformed ones are dropped, an in-band error cuts the part,
    /// the rest go to the client stream — held while the part has no content yet, else
    /// encoded for the client together with what was held.
    fn take_events(
        &self,
        node: &U::Node,
        items: Vec<SseItem>,
        part: &mut Part,
        stream: &mut ClientStream,
    ) -> Result<BytesMut, Cut> {
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
                return Err(Cut::of(
                    part,
                    AttemptError::Stream(detail.clone()),
                    ErrorClass::Unavailable,
                    AttemptError::Stream(detail),
                ));
            }
            part.has_content |= seen.is_content() || seen.finished || seen.terminal;
            let events = stream.push(event, &seen);
            if part.has_content {
                for e in part.held.drain(..).chain(events) {
                    out.extend_from_slice(&e.encode());
                }
            } else {
                part.held.extend(events);
            }
        }
        Ok(out)
    }

    /// The upstream stream ended: complete (keel adds what the provider left out), or
    /// broken.
    async fn end_of_upstream(
        &mut self,
        node: &U::Node,
        headers: &HeaderMap,
        mut stream: ClientStream,
        mut part: Part,
    ) -> Attempt {
        match stream.end_of_upstream() {
            Ending::Complete(tail) => {
                if !part.committed && self.stream_head(headers).await.is_err() {
                    return Attempt::Done(Served::ClientGone);
                }
                let mut out = BytesMut::new();
                for e in part.held.drain(..).chain(tail) {
                    out.extend_from_slice(&e.encode());
                }
                self.part_complete(node, &stream, out.freeze()).await
            }
            Ending::Broken => {
                let cut = Cut::of(
                    &part,
                    AttemptError::Stream("stream closed before the answer was finished".into()),
                    ErrorClass::StreamBroken,
                    AttemptError::Stream("stream closed before any content".into()),
                );
                self.cut(node, stream, cut)
            }
        }
    }

    /// The client's stream is complete with `tail`.
    async fn part_complete(
        &mut self,
        node: &U::Node,
        stream: &ClientStream,
        tail: Bytes,
    ) -> Attempt {
        self.up.report(
            node,
            Report::Answered {
                status: 200,
                usage: stream.part_usage(),
            },
        );
        Attempt::Done(self.finish_stream(tail).await)
    }

    /// A part that stopped early, reported: broken mid-answer, or a failed attempt.
    fn cut(&self, node: &U::Node, stream: ClientStream, cut: Cut) -> Attempt {
        match cut {
            Cut::MidAnswer(error) => {
                self.up.report(
                    node,
                    Report::Failed {
                        class: ErrorClass::StreamBroken,
                        error: error.clone(),
                        usage: stream.part_usage(),
                    },
                );
                Attempt::Broken(Box::new(stream), error)
            }
            Cut::BeforeContent(class, error) => self.failed(node, class, false, error),
        }
    }

    /// After the first part broke mid-answer: continue on fallback nodes from a prefill, or
    /// end the client's stream with an error event naming the real cause.
    pub(super) async fn continue_stream(
        &mut self,
        mut node: U::Node,
        mut stream: ClientStream,
        error: AttemptError,
    ) -> Served {
        let cause = format!(
            "the answer from node {} broke off after {} characters ({})",
            node.name(),
            stream.delivered().chars().count(),
            error.public()
        );
        tracing::warn!(node = node.name(), error = %error, "LLM stream broke mid-answer");
        self.budget.restart_clock(Instant::now());
        // Client-facing texts name nodes and failure kinds only; the log has the rest.
        let mut last = error.public();
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
                Err(Attempt::Failed(_, e)) => {
                    tracing::warn!(node = node.name(), error = %e, "continuation failed");
                    last = format!("{}: {}", node.name(), e.public());
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
                let error = AttemptError::Status {
                    status,
                    detail: format!(
                        "continuation refused: status {status}: {}",
                        String::from_utf8_lossy(&text)
                    ),
                };
                tracing::warn!(node = node.name(), error = %error, "continuation refused");
                last = format!("{}: {}", node.name(), error.public());
                self.up.report(
                    &node,
                    Report::Failed {
                        class: ErrorClass::StreamBroken,
                        error,
                        usage: None,
                    },
                );
                continue;
            }
            match self
                .relay_stream(&node, response, part, true, started)
                .await
            {
                Attempt::Done(served) => return served,
                Attempt::Failed(_, e) => {
                    tracing::warn!(node = node.name(), error = %e, "continuation failed");
                    last = format!("{}: {}", node.name(), e.public());
                }
                Attempt::Broken(s, e) => {
                    tracing::warn!(node = node.name(), error = %e, "continuation broke off");
                    stream = *s;
                    last = format!("{}: {}", node.name(), e.public());
                }
            }
        }
    }

    /// Drops an event that is not valid JSON (logged and counted).
    fn malformed(&self, node: &U::Node, data: &str) {
        let sample: String = data.chars().take(120).collect();
        tracing::warn!(node = node.name(), data = %sample, "dropped a malformed stream event");
        self.up.report(node, Report::MalformedEvent);
    }

    /// The client's response header for a stream: the node's, unframed, not cached.
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

    /// Ends a stream that began with an in-band error event in the API's format.
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
