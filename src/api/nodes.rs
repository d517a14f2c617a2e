//! `/admin/api/nodes`: the gateway's upstream nodes (admin token required).
//!
//! `GET` lists every node with breaker state (keel's and the reference's strings), shift
//! stage, effective weight, requests, failure rate and latency; `POST` adds a node (it is
//! prewarmed, then shifted in); `PATCH /{name}` changes weight, priority or enabled;
//! `DELETE /{name}` drains the node, then removes it.

use super::auth::{require_admin, AdminAuth};
use super::error::{ApiError, ApiJson, ApiPath};
use crate::config::NodeConfig;
use crate::proxy::admin::{AdminError, NodePatch};
use crate::proxy::Gateway;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde_json::Value;
use std::sync::Arc;

pub fn router(gateway: Arc<Gateway>, auth: AdminAuth) -> Router {
    Router::new()
        .route("/admin/api/nodes", get(list).post(add))
        .route("/admin/api/nodes/{name}", patch(update).delete(remove))
        .route_layer(middleware::from_fn_with_state(auth, require_admin))
        .with_state(gateway)
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match &e {
            AdminError::NotFound(_) => ApiError::not_found(e.to_string()),
            AdminError::Exists(_) => ApiError::conflict(e.to_string()),
            AdminError::Invalid(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_node",
                e.to_string(),
            ),
            AdminError::Store(s) => {
                ApiError::from(crate::store::StoreError::Transaction(s.to_string()))
            }
        }
    }
}

async fn list(State(gw): State<Arc<Gateway>>) -> Json<Value> {
    Json(gw.node_views())
}

async fn add(
    State(gw): State<Arc<Gateway>>,
    ApiJson(node): ApiJson<NodeConfig>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok((StatusCode::CREATED, Json(gw.add_node(node).await?)))
}

async fn update(
    State(gw): State<Arc<Gateway>>,
    ApiPath(name): ApiPath<String>,
    ApiJson(change): ApiJson<NodePatch>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(gw.update_node(&name, change).await?))
}

async fn remove(
    State(gw): State<Arc<Gateway>>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(gw.remove_node(&name).await?))
}
