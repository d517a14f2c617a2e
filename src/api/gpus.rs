//! `GET /api/v1/gpus`: each GPU (NVML) with its lock and holder, and the cross-check
//! warnings; `enabled: false` with the reason where there is no driver.

use super::locks::LedgerApi;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

pub fn router(state: LedgerApi) -> Router {
    Router::new()
        .route("/api/v1/gpus", get(gpus))
        .with_state(state)
}

async fn gpus(State(s): State<LedgerApi>) -> Json<Value> {
    Json(s.gpus.report())
}
