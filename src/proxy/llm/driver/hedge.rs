//! Hedging a slow first token: when a streamed attempt has its header but no content within
//! `first_token`, keel starts a fallback beside it and keeps whichever produces content
//! first.
//!
//! Why in parallel rather than one after the other: a slow first token is usually a busy
//! node, not a dead one, and its answer may still be the first to come. Abandoning it would
//! throw away the time already spent; waiting for it alone lets one slow node hold the
//! client. Both attempts are *primed* ([`Driver::prime`]): read up to their first content
//! with the header still held, writing nothing to the client. The first one primed is
//! delivered, the other one is dropped, which closes its connection. So the client never
//! gets bytes of both, and the loser counts as an attempt (`Report::Lost` for a hedge the
//! primary beat, a `timeout` failure for a primary the hedge beat), never as a completion
//! or as tokens.
//!
//! Bounds: a hedge starts only when a node takes over `timeout`, the request still has an
//! attempt left (`retry.max_attempts`) and is within `timeouts.total`; the race ends at the
//! hedge's own `first_token` — then both count as timeouts and the attempt loop goes on.

use super::stream::{is_event_stream, Primed};
use super::{read_all, wait_until, Attempt, Driver, MAX_ERROR_BODY};
use super::{ClientSink, LlmNode, Report, Upstream, UpstreamResponse};
use crate::proxy::attempt::AttemptError;
use crate::proxy::llm::classify::{classify, ErrorClass, Verdict};
use crate::proxy::llm::continuation::ClientStream;
use crate::proxy::retry::Failure;
use std::future::Future;
use std::time::SystemTime;
use tokio::time::Instant;

/// How the first attempt's wait for content ended.
enum Outcome<N> {
    /// The primary produced content first; `hedge`: the one it beat, if one started.
    PrimaryWon {
        hedge: Option<N>,
        primed: Box<Primed>,
    },
    /// The hedge produced content first.
    HedgeWon { hedge: N, primed: Box<Primed> },
    /// The primary ended (failed) before `first_token`, or no hedge could start.
    Alone(Attempt),
    /// Both failed; the hedge's failure is the last one.
    BothFailed {
        hedge: N,
        primary: Attempt,
        last: Attempt,
    },
}

