//! The reference monitoring API under `/api/v1/monitoring` (`spec/gpu-ledger-api.md`): the
//! 17 endpoints with the reference's paths and JSON fields, served from the ledger.
//!
//! Reads are open, as in the reference. State-changing calls need a token: monitor
//! start/stop, the emergency lock release, heartbeat cleanup and the on-demand timeout
//! check need the admin token; heartbeat start/stop are worker calls (the worker token
//! when one is configured).

use super::error::{ApiError, ErrorBody};
use super::locks::{optional_body, path_param, LedgerApi};
use crate::ledger::key::DEFAULT_LOCK_KEY;
use crate::ledger::{
    CheckReport, Cleanup, Done, ForceReleased, GpuComponent, HeartbeatTask, HeartbeatUpdate,
    HeartbeatsAll, LedgerHealth, LedgerStatistics, LockHealth, LockStatus, MonitorHealth,
    MonitorStatus, TimeoutSettings, TimeoutStatus,
};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The reference monitoring API's routes under `/api/v1/monitoring` (state given by
/// `super::ledger_router`).
pub(crate) fn routes() -> OpenApiRouter<LedgerApi> {
    let m = OpenApiRouter::new()
        .routes(routes!(lock_status))
        .routes(routes!(lock_health))
        .routes(routes!(monitor_status))
        .routes(routes!(monitor_health))
        .routes(routes!(monitor_start))
        .routes(routes!(monitor_stop))
        .routes(routes!(heartbeat_task, heartbeat_stop))
        .routes(routes!(heartbeat_all))
        .routes(routes!(heartbeat_start))
        .routes(routes!(heartbeat_cleanup))
        .routes(routes!(timeout_status))
        .routes(routes!(timeout_config))
        .routes(routes!(timeout_check))
        .routes(routes!(lock_release))
        .routes(routes!(statistics))
        .routes(routes!(health));
    OpenApiRouter::new().nest("/api/v1/monitoring", m)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LockKeyQuery {
    /// Which lock; default `gpu_lock:0`.
    lock_key: Option<String>,
}

/// `?lock_key=` (default `gpu_lock:0`), with query errors in our shape.
fn lock_key(q: Result<Query<LockKeyQuery>, QueryRejection>) -> Result<String, ApiError> {
    let Query(q) = q?;
    Ok(q.lock_key.unwrap_or_else(|| DEFAULT_LOCK_KEY.to_string()))
}

fn unix_now() -> f64 {
    crate::clock::unix_now()
}

/// One lock's state
///
/// Holder, TTL, health, counters and recent history of one lock.
#[utoipa::path(get, path = "/gpu-lock/status", tag = "monitoring", params(LockKeyQuery),
    responses(
        (status = 200, description = "The lock (free or held).", body = LockStatus),
        (status = 400, description = "Bad `lock_key`.", body = ErrorBody),
    ))]
async fn lock_status(
    State(s): State<LedgerApi>,
    q: Result<Query<LockKeyQuery>, QueryRejection>,
) -> Result<Json<LockStatus>, ApiError> {
    Ok(Json(s.ledger.lock_status(&lock_key(q)?)?))
}

/// Lock health
///
/// Success and timeout rates and the findings of one lock.
#[utoipa::path(get, path = "/gpu-lock/health", tag = "monitoring", params(LockKeyQuery),
    responses(
        (status = 200, description = "The lock's health.", body = LockHealth),
        (status = 400, description = "Bad `lock_key`.", body = ErrorBody),
    ))]
async fn lock_health(
    State(s): State<LedgerApi>,
    q: Result<Query<LockKeyQuery>, QueryRejection>,
) -> Result<Json<LockHealth>, ApiError> {
    Ok(Json(s.ledger.lock_health(&lock_key(q)?)?))
}

/// Monitor state
///
/// Whether the monitor runs, its counters and settings.
#[utoipa::path(get, path = "/monitor/status", tag = "monitoring", responses(
    (status = 200, description = "The monitor.", body = MonitorStatus),
))]
async fn monitor_status(State(s): State<LedgerApi>) -> Json<MonitorStatus> {
    Json(s.ledger.monitor_status())
}

/// Monitor health
#[utoipa::path(get, path = "/monitor/health", tag = "monitoring", responses(
    (status = 200, description = "The monitor's health.", body = MonitorHealth),
))]
async fn monitor_health(State(s): State<LedgerApi>) -> Json<MonitorHealth> {
    Json(s.ledger.monitor_health())
}

/// Start the monitor
#[utoipa::path(post, path = "/monitor/start", tag = "monitoring",
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 200, description = "Started, or already running.", body = Done,
            example = json!({"message": "monitor started", "success": true})),
        (status = 401, description = "Admin token missing or wrong.", body = ErrorBody),
    ))]
