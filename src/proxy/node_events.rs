//! The gateway's typed events: every state change an operator should see. Emitted through
//! [`crate::telemetry::EventBus`], each becomes a log line (the reference's wording where it
//! had one, e.g. `[warmup] node node3 probe 1/2 success (latency: 123ms)`), a
//! `keel_events_total{kind}` increment and a dashboard message.

use crate::telemetry::{Event, Level};
use serde::Serialize;
use std::time::{Duration, Instant};

macro_rules! event {
    ($ty:ident, $kind:literal, $level:expr, |$s:ident| $msg:expr) => {
        impl Event for $ty {
            fn kind(&self) -> &'static str {
                $kind
            }
            fn component(&self) -> &'static str {
                "proxy"
            }
            fn message(&self) -> String {
                let $s = self;
                $msg
            }
            fn level(&self) -> Level {
                $level
            }
        }
    };
}

#[derive(Serialize)]
pub(crate) struct BreakerOpened {
    pub node: String,
    pub reason: String,
    pub cooldown_ms: u64,
    pub ejections: u32,
}
event!(BreakerOpened, "breaker.opened", Level::Warn, |e| format!(
    "circuit breaker of node {} opened: {} (open for {} ms, ejection {} in a row)",
    e.node, e.reason, e.cooldown_ms, e.ejections
));

#[derive(Serialize)]
pub(crate) struct BreakerHalfOpen {
    pub node: String,
}
event!(
    BreakerHalfOpen,
    "breaker.half_open",
    Level::Info,
    |e| format!(
        "circuit breaker of node {} is half-open: admitting probe requests",
        e.node
    )
);

#[derive(Serialize)]
pub(crate) struct BreakerClosed {
    pub node: String,
}
event!(BreakerClosed, "breaker.closed", Level::Info, |e| format!(
    "circuit breaker of node {} closed: node recovered",
    e.node
));

#[derive(Serialize)]
pub(crate) struct EjectionCapped {
    pub node: String,
    pub reason: String,
    pub max_ejected_percent: u32,
}
event!(
    EjectionCapped,
    "breaker.ejection_capped",
    Level::Warn,
    |e| {
        format!(
    "node {} would be ejected ({}) but at most {}% of nodes may be: panic mode, traffic stays spread over all nodes",
    e.node, e.reason, e.max_ejected_percent
)
    }
);

#[derive(Serialize)]
pub(crate) struct NodePrewarming {
    pub node: String,
    pub reason: String,
}
event!(NodePrewarming, "node.prewarming", Level::Info, |e| format!(
    "[warmup] prewarming node {}...",
    e.node
));

#[derive(Serialize)]
pub(crate) struct PrewarmProbe {
    pub node: String,
    pub attempt: u32,
    pub attempts: u32,
    pub success: bool,
    pub latency_ms: u64,
    pub detail: String,
}
event!(
    PrewarmProbe,
    "node.prewarm_probe",
    Level::Info,
    |e| if e.success {
        format!(
            "[warmup] node {} probe {}/{} success (latency: {}ms)",
            e.node, e.attempt, e.attempts, e.latency_ms
        )
    } else {
        format!(
            "[warmup] node {} probe {}/{} failed: {} (latency: {}ms)",
            e.node, e.attempt, e.attempts, e.detail, e.latency_ms
        )
    }
);

#[derive(Serialize)]
pub(crate) struct NodePrewarmed {
    pub node: String,
    pub successes: u32,
    pub attempts: u32,
}
event!(NodePrewarmed, "node.prewarmed", Level::Info, |e| format!(
    "[warmup] node {} prewarmed successfully ({}/{})",
    e.node, e.successes, e.attempts
));

#[derive(Serialize)]
pub(crate) struct PrewarmFailed {
    pub node: String,
    pub attempts: u32,
    pub retry_in_ms: u64,
}
event!(
    PrewarmFailed,
    "node.prewarm_failed",
    Level::Warn,
    |e| format!(
        "[warmup] node {} prewarm failed (0/{}); kept out of rotation, next try in {} ms",
        e.node, e.attempts, e.retry_in_ms
    )
);

#[derive(Serialize)]
pub(crate) struct NodeSwitched {
    pub node: String,
    pub reason: String,
}
event!(NodeSwitched, "node.switched", Level::Info, |e| format!(
    "switched to node {} (reason: {})",
    e.node, e.reason
));

#[derive(Serialize)]
pub(crate) struct ShiftStage {
    pub node: String,
    pub percent: u32,
    pub effective_weight: u32,
}
event!(
    ShiftStage,
    "shift.stage_advanced",
    Level::Info,
    |e| format!(
        "node {} now takes {}% of its weight (effective weight {})",
        e.node, e.percent, e.effective_weight
    )
);

#[derive(Serialize)]
pub(crate) struct ShiftRolledBack {
    pub node: String,
    pub percent: u32,
    pub failure_rate: f64,
    pub requests: u32,
}
event!(
    ShiftRolledBack,
    "shift.rolled_back",
    Level::Warn,
    |e| format!(
        "node {} rolled back at the {}% stage: failure rate {:.2} over {} requests",
        e.node, e.percent, e.failure_rate, e.requests
    )
);

#[derive(Serialize)]
pub(crate) struct NodeAdded {
    pub node: String,
    pub base_url: String,
    pub weight: u32,
}
event!(NodeAdded, "node.added", Level::Info, |e| format!(
    "node {} added ({}, weight {}); prewarming before it takes traffic",
    e.node, e.base_url, e.weight
));

