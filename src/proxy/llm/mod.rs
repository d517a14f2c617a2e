//! LLM-aware failover (issue 7): what a careful engineer does with the faults LLM providers
//! really produce, so that an OpenAI or Anthropic client gets either the complete answer or
//! a clear, bounded error — never a truncated answer that looks complete, never a hang.
//!
//! The request path, top to bottom:
//! - [`route`]: which requests take this route, idempotency keys, outcome metrics — called
//!   by the dispatcher (`proxy::service`);
//! - [`driver`]: runs the attempts of one request and answers the client;
//! - [`adapter`]: the driver's nodes, transport and client over the gateway's pool, Pingora
//!   connector and Pingora session.
//!
//! The pieces the driver uses, each testable without sockets:
//! - [`sse`]: incremental server-sent-events parser and writer;
//! - [`dialect`]: which API a request speaks, and its per-node body (model mapping,
//!   `stream_options.include_usage`, continuation prefill);
//! - [`classify`]: upstream answers → error classes, `Retry-After`;
//! - [`stream_event`]: what one streamed event means (text, tool content, end, error,
//!   malformed);
//! - [`token_usage`]: token usage of JSON answers and streams, summed across parts;
//! - [`continuation`]: the client's stream across nodes — splicing, termination, in-band
//!   errors;
//! - [`dedup`]: idempotency-key sharing and replay.
//!
//! When to retry, fail over or give up is the retry policy both routes share
//! ([`super::retry`]).

pub(crate) mod adapter;
pub(crate) mod classify;
pub(crate) mod continuation;
pub(crate) mod dedup;
pub(crate) mod dialect;
pub(crate) mod driver;
pub(crate) mod route;
pub(crate) mod sse;
pub(crate) mod stream_event;
pub(crate) mod token_usage;
