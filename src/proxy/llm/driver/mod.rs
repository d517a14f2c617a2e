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
//! `HttpServerApp`, see `proxy::service`). The LLM route ([`super::route`]) plugs the driver
//! in there: the gateway implements [`Upstream`] (node choice, Pingora connector, breaker
//! and metrics) and [`ClientSink`] (the Pingora downstream `Session`) in
//! [`super::adapter`], and calls [`serve`].
//!
//! # Reading order
//!
//! - this file: [`serve`] and the attempt loop (`Driver::run`): first node, one attempt,
//!   the retry policy's plan ([`crate::proxy::retry`]), the next node or keel's own error;
//! - `ports`: the traits the gateway (and the tests) implement;
//! - `whole`: an error answer (retry or return it) and a whole, non-streaming answer;
//! - `stream`: one streamed part with its held header, and the continuation of a stream
//!   that broke mid-answer.
//!
//! # Time
//!
//! The driver keeps time only on tokio's clock ([`tokio::time::Instant`], `sleep_until`,
//! `timeout_at`) and hands every `now` to the retry policy: that clock is its injection
//! point. Production reads the monotonic clock through it; the tests run on tokio's paused
//! clock (`start_paused`), so a 300 ms limit or a 2 s pause costs no real time.

mod hedge;
mod ports;
mod stream;
#[cfg(test)]
mod tests;
mod whole;

pub(crate) use ports::{
    BodyBroken, ClientGone, ClientSink, LlmNode, Report, ResponseBody, Upstream, UpstreamResponse,
};

use super::classify::ErrorClass;
use super::continuation::ClientStream;
use super::dialect::LlmRequest;
use crate::proxy::attempt::AttemptError;
use crate::proxy::retry::{Budget, BudgetConfig, Failure, Plan};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use std::time::Duration;
use tokio::time::Instant;

/// Largest error body read to classify (and possibly relay) a non-2xx answer.
pub(crate) const MAX_ERROR_BODY: usize = 1024 * 1024;
/// A connection the node closed before any header, after at least this long, was a silent
/// node (not a blip): it counts as a timeout and the node is not retried in the request.
/// Quick resets stay blips with their one same-node retry.
pub(crate) const SILENT_CLOSE: Duration = Duration::from_secs(1);
/// Largest non-streaming answer keel buffers before sending it.
pub(crate) const MAX_ANSWER_BODY: usize = 64 * 1024 * 1024;

/// Timeouts and limits of the LLM path.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub budget: BudgetConfig,
    /// Response header of one non-streaming attempt (the provider answers when the whole
    /// answer is ready, so this bounds generation time too).
    pub first_byte: Duration,
    /// Response header of one streaming attempt: a streaming provider sends its header at
    /// once, so a node silent for this long is treated as dead, not as slow.
    pub stream_first_byte: Duration,
    /// First content event of a streamed part, from the attempt's start.
    pub first_token: Duration,
    /// Silence between two events once content flows.
    pub stream_idle: Duration,
    /// Start a fallback beside a stream that has no content within `first_token` and keep
    /// whichever produces content first (see `hedge`); off: the slow node is abandoned.
    pub hedge: bool,
}

/// How the request ended, for the request log and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
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
    Failed(Failure, AttemptError),
    /// The stream broke after this node delivered content to the client.
    Broken(Box<ClientStream>, AttemptError),
    /// A regenerated answer (after a refused prefill) did not begin with the text the
    /// client already had: it cannot be spliced in.
    Diverged,
}

/// Runs `request` against the upstream nodes and answers `client`. `started` is when the
/// request arrived (the time budget counts from there).
pub(crate) async fn serve<U: Upstream, C: ClientSink>(
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
        switched: None,
    };
    driver.run().await
}

struct Driver<'a, U: Upstream, C: ClientSink> {
    up: &'a U,
    client: &'a mut C,
    request: &'a LlmRequest,
    settings: &'a Settings,
    budget: Budget,
    /// Each failed attempt, in order: `node: what failed` for the client, `node: class:
    /// the full error` for the log (addresses and transport errors never reach clients).
    failures: Vec<(String, String, ErrorClass)>,
    held: Option<HeldError>,
    /// The node the current attempt ended on when it is not the one it began on: a hedge
    /// that won, or failed last.
    switched: Option<U::Node>,
}

/// Waits until `at` when it lies ahead. A deadline already reached must not go through
/// `sleep_until`: tokio rounds every timer up to its next 1 ms tick, so a sleep "until now"
/// costs up to a millisecond of latency on every request's first attempt.
async fn wait_until(at: Instant) {
    if at > Instant::now() {
        tokio::time::sleep_until(at).await;
    }
}

