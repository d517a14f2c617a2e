//! LLM-aware failover settings (issue 7): the error classes a node may take over, the
//! stream timeouts, how long a provider's `Retry-After` is honoured, and duplicate
//! suppression by idempotency key.
//!
//! They live beside the gateway's `[proxy]` settings: per node `fallback_for` and
//! `supports_prefill`; `[proxy.timeouts]` `first_byte`, `first_token`, `stream_idle`;
//! `[proxy.retry]` `max_retry_after`; and the `[proxy.dedup]` section defined here.

use super::validate::Scope;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Failure classes; a node's `fallback_for` lists those it may take over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// 5xx, 529, connection refused or reset before headers.
    Unavailable,
    /// 429.
    RateLimited,
    /// No headers within `first_byte`, no first content event within `first_token`.
    Timeout,
    /// A stream cut, stalled (`stream_idle`) or failing in-band after it began.
    StreamBroken,
    /// The prompt does not fit the node's context window.
    ContextLength,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 5] = [
        ErrorClass::Unavailable,
        ErrorClass::RateLimited,
        ErrorClass::Timeout,
        ErrorClass::StreamBroken,
        ErrorClass::ContextLength,
    ];

    /// Metric label and config spelling.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Unavailable => "unavailable",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Timeout => "timeout",
            ErrorClass::StreamBroken => "stream_broken",
            ErrorClass::ContextLength => "context_length",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Default `fallback_for`: any node may take over transient failures, so plain failover
/// works without LLM settings; `context_length` is opt-in because only a node with a larger
/// context window helps.
pub fn default_fallback_for() -> Vec<ErrorClass> {
    vec![
        ErrorClass::Unavailable,
        ErrorClass::RateLimited,
        ErrorClass::Timeout,
        ErrorClass::StreamBroken,
    ]
}

/// Default `[proxy.timeouts] first_byte`: for a non-streaming request the provider sends its
/// headers only when the whole answer is ready, so this also bounds generation time.
pub const DEFAULT_FIRST_BYTE: Duration = Duration::from_secs(60);
/// Default `[proxy.timeouts] stream_first_byte`: a streaming provider sends its header at
/// once (generation time is bounded by `first_token` and `stream_idle`), so a node silent
/// for 10 s is dead and the fallback gets its turn well within `total`.
pub const DEFAULT_STREAM_FIRST_BYTE: Duration = Duration::from_secs(10);
/// Default `[proxy.timeouts] first_token`.
pub const DEFAULT_FIRST_TOKEN: Duration = Duration::from_secs(30);
/// Default `[proxy.timeouts] stream_idle`.
pub const DEFAULT_STREAM_IDLE: Duration = Duration::from_secs(30);
/// Default `[proxy.retry] max_retry_after`: a gateway that waits longer holds the client
/// longer than its own retry would.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// `[proxy.dedup]`: duplicate suppression for non-streaming generation requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    pub enabled: bool,
    /// Request header carrying the key.
    pub header: String,
    /// How long a completed answer is replayed for its key.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Keys remembered at once (in flight and completed); the oldest answers go first.
    pub max_entries: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            enabled: true,
            header: "Idempotency-Key".into(),
            window: Duration::from_secs(600),
            max_entries: 10_000,
        }
    }
}

impl DedupConfig {
    pub fn validate(&self, v: &mut Scope<'_>) {
        if http::HeaderName::from_bytes(self.header.as_bytes()).is_err() {
            v.error(
                "header",
                format!("{:?} is not a valid header name", self.header),
            );
        }
        v.positive_duration("window", self.window);
        v.range("max_entries", self.max_entries, 1, 10_000_000);
    }
}

/// Checks the LLM timeouts of `[proxy.timeouts]`.
pub fn validate_llm_timeouts(
    v: &mut Scope<'_>,
    first_byte: Duration,
    stream_first_byte: Duration,
    first_token: Duration,
    stream_idle: Duration,
) {
    v.positive_duration("first_byte", first_byte);
    v.positive_duration("stream_first_byte", stream_first_byte);
    v.positive_duration("first_token", first_token);
    v.positive_duration("stream_idle", stream_idle);
}

/// Checks a node's `fallback_for`: no class twice.
pub fn validate_fallback_for(v: &mut Scope<'_>, classes: &[ErrorClass]) {
    for (i, c) in classes.iter().enumerate() {
        if classes[..i].contains(c) {
            v.error("fallback_for", format!("{c} is listed twice"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Validator;

    #[test]
    fn defaults_are_valid_and_errors_name_their_keys() {
        let mut v = Validator::default();
        DedupConfig::default().validate(&mut v.at("proxy.dedup"));
        assert!(v.into_errors().is_empty());

        let bad = DedupConfig {
            header: "bad header".into(),
            window: Duration::ZERO,
            max_entries: 0,
            ..DedupConfig::default()
        };
        let mut v = Validator::default();
        bad.validate(&mut v.at("proxy.dedup"));
        validate_llm_timeouts(
            &mut v.at("proxy.timeouts"),
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        validate_fallback_for(
            &mut v.at("proxy.nodes[0]"),
            &[ErrorClass::Timeout, ErrorClass::Timeout],
        );
        let errs: Vec<String> = v.into_errors().iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errs,
            [
                "proxy.dedup.header: \"bad header\" is not a valid header name",
                "proxy.dedup.window: duration must be greater than zero",
                "proxy.dedup.max_entries: 0 is out of range (1..=10000000)",
                "proxy.timeouts.first_byte: duration must be greater than zero",
                "proxy.nodes[0].fallback_for: timeout is listed twice",
            ]
        );
    }

    #[test]
    fn classes_deserialize_from_their_config_names() {
        #[derive(Deserialize)]
        struct N {
            fallback_for: Vec<ErrorClass>,
        }
        let n: N = toml::from_str(
            "fallback_for = [\"unavailable\", \"rate_limited\", \"timeout\", \"stream_broken\", \"context_length\"]",
        )
        .unwrap();
        assert_eq!(n.fallback_for, ErrorClass::ALL);
        assert!(toml::from_str::<N>("fallback_for = [\"nope\"]").is_err());
    }
}
