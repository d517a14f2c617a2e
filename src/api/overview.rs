//! `GET /api/v1/overview`: everything the dashboard's first paint needs in one document —
//! the live payload the SSE `snapshot` event carries, 15 minutes of per-second history for
//! the charts, firing alerts and the recent events, plus the id to resume the stream after.

use super::dashboard::DashboardState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

/// Events included for the first paint; older ones stay in the bus ring for resume.
const RECENT_EVENTS: usize = 200;

pub async fn document(State(state): State<DashboardState>) -> Json<Value> {
    let events = state.telemetry.events.recent(RECENT_EVENTS);
    let newest_id = events.last().map(|e| e.id).unwrap_or(0);
    let mut doc = state.snapshots.live_payload();
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("instance".into(), json!(state.instance));
        obj.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
        obj.insert(
            "uptime_seconds".into(),
            json!(state.started.elapsed().as_secs_f64()),
        );
        obj.insert("time".into(), json!(crate::clock::now_rfc3339()));
        obj.insert("history".into(), json!(state.snapshots.history()));
        obj.insert("alerts".into(), json!(state.alerts.firing()));
        obj.insert("events".into(), json!(events));
        obj.insert("newest_event_id".into(), json!(newest_id));
    }
    Json(doc)
}
