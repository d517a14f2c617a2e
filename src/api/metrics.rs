//! `/metrics` (Prometheus text) and `/api/metrics` (the reference's performance JSON).

use super::CoreState;
use crate::telemetry::metrics::RequestSummary;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `GET /api/metrics`.
#[derive(Serialize, ToSchema)]
pub(crate) struct PerfReport {
    /// Always `ok`.
    status: &'static str,
    timestamp: String,
    performance: Performance,
    system: System,
}

/// The control listener's request statistics, and each domain's section by name.
#[derive(Serialize, ToSchema)]
pub(crate) struct Performance {
    #[serde(flatten)]
    requests: RequestSummary,
    /// `gateway`, `ledger`, `executor`, `alerts`, ...: each domain's own figures.
    #[serde(flatten)]
    sections: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PerfSystem)]
pub(crate) struct System {
    memory_mb: f64,
    cpu_percent: f64,
    active_sessions: i64,
}

/// Prometheus metrics
///
/// The text exposition format; every family is prefixed `keel_`.
#[utoipa::path(get, path = "/metrics", tag = "metrics", responses(
    (status = 200, description = "Prometheus text format 0.0.4.",
        content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
))]
pub(crate) async fn prometheus(State(core): State<CoreState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        core.telemetry.metrics.render(),
    )
}

/// Prometheus metrics (the reference's path)
///
/// The same exposition as `/metrics`, at the path the reference served it.
#[utoipa::path(get, path = "/health/metrics", tag = "metrics", responses(
    (status = 200, description = "Prometheus text format 0.0.4.",
        content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
))]
pub(crate) async fn prometheus_health(state: State<CoreState>) -> impl IntoResponse {
    prometheus(state).await
}

/// Performance summary
///
/// `{status, timestamp, performance, system}` as the reference had it: the control
/// listener's request statistics, each domain's section, keel's memory and CPU.
#[utoipa::path(get, path = "/api/metrics", tag = "metrics", responses(
    (status = 200, description = "The summary.", body = PerfReport),
))]
pub(crate) async fn perf_json(State(core): State<CoreState>) -> impl IntoResponse {
    let t = &core.telemetry;
    Json(PerfReport {
        status: "ok",
        timestamp: crate::clock::now_rfc3339(),
        performance: Performance {
            requests: t.metrics.request_summary(core.started.elapsed()),
            sections: t.sections.collect().into_iter().collect(),
        },
        system: System {
            memory_mb: t.process.rss_bytes() as f64 / (1024.0 * 1024.0),
            cpu_percent: t.process.cpu_percent(),
            active_sessions: t.metrics.active_sessions(),
        },
    })
}
