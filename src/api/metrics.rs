//! `/metrics` (Prometheus text) and `/api/metrics` (the reference's performance JSON).

use super::CoreState;
use crate::telemetry::metrics::RequestSummary;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use std::collections::BTreeMap;

/// `GET /api/metrics`.
#[derive(Serialize)]
struct PerfReport {
    /// Always `ok`.
    status: &'static str,
    timestamp: String,
    performance: Performance,
    system: System,
}

/// The control listener's request statistics, and each domain's section by name.
#[derive(Serialize)]
struct Performance {
    #[serde(flatten)]
    requests: RequestSummary,
    #[serde(flatten)]
    sections: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize)]
struct System {
    memory_mb: f64,
    cpu_percent: f64,
    active_sessions: i64,
}

/// `GET /metrics` and `GET /health/metrics`.
pub async fn prometheus(State(core): State<CoreState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        core.telemetry.metrics.render(),
    )
}

/// `GET /api/metrics`: `{status, timestamp, performance, system}` as the reference had it.
pub async fn perf_json(State(core): State<CoreState>) -> impl IntoResponse {
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
