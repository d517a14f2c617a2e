//! The reference monitoring API under `/api/v1/monitoring` (`spec/gpu-ledger-api.md`): the
//! 17 endpoints with the reference's paths and JSON fields, served from the ledger.
//!
//! Reads are open, as in the reference. State-changing calls need a token: monitor
//! start/stop, the emergency lock release, heartbeat cleanup and the on-demand timeout
//! check need the admin token; heartbeat start/stop are worker calls (the worker token
//! when one is configured).

use super::error::ApiError;
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
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

pub fn router(state: LedgerApi) -> Router {
    let m = Router::new()
        .route("/gpu-lock/status", get(lock_status))
        .route("/gpu-lock/health", get(lock_health))
        .route("/monitor/status", get(monitor_status))
        .route("/monitor/health", get(monitor_health))
        .route("/monitor/start", post(monitor_start))
        .route("/monitor/stop", post(monitor_stop))
        .route(
            "/heartbeat/task/{task_id}",
            get(heartbeat_task).delete(heartbeat_stop),
        )
        .route("/heartbeat/all", get(heartbeat_all))
        .route("/heartbeat/task/{task_id}/start", post(heartbeat_start))
        .route("/heartbeat/cleanup", post(heartbeat_cleanup))
        .route("/timeout/status", get(timeout_status))
        .route("/timeout/config", get(timeout_config))
        .route("/timeout/check", post(timeout_check))
        .route("/lock/release", post(lock_release))
        .route("/statistics", get(statistics))
        .route("/health", get(health))
        .with_state(state);
    Router::new().nest("/api/v1/monitoring", m)
}

#[derive(Deserialize)]
struct LockKeyQuery {
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

async fn lock_status(
    State(s): State<LedgerApi>,
    q: Result<Query<LockKeyQuery>, QueryRejection>,
) -> Result<Json<LockStatus>, ApiError> {
    Ok(Json(s.ledger.lock_status(&lock_key(q)?)?))
}

async fn lock_health(
    State(s): State<LedgerApi>,
    q: Result<Query<LockKeyQuery>, QueryRejection>,
) -> Result<Json<LockHealth>, ApiError> {
    Ok(Json(s.ledger.lock_health(&lock_key(q)?)?))
}

async fn monitor_status(State(s): State<LedgerApi>) -> Json<MonitorStatus> {
    Json(s.ledger.monitor_status())
}

async fn monitor_health(State(s): State<LedgerApi>) -> Json<MonitorHealth> {
    Json(s.ledger.monitor_health())
}

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

async fn heartbeat_task(
    State(s): State<LedgerApi>,
    task: Result<Path<String>, PathRejection>,
) -> Result<Json<HeartbeatTask>, ApiError> {
    Ok(Json(s.ledger.heartbeat_task(&path_param(task)?)))
}

async fn heartbeat_all(State(s): State<LedgerApi>) -> Json<HeartbeatsAll> {
    Json(s.ledger.heartbeats_all())
}

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

async fn timeout_status(State(s): State<LedgerApi>) -> Json<TimeoutStatus> {
    Json(s.ledger.timeout_status())
}

async fn timeout_config(State(s): State<LedgerApi>) -> Json<TimeoutSettings> {
    Json(s.ledger.timeout_config())
}

async fn timeout_check(
    State(s): State<LedgerApi>,
    headers: HeaderMap,
    q: Result<Query<LockKeyQuery>, QueryRejection>,
) -> Result<Json<CheckReport>, ApiError> {
    s.require_admin(&headers)?;
    Ok(Json(s.ledger.timeout_check(&lock_key(q)?).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    lock_key: Option<String>,
    task_name: Option<String>,
}

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

async fn statistics(State(s): State<LedgerApi>) -> Json<LedgerStatistics> {
    Json(s.ledger.statistics())
}

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
