//! The retry policy of both routes: after a failed attempt, wait and try the same node,
//! wait and move to another node, or give up — inside a bounded number of attempts and a
//! bounded time, and never faster than [`PACE_ATTEMPTS`] attempts per node per
//! [`PACE_WINDOW`].
//!
//! | failure | next |
//! |---|---|
//! | 429 with `Retry-After` ≤ `max_retry_after`, first time on this node | wait that long, same node |
//! | 429 without it, longer, or a second time | jittered backoff, fallback |
//! | 500/502/504/408 or reset before headers, first time on this node | short jittered backoff, same node |
//! | the same again, or 503/529 | jittered backoff, fallback |
//! | no headers in `first_byte` / `stream_first_byte`, closed silently, no token in `first_token` | fallback at once, never the same node (a silent node only multiplies the wait); the first such fallback may start even after `total` |
//! | stream cut or stalled | fallback at once (continuation) |
//! | context length | fallback at once, only to nodes whose `fallback_for` has it |
//! | any failure on the generic route ([`Failure::elsewhere`]) | jittered backoff, another node |
//!
//! The LLM route classifies what a node answered ([`super::llm::classify`]); the generic
//! route knows no error classes and always moves on. Which node is a fallback is the
//! caller's choice (`fallback_for`, breaker, priority); this module only says *whether* and
//! *when*. Nodes already tried are not picked again.
//!
//! Time is `tokio`'s [`Instant`] and every decision takes `now` as an argument (as the
//! breaker does): the LLM driver's tests run on tokio's paused clock.

use crate::config::{ErrorClass, ProxyConfig};
use rand::Rng;
use std::time::Duration;
use tokio::time::Instant;

/// At most this many attempts on one node ...
pub(crate) const PACE_ATTEMPTS: usize = 2;
/// ... within this window.
pub(crate) const PACE_WINDOW: Duration = Duration::from_millis(1500);

/// The knobs, taken from `[proxy.retry]` and `[proxy.timeouts]` ([`BudgetConfig::of`]).
#[derive(Debug, Clone)]
pub(crate) struct BudgetConfig {
    /// Attempts per request, every node and continuation included.
    pub max_attempts: u32,
    /// Time from the request's arrival within which every attempt must start.
    pub total: Duration,
    /// The longest `Retry-After` keel honours by waiting.
    pub max_retry_after: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl BudgetConfig {
    /// The knobs of `[proxy.retry]` and `[proxy.timeouts]`.
    pub(crate) fn of(cfg: &ProxyConfig) -> Self {
        BudgetConfig {
            max_attempts: cfg.retry.max_attempts,
            total: cfg.timeouts.total,
            max_retry_after: cfg.retry.max_retry_after,
            backoff_min: cfg.retry.backoff_min,
            backoff_max: cfg.retry.backoff_max,
        }
    }
}

/// One failed attempt, as the policy needs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub class: ErrorClass,
    pub retry_after: Option<Duration>,
    /// The verdict allows a second try on the same node (see [`super::llm::classify`]).
    pub same_node: bool,
}

impl Failure {
    /// A failure on the generic route, whatever it was: another node, after a jittered
    /// backoff (the class that plans exactly that).
    pub(crate) fn elsewhere() -> Self {
        Failure {
            class: ErrorClass::Unavailable,
            retry_after: None,
            same_node: false,
        }
    }
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Try the same node again at this instant.
    Same { at: Instant },
    /// Try a node that takes over `class`, not before this instant (a later one if pacing
    /// asks for it: see [`Budget::earliest`]).
    Fallback { class: ErrorClass, at: Instant },
    /// Attempts or time are used up.
    GiveUp,
}

#[derive(Debug)]
pub(crate) struct Budget {
    config: BudgetConfig,
    started: Instant,
    /// Every attempt (node, start), in order. A flat list: a request makes a handful of
    /// attempts, and most make one — it costs one allocation where a map of lists took three.
    attempts: Vec<(String, Instant)>,
    total_attempts: u32,
    /// A fallback after a silent node was already granted past the deadline: a silent
    /// primary must never use up the time the fallback needs, but it gets that grace once.
    silence_grace_used: bool,
}

impl Budget {
    pub(crate) fn new(config: BudgetConfig, started: Instant) -> Self {
        Budget {
            config,
            started,
            attempts: Vec::new(),
            total_attempts: 0,
            silence_grace_used: false,
        }
    }

