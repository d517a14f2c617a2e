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
use utoipa::ToSchema;

/// Events included for the first paint; older ones stay in the bus ring for resume.
const RECENT_EVENTS: usize = 200;

/// The overview: the live payload's fields, then the rest of the first paint.
#[derive(Serialize, ToSchema)]
pub(crate) struct Overview {
    /// The payload of the event stream's `snapshot` events.
    #[serde(flatten)]
    live: LivePayload,
    /// Random per process: a change means keel restarted.
    #[schema(value_type = String)]
    instance: Arc<str>,
    version: &'static str,
    uptime_seconds: f64,
    time: String,
    /// Per-second figures, oldest first (the `snapshot` shape).
    #[schema(value_type = Vec<Object>)]
    history: Vec<Arc<Figures>>,
    alerts: Vec<Firing>,
    /// The newest events, oldest first.
    #[schema(value_type = Vec<EventRecord>)]
    events: Vec<Arc<EventRecord>>,
    /// Resume the event stream after this id (`?after=`).
    newest_event_id: u64,
}

/// Dashboard overview
///
/// Everything the dashboard's first paint needs in one document: the live payload, 15
/// minutes of per-second history, firing alerts, recent events, and the id to resume the
/// event stream after.
#[utoipa::path(get, path = "/api/v1/overview", tag = "dashboard",
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 200, description = "The overview.", body = Overview),
        (status = 401, description = "Admin token or session missing.", body = super::error::ErrorBody),
    ))]
pub(crate) async fn document(State(state): State<DashboardState>) -> Json<Overview> {
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
