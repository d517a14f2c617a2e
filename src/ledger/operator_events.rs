//! The ledger's operator events. Each becomes a log line, a `keel_events_total` increment
//! and an SSE message (through [`crate::telemetry::EventBus`]).

use crate::telemetry::{Event, EventBus, Level};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct LockAcquired {
    pub lock_key: String,
    pub holder: String,
    pub fencing_token: u64,
    pub expires_at: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LockReleased {
    pub lock_key: String,
    pub holder: String,
    pub fencing_token: u64,
    pub held_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LockExpired {
    pub lock_key: String,
    pub holder: String,
    pub fencing_token: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LockForceReleased {
    #[serde(flatten)]
    pub released: LockReleased,
    /// Who released it: the operator's `task_name`, or `monitor` for a recovery.
    pub by: String,
    pub recovery: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskOrphaned {
    pub task_id: String,
    pub task_name: String,
    pub last_update: f64,
    pub seconds_since_heartbeat: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskRecovered {
    pub task_id: String,
    pub lock_key: String,
    pub fencing_token: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MonitorToggled {
    pub running: bool,
}

impl Event for LockAcquired {
    fn kind(&self) -> &'static str {
        "lock.acquired"
    }
    fn component(&self) -> &'static str {
        "ledger"
    }
    fn message(&self) -> String {
        format!(
            "{} acquired by {} (token {})",
            self.lock_key, self.holder, self.fencing_token
        )
    }
}

impl Event for LockReleased {
    fn kind(&self) -> &'static str {
        "lock.released"
    }
    fn component(&self) -> &'static str {
        "ledger"
    }
    fn message(&self) -> String {
        format!(
            "{} released by {} after {:.1}s",
            self.lock_key, self.holder, self.held_seconds
        )
    }
}

impl Event for LockExpired {
    fn kind(&self) -> &'static str {
        "lock.expired"
    }
    fn component(&self) -> &'static str {
        "ledger"
    }
    fn message(&self) -> String {
        format!(
            "{} expired: {} did not renew (token {} is void)",
            self.lock_key, self.holder, self.fencing_token
        )
    }
    fn level(&self) -> Level {
        Level::Warn
    }
}

impl Event for LockForceReleased {
    fn kind(&self) -> &'static str {
        "lock.force_released"
    }
    fn component(&self) -> &'static str {
        "ledger"
    }
    fn message(&self) -> String {
        format!(
            "{} force-released by {} (holder {}, token {} is void)",
            self.released.lock_key, self.by, self.released.holder, self.released.fencing_token
        )
    }
    fn level(&self) -> Level {
        Level::Warn
    }
}

impl Event for TaskOrphaned {
    fn kind(&self) -> &'static str {
        "task.orphaned"
    }
    fn component(&self) -> &'static str {
        "ledger"
    }
    fn message(&self) -> String {
        format!(
            "task {} ({}) orphaned: no heartbeat for {:.0}s",
            self.task_id, self.task_name, self.seconds_since_heartbeat
        )
    }
    fn level(&self) -> Level {
        Level::Warn
    }
}

impl Event for TaskRecovered {
    fn kind(&self) -> &'static str {
        "task.recovered"
    }
    fn component(&self) -> &'static str {
        "ledger"
    }
    fn message(&self) -> String {
        format!(
            "recovered {} from orphaned task {}",
            self.lock_key, self.task_id
        )
    }
    fn level(&self) -> Level {
        Level::Warn
    }
}

impl Event for MonitorToggled {
    fn kind(&self) -> &'static str {
        if self.running {
            "monitor.started"
        } else {
            "monitor.stopped"
        }
    }
    fn component(&self) -> &'static str {
        "ledger"
    }
    fn message(&self) -> String {
        format!(
            "ledger monitor {}",
            if self.running { "started" } else { "stopped" }
        )
    }
}

/// The events a ledger operation produced, emitted after the state lock is released.
#[derive(Debug, Clone)]
pub enum LedgerEvent {
    Acquired(LockAcquired),
    Released(LockReleased),
    Expired(LockExpired),
    ForceReleased(LockForceReleased),
    Orphaned(TaskOrphaned),
    Recovered(TaskRecovered),
    Monitor(MonitorToggled),
}

impl LedgerEvent {
    pub fn emit(&self, bus: &EventBus) {
        match self {
            LedgerEvent::Acquired(e) => bus.emit(e),
            LedgerEvent::Released(e) => bus.emit(e),
            LedgerEvent::Expired(e) => bus.emit(e),
            LedgerEvent::ForceReleased(e) => bus.emit(e),
            LedgerEvent::Orphaned(e) => bus.emit(e),
            LedgerEvent::Recovered(e) => bus.emit(e),
            LedgerEvent::Monitor(e) => bus.emit(e),
        };
    }
}
