//! `/health*`: liveness, readiness and per-component detail for operators and probes.

use super::CoreState;
use crate::telemetry::{ComponentHealth, ComponentStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use std::collections::BTreeMap;

/// `GET /health`.
#[derive(Serialize)]
struct Basic {
    status: ComponentStatus,
    service: &'static str,
    version: &'static str,
    uptime_seconds: f64,
    timestamp: String,
}

/// `GET /health/live` and `GET /health/ready`.
#[derive(Serialize)]
struct Probe {
    status: &'static str,
}

/// `GET /health/detailed`.
#[derive(Serialize)]
struct Detailed {
    status: ComponentStatus,
    ready: bool,
    version: &'static str,
    uptime_seconds: f64,
    timestamp: String,
    components: BTreeMap<String, ComponentHealth>,
}

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
        Json(Basic {
            status: overall,
            service: "keel",
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: core.started.elapsed().as_secs_f64(),
            timestamp: crate::clock::now_rfc3339(),
        }),
    )
}

/// `GET /health/live`: the process answers.
pub async fn live() -> impl IntoResponse {
    Json(Probe { status: "alive" })
}

/// `GET /health/ready`: 200 once startup finished, 503 while starting or draining.
pub async fn ready(State(core): State<CoreState>) -> impl IntoResponse {
    let code = if core.readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(Probe {
            status: core.readiness.state(),
        }),
    )
}

/// `GET /health/detailed`: each component's status and reason.
pub async fn detailed(State(core): State<CoreState>) -> impl IntoResponse {
    Json(Detailed {
        status: core.telemetry.health.overall(),
        ready: core.readiness.is_ready(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: core.started.elapsed().as_secs_f64(),
        timestamp: crate::clock::now_rfc3339(),
        components: core.telemetry.health.components(),
    })
}
