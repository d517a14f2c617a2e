//! `/health*`: liveness, readiness and per-component detail for operators and probes.

use super::CoreState;
use crate::telemetry::{ComponentHealth, ComponentStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `GET /health`.
#[derive(Serialize, ToSchema)]
#[schema(as = HealthSummary, examples(json!({"status": "healthy", "service": "keel", "version": "0.1.0",
    "uptime_seconds": 3600.25, "timestamp": "2025-10-05T16:30:00Z"})))]
pub(crate) struct Basic {
    status: ComponentStatus,
    service: &'static str,
    version: &'static str,
    uptime_seconds: f64,
    timestamp: String,
}

/// `GET /health/live` and `GET /health/ready`.
#[derive(Serialize, ToSchema)]
#[schema(as = HealthProbe)]
pub(crate) struct Probe {
    /// `alive` (live); `starting`, `ready` or `draining` (ready).
    status: &'static str,
}

/// `GET /health/detailed`.
#[derive(Serialize, ToSchema)]
#[schema(as = HealthDetailed)]
pub(crate) struct Detailed {
    status: ComponentStatus,
    ready: bool,
    version: &'static str,
    uptime_seconds: f64,
    timestamp: String,
    /// By name: `store`, `proxy`, `ledger`, `gpu`, `executor`, ...
    components: BTreeMap<String, ComponentHealth>,
}

/// Overall status
///
/// 503 when a component is down; `degraded` answers 200.
#[utoipa::path(get, path = "/health", tag = "health", responses(
    (status = 200, description = "Every component is up (or degraded, or disabled).", body = Basic),
    (status = 503, description = "A component is down.", body = Basic),
))]
pub(crate) async fn basic(State(core): State<CoreState>) -> impl IntoResponse {
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

/// Liveness
///
/// The process answers; nothing else is checked.
#[utoipa::path(get, path = "/health/live", tag = "health", responses(
    (status = 200, description = "Alive.", body = Probe, example = json!({"status": "alive"})),
))]
pub(crate) async fn live() -> impl IntoResponse {
    Json(Probe { status: "alive" })
}

/// Readiness
///
/// 200 once startup finished, 503 while starting or draining (on shutdown, before the
/// listeners stop accepting).
#[utoipa::path(get, path = "/health/ready", tag = "health", responses(
    (status = 200, description = "Ready.", body = Probe, example = json!({"status": "ready"})),
    (status = 503, description = "Starting or draining.", body = Probe,
        example = json!({"status": "draining"})),
))]
pub(crate) async fn ready(State(core): State<CoreState>) -> impl IntoResponse {
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

/// Per-component health
///
/// Each component's status and the reason behind it.
#[utoipa::path(get, path = "/health/detailed", tag = "health", responses(
    (status = 200, description = "Always 200; read `status`.", body = Detailed),
))]
pub(crate) async fn detailed(State(core): State<CoreState>) -> impl IntoResponse {
    Json(Detailed {
        status: core.telemetry.health.overall(),
        ready: core.readiness.is_ready(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: core.started.elapsed().as_secs_f64(),
        timestamp: crate::clock::now_rfc3339(),
        components: core.telemetry.health.components(),
    })
}