async fn monitor_start(
    State(s): State<LedgerApi>,
    headers: HeaderMap,
) -> Result<Json<Done>, ApiError> {
    s.require_admin(&headers)?;
    let changed = s.ledger.set_monitor(true);
    let message = if changed {
        "monitor started"
    } else {
        "monitor already running"
    };
    Ok(Json(Done {
        message: message.to_string(),
        success: true,
        task_id: None,
    }))
}

/// Stop the monitor
#[utoipa::path(post, path = "/monitor/stop", tag = "monitoring",
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 200, description = "Stopped, or already stopped.", body = Done,
            example = json!({"message": "monitor stopped", "success": true})),
        (status = 401, description = "Admin token missing or wrong.", body = ErrorBody),
    ))]
async fn monitor_stop(
    State(s): State<LedgerApi>,
    headers: HeaderMap,
) -> Result<Json<Done>, ApiError> {
    s.require_admin(&headers)?;
    let changed = s.ledger.set_monitor(false);
    let message = if changed {
        "monitor stopped"
    } else {
        "monitor already stopped"
    };
    Ok(Json(Done {
        message: message.to_string(),
        success: true,
        task_id: None,
    }))
}

/// One task's heartbeat
///
/// For an unknown or completed task the heartbeat fields are null, as in the reference.
#[utoipa::path(get, path = "/heartbeat/task/{task_id}", tag = "monitoring",
    params(("task_id" = String, Path, description = "The task's id.")),
    responses(
        (status = 200, description = "The task.", body = HeartbeatTask),
    ))]
async fn heartbeat_task(
    State(s): State<LedgerApi>,
    task: Result<Path<String>, PathRejection>,
) -> Result<Json<HeartbeatTask>, ApiError> {
    Ok(Json(s.ledger.heartbeat_task(&path_param(task)?)))
}

/// All heartbeats
///
/// Active, dead (completed) and orphaned (silent past the heartbeat timeout) tasks.
#[utoipa::path(get, path = "/heartbeat/all", tag = "monitoring", responses(
    (status = 200, description = "Every task.", body = HeartbeatsAll),
))]
async fn heartbeat_all(State(s): State<LedgerApi>) -> Json<HeartbeatsAll> {
    Json(s.ledger.heartbeats_all())
}

/// Start a task's heartbeat
#[utoipa::path(post, path = "/heartbeat/task/{task_id}/start", tag = "monitoring",
    params(("task_id" = String, Path, description = "The task's id.")),
    request_body(content = Option<HeartbeatUpdate>, description = "Optional."),
    security((), ("worker" = [])),
    responses(
        (status = 200, description = "Started.", body = Done,
            example = json!({"message": "heartbeat started for task extract-001",
                "success": true, "task_id": "extract-001"})),
        (status = 400, description = "Bad body.", body = ErrorBody),
        (status = 401, description = "Worker token missing or wrong.", body = ErrorBody),
        (status = 429, description = "`too_many_tasks`: the task table is full.", body = ErrorBody),
    ))]
async fn heartbeat_start(
    State(s): State<LedgerApi>,
    headers: HeaderMap,
    task: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Done>, ApiError> {
    s.require_worker(&headers)?;
    let task_id = path_param(task)?;
    let update: HeartbeatUpdate = optional_body(&body?)?;
    s.ledger.heartbeat_start(&task_id, update)?;
    Ok(Json(Done {
        message: format!("heartbeat started for task {task_id}"),
        success: true,
        task_id: Some(task_id),
    }))
}

/// Stop a task's heartbeat
///
/// The task counts as completed; `success` is false when it had no running heartbeat.
#[utoipa::path(delete, path = "/heartbeat/task/{task_id}", tag = "monitoring",
    params(("task_id" = String, Path, description = "The task's id.")),
    security((), ("worker" = [])),
    responses(
        (status = 200, description = "Stopped, or there was nothing to stop.", body = Done),
        (status = 401, description = "Worker token missing or wrong.", body = ErrorBody),
    ))]
async fn heartbeat_stop(
    State(s): State<LedgerApi>,
    headers: HeaderMap,
    task: Result<Path<String>, PathRejection>,
) -> Result<Json<Done>, ApiError> {
    s.require_worker(&headers)?;
    let task_id = path_param(task)?;
    let stopped = s.ledger.heartbeat_stop(&task_id)?;
    let message = if stopped {
        format!("heartbeat stopped for task {task_id}")
    } else {
        format!("no running heartbeat for task {task_id}")
    };
    Ok(Json(Done {
        message,
        success: stopped,
        task_id: Some(task_id),
    }))
}

