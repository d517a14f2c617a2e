//! `/health*`: liveness, readiness and per-component detail for operators and probes.

use super::CoreState;
use crate::telemetry::ComponentStatus;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

/// `GET /health`: overall status; 503 when a component is down.
pub async fn basic(State(core): State<CoreState>) -> impl IntoResponse {
    let overall = core.telemetry.health.overall();
    let code = if overall == ComponentStatus::Down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        Json(json!({
            "status": overall,
            "service": "keel",
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": core.started.elapsed().as_secs_f64(),
            "timestamp": crate::clock::now_rfc3339(),
        })),
    )
}

/// `GET /health/live`: the process answers.
pub async fn live() -> impl IntoResponse {
    Json(json!({"status": "alive"}))
}

/// `GET /health/ready`: 200 once startup finished, 503 while starting or draining.
pub async fn ready(State(core): State<CoreState>) -> impl IntoResponse {
    let code = if core.readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(json!({"status": core.readiness.state()})))
}

/// `GET /health/detailed`: each component's status and reason.
pub async fn detailed(State(core): State<CoreState>) -> impl IntoResponse {
    let components = core.telemetry.health.snapshot();
    Json(json!({
        "status": core.telemetry.health.overall(),
        "ready": core.readiness.is_ready(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": core.started.elapsed().as_secs_f64(),
        "timestamp": crate::clock::now_rfc3339(),
        "components": components,
    }))
}
