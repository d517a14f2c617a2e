//! `/metrics` (Prometheus text) and `/api/metrics` (the reference's performance JSON).

use super::CoreState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

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
    let mut performance = t.metrics.request_summary(core.started.elapsed());
    if let Some(obj) = performance.as_object_mut() {
        for (name, value) in t.sections.collect() {
            obj.insert(name, value);
        }
    }
    Json(json!({
        "status": "ok",
        "timestamp": crate::clock::now_rfc3339(),
        "performance": performance,
        "system": {
            "memory_mb": t.process.rss_bytes() as f64 / (1024.0 * 1024.0),
            "cpu_percent": t.process.cpu_percent(),
            "active_sessions": t.metrics.active_sessions(),
        },
    }))
}
