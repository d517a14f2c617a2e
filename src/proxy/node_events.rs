//! The gateway's typed events: every state change an operator should see. Emitted through
//! [`crate::telemetry::EventBus`], each becomes a log line (the reference's wording where it
//! had one, e.g. `[warmup] node node3 probe 1/2 success (latency: 123ms)`), a
//! `keel_events_total{kind}` increment and a dashboard message.

use crate::telemetry::{Event, Level};
use serde::Serialize;

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
pub struct BreakerOpened {
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
pub struct BreakerHalfOpen {
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
pub struct BreakerClosed {
    pub node: String,
}
event!(BreakerClosed, "breaker.closed", Level::Info, |e| format!(
    "circuit breaker of node {} closed: node recovered",
    e.node
));

#[derive(Serialize)]
pub struct EjectionCapped {
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
pub struct NodePrewarming {
    pub node: String,
    pub reason: String,
}
event!(NodePrewarming, "node.prewarming", Level::Info, |e| format!(
    "[warmup] prewarming node {}...",
    e.node
));

#[derive(Serialize)]
pub struct PrewarmProbe {
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
pub struct NodePrewarmed {
    pub node: String,
    pub successes: u32,
    pub attempts: u32,
}
event!(NodePrewarmed, "node.prewarmed", Level::Info, |e| format!(
    "[warmup] node {} prewarmed successfully ({}/{})",
    e.node, e.successes, e.attempts
));

#[derive(Serialize)]
pub struct PrewarmFailed {
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
pub struct NodeSwitched {
    pub node: String,
    pub reason: String,
}
event!(NodeSwitched, "node.switched", Level::Info, |e| format!(
    "switched to node {} (reason: {})",
    e.node, e.reason
));

#[derive(Serialize)]
pub struct ShiftStage {
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
pub struct ShiftRolledBack {
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
pub struct NodeAdded {
    pub node: String,
    pub base_url: String,
    pub weight: u32,
}
event!(NodeAdded, "node.added", Level::Info, |e| format!(
    "node {} added ({}, weight {}); prewarming before it takes traffic",
    e.node, e.base_url, e.weight
));

#[derive(Serialize)]
pub struct NodeUpdated {
    pub node: String,
    pub changes: String,
}
event!(NodeUpdated, "node.updated", Level::Info, |e| format!(
    "node {} updated: {}",
    e.node, e.changes
));

#[derive(Serialize)]
pub struct NodeRemoved {
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
