//! `GET /api/v1/overview`: everything the dashboard's first paint needs in one document —
//! the live payload the SSE `snapshot` event carries, 15 minutes of per-second history for
//! the charts, firing alerts and the recent events, plus the id to resume the stream after.

use super::dashboard::DashboardState;
use crate::alerts::Firing;
use crate::telemetry::dashboard_feed::{Figures, LivePayload};
use crate::telemetry::EventRecord;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use std::sync::Arc;

/// Events included for the first paint; older ones stay in the bus ring for resume.
const RECENT_EVENTS: usize = 200;

/// The overview: the live payload's fields, then the rest of the first paint.
#[derive(Serialize)]
pub struct Overview {
    #[serde(flatten)]
    live: LivePayload,
    instance: Arc<str>,
    version: &'static str,
    uptime_seconds: f64,
    time: String,
    /// Per-second figures, oldest first.
    history: Vec<Arc<Figures>>,
    alerts: Vec<Firing>,
    events: Vec<Arc<EventRecord>>,
    /// Resume the event stream after this id (`?after=`).
    newest_event_id: u64,
}

pub async fn document(State(state): State<DashboardState>) -> Json<Overview> {
    let events = state.telemetry.events.recent(RECENT_EVENTS);
    let newest_event_id = events.last().map(|e| e.id).unwrap_or(0);
    Json(Overview {
        live: state.feed.live_payload(),
        instance: state.instance.clone(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        time: crate::clock::now_rfc3339(),
        history: state.feed.history(),
        alerts: state.alerts.firing(),
        events,
        newest_event_id,
    })
}