/// Clean up heartbeats
///
/// Forgets dead tasks and orphaned heartbeats.
#[utoipa::path(post, path = "/heartbeat/cleanup", tag = "monitoring",
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 200, description = "Cleaned.", body = Cleanup),
        (status = 401, description = "Admin token missing or wrong.", body = ErrorBody),
    ))]
async fn heartbeat_cleanup(
    State(s): State<LedgerApi>,
    headers: HeaderMap,
) -> Result<Json<Cleanup>, ApiError> {
    s.require_admin(&headers)?;
    let (dead, orphaned) = s.ledger.heartbeat_cleanup();
    Ok(Json(Cleanup {
        message: "heartbeat cleanup done",
        success: true,
        cleaned_dead_tasks: dead,
        cleaned_orphaned_tasks: orphaned,
    }))
}

/// Timeout manager state
#[utoipa::path(get, path = "/timeout/status", tag = "monitoring", responses(
    (status = 200, description = "Counters and recent actions.", body = TimeoutStatus),
))]
async fn timeout_status(State(s): State<LedgerApi>) -> Json<TimeoutStatus> {
    Json(s.ledger.timeout_status())
}

/// Timeout settings
#[utoipa::path(get, path = "/timeout/config", tag = "monitoring", responses(
    (status = 200, description = "The settings (from `[ledger]`).", body = TimeoutSettings),
))]
async fn timeout_config(State(s): State<LedgerApi>) -> Json<TimeoutSettings> {
    Json(s.ledger.timeout_config())
}

/// Run a timeout check now
#[utoipa::path(post, path = "/timeout/check", tag = "monitoring", params(LockKeyQuery),
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 200, description = "What the check found and did.", body = CheckReport),
        (status = 400, description = "Bad `lock_key`.", body = ErrorBody),
        (status = 401, description = "Admin token missing or wrong.", body = ErrorBody),
    ))]
async fn timeout_check(
    State(s): State<LedgerApi>,
    headers: HeaderMap,
    q: Result<Query<LockKeyQuery>, QueryRejection>,
) -> Result<Json<CheckReport>, ApiError> {
    s.require_admin(&headers)?;
    Ok(Json(s.ledger.timeout_check(&lock_key(q)?).await?))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ForceReleaseBody, examples(json!({"lock_key": "gpu_lock:0", "task_name": "manual"})))]
struct ReleaseBody {
    /// Default `gpu_lock:0`.
    lock_key: Option<String>,
    /// Recorded in the history as who released it; default `manual`.
    task_name: Option<String>,
}

/// Force-release a lock
///
/// The emergency release: the holder's fencing token stops being valid at once.
#[utoipa::path(post, path = "/lock/release", tag = "monitoring",
    request_body(content = Option<ReleaseBody>, description = "Optional; every field has a default."),
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 200, description = "Released (or it was free: `success` false).", body = ForceReleased),
        (status = 400, description = "Bad key or body.", body = ErrorBody),
        (status = 401, description = "Admin token missing or wrong.", body = ErrorBody),
    ))]
async fn lock_release(
    State(s): State<LedgerApi>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ForceReleased>, ApiError> {
    s.require_admin(&headers)?;
    let body: ReleaseBody = optional_body(&body?)?;
    let key = body
        .lock_key
        .unwrap_or_else(|| DEFAULT_LOCK_KEY.to_string());
    let task_name = body.task_name.unwrap_or_else(|| "manual".to_string());
    Ok(Json(s.ledger.force_release(&key, &task_name).await?))
}

/// All statistics
#[utoipa::path(get, path = "/statistics", tag = "monitoring", responses(
    (status = 200, description = "Locks, monitor, heartbeats and timeouts summed up.", body = LedgerStatistics),
))]
async fn statistics(State(s): State<LedgerApi>) -> Json<LedgerStatistics> {
    Json(s.ledger.statistics())
}

/// Monitoring health
///
/// The overall status and each component's (keel adds `gpu_lock` and `gpu`).
#[utoipa::path(get, path = "/health", tag = "monitoring", responses(
    (status = 200, description = "Always 200; read `status`.", body = LedgerHealth),
))]
async fn health(State(s): State<LedgerApi>) -> Json<LedgerHealth> {
    let mut h = s.ledger.health();
    let gpu = s.gpus.report();
    let field = |name: &str| gpu.get(name).cloned().unwrap_or(Value::Null);
    h.components.gpu = Some(GpuComponent {
        enabled: field("enabled"),
        reason: field("reason"),
        warnings: field("warnings"),
        timestamp: unix_now(),
    });
    Json(h)
}
