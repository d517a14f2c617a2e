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
pub trait LlmNode: Clone + Send + Sync {
    fn name(&self) -> &str;
    /// Error classes this node takes over from another one.
    fn fallback_for(&self) -> &[ErrorClass];
    /// Accepts a trailing assistant message and continues it.
    fn supports_prefill(&self) -> bool;
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
        /// What went wrong; its label is the retry metric's `reason`.
        error: AttemptError,
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
    /// Sends the request with `body` and returns at the response header; the error is a
    /// [`AttemptError::Connect`] or [`AttemptError::Upstream`].
    async fn send(&self, node: &Self::Node, body: Bytes) -> Result<UpstreamResponse, AttemptError>;
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