    /// When the request's time budget ends.
    pub(crate) fn deadline(&self) -> Instant {
        self.started + self.config.total
    }

    /// Gives the attempts after a mid-stream break a fresh time window from `now`: an answer
    /// that streamed for longer than `total` must still be continuable. The attempt count
    /// is not reset, so the request stays bounded.
    pub(crate) fn restart_clock(&mut self, now: Instant) {
        self.started = self.started.max(now);
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.total_attempts
    }

    /// Whether `node` has had an attempt in this request (fallbacks are untried nodes).
    pub(crate) fn tried(&self, node: &str) -> bool {
        self.attempts.iter().any(|(n, _)| n == node)
    }

    /// Records that an attempt on `node` starts now.
    pub(crate) fn record_attempt(&mut self, node: &str, now: Instant) {
        self.attempts.push((node.to_string(), now));
        self.total_attempts += 1;
    }

    /// The earliest instant ≥ `at` at which `node` may be tried without exceeding
    /// [`PACE_ATTEMPTS`] attempts in any [`PACE_WINDOW`].
    pub(crate) fn earliest(&self, node: &str, at: Instant) -> Instant {
        // The attempt PACE_ATTEMPTS back on this node must be a full window before the new one.
        let anchor = self
            .attempts
            .iter()
            .rev()
            .filter(|(n, _)| n == node)
            .nth(PACE_ATTEMPTS - 1);
        match anchor {
            Some((_, t)) => at.max(*t + PACE_WINDOW),
            None => at,
        }
    }

