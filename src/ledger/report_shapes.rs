//! The reference monitoring API's documents (`spec/gpu-ledger-api.md`) as types: every field
//! the reference had, with the same name, type and meaning, plus keel's additions (fencing
//! tokens, expiry times, extra counters). They are a contract with existing clients, so the
//! compiler holds them: a renamed or retyped field is a change here, not a typo in a map.

use super::health::HealthStatus;
use super::records::{ActionEntry, HistoryEntry};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::time::Duration;

/// A duration as the reference wrote it: whole seconds as an integer (`30`), otherwise a
/// float (`0.5`).
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(value_type = f64)]
pub struct Seconds(pub Duration);

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.subsec_nanos() == 0 {
            s.serialize_u64(self.0.as_secs())
        } else {
            s.serialize_f64(self.0.as_secs_f64())
        }
    }
}

/// Per-lock counters: the reference's `statistics` object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LockStatistics {
    pub total_attempts: u64,
    pub success_count: u64,
    pub timeout_count: u64,
    pub failure_count: u64,
    pub average_execution_time: f64,
    pub expired_count: u64,
    pub force_released_count: u64,
}

/// A status with the findings behind it, as of `last_check`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LockHealthBlock {
    pub status: HealthStatus,
    pub last_check: f64,
    pub issues: Vec<String>,
}

/// `GET /gpu-lock/status`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LockStatus {
    pub lock_key: String,
    pub is_locked: bool,
    pub lock_holder: Option<String>,
    pub ttl_seconds: Option<u64>,
    pub timestamp: f64,
    pub health: LockHealthBlock,
    pub statistics: LockStatistics,
    pub recent_history: Vec<HistoryEntry>,
    /// Always `GPU_LOCK`.
    pub lock_type: &'static str,
    pub lock_age: Option<f64>,
    pub fencing_token: Option<u64>,
    pub last_fencing_token: u64,
    pub expires_at: Option<f64>,
    pub task_id: Option<String>,
    pub waiters: usize,
    pub known: bool,
}

/// `GET /gpu-lock/health`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LockHealth {
    pub overall_status: HealthStatus,
    pub issues_count: usize,
    pub total_attempts: u64,
    pub success_rate: f64,
    pub timeout_rate: f64,
    pub average_execution_time: f64,
    pub recent_success_rate: f64,
    pub lock_holder: Option<String>,
    pub lock_age: Option<f64>,
    pub timestamp: f64,
    pub lock_key: String,
    pub issues: Vec<String>,
}

/// `GET /monitor/status`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MonitorStatus {
    pub monitor_status: MonitorState,
    pub monitor_stats: MonitorCounts,
    pub config: MonitorSettings,
    pub is_running: bool,
    pub uptime: f64,
    pub timestamp: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MonitorState {
    pub running: bool,
    pub start_time: Option<f64>,
    pub last_check: Option<f64>,
    pub checks_performed: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MonitorCounts {
    pub gpu_locks_monitored: usize,
    pub tasks_monitored: usize,
    pub timeouts_detected: u64,
    pub tasks_recovered: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MonitorSettings {
    pub check_interval: Seconds,
    pub gpu_timeout: Seconds,
    pub heartbeat_timeout: Seconds,
    pub enabled: bool,
    pub auto_recovery: bool,
}

/// The monitor's figures in `/monitor/health`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MonitorMetrics {
    /// `"30s"`, `"500ms"`.
    pub check_frequency: String,
    /// `"100%"` while the monitor runs, else `"0%"`.
    pub gpu_lock_coverage: &'static str,
    pub task_monitoring_coverage: String,
    pub avg_response_time: String,
}

/// `GET /monitor/health`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MonitorHealth {
    pub status: HealthStatus,
    pub issues: Vec<String>,
    pub metrics: MonitorMetrics,
    pub timestamp: f64,
}

/// `GET /heartbeat/task/{id}`. For an unknown or completed task the heartbeat fields are
/// null and `seconds_since_update` is absent, as in the reference.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HeartbeatTask {
    pub task_id: String,
    pub heartbeat_exists: bool,
    pub is_registered: bool,
    pub status: String,
    pub heartbeat_data: Option<HeartbeatData>,
    pub last_update: Option<f64>,
    pub is_running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_since_update: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HeartbeatData {
    pub task_name: String,
    pub start_time: f64,
    pub last_update: f64,
    pub gpu_lock: Option<String>,
    pub progress: Option<f64>,
}

