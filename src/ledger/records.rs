//! Everything the ledger persists, in one place: the records the journal writes as JSON
//! (their serialized shape is the store's format — change a field and old stores must
//! still load, see `#[serde(default)]`) and [`Op`], one change to persist.
//!
//! The state modules (`locks`, `heartbeat`, `timeout`) build these and the journal writes
//! them; neither side imports the other, so the journal knows nothing of lock or task
//! logic and the logic nothing of redb.

use serde::{Deserialize, Serialize};

/// A lock's durable row (`ledger_locks_v1`): the fencing counter and the current lease.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockRow {
    pub fencing_last: u64,
    pub lease: Option<LeaseRecord>,
}

/// The persisted form of a lease (see `lease::Lease`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeaseRecord {
    pub holder: String,
    pub task_id: Option<String>,
    pub fencing_token: u64,
    pub acquired_at: f64,
    pub expires_at: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskPhase {
    Running,
    /// No heartbeat within `heartbeat_timeout` (flagged by the monitor); a later heartbeat
    /// brings the task back to running.
    Orphaned,
    /// Stopped by the worker (`DELETE /heartbeat/task/{id}`): a dead task.
    Completed,
}

/// A task's persisted heartbeat (`ledger_tasks_v1`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task_name: String,
    pub start_time: f64,
    pub last_update: f64,
    pub gpu_lock: Option<String>,
    pub progress: Option<f64>,
    /// The worker's own status text, if it sends one.
    pub status: Option<String>,
    pub phase: TaskPhase,
    /// Heartbeats received after the start, and the sum of the gaps between them.
    pub updates: u64,
    pub interval_sum: f64,
}

/// Persisted counters of one lock (`ledger_counters_v1`, batched writes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LockCounters {
    pub total_attempts: u64,
    pub success_count: u64,
    pub timeout_count: u64,
    pub failure_count: u64,
    /// Leases that ran out without a renew.
    pub expired_count: u64,
    /// Operator force-releases and auto-recoveries.
    pub force_released_count: u64,
    /// Holds that ended (release, expiry, force-release) and their total seconds.
    pub completed_holds: u64,
    pub total_hold_seconds: f64,
}

/// Persisted counters of the timeout manager (batched writes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TimeoutCounters {
    /// Expired leases plus orphaned tasks.
    pub total_timeouts_detected: u64,
    pub tasks_recovered: u64,
    pub resources_released: u64,
    pub expired_leases: u64,
    pub orphaned_tasks: u64,
}

/// What happened to a lock. Serialized names are the reference's `action` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LockAction {
    Acquire,
    Release,
    /// The lease's TTL passed without a renew.
    Timeout,
    /// An operator's emergency release (`POST /monitoring/lock/release`).
    ForceRelease,
    /// The monitor released the lock of an orphaned task (auto-recovery).
    TimeoutRecovery,
}

/// One `recent_history` entry (`ledger_history_v1`): the reference's four fields plus
/// keel's additions.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub action: LockAction,
    pub task_name: String,
    pub timestamp: f64,
    pub success: bool,
    pub lock_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One `action_history` entry of the timeout manager (`ledger_actions_v1`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActionEntry {
    pub timestamp: f64,
    /// `lease_expired`, `task_orphaned`, `timeout_recovery`.
    pub action: String,
    /// The task concerned (for a lease without a task id: its holder).
    pub task_id: String,
    /// `success` or `failed`.
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_key: Option<String>,
}

/// One change to persist.
#[derive(Debug, Clone)]
pub enum Op {
    Lock {
        key: String,
        row: LockRow,
    },
    History {
        seq: u64,
        entry: HistoryEntry,
    },
    Action {
        seq: u64,
        entry: ActionEntry,
    },
    /// `None` deletes the task.
    Task {
        task_id: String,
        record: Option<TaskRecord>,
    },
    LockCounters {
        key: String,
        counters: LockCounters,
    },
    TimeoutCounters(TimeoutCounters),
}
