//! `GET /api/v1/alerts`: the firing alert instances (with since, value, threshold and
//! severity) and every rule with its configured threshold and whether it is enabled.

use super::dashboard::DashboardState;
use crate::alerts::rules::RULES;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

pub async fn list(State(state): State<DashboardState>) -> Json<Value> {
    let engine = &state.alerts;
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "alert": r.name,
                "severity": r.severity,
                "summary": r.summary,
                "threshold": engine.threshold(r.name),
                "enabled": engine.config().is_enabled(r.name),
            })
        })
        .collect();
    Json(json!({"alerts": engine.firing(), "rules": rules}))
}
