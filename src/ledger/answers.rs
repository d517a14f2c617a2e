//! What the ledger's lock and heartbeat operations take and answer: the worker API's
//! bodies (keel's addition to the reference; shapes in `spec/gpu-ledger-api.md`), and the
//! plain values the GPU sampler exchanges with the ledger.

use serde::Serialize;
use std::time::Duration;

/// A lock as `GET /api/v1/locks` and the 409 answers show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LockView {
    pub lock_key: String,
    /// Whether keel manages this key (configured or a GPU's).
    pub known: bool,
    pub is_locked: bool,
    pub lock_holder: Option<String>,
    pub task_id: Option<String>,
    /// The current holder's token (null when free).
    pub fencing_token: Option<u64>,
    /// The last token issued for this key; the next is larger.
    pub last_fencing_token: u64,
    pub acquired_at: Option<f64>,
    pub expires_at: Option<f64>,
    pub ttl_seconds: Option<u64>,
    pub lock_age: Option<f64>,
    pub waiters: usize,
}

/// A worker's acquire.
#[derive(Debug, Clone)]
pub struct AcquireRequest {
    pub lock_key: String,
    pub holder: String,
    pub task_id: Option<String>,
    /// Seconds; `None` means `lock_timeout`.
    pub ttl_seconds: Option<f64>,
    /// Seconds to queue when held; `None`/0 answers at once.
    pub wait_seconds: Option<f64>,
}

/// A granted lease.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Held {
    pub acquired: bool,
    pub lock_key: String,
    pub holder: String,
    pub fencing_token: u64,
    pub expires_at: f64,
    pub ttl_seconds: f64,
    /// Seconds spent queued before the grant.
    pub waited_seconds: f64,
}

/// Why an acquire did not get the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BusyReason {
    /// Held by another holder (answered at once, `wait_seconds` 0).
    Held,
    /// Still held after `wait_seconds`.
    WaitTimeout,
    /// keel is shutting down; waiters are answered at once.
    ShuttingDown,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Busy {
    pub acquired: bool,
    pub lock_key: String,
    pub lock_holder: Option<String>,
    pub ttl_seconds: Option<u64>,
    pub reason: BusyReason,
}

pub enum Acquired {
    Held(Held),
    Busy(Busy),
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Renewed {
    pub renewed: bool,
    pub lock_key: String,
    pub fencing_token: u64,
    pub expires_at: f64,
    pub ttl_seconds: f64,
    pub lock_age: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Released {
    pub released: bool,
    pub lock_key: String,
    pub fencing_token: u64,
    pub held_seconds: f64,
}

/// A renew or release: done, or refused because the token is not the holder's (the
/// current state attached).
pub enum TokenResult<T> {
    Done(T),
    Stale(LockView),
}

/// The reference's `/lock/release` answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ForceReleased {
    pub success: bool,
    pub message: String,
    pub lock_key: String,
    pub task_name: String,
    /// The holder and token that were invalidated (null when the lock was free).
    pub released_holder: Option<String>,
    pub released_fencing_token: Option<u64>,
}

/// A GPU cross-check finding, published by the GPU sampler into the ledger's health.
#[derive(Debug, Clone, Serialize)]
pub struct GpuIssue {
    pub gpu: u32,
    pub lock_key: String,
    /// `unlocked_use` or `idle_lock`.
    pub kind: &'static str,
    pub message: String,
}

/// A lock as the GPU sampler sees it: who holds it, for how long (a plain value, not the
/// dashboard's telemetry feed nor the executor's V8 heap image).
#[derive(Debug, Clone)]
pub struct LockHolding {
    pub lock_key: String,
    pub holder: Option<String>,
    pub held_for: Option<Duration>,
}

/// `POST /api/v1/heartbeats/{task_id}`'s answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HeartbeatAck {
    pub success: bool,
    pub task_id: String,
    pub last_update: f64,
    /// The task's `status` text after this heartbeat.
    pub status: Option<String>,
}
