//! The retry layer's bookkeeping for one client request: which nodes were tried (the skip
//! set), why each failed, how long to back off before the next try, and the final error.
//!
//! The attempt loop itself lives in [`super::service`], because every try touches the
//! Pingora session; this module holds the decisions so they can be tested without sockets.

use crate::config::RetryConfig;
use rand::Rng;
use std::time::Duration;

/// Why one try failed; retried on another node while attempts remain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryFailure {
    Connect(String),
    /// No response header within the per-try limit.
    Timeout,
    /// A status listed in `retry.on_status`.
    Status(u16),
    /// The connection broke before a response header arrived.
    Upstream(String),
}

impl std::fmt::Display for TryFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TryFailure::Connect(e) => write!(f, "connect failed: {e}"),
            TryFailure::Timeout => f.write_str("timed out before the response header"),
            TryFailure::Status(s) => write!(f, "status {s}"),
            TryFailure::Upstream(e) => write!(f, "upstream error: {e}"),
        }
    }
}

impl TryFailure {
    /// Label value for `keel_upstream_retries_total{reason}` and the request metric.
    pub fn kind(&self) -> &'static str {
        match self {
            TryFailure::Connect(_) => "connect",
            TryFailure::Timeout => "timeout",
            TryFailure::Status(_) => "status",
            TryFailure::Upstream(_) => "upstream",
        }
    }
}

/// State of one request's retries.
#[derive(Debug)]
pub struct RetryState {
    max_attempts: u32,
    backoff_min: Duration,
    backoff_max: Duration,
    tried: Vec<(String, TryFailure)>,
}

/// What the loop does after a failed try.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then try another node.
    RetryAfter(Duration),
    /// Attempts exhausted.
    GiveUp,
}

impl RetryState {
    pub fn new(config: &RetryConfig) -> Self {
        RetryState {
            max_attempts: config.max_attempts.max(1),
            backoff_min: config.backoff_min,
            backoff_max: config.backoff_max,
            tried: Vec::new(),
        }
    }

    /// Nodes that already failed this request; the picker skips them.
    pub fn skip(&self) -> impl Iterator<Item = &str> {
        self.tried.iter().map(|(n, _)| n.as_str())
    }

    pub fn has_tried(&self, node: &str) -> bool {
        self.tried.iter().any(|(n, _)| n == node)
    }

    /// Tries made so far.
    pub fn attempts(&self) -> u32 {
        self.tried.len() as u32
    }

    /// Records a failed try and decides what follows.
    pub fn failed(&mut self, node: &str, failure: TryFailure) -> Next {
        self.tried.push((node.to_string(), failure));
        if self.attempts() >= self.max_attempts {
            Next::GiveUp
        } else {
            Next::RetryAfter(self.backoff(self.attempts() - 1, &mut rand::rng()))
        }
    }

    /// `base = min * 2^retry` capped at `max`, plus jitter in `[0, base/2)`.
    pub fn backoff(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        let base = self
            .backoff_min
            .checked_mul(factor)
            .unwrap_or(self.backoff_max)
            .min(self.backoff_max);
        let half = base.as_micros() as u64 / 2;
        let jitter = if half == 0 {
            0
        } else {
            rng.random_range(0..half)
        };
        base + Duration::from_micros(jitter)
    }

    /// The failures, `"node1: connect failed: ...; node2: status 503"`, for the 502 answer.
    pub fn describe(&self) -> String {
        self.tried
            .iter()
            .map(|(n, f)| format!("{n}: {f}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Names of the nodes tried, in order.
    pub fn nodes(&self) -> Vec<String> {
        self.tried.iter().map(|(n, _)| n.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_attempts: u32) -> RetryConfig {
        RetryConfig {
            max_attempts,
            ..RetryConfig::default()
        }
    }

    /// Drives the state the way the service does: pick an untried node, try it.
    fn run(
        nodes: &[(&str, Result<&'static str, TryFailure>)],
        max: u32,
    ) -> Result<&'static str, String> {
        let mut state = RetryState::new(&config(max));
        loop {
            let Some((name, outcome)) = nodes.iter().find(|(n, _)| !state.has_tried(n)) else {
                return Err(format!("all nodes failed: {}", state.describe()));
            };
            match outcome {
                Ok(body) => return Ok(body),
                Err(f) => match state.failed(name, f.clone()) {
                    Next::RetryAfter(d) => assert!(d >= Duration::from_millis(10)),
                    Next::GiveUp => return Err(format!("all nodes failed: {}", state.describe())),
                },
            }
        }
    }

    #[test]
    fn first_try_succeeds() {
        assert_eq!(run(&[("a", Ok("a")), ("b", Ok("b"))], 3), Ok("a"));
    }

    #[test]
    fn second_try_succeeds_on_another_node() {
        assert_eq!(
            run(&[("a", Err(TryFailure::Status(503))), ("b", Ok("b"))], 3),
            Ok("b")
        );
    }

    #[test]
    fn all_fail_names_every_node_tried() {
        let err = run(
            &[
                ("a", Err(TryFailure::Connect("refused".into()))),
                ("b", Err(TryFailure::Status(502))),
                ("c", Err(TryFailure::Timeout)),
            ],
            3,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "all nodes failed: a: connect failed: refused; b: status 502; c: timed out before the response header"
        );
    }

    #[test]
    fn attempts_are_capped() {
        let err = run(
            &[
                ("a", Err(TryFailure::Status(503))),
                ("b", Err(TryFailure::Status(503))),
                ("c", Ok("c")),
            ],
            2,
        )
        .unwrap_err();
        assert!(err.contains("a: status 503; b: status 503"), "{err}");
    }

    #[test]
    fn backoff_doubles_caps_and_jitters_below_half() {
        let s = RetryState::new(&config(5));
        let mut rng = rand::rng();
        for _ in 0..100 {
            let d0 = s.backoff(0, &mut rng);
            assert!(
                d0 >= Duration::from_millis(10) && d0 < Duration::from_millis(15),
                "{d0:?}"
            );
            let d1 = s.backoff(1, &mut rng);
            assert!(
                d1 >= Duration::from_millis(20) && d1 < Duration::from_millis(30),
                "{d1:?}"
            );
            let d9 = s.backoff(9, &mut rng);
            assert!(
                d9 >= Duration::from_millis(100) && d9 < Duration::from_millis(150),
                "{d9:?}"
            );
        }
    }
}