#[derive(Serialize)]
pub(crate) struct NodeUpdated {
    pub node: String,
    pub changes: String,
}
event!(NodeUpdated, "node.updated", Level::Info, |e| format!(
    "node {} updated: {}",
    e.node, e.changes
));

#[derive(Serialize)]
pub(crate) struct NodeRemoved {
    pub node: String,
    pub drained: bool,
}
event!(NodeRemoved, "node.removed", Level::Info, |e| if e.drained {
    format!("node {} removed after its requests drained", e.node)
} else {
    format!(
        "node {} removed; requests still in flight were left to finish",
        e.node
    )
});

/// One failed upstream attempt (nothing of it reached the client, or its stream broke
/// mid-answer). Fields name the node and the failure's kind — never an address: the
/// transport's full error stays in the log line of the request.
#[derive(Serialize)]
pub struct UpstreamFailed {
    pub node: String,
    /// `llm` or `generic`.
    pub route: &'static str,
    /// The LLM route's error class (`unavailable`, `rate_limited`, `timeout`,
    /// `stream_broken`, `context_length`); the generic route has no classes and repeats
    /// `reason`.
    pub class: &'static str,
    /// What failed (`connect`, `upstream`, `timeout`, `status`, `stream`): the
    /// `reason` label of `keel_upstream_retries_total`.
    pub reason: &'static str,
    /// The answer's status when the node answered with one.
    pub status: Option<u16>,
    pub request_id: String,
    /// The failure as a client may read it.
    pub error: String,
}
event!(UpstreamFailed, "upstream.failed", Level::Warn, |e| format!(
    "upstream attempt on node {} failed ({}: {}), request {}",
    e.node, e.class, e.error, e.request_id
));

/// Failures of a node left out of the event feed by [`FailureEventLimit`].
#[derive(Serialize)]
pub(crate) struct UpstreamFailuresSuppressed {
    pub node: String,
    pub suppressed: u64,
    pub window_ms: u64,
}
event!(
    UpstreamFailuresSuppressed,
    "upstream.failures_suppressed",
    Level::Warn,
    |e| format!(
        "{} more failed upstream attempts on node {} within {} ms were not reported one by one",
        e.suppressed, e.node, e.window_ms
    )
);

/// `upstream.failed` events one node may emit per [`FAILURE_EVENT_WINDOW`].
pub(crate) const FAILURE_EVENTS_PER_WINDOW: u32 = 10;
pub(crate) const FAILURE_EVENT_WINDOW: Duration = Duration::from_secs(10);

/// Per-node limit on `upstream.failed` events: a node failing every request of a busy
/// gateway would otherwise flood the event ring (pushing out the breaker events that
/// explain the outage) and the log. The first [`FAILURE_EVENTS_PER_WINDOW`] failures of a
/// window become events; the rest are counted, and the count becomes one
/// `upstream.failures_suppressed` event when the window ends. Constant memory per node.
#[derive(Debug, Default)]
pub struct FailureEventLimit {
    window: parking_lot::Mutex<Option<Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    emitted: u32,
    suppressed: u64,
}

/// What to emit for one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// This failure becomes an event.
    pub emit: bool,
    /// Failures suppressed in a window that ended before this one (report them first).
    pub ended_suppressed: u64,
}

impl FailureEventLimit {
    /// Counts a failure at `now`.
    pub fn admit(&self, now: Instant) -> Admitted {
        let mut window = self.window.lock();
        let ended_suppressed = Self::end_if_over(&mut window, now);
        let w = window.get_or_insert(Window {
            start: now,
            emitted: 0,
            suppressed: 0,
        });
        let emit = w.emitted < FAILURE_EVENTS_PER_WINDOW;
        if emit {
            w.emitted += 1;
        } else {
            w.suppressed += 1;
        }
        Admitted {
            emit,
            ended_suppressed,
        }
    }

    /// Ends a window that is over (the gateway's tick asks): the failures it suppressed.
    pub fn flush(&self, now: Instant) -> u64 {
        Self::end_if_over(&mut self.window.lock(), now)
    }

    fn end_if_over(window: &mut Option<Window>, now: Instant) -> u64 {
        match *window {
            Some(w) if now.duration_since(w.start) >= FAILURE_EVENT_WINDOW => {
                *window = None;
                w.suppressed
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_events_are_limited_per_window_and_the_rest_counted() {
        let limit = FailureEventLimit::default();
        let t0 = Instant::now();
        let emitted = (0..25).map(|_| limit.admit(t0)).filter(|a| a.emit).count();
        assert_eq!(emitted, FAILURE_EVENTS_PER_WINDOW as usize);
        assert_eq!(
            limit.flush(t0 + Duration::from_secs(1)),
            0,
            "window not over"
        );
        // The next window's first failure reports what the last one left out.
        let next = limit.admit(t0 + FAILURE_EVENT_WINDOW);
        assert_eq!(
            next,
            Admitted {
                emit: true,
                ended_suppressed: 15
            }
        );
        for _ in 0..FAILURE_EVENTS_PER_WINDOW {
            limit.admit(t0 + FAILURE_EVENT_WINDOW);
        }
        assert_eq!(limit.flush(t0 + FAILURE_EVENT_WINDOW * 2), 1);
        assert_eq!(limit.flush(t0 + FAILURE_EVENT_WINDOW * 3), 0);
    }
}
