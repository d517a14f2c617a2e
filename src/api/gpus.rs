//! `GET /api/v1/gpus`: each GPU (NVML) with its lock and holder, and the cross-check
//! warnings; `enabled: false` with the reason where there is no driver.

use super::locks::LedgerApi;
use axum::extract::State;
use axum::Json;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The GPU route (state given by `super::ledger_router`).
pub(crate) fn routes() -> OpenApiRouter<LedgerApi> {
    OpenApiRouter::new().routes(routes!(gpus))
}

/// GPUs and their locks
///
/// Per GPU: index, uuid, name, utilization, memory, temperature, compute processes, its lock
/// (`gpu_lock:{index}`) and holder, and warnings from the cross-check (`unlocked_use`: busy
/// without a lock; `idle_lock`: locked but idle). Without NVML, `enabled` is false and
/// `reason` says why.
#[utoipa::path(get, path = "/api/v1/gpus", tag = "gpus", responses(
    (status = 200, description = "The GPU report.", body = Object,
        example = json!({"enabled": false, "reason": "NVML unavailable: libnvidia-ml.so not found",
            "gpus": [], "warnings": [], "timestamp": 1701764160.123})),
))]
async fn gpus(State(s): State<LedgerApi>) -> Json<Value> {
    Json(s.gpus.report())
}