    /// Decides after a failed attempt on `node`.
    pub(crate) fn after_failure(
        &mut self,
        node: &str,
        failure: &Failure,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Plan {
        if self.total_attempts >= self.config.max_attempts {
            return Plan::GiveUp;
        }
        let tries_here = self.attempts.iter().filter(|(n, _)| n == node).count();
        let plan = match failure.class {
            ErrorClass::RateLimited
                if failure.same_node
                    && tries_here < 2
                    && failure
                        .retry_after
                        .is_some_and(|ra| ra <= self.config.max_retry_after) =>
            {
                let wait = failure.retry_after.unwrap_or_default();
                Plan::Same {
                    at: self.earliest(node, now + wait),
                }
            }
            ErrorClass::Unavailable | ErrorClass::Timeout
                if failure.same_node && tries_here < 2 =>
            {
                Plan::Same {
                    at: self.earliest(node, now + self.backoff(0, rng)),
                }
            }
            ErrorClass::RateLimited | ErrorClass::Unavailable => Plan::Fallback {
                class: failure.class,
                at: now + self.backoff(self.total_attempts.saturating_sub(1), rng),
            },
            ErrorClass::Timeout | ErrorClass::StreamBroken | ErrorClass::ContextLength => {
                Plan::Fallback {
                    class: failure.class,
                    at: now,
                }
            }
        };
        let at = match &plan {
            Plan::Same { at } | Plan::Fallback { at, .. } => *at,
            Plan::GiveUp => return Plan::GiveUp,
        };
        if at >= self.deadline() {
            // The header wait of a non-streaming attempt (`first_byte`, 60 s) is longer than
            // `total` (30 s): without this a silent primary would leave no time for the
            // fallback. Worst case: one header wait + one fallback attempt.
            let silent =
                failure.class == ErrorClass::Timeout && matches!(plan, Plan::Fallback { .. });
            if !silent || self.silence_grace_used {
                return Plan::GiveUp;
            }
            self.silence_grace_used = true;
        }
        plan
    }

    /// `min * 2^n` capped at `max`, plus jitter in `[0, base/2)`, so concurrent clients that
    /// failed together do not come back together.
    fn backoff(&self, n: u32, rng: &mut impl Rng) -> Duration {
        let factor = 1u32.checked_shl(n.min(20)).unwrap_or(u32::MAX);
        let base = self
            .config
            .backoff_min
            .checked_mul(factor)
            .unwrap_or(self.config.backoff_max)
            .min(self.config.backoff_max);
        let half = base.as_micros() as u64 / 2;
        let jitter = if half == 0 {
            0
        } else {
            rng.random_range(0..half)
        };
        base + Duration::from_micros(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BudgetConfig {
        BudgetConfig {
            max_attempts: 5,
            total: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(5),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
        }
    }

    fn failure(class: ErrorClass, retry_after: Option<u64>, same_node: bool) -> Failure {
        Failure {
            class,
            retry_after: retry_after.map(Duration::from_secs),
            same_node,
        }
    }

    #[test]
    fn rate_limit_with_short_retry_after_waits_on_the_same_node_once() {
        let t0 = Instant::now();
        let mut b = Budget::new(config(), t0);
        let mut rng = rand::rng();
        b.record_attempt("a", t0);
        let f = failure(ErrorClass::RateLimited, Some(2), true);
        assert_eq!(
            b.after_failure("a", &f, t0, &mut rng),
            Plan::Same {
                at: t0 + Duration::from_secs(2)
            }
        );
        b.record_attempt("a", t0 + Duration::from_secs(2));
        // Persistent 429: move on.
        assert!(matches!(
            b.after_failure("a", &f, t0 + Duration::from_secs(2), &mut rng),
            Plan::Fallback {
                class: ErrorClass::RateLimited,
                ..
            }
        ));
    }

    #[test]
    fn rate_limit_with_long_or_no_retry_after_backs_off_then_falls_back() {
        let t0 = Instant::now();
        let mut rng = rand::rng();
        for ra in [Some(60), None] {
            let mut b = Budget::new(config(), t0);
            b.record_attempt("a", t0);
            let plan = b.after_failure(
                "a",
                &failure(ErrorClass::RateLimited, ra, ra.is_some()),
                t0,
                &mut rng,
            );
            let Plan::Fallback { at, .. } = plan else {
                panic!("{plan:?}")
            };
            let wait = at - t0;
            assert!(
                wait >= Duration::from_millis(10) && wait < Duration::from_millis(15),
                "{wait:?}"
            );
        }
    }

    #[test]
    fn transient_5xx_retries_the_node_once_then_fails_over_but_503_fails_over_at_once() {
        let t0 = Instant::now();
        let mut rng = rand::rng();
        let mut b = Budget::new(config(), t0);
        b.record_attempt("a", t0);
        let f = failure(ErrorClass::Unavailable, None, true);
        let Plan::Same { at } = b.after_failure("a", &f, t0, &mut rng) else {
            panic!("same")
        };
        b.record_attempt("a", at);
        assert!(matches!(
            b.after_failure("a", &f, at, &mut rng),
            Plan::Fallback { .. }
        ));
        let mut b = Budget::new(config(), t0);
        b.record_attempt("a", t0);
        assert!(matches!(
            b.after_failure(
                "a",
                &failure(ErrorClass::Unavailable, None, false),
                t0,
                &mut rng
            ),
            Plan::Fallback { .. }
        ));
    }

    #[test]
    fn silence_broken_streams_and_context_length_fail_over_at_once() {
        let t0 = Instant::now();
        let mut rng = rand::rng();
        for class in [
            ErrorClass::Timeout,
            ErrorClass::StreamBroken,
            ErrorClass::ContextLength,
        ] {
            let mut b = Budget::new(config(), t0);
            b.record_attempt("a", t0);
            assert_eq!(
                b.after_failure("a", &failure(class, None, false), t0, &mut rng),
                Plan::Fallback { class, at: t0 }
            );
        }
    }

    #[test]
    fn a_silent_node_leaves_the_fallback_its_turn_once_even_after_total() {
        let t0 = Instant::now();
        let mut rng = rand::rng();
        let mut b = Budget::new(config(), t0);
        b.record_attempt("a", t0);
        let late = t0 + Duration::from_secs(60);
        let silent = failure(ErrorClass::Timeout, None, false);
        assert_eq!(
            b.after_failure("a", &silent, late, &mut rng),
            Plan::Fallback {
                class: ErrorClass::Timeout,
                at: late
            }
        );
        b.record_attempt("b", late);
        let later = late + Duration::from_secs(60);
        assert_eq!(b.after_failure("b", &silent, later, &mut rng), Plan::GiveUp);
        // Other failures get no grace.
        let mut b = Budget::new(config(), t0);
        b.record_attempt("a", t0);
        let f = failure(ErrorClass::Unavailable, None, false);
        assert_eq!(b.after_failure("a", &f, late, &mut rng), Plan::GiveUp);
    }

    #[test]
    fn pacing_allows_two_attempts_per_node_in_any_window() {
        let t0 = Instant::now();
        let mut b = Budget::new(config(), t0);
        assert_eq!(b.earliest("a", t0), t0);
        b.record_attempt("a", t0);
        assert_eq!(b.earliest("a", t0), t0);
        b.record_attempt("a", t0 + Duration::from_millis(100));
        assert_eq!(b.earliest("a", t0), t0 + PACE_WINDOW);
        // A third attempt on the node is never planned, whatever the provider asks for.
        let f = failure(ErrorClass::RateLimited, Some(0), true);
        let plan = b.after_failure("a", &f, t0 + Duration::from_millis(100), &mut rand::rng());
        assert!(matches!(plan, Plan::Fallback { .. }), "{plan:?}");
    }

    #[test]
    fn attempts_and_time_are_bounded() {
        let t0 = Instant::now();
        let mut rng = rand::rng();
        let mut b = Budget::new(
            BudgetConfig {
                max_attempts: 2,
                ..config()
            },
            t0,
        );
        let f = failure(ErrorClass::Unavailable, None, false);
        b.record_attempt("a", t0);
        assert!(matches!(
            b.after_failure("a", &f, t0, &mut rng),
            Plan::Fallback { .. }
        ));
        b.record_attempt("b", t0);
        assert_eq!(b.after_failure("b", &f, t0, &mut rng), Plan::GiveUp);

        let mut b = Budget::new(config(), t0);
        b.record_attempt("a", t0);
        let late = t0 + Duration::from_secs(29);
        let f = failure(ErrorClass::RateLimited, Some(3), true);
        assert_eq!(b.after_failure("a", &f, late, &mut rng), Plan::GiveUp);

        // A stream that broke after a minute can still be continued.
        let mut b = Budget::new(config(), t0);
        b.record_attempt("a", t0);
        let broke = t0 + Duration::from_secs(60);
        let f = failure(ErrorClass::StreamBroken, None, false);
        assert_eq!(b.after_failure("a", &f, broke, &mut rng), Plan::GiveUp);
        b.restart_clock(broke);
        assert!(matches!(
            b.after_failure("a", &f, broke, &mut rng),
            Plan::Fallback { .. }
        ));
    }

    #[test]
    fn generic_failures_move_on_after_a_backoff_until_attempts_run_out() {
        let t0 = Instant::now();
        let mut rng = rand::rng();
        let mut b = Budget::new(
            BudgetConfig {
                max_attempts: 3,
                ..config()
            },
            t0,
        );
        let mut waits = Vec::new();
        for node in ["a", "b"] {
            b.record_attempt(node, t0);
            let Plan::Fallback { at, .. } =
                b.after_failure(node, &Failure::elsewhere(), t0, &mut rng)
            else {
                panic!("another node")
            };
            waits.push(at - t0);
        }
        assert!(b.tried("a") && b.tried("b") && !b.tried("c"));
        // min * 2^n plus jitter below half of it: 10..15 ms, then 20..30 ms.
        assert!(waits[0] >= Duration::from_millis(10) && waits[0] < Duration::from_millis(15));
        assert!(waits[1] >= Duration::from_millis(20) && waits[1] < Duration::from_millis(30));
        b.record_attempt("c", t0);
        assert_eq!(
            b.after_failure("c", &Failure::elsewhere(), t0, &mut rng),
            Plan::GiveUp
        );
    }

    #[test]
    fn backoff_doubles_caps_and_jitters_below_half() {
        let b = Budget::new(config(), Instant::now());
        let mut rng = rand::rng();
        for _ in 0..100 {
            let d0 = b.backoff(0, &mut rng);
            assert!(
                d0 >= Duration::from_millis(10) && d0 < Duration::from_millis(15),
                "{d0:?}"
            );
            let d1 = b.backoff(1, &mut rng);
            assert!(
                d1 >= Duration::from_millis(20) && d1 < Duration::from_millis(30),
                "{d1:?}"
            );
            let d9 = b.backoff(9, &mut rng);
            assert!(
                d9 >= Duration::from_millis(100) && d9 < Duration::from_millis(150),
                "{d9:?}"
            );
        }
    }
}
