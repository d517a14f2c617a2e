//! `GET /api/v1/alerts`: the firing alert instances (with since, value, threshold and
//! severity) and every rule with its configured threshold and whether it is enabled.

use super::dashboard::DashboardState;
use crate::alerts::rules::{Severity, RULES};
use crate::alerts::Firing;
use axum::extract::State;
use axum::Json;
use serde::Serialize;

#[derive(Serialize)]
pub struct AlertList {
    alerts: Vec<Firing>,
    rules: Vec<RuleView>,
}

/// A rule with its configured threshold and whether it is switched on.
#[derive(Serialize)]
struct RuleView {
    alert: &'static str,
    severity: Severity,
    summary: &'static str,
    threshold: Option<f64>,
    enabled: bool,
}

pub async fn list(State(state): State<DashboardState>) -> Json<AlertList> {
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
