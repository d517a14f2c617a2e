//! What an upstream answer means for failover: the error classes of issue 7 and the
//! `Retry-After` a provider sent.
//!
//! The class decides everything downstream of it: which node may take over (a node's
//! `fallback_for` lists the classes it accepts), whether the same node may be tried again,
//! and what the client finally sees. Semantic 4xx answers are never retried: the provider
//! understood the request and refused it, and another try would only bill twice.

use std::time::{Duration, SystemTime};

pub(crate) use crate::config::ErrorClass;

/// The meaning of an upstream response header (plus, for 4xx, its small error body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// 2xx: relay it.
    Success,
    /// A failure another try may fix.
    Retry {
        class: ErrorClass,
        /// Honour-able wait the provider asked for (`Retry-After`, `retry-after-ms`).
        retry_after: Option<Duration>,
        /// The same node may be tried once more (a blip, or the provider said when).
        same_node: bool,
    },
    /// Return to the client as it is; `reason` labels logs and metrics.
    Final { reason: &'static str },
}

/// Classifies a non-2xx (or 2xx) upstream response. `body` is the error body, read up to a
/// small limit; it matters only for 4xx (context length, quota, content policy).
pub(crate) fn classify(
    status: u16,
    headers: &http::HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Verdict {
    let retry = |class, same_node| Verdict::Retry {
        class,
        retry_after: None,
        same_node,
    };
    match status {
        200..=299 => Verdict::Success,
        429 => {
            // An exhausted quota will not recover in seconds: move on, do not wait.
            if error_text(body).contains("insufficient_quota") {
                return retry(ErrorClass::RateLimited, false);
            }
            let retry_after = retry_after(headers, now);
            Verdict::Retry {
                class: ErrorClass::RateLimited,
                retry_after,
                same_node: retry_after.is_some(),
            }
        }
        408 => retry(ErrorClass::Timeout, true),
        500 | 502 | 504 => retry(ErrorClass::Unavailable, true),
        // 503 and Anthropic's 529 "overloaded": the node said it cannot serve now.
        503 | 529 => Verdict::Retry {
            class: ErrorClass::Unavailable,
            retry_after: retry_after(headers, now),
            same_node: false,
        },
        500..=599 => retry(ErrorClass::Unavailable, false),
        400 | 413 | 422 if is_context_length(body) => retry(ErrorClass::ContextLength, false),
        _ if is_content_policy(body) => Verdict::Final {
            reason: "content_policy",
        },
        _ => Verdict::Final {
            reason: "client_error",
        },
    }
}

/// Lower-cased text of an error body for marker matching (bounded by the caller's read).
fn error_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).to_ascii_lowercase()
}

/// OpenAI `context_length_exceeded`, Anthropic "prompt is too long", and the wordings of
/// common OpenAI-compatible servers (vLLM, llama.cpp, Mistral).
pub(crate) fn is_context_length(body: &[u8]) -> bool {
    let text = error_text(body);
    [
        "context_length_exceeded",
        "maximum context length",
        "context length",
        "context window",
        "prompt is too long",
        "too many tokens",
    ]
    .iter()
    .any(|m| text.contains(m))
}

/// A refused assistant prefill: OpenAI-compatible servers' `invalid_prefill` or "must end
/// with a user message", and Anthropic's "does not support assistant message prefill".
/// Not a node failure — the node cannot continue a text, but can answer the request anew.
pub(crate) fn is_prefill_rejection(status: u16, body: &[u8]) -> bool {
    if !matches!(status, 400 | 422) {
        return false;
    }
    let text = error_text(body);
    [
        "invalid_prefill",
        "prefill",
        "must end with a user message",
        "final message must be a user message",
        "last message must be a user message",
    ]
    .iter()
    .any(|m| text.contains(m))
}

fn is_content_policy(body: &[u8]) -> bool {
    let text = error_text(body);
    [
        "content_policy",
        "content_filter",
        "content policy",
        "safety system",
    ]
    .iter()
    .any(|m| text.contains(m))
}