impl<U: Upstream, C: ClientSink> Driver<'_, U, C> {
    /// The attempt loop: one attempt at a time until one answers, the policy gives up, or
    /// no node is left to take over.
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
            let attempt = self.attempt(&node, taking_over, started).await;
            if let Some(hedge) = self.switched.take() {
                node = hedge;
            }
            let (failure, error) = match attempt {
                Attempt::Done(served) => return served,
                Attempt::Broken(stream, error) => {
                    return self.continue_stream(node, *stream, error).await
                }
                // Only a continuation regenerates; a first part never diverges.
                Attempt::Diverged => return Served::StreamError,
                Attempt::Failed(mut failure, error) => {
                    failure.same_node &= node.may_retry();
                    self.note_failure(&node, &failure, &error);
                    (failure, error)
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
                error = %error,
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
        if self.request.stream && stream::is_event_stream(&response.headers) {
            return self.relay_hedged(node, response, started).await;
        }
        self.relay_whole(node, response).await
    }

    /// Sends with the header limit (`stream_first_byte` for a streaming request, else
    /// `first_byte`); a failure is already reported.
    async fn send(&self, node: &U::Node, body: Bytes) -> Result<UpstreamResponse, Attempt> {
        let (wait, key) = if self.request.stream {
            (self.settings.stream_first_byte, "stream_first_byte")
        } else {
            (self.settings.first_byte, "first_byte")
        };
        let began = Instant::now();
        let sent = tokio::time::timeout(wait, self.up.send(node, body)).await;
        let (class, error, same_node) = match sent {
            Ok(Ok(r)) => return Ok(r),
            // A silent node is never tried again within the request: it only multiplies
            // the wait.
            Err(_) => {
                let error =
                    AttemptError::Timeout(format!("no response header within {key} ({wait:?})"));
                (ErrorClass::Timeout, error, false)
            }
            // Refused or unreachable: nothing suggests the same node works a moment later.
            Ok(Err(e @ AttemptError::Connect(_))) => (ErrorClass::Unavailable, e, false),
            // Closed after a long silence: the node hung, it did not blip.
            Ok(Err(e)) if began.elapsed() >= SILENT_CLOSE => {
                let error = AttemptError::Timeout(format!(
                    "closed after {:.1} s without a response header: {e}",
                    began.elapsed().as_secs_f64()
                ));
                (ErrorClass::Timeout, error, false)
            }
            // Closed at once, before the header: may have been a blip.
            Ok(Err(e)) => (ErrorClass::Unavailable, e, true),
        };
        Err(self.failed(node, class, same_node, error))
    }

    /// Keeps a failed attempt for the final error: `node: what failed` for the client,
    /// `node: class: the full error` for the log.
    fn note_failure(&mut self, node: &U::Node, failure: &Failure, error: &AttemptError) {
        self.failures.push((
            format!("{}: {}", node.name(), error.public()),
            format!("{}: {}: {error}", node.name(), failure.class),
            failure.class,
        ));
    }

    /// Reports a failed attempt (nothing reached the client) and what the policy needs of it.
    fn failed(
        &self,
        node: &U::Node,
        class: ErrorClass,
        same_node: bool,
        error: AttemptError,
    ) -> Attempt {
        let failure = Failure {
            class,
            retry_after: None,
            same_node,
        };
        self.fail(node, failure, error)
    }

    /// [`Self::failed`] for a failure the node's answer described (a `Retry-After` with it).
    fn fail(&self, node: &U::Node, failure: Failure, error: AttemptError) -> Attempt {
        self.up.report(
            node,
            Report::Failed {
                class: failure.class,
                error: error.clone(),
                usage: None,
            },
        );
        Attempt::Failed(failure, error)
    }

    /// Every attempt failed before the client saw anything.
    async fn give_up(&mut self) -> Served {
        let summary = format!(
            "all attempts failed ({} in total): {}",
            self.budget.attempts(),
            self.failures
                .iter()
                .map(|(text, _, _)| text.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
        let detail = self
            .failures
            .iter()
            .map(|(_, text, _)| text.as_str())
            .collect::<Vec<_>>()
            .join("; ");
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
                .all(|(_, _, class)| *class == ErrorClass::Timeout);
        let status = if only_timeouts { 504 } else { 502 };
        // The one line that says why this request failed, with every attempt's full error.
        tracing::warn!(
            status,
            attempts = self.budget.attempts(),
            causes = %detail,
            "LLM request failed"
        );
        if only_timeouts {
            self.keel_error(504, "upstream_timeout", &summary, None)
                .await
        } else {
            self.keel_error(502, "all_nodes_failed", &summary, None)
                .await
        }
    }

    /// keel's own error answer, in the API's error shape.
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

    /// A complete answer with its length.
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
}

/// Why a body could not be read whole.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("no data for {0:?}")]
    Idle(Duration),
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error(transparent)]
    Broken(#[from] BodyBroken),
}

/// Reads a body to its end, up to `max` bytes, with `idle` as the longest silence.
async fn read_all(
    body: &mut dyn ResponseBody,
    max: usize,
    idle: Duration,
) -> Result<Bytes, ReadError> {
    let mut out = crate::proxy::body::Collected::default();
    loop {
        match tokio::time::timeout(idle, body.next()).await {
            Err(_) => return Err(ReadError::Idle(idle)),
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(None)) => return Ok(out.finish()),
            Ok(Ok(Some(chunk))) => {
                if out.size() + chunk.len() > max {
                    return Err(ReadError::TooLarge(max));
                }
                out.push(chunk);
            }
        }
    }
}
