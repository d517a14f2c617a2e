//! The access log (`[log] access`): one structured line per proxied request, through the
//! same log pipeline as keel's other lines (JSON or text), under the target
//! [`TARGET`] so that it is emitted whatever `[log] level` says.
//!
//! The routes note what they learn while they serve ([`AccessNotes`] in the request's
//! [`super::RequestCtx`]): the key's name, the model, each node tried and how
//! its try ended, the first byte and first token, token usage. The dispatcher writes the
//! line once the request ended ([`AccessLog::write`]), adding status, duration and bytes.
//! Successes are sampled (`access_sample`); an error (status ≥ 400, an answer cut short, a
//! failed try) is always written, since that is the line an operator looks for.

use super::super::llm::token_usage::Usage;
use super::RequestCtx;
use crate::config::LogConfig;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The tracing target of access lines; `logging::init` lets it through at `info`.
pub(crate) const TARGET: &str = "keel::access";

/// One try on one node, as the access log names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Try {
    pub node: String,
    /// The failure class (`connect`, `timeout`, `status`, an LLM error class such as
    /// `server_error`), or `None` when this try answered the client.
    pub failure: Option<&'static str>,
}

/// What the routes learned about a request, for its access line.
#[derive(Debug, Default)]
pub struct AccessNotes {
    /// The name of the client key that was accepted (never the key itself).
    pub key_name: Option<Arc<str>>,
    /// The `model` of the client's body.
    pub model: Option<String>,
    /// The `model` the answering node got (after its `model_mapping`).
    pub model_sent: Option<String>,
    pub tries: Vec<Try>,
    /// From the request head to the response header written to the client.
    pub first_byte: Option<Duration>,
    /// From the request head to the first response body bytes of a node's answer written
    /// to the client (on the LLM route the header waits for the first content, so for a
    /// stream this is the first token).
    pub first_token: Option<Duration>,
    pub usage: Option<Usage>,
}

impl AccessNotes {
    /// Adds the tries and usage a route collected elsewhere (the LLM adapter's).
    pub fn absorb(&mut self, tries: Vec<Try>, usage: Option<Usage>) {
        self.tries.extend(tries);
        self.add_usage(usage);
    }

    pub fn add_usage(&mut self, usage: Option<Usage>) {
        if let Some(u) = usage {
            self.usage = Some(self.usage.map_or(u, |have| have + u));
        }
    }

    /// Notes the model the answering node was sent (its `model_mapping` applied to the
    /// requested one), once the request ended.
    pub fn settle(&mut self, pool: &super::super::pool::Pool) {
        let (Some(model), Some(last)) = (&self.model, self.tries.last()) else {
            return;
        };
        let Some(node) = pool.get(&last.node) else {
            return;
        };
        let mapped = super::super::llm::dialect::map_model(&node.config.model_mapping, model);
        self.model_sent = Some(mapped.unwrap_or(model).to_string());
    }

    /// `a=connect b=ok`: each node tried, in order, with how its try ended.
    fn tries_text(&self) -> String {
        let mut out = String::new();
        for (i, t) in self.tries.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let _ = write!(out, "{}={}", t.node, t.failure.unwrap_or("ok"));
        }
        out
    }

    /// Whether anything went wrong: such a request is logged whatever the sampling.
    fn failed_try(&self) -> bool {
        self.tries.iter().any(|t| t.failure.is_some())
    }
}

/// `[log] access` and `access_sample`, as the proxy uses them.
#[derive(Debug)]
pub struct AccessLog {
    /// Atomics, not plain fields: a reload turns the log on or off and changes the sample
    /// rate ([`AccessLog::apply`]) while requests are being written.
    enabled: AtomicBool,
    /// `access_sample` as `f64` bits.
    sample: AtomicU64,
}

impl AccessLog {
    pub fn of(config: &LogConfig) -> Self {
        AccessLog {
            enabled: AtomicBool::new(config.access),
            sample: AtomicU64::new(config.access_sample.to_bits()),
        }
    }

    /// Puts a reloaded `[log]`'s `access` and `access_sample` in force.
    pub fn apply(&self, config: &LogConfig) {
        self.sample
            .store(config.access_sample.to_bits(), Ordering::Relaxed);
        self.enabled.store(config.access, Ordering::Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Writes the access line of a finished request (when enabled and, for a success,
    /// sampled in). `bytes_in`/`bytes_out` are the client's body bytes read and written.
    pub fn write(&self, ctx: &RequestCtx, method: &str, path: &str, bytes: (usize, usize)) {
        if !self.enabled() {
            return;
        }
        let notes = &ctx.access;
        let error = ctx.status == 0 || ctx.status >= 400 || ctx.cut_short || notes.failed_try();
        let sample = f64::from_bits(self.sample.load(Ordering::Relaxed));
        if !error && sample < 1.0 && rand::random::<f64>() >= sample {
            return;
        }
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        tracing::info!(
            target: TARGET,
            request_id = %ctx.request_id,
            key = notes.key_name.as_deref(),
            method,
            path,
            model = notes.model.as_deref(),
            model_sent = notes.model_sent.as_deref(),
            nodes = %notes.tries_text(),
            status = ctx.status,
            outcome = if ctx.status == 0 || ctx.cut_short { "aborted" } else { "answered" },
            attempts = notes.tries.len(),
            ttfb_ms = ms(notes.first_byte),
            ttft_ms = ms(notes.first_token),
            duration_ms = ctx.started.elapsed().as_secs_f64() * 1000.0,
            input_tokens = notes.usage.map(|u| u.input),
            output_tokens = notes.usage.map(|u| u.output),
            bytes_in = bytes.0,
            bytes_out = bytes.1,
            "access"
        );
    }
}

/// The `model` of a JSON request body, for the access line of a generic-route request
/// (the LLM route has it parsed already). Only read when the access log is on.
pub(crate) fn body_model(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Model {
        model: Option<String>,
    }
    if body.first() != Some(&b'{') {
        return None;
    }
    serde_json::from_slice::<Model>(body).ok()?.model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tries_are_named_in_order_with_their_failure_class() {
        let mut notes = AccessNotes::default();
        assert!(!notes.failed_try());
        notes.absorb(
            vec![
                Try {
                    node: "a".into(),
                    failure: Some("connect"),
                },
                Try {
                    node: "b".into(),
                    failure: None,
                },
            ],
            Some(Usage {
                input: 3,
                output: 4,
            }),
        );
        notes.add_usage(Some(Usage {
            input: 1,
            output: 1,
        }));
        assert_eq!(notes.tries_text(), "a=connect b=ok");
        assert!(notes.failed_try());
        assert_eq!(
            notes.usage,
            Some(Usage {
                input: 4,
                output: 5
            })
        );
    }

    #[test]
    fn the_model_is_read_from_a_json_body_only() {
        assert_eq!(
            body_model(br#"{"input":"x","model":"e5"}"#).as_deref(),
            Some("e5")
        );
        assert_eq!(body_model(b"model=e5"), None);
        assert_eq!(body_model(br#"{"input":"x"}"#), None);
    }
}
