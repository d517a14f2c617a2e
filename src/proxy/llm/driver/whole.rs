//! Answers the driver reads whole before anything goes to the client: an error answer
//! (retry elsewhere, or return it as it is) and a non-streaming answer.

use super::{read_all, Attempt, Driver, HeldError, Served, MAX_ANSWER_BODY, MAX_ERROR_BODY};
use super::{ClientSink, Report, Upstream, UpstreamResponse};
use crate::proxy::attempt::AttemptError;
use crate::proxy::llm::classify::{classify, ErrorClass, Verdict};
use crate::proxy::llm::token_usage::Usage;
use crate::proxy::retry::Failure;
use bytes::Bytes;
use std::time::SystemTime;

/// A keel further on refused the request because its `Via` already names that keel
/// (`proxy::via`): the request went round in a loop.
const LOOP_DETECTED: u16 = 508;

impl<U: Upstream, C: ClientSink> Driver<'_, U, C> {
    /// A 508 means that node is a keel the request already passed through: it is healthy
    /// (no mark on its breaker), the path is a loop. The request moves on, and the 508 is
    /// never held as the client's answer (the final error names the real causes). `None`
    /// for any other status. Both ways a node's non-2xx answer is read (here and a hedge's)
    /// ask this first.
    pub(super) fn looped(&self, node: &U::Node, status: u16) -> Option<Attempt> {
        if status != LOOP_DETECTED {
            return None;
        }
        self.up.report(node, Report::Refused { status });
        let failure = Failure {
            class: ErrorClass::Unavailable,
            retry_after: None,
            same_node: false,
        };
        let error = AttemptError::Status {
            status,
            detail: "loop: the request already passed through that keel".into(),
        };
        Some(Attempt::Failed(failure, error))
    }

    /// A non-2xx answer: a retryable failure, or a refusal returned to the client — but only
    /// when it is the first answer; a fallback's refusal never replaces the real error.
    pub(super) async fn refused_or_failed(
        &mut self,
        node: &U::Node,
        mut response: UpstreamResponse,
        taking_over: Option<ErrorClass>,
    ) -> Attempt {
        let status = response.status;
        if let Some(looped) = self.looped(node, status) {
            return looped;
        }
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
                let error = AttemptError::Status {
                    status,
                    detail: format!("status {status} ({class})"),
                };
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
                return self.fail(node, failure, error);
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
                AttemptError::Status {
                    status,
                    detail: format!("fallback refused the request: status {status} ({reason})"),
                },
            ),
        }
    }

    /// A whole (non-streaming) answer: read it completely, then send it.
    pub(super) async fn relay_whole(
        &mut self,
        node: &U::Node,
        mut response: UpstreamResponse,
    ) -> Attempt {
        let body = match read_all(
            &mut *response.body,
            MAX_ANSWER_BODY,
            self.settings.stream_idle,
        )
        .await
        {
            Ok(b) => b,
            Err(e) => {
                let error = AttemptError::Stream(format!("answer body broke off: {e}"));
                return self.failed(node, ErrorClass::StreamBroken, false, error);
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
}