/// `GET /heartbeat/all`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HeartbeatsAll {
    pub statistics: HeartbeatStatistics,
    /// Running tasks by task id.
    pub active_tasks: BTreeMap<String, ActiveTask>,
    pub dead_tasks: Vec<DeadTask>,
    pub orphaned_tasks: Vec<OrphanedTask>,
    pub timestamp: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HeartbeatStatistics {
    pub total_tasks: usize,
    pub active_count: usize,
    pub dead_count: usize,
    pub orphaned_count: usize,
    pub average_heartbeat_interval: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActiveTask {
    pub task_name: String,
    pub last_update: f64,
    pub status: String,
    pub progress: Option<f64>,
    pub gpu_lock: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadTask {
    pub task_id: String,
    pub task_name: String,
    pub last_update: f64,
    /// Always `completed`.
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrphanedTask {
    pub task_id: String,
    pub task_name: String,
    pub last_update: f64,
    /// Always `true`.
    pub timeout: bool,
}

/// `GET /timeout/status`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimeoutStatus {
    pub timeout_stats: TimeoutStats,
    pub action_history: Vec<ActionEntry>,
    #[schema(value_type = Vec<String>)]
    pub configured_actions: [&'static str; 3],
    pub timestamp: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimeoutStats {
    pub total_timeouts_detected: u64,
    pub tasks_recovered: u64,
    pub resources_released: u64,
    /// Orphaned tasks now.
    pub current_timeouts: usize,
    pub expired_leases: u64,
    pub orphaned_tasks: u64,
}

/// `GET /timeout/config`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimeoutSettings {
    pub gpu_lock_timeout: Seconds,
    pub task_heartbeat_timeout: Seconds,
    pub monitor_check_interval: Seconds,
    pub auto_recovery_enabled: bool,
    pub max_retry_attempts: u32,
    pub max_ttl: Seconds,
    pub max_wait: Seconds,
    pub timestamp: f64,
}

/// `GET /statistics`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LedgerStatistics {
    pub timestamp: f64,
    pub gpu_lock: LockSummary,
    pub monitor: MonitorSummary,
    pub heartbeat: HeartbeatSummary,
    pub timeout: TimeoutSummary,
}

/// Every lock's counters summed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LockSummary {
    pub overall_status: HealthStatus,
    pub total_attempts: u64,
    pub success_rate: f64,
    pub timeout_rate: f64,
    pub average_execution_time: f64,
    pub locks: usize,
    pub locks_held: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MonitorSummary {
    pub running: bool,
    pub uptime: f64,
    pub checks_performed: u64,
    pub issues_detected: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HeartbeatSummary {
    pub active_tasks: usize,
    pub dead_tasks: usize,
    pub orphaned_tasks: usize,
    pub average_interval: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimeoutSummary {
    pub total_timeouts: u64,
    pub tasks_recovered: u64,
    pub resources_released: u64,
}

/// `GET /health`: the overall status and its components.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LedgerHealth {
    pub status: HealthStatus,
    pub issues: Vec<String>,
    pub components: HealthComponents,
    pub timestamp: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HealthComponents {
    pub monitor: MonitorComponent,
    pub heartbeat: HeartbeatComponent,
    /// keel's addition: the locks' own findings.
    pub gpu_lock: Component,
    /// keel's addition, filled in by the control API from the GPU sampler (the ledger does
    /// not own the GPUs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuComponent>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Component {
    pub status: HealthStatus,
    pub issues: Vec<String>,
    pub timestamp: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MonitorComponent {
    pub status: HealthStatus,
    pub issues: Vec<String>,
    pub metrics: CheckFrequency,
    pub timestamp: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckFrequency {
    pub check_frequency: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HeartbeatComponent {
    pub total_tasks: usize,
    pub active_count: usize,
    pub failure_rate: f64,
    pub status: HealthStatus,
    pub issues: Vec<String>,
    pub timestamp: f64,
}

/// The GPU sampler's state as `/health` shows it (its fields are the GPU report's).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GpuComponent {
    pub enabled: serde_json::Value,
    pub reason: serde_json::Value,
    pub warnings: serde_json::Value,
    pub timestamp: f64,
}

/// `POST /monitor/start|stop`, `POST /heartbeat/task/{id}/start`, `DELETE
/// /heartbeat/task/{id}`: what happened, in words.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Done {
    pub message: String,
    pub success: bool,
    /// The task concerned (heartbeat calls only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

/// `POST /heartbeat/cleanup`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Cleanup {
    pub message: &'static str,
    pub success: bool,
    pub cleaned_dead_tasks: usize,
    pub cleaned_orphaned_tasks: usize,
}