impl<U: Upstream, C: ClientSink> Driver<'_, U, C> {
    /// Relays a streamed attempt whose header arrived (begun at `started`), hedging it when
    /// no content came within `first_token`.
    pub(super) async fn relay_hedged(
        &mut self,
        node: &U::Node,
        response: UpstreamResponse,
        started: Instant,
    ) -> Attempt {
        let first_token = self.settings.first_token;
        let token_at = started + first_token;
        let hedge_started;
        let outcome = {
            // The primary may run on after `first_token` only while a hedge races it.
            let primary = self.prime(
                node,
                response,
                ClientStream::new(self.request),
                false,
                started,
                token_at + first_token,
            );
            tokio::pin!(primary);
            let early = tokio::select! {
                biased;
                primed = &mut primary => Some(primed),
                () = wait_until(token_at) => None,
            };
            hedge_started = Instant::now();
            match early {
                Some(Ok(primed)) => Outcome::PrimaryWon {
                    hedge: None,
                    primed: Box::new(primed),
                },
                Some(Err(failed)) => Outcome::Alone(failed),
                None => match self.hedge_node(hedge_started) {
                    // No hedge possible: the primary's first_token is over, as without
                    // hedging (its pinned future, and connection, end with this block).
                    None => {
                        let error = AttemptError::Timeout(format!(
                            "no content within first_token ({first_token:?})"
                        ));
                        Outcome::Alone(self.failed(node, ErrorClass::Timeout, false, error))
                    }
                    Some(hedge) => {
                        let raced = self.hedge_attempt(&hedge, hedge_started);
                        self.race(node, primary, hedge.clone(), raced).await
                    }
                },
            }
        };
        match outcome {
            Outcome::PrimaryWon { hedge, primed } => {
                // A lost hedge was an attempt of this request all the same (the bounds of
                // `retry.max_attempts` hold).
                if let Some(hedge) = hedge {
                    self.budget.record_attempt(hedge.name(), hedge_started);
                }
                self.deliver(node, *primed).await
            }
            Outcome::Alone(attempt) => attempt,
            Outcome::HedgeWon { hedge, primed } => {
                self.budget.record_attempt(hedge.name(), hedge_started);
                tracing::info!(
                    node = node.name(),
                    hedge = hedge.name(),
                    "slow first token: the hedge answered first"
                );
                let attempt = self.deliver(&hedge, *primed).await;
                self.switched = Some(hedge);
                attempt
            }
            Outcome::BothFailed {
                hedge,
                primary,
                last,
            } => {
                self.budget.record_attempt(hedge.name(), hedge_started);
                if let Attempt::Failed(failure, error) = primary {
                    self.note_failure(node, &failure, &error);
                }
                self.switched = Some(hedge);
                last
            }
        }
    }

    /// The node to hedge with, if hedging is on and the request may make another attempt.
    fn hedge_node(&self, now: Instant) -> Option<U::Node> {
        let budget = &self.budget;
        let allowed = self.settings.hedge
            && budget.attempts() < self.settings.budget.max_attempts
            && now < budget.deadline();
        if !allowed {
            return None;
        }
        self.up
            .fallback(ErrorClass::Timeout, &|n| budget.tried(n), false)
    }

    /// Races the primary (still priming) against the hedge; neither writes to the client.
    async fn race(
        &self,
        node: &U::Node,
        mut primary: std::pin::Pin<&mut impl Future<Output = Result<Primed, Attempt>>>,
        hedge: U::Node,
        raced: impl Future<Output = Result<Primed, Attempt>>,
    ) -> Outcome<U::Node> {
        tracing::info!(
            node = node.name(),
            hedge = hedge.name(),
            "no content within first_token: hedging on another node"
        );
        tokio::pin!(raced);
        let mut primary_failed: Option<Attempt> = None;
        let mut hedge_failed: Option<Attempt> = None;
        loop {
            tokio::select! {
                primed = &mut primary, if primary_failed.is_none() => match primed {
                    Ok(primed) => {
                        if hedge_failed.is_none() {
                            self.up.report(&hedge, Report::Lost);
                        }
                        return Outcome::PrimaryWon {
                            hedge: Some(hedge),
                            primed: Box::new(primed),
                        };
                    }
                    Err(failed) => primary_failed = Some(failed),
                },
                primed = &mut raced, if hedge_failed.is_none() => match primed {
                    Ok(primed) => {
                        if primary_failed.is_none() {
                            let error = AttemptError::Timeout(format!(
                                "no content within first_token ({:?}); the hedge on {} answered first",
                                self.settings.first_token,
                                hedge.name()
                            ));
                            self.up.report(
                                node,
                                Report::Failed {
                                    class: ErrorClass::Timeout,
                                    error,
                                    usage: None,
                                },
                            );
                        }
                        return Outcome::HedgeWon {
                            hedge,
                            primed: Box::new(primed),
                        };
                    }
                    Err(failed) => hedge_failed = Some(failed),
                },
            }
            match (primary_failed, hedge_failed) {
                (Some(primary), Some(last)) => {
                    return Outcome::BothFailed {
                        hedge,
                        primary,
                        last,
                    }
                }
                (p, h) => (primary_failed, hedge_failed) = (p, h),
            }
        }
    }

    /// The hedge itself, begun at `started`: send, then prime its stream within
    /// `first_token`. A refusal or an answer that is no stream is a failed attempt (a node
    /// taking over never answers for another).
    async fn hedge_attempt(&self, hedge: &U::Node, started: Instant) -> Result<Primed, Attempt> {
        let deadline = started + self.settings.first_token;
        let body = self.request.body_for(hedge.model_mapping());
        let mut response = self.send(hedge, body).await?;
        if !(200..300).contains(&response.status) {
            let status = response.status;
            if let Some(looped) = self.looped(hedge, status) {
                return Err(looped);
            }
            let body = read_all(
                &mut *response.body,
                MAX_ERROR_BODY,
                self.settings.stream_idle,
            )
            .await
            .unwrap_or_default();
            let verdict = classify(status, &response.headers, &body, SystemTime::now());
            let (class, retry_after) = match verdict {
                Verdict::Retry {
                    class, retry_after, ..
                } => (class, retry_after),
                Verdict::Final { .. } | Verdict::Success => (ErrorClass::Timeout, None),
            };
            let error = AttemptError::Status {
                status,
                detail: format!("hedge refused the request: status {status}"),
            };
            let failure = Failure {
                class,
                retry_after,
                same_node: false,
            };
            return Err(self.fail(hedge, failure, error));
        }
        if !is_event_stream(&response.headers) {
            let error =
                AttemptError::Stream("answered a streaming request without a stream".into());
            return Err(self.failed(hedge, ErrorClass::Unavailable, false, error));
        }
        let stream = ClientStream::new(self.request);
        self.prime(hedge, response, stream, false, started, deadline)
            .await
    }
}
