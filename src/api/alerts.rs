//! `GET /api/v1/alerts`: the firing alert instances (with since, value, threshold and
//! severity) and every rule with its configured threshold and whether it is enabled.

use super::dashboard::DashboardState;
use crate::alerts::rules::{Severity, RULES};
use crate::alerts::Firing;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub(crate) struct AlertList {
    alerts: Vec<Firing>,
    rules: Vec<RuleView>,
}

/// A rule with its configured threshold and whether it is switched on.
#[derive(Serialize, ToSchema)]
pub(crate) struct RuleView {
    alert: &'static str,
    severity: Severity,
    summary: &'static str,
    threshold: Option<f64>,
    enabled: bool,
}

/// Alerts
///
/// The firing alert instances (since, value, threshold, severity) and every rule with its
/// configured threshold and whether it is enabled.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "dashboard",
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 200, description = "Firing alerts and rules.", body = AlertList),
        (status = 401, description = "Admin token or session missing.", body = super::error::ErrorBody),
    ))]
pub(crate) async fn list(State(state): State<DashboardState>) -> Json<AlertList> {
    let engine = &state.alerts;
    let rules = RULES
        .iter()
        .map(|r| RuleView {
            alert: r.name,
            severity: r.severity,
            summary: r.summary,
            threshold: engine.threshold(r.name),
            enabled: engine.config().is_enabled(r.name),
        })
        .collect();
    Json(AlertList {
        alerts: engine.firing(),
        rules,
    })
}
