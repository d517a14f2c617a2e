//! LLM-aware failover (issue 7): what a careful engineer does with the faults LLM providers
//! really produce, so that an OpenAI or Anthropic client gets either the complete answer or
//! a clear, bounded error — never a truncated answer that looks complete, never a hang.
//!
//! The pieces, each testable without sockets:
//! - [`sse`]: incremental server-sent-events parser and writer;
//! - [`dialect`]: which API a request speaks, and its per-node body (model mapping,
//!   `stream_options.include_usage`, continuation prefill);
//! - [`classify`]: upstream answers → error classes, `Retry-After`;
//! - [`event`]: what one streamed event means (text, tool content, end, error, malformed);
//! - [`usage`]: token usage of JSON answers and streams, summed across parts;
//! - [`continuation`]: the client's stream across nodes — splicing, termination, in-band
//!   errors;
//! - [`budget`]: when to retry the same node, fail over, or give up;
//! - [`dedup`]: idempotency-key sharing and replay;
//! - [`exchange`]: the driver that runs the attempts of one request and answers the client;
//! - [`gateway`]: the driver inside the gateway's Pingora service (nodes, transport,
//!   client session, dedup, metrics).

pub mod budget;
pub mod classify;
pub mod continuation;
pub mod dedup;
pub mod dialect;
pub mod event;
pub mod exchange;
pub mod gateway;
pub mod sse;
pub mod usage;
