//! Why one attempt on one node failed — the one error type of both routes (generic and
//! LLM), the transport ([`super::conns::round_trip`]) and the node's address lookup.
//!
//! Each variant has a [`label`](AttemptError::label): the value of
//! `keel_upstream_retries_total{reason}` and of the LLM route's attempt log, so a failure
//! is named the same way in every metric whichever route saw it. The text (`Display`) says
//! what happened and ends up in the request's final error answer (`node: text; ...`).
//!
//! What the retry policy makes of a failure (same node, another node, give up) is not
//! decided here but in [`super::retry`], from the failure's error class.

/// One failed attempt: nothing of it reached the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    /// Refused, unreachable, unresolvable: nothing was sent.
    #[error("connect failed: {0}")]
    Connect(String),
    /// The connection broke (closed, reset) before a response header arrived.
    #[error("upstream error: {0}")]
    Upstream(String),
    /// A limit passed before the node answered: the per-attempt header limit, or no
    /// content within `first_token`. The text says which.
    #[error("{0}")]
    Timeout(String),
    /// An answer whose status means "try elsewhere" (`retry.on_status` on the generic
    /// route, the error classes on the LLM route), or a refusal by a node taking over.
    #[error("{detail}")]
    Status { status: u16, detail: String },
    /// An answer body or stream that broke off, stalled or reported an error in-band
    /// before it was complete.
    #[error("{0}")]
    Stream(String),
}

/// A text up to its first `: ` (after it come details: an error chain, a provider body).
fn headline(text: &str) -> String {
    text.split(": ").next().unwrap_or(text).to_string()
}

impl AttemptError {
    /// A retryable status, described as `status 503`.
    pub fn status(status: u16) -> Self {
        AttemptError::Status {
            status,
            detail: format!("status {status}"),
        }
    }

    /// What a client may read about this failure: the kind, never the transport's own
    /// text (Pingora's error chains carry upstream addresses and internals, which stay in
    /// the log).
    pub fn public(&self) -> String {
        match self {
            AttemptError::Connect(_) => "connect failed".into(),
            AttemptError::Upstream(_) => "connection closed before the response header".into(),
            // keel's own texts: what passed (`stream stalled`, `no response header within
            // first_byte (60s)`), cut before the `: ` that would add a transport error.
            AttemptError::Timeout(text) | AttemptError::Stream(text) => headline(text),
            AttemptError::Status { detail, .. } => headline(detail),
        }
    }

    /// Label value for `keel_upstream_retries_total{reason}` and the attempt log.
    pub fn label(&self) -> &'static str {
        match self {
            AttemptError::Connect(_) => "connect",
            AttemptError::Upstream(_) => "upstream",
            AttemptError::Timeout(_) => "timeout",
            AttemptError::Status { .. } => "status",
            AttemptError::Stream(_) => "stream",
        }
    }

    /// Status class for `keel_upstream_requests_total{status}`: the answer's class for a
    /// status failure, else `error`.
    pub fn status_class(&self) -> &'static str {
        match self {
            AttemptError::Status { status, .. } => crate::telemetry::metrics::status_class(*status),
            _ => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_a_label_and_says_what_happened() {
        let cases = [
            (
                AttemptError::Connect("refused".into()),
                "connect",
                "connect failed: refused",
            ),
            (
                AttemptError::Upstream("reset".into()),
                "upstream",
                "upstream error: reset",
            ),
            (
                AttemptError::Timeout("no response header within first_byte (1s)".into()),
                "timeout",
                "no response header within first_byte (1s)",
            ),
            (AttemptError::status(503), "status", "status 503"),
            (
                AttemptError::Stream("stream broke off: reset".into()),
                "stream",
                "stream broke off: reset",
            ),
        ];
        for (error, label, text) in cases {
            assert_eq!(error.label(), label);
            assert_eq!(error.to_string(), text);
        }
        assert_eq!(AttemptError::status(503).status_class(), "5xx");
        assert_eq!(AttemptError::Timeout("t".into()).status_class(), "error");
    }
}