/// The wait a provider asked for: `retry-after-ms` (OpenAI, milliseconds), else
/// `Retry-After` as delta-seconds or an HTTP date (past dates mean "now").
pub(crate) fn retry_after(headers: &http::HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        // The same bound as `Retry-After` below: a node's `1e30` is ignored, not a panic
        // in `Duration::from_secs_f64`.
        if (0.0..1e12).contains(&ms) {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    parse_retry_after(text("retry-after")?, now)
}

/// `Retry-After` value: delta-seconds (fractions tolerated) or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<f64>() {
        return (0.0..1e9)
            .contains(&secs)
            .then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn verdict(status: u16, h: &[(&'static str, &str)], body: &str) -> Verdict {
        classify(status, &headers(h), body.as_bytes(), SystemTime::now())
    }

    #[test]
    fn retry_after_seconds_ms_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784111777);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        for huge in ["1e30", "1e300", "inf", "NaN", "-0.5"] {
            let mut h = HeaderMap::new();
            h.insert("retry-after-ms", huge.parse().unwrap());
            assert_eq!(retry_after(&h, now), None, "retry-after-ms {huge}");
        }
        assert_eq!(parse_retry_after("soon", now), None);
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        let h = headers(&[("retry-after-ms", "250"), ("retry-after", "9")]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(250)));
    }

    #[test]
    fn statuses_map_to_classes() {
        assert_eq!(verdict(200, &[], ""), Verdict::Success);
        assert_eq!(
            verdict(429, &[("retry-after", "1")], ""),
            Verdict::Retry {
                class: ErrorClass::RateLimited,
                retry_after: Some(Duration::from_secs(1)),
                same_node: true
            }
        );
        assert_eq!(
            verdict(429, &[], ""),
            Verdict::Retry {
                class: ErrorClass::RateLimited,
                retry_after: None,
                same_node: false
            }
        );
        assert_eq!(
            verdict(
                429,
                &[("retry-after", "1")],
                r#"{"error":{"code":"insufficient_quota"}}"#
            ),
            Verdict::Retry {
                class: ErrorClass::RateLimited,
                retry_after: None,
                same_node: false
            }
        );
        for s in [500, 502, 504] {
            assert!(matches!(
                verdict(s, &[], ""),
                Verdict::Retry {
                    class: ErrorClass::Unavailable,
                    same_node: true,
                    ..
                }
            ));
        }
        for s in [503, 529, 501] {
            assert!(matches!(
                verdict(s, &[], ""),
                Verdict::Retry {
                    class: ErrorClass::Unavailable,
                    same_node: false,
                    ..
                }
            ));
        }
    }

    #[test]
    fn prefill_rejections_are_recognised() {
        let openai = r#"{"error":{"message":"Conversation must end with a user message","type":"invalid_request_error","code":"invalid_prefill"}}"#;
        let anthropic = r#"{"type":"error","error":{"type":"invalid_request_error","message":"This model does not support assistant message prefill. The conversation must end with a user message."}}"#;
        for body in [openai, anthropic] {
            assert!(is_prefill_rejection(400, body.as_bytes()), "{body}");
        }
        assert!(!is_prefill_rejection(500, openai.as_bytes()));
        assert!(!is_prefill_rejection(
            400,
            br#"{"error":{"code":"context_length_exceeded"}}"#
        ));
    }

    #[test]
    fn semantic_400s() {
        let openai = r#"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
        let anthropic = r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 200001 tokens > 200000 maximum"}}"#;
        for body in [openai, anthropic] {
            assert!(matches!(
                verdict(400, &[], body),
                Verdict::Retry {
                    class: ErrorClass::ContextLength,
                    same_node: false,
                    ..
                }
            ));
        }
        let policy = r#"{"error":{"message":"rejected by our content policy","code":"content_policy_violation"}}"#;
        assert_eq!(
            verdict(400, &[], policy),
            Verdict::Final {
                reason: "content_policy"
            }
        );
        assert_eq!(
            verdict(401, &[], "{}"),
            Verdict::Final {
                reason: "client_error"
            }
        );
    }
}
