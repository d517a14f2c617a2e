//! What the driver needs from the world around it, as traits: nodes and transport
//! ([`Upstream`], implemented by the gateway's pool and connector in
//! [`super::super::adapter`]) and the client ([`ClientSink`], the Pingora downstream session
//! there). The driver's tests implement them with scripted in-memory nodes.

use super::super::classify::ErrorClass;
use super::super::token_usage::Usage;
use crate::proxy::attempt::AttemptError;
use async_trait::async_trait;
use bytes::Bytes;
use http::HeaderMap;
use std::collections::BTreeMap;

/// A node as the LLM path needs to know it.
pub(crate) trait LlmNode: Clone + Send + Sync {
    fn name(&self) -> &str;
    fn model_mapping(&self) -> &BTreeMap<String, String>;
    /// Whether a failed attempt may be repeated on this node within the request. False for
    /// a half-open probe (its failure reopened the breaker: the request moves on at once)
    /// and for a node whose previous request failed too (an outage, not a blip), so that
    /// during an outage the node never sees more attempts than there are client requests.
    fn may_retry(&self) -> bool {
        true
    }
}

/// A response header and the body still to be read.
pub(crate) struct UpstreamResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Box<dyn ResponseBody>,
}

#[async_trait]
pub(crate) trait ResponseBody: Send {
    /// The next chunk; `Ok(None)` at a clean end, `Err` when the connection broke.
    async fn next(&mut self) -> Result<Option<Bytes>, BodyBroken>;
}

/// The upstream connection broke while its body was read (the transport's own error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BodyBroken(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// What happened on one node, for its breaker, metrics and token counts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Report {
    /// The node's answer reached the client. `usage` as the node reported it.
    Answered { status: u16, usage: Option<Usage> },
    /// A failed attempt: a node failure and an attempt, never a completion. `usage` is only
    /// set for a stream that broke after delivering part of the answer (those tokens are
    /// in the client's usage too).
    Failed {
        class: ErrorClass,
        /// What went wrong; its label is the retry metric's `reason`.
        error: AttemptError,
        usage: Option<Usage>,
    },
    /// The node refused the request (a 4xx): not a node failure.
    Refused { status: u16 },
    /// An attempt dropped because another one answered first (a hedge the primary beat),
    /// or a regenerated answer that could not be spliced in: an attempt, but neither a
    /// node failure nor a completion.
    Lost,
    /// An event that was not valid JSON was dropped from its stream.
    MalformedEvent,
}

/// Node choice, transport and accounting — implemented by the gateway.
#[async_trait]
pub(crate) trait Upstream: Send + Sync {
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
    /// Sends the request with `body` and returns at the response header; the error is a
    /// [`AttemptError::Connect`] or [`AttemptError::Upstream`].
    async fn send(&self, node: &Self::Node, body: Bytes) -> Result<UpstreamResponse, AttemptError>;
    fn report(&self, node: &Self::Node, report: Report);
    /// Whether `node` recently refused an assistant prefill for `model` (the name it was
    /// sent): then a continuation there regenerates the answer without one at once.
    fn prefill_refused(&self, node: &Self::Node, model: &str) -> bool;
    /// Remembers that `node` refused an assistant prefill for `model`.
    fn remember_prefill_refusal(&self, node: &Self::Node, model: &str);
    /// A streamed attempt on `node` produced its first content `after` the attempt began
    /// (its time to first token).
    fn first_token(&self, _node: &Self::Node, _after: std::time::Duration) {}
}

/// The client went away; nothing more can be written.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the client went away")]
pub(crate) struct ClientGone;

/// Where the answer goes — implemented over the Pingora downstream session. The driver sets
/// the framing headers itself (`content-length` for whole bodies, none for streams). The
/// header map is handed over, so the session can send it without copying it header by header.
#[async_trait]
pub(crate) trait ClientSink: Send {
    async fn head(&mut self, status: u16, headers: HeaderMap) -> Result<(), ClientGone>;
    async fn body(&mut self, data: Bytes, end: bool) -> Result<(), ClientGone>;
}
