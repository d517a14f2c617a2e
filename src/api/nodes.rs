//! `/admin/api/nodes`: the gateway's upstream nodes (admin token required).
//!
//! `GET` lists every node with breaker state (keel's and the reference's strings), shift
//! stage, effective weight, requests, failure rate and latency; `POST` adds a node (it is
//! prewarmed, then shifted in); `PATCH /{name}` changes weight, priority or enabled;
//! `DELETE /{name}` drains the node, then removes it.

use super::auth::{require_admin, AdminAuth};
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::config::{ErrorClass, NodeConfig};
use crate::proxy::admin::{AdminError, NodePatch};
use crate::proxy::Gateway;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The node routes, admin only (state given by [`router`]).
pub(crate) fn routes(auth: AdminAuth) -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(update, remove))
        .route_layer(middleware::from_fn_with_state(auth, require_admin))
}

pub(crate) fn router(gateway: Arc<Gateway>, auth: AdminAuth) -> OpenApiRouter {
    routes(auth).with_state(gateway)
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

/// `POST /admin/api/nodes`' body: a `[[proxy.nodes]]` entry as JSON. It is parsed as
/// [`NodeConfig`] (the config types carry no schema), so this description is checked
/// against that type by the tests: same fields, and the example parses.
pub(crate) struct NodeBody;

impl PartialSchema for NodeBody {
    fn schema() -> RefOr<Schema> {
        let string = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        let integer = |description: &str, default: u32| {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .default(Some(json!(default)))
                .description(Some(description))
        };
        let boolean = |description: &str, default: bool| {
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .default(Some(json!(default)))
                .description(Some(description))
        };
        let classes = ErrorClass::ALL.map(ErrorClass::name);
        ObjectBuilder::new()
            .description(Some(
                "An upstream node, as a `[[proxy.nodes]]` entry of the config file.",
            ))
            .property(
                "name",
                string("Unique; used in metrics, logs and the admin paths."),
            )
            .required("name")
            .property(
                "base_url",
                string("`http(s)://host[:port][/path-prefix]`; the client's path is appended."),
            )
            .required("base_url")
            .property(
                "weight",
                integer(
                    "Traffic weight 0..=100 (0 keeps it configured but idle).",
                    100,
                )
                .maximum(Some(100)),
            )
            .property(
                "priority",
                integer(
                    "Lower is preferred; traffic goes to the best priority with an available node.",
                    1,
                ),
            )
            .property(
                "api_key",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                    .description(Some(
                        "Replaces the client's key upstream; never shown back.",
                    )),
            )
            .property(
                "health_path",
                string("Prewarm probe path (`GET`); `\"\"` probes with `HEAD /`.")
                    .default(Some(json!("/health"))),
            )
            .property(
                "model_mapping",
                ObjectBuilder::new()
                    .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .description(Some("Request `model` rewrites, `{\"from\": \"to\"}`.")),
            )
            .property(
                "enabled",
                boolean("A disabled node takes no traffic.", true),
            )
            .property(
                "fallback_for",
                ArrayBuilder::new()
                    .items(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(classes)),
                    )
                    .description(Some(
                        "LLM routes: the failure classes of another node this node may take \
                         over; default every class but `context_length`.",
                    )),
            )
            .property(
                "supports_prefill",
                boolean(
                    "LLM routes: the node continues a trailing assistant message, so a stream \
                     broken elsewhere can be finished here.",
                    false,
                ),
            )
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
            .examples(
                [json!({"name": "gpu-b", "base_url": "http://10.0.0.12:8000",
                "weight": 50, "priority": 2, "model_mapping": {"llama": "llama-3.1-70b"}})],
            )
            .into()
    }
}

impl ToSchema for NodeBody {}

/// List nodes
///
/// Every node with its config (key hidden), breaker (keel's `state` and the reference's
/// `status`), shift stage, effective weight, in-flight and total requests, failure rate,
/// latency percentiles and token counts; plus `panic` (every node is ejected, so all take
/// traffic again) and how many are `available`.
#[utoipa::path(get, path = "/admin/api/nodes", tag = "nodes",
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{nodes: [...], panic, available}`.", body = Object,
            example = json!({"nodes": [{"name": "gpu-a", "base_url": "http://10.0.0.11:8000",
                "weight": 100, "priority": 1, "enabled": true, "state": "available",
                "status": "CLOSED", "ready": true, "effective_weight": 100, "in_flight": 0,
                "requests_total": 1520, "failures_total": 3, "failure_rate": 0.0,
                "latency_ms": {"p50": 180.0, "p99": 950.0}}], "panic": false, "available": 1})),
        (status = 401, description = "Admin token missing or wrong.", body = ErrorBody),
    ))]
async fn list(State(gw): State<Arc<Gateway>>) -> Json<Value> {
    Json(gw.node_views())
}

/// Add a node
///
/// Validated like the config file and persisted (it survives a restart); prewarmed before
/// it takes traffic, then shifted in by stages.
#[utoipa::path(post, path = "/admin/api/nodes", tag = "nodes",
    request_body = NodeBody,
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 201, description = "Added; the node as `GET` lists it.", body = Object),
        (status = 400, description = "Bad JSON or an unknown field.", body = ErrorBody),
        (status = 401, description = "Admin token missing or wrong.", body = ErrorBody),
        (status = 409, description = "A node with this name exists.", body = ErrorBody),
        (status = 422, description = "`invalid_node`: every problem with its field.", body = ErrorBody),
    ))]
async fn add(
    State(gw): State<Arc<Gateway>>,
    ApiJson(node): ApiJson<NodeConfig>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok((StatusCode::CREATED, Json(gw.add_node(node).await?)))
}

/// Change a node
///
/// Weight, priority or enabled; persisted. Enabling a node prewarms it first.
#[utoipa::path(patch, path = "/admin/api/nodes/{name}", tag = "nodes",
    params(("name" = String, Path, description = "The node's name.")),
    request_body = NodePatch,
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 200, description = "Changed; the node as `GET` lists it.", body = Object),
        (status = 400, description = "Bad JSON or an unknown field.", body = ErrorBody),
        (status = 401, description = "Admin token missing or wrong.", body = ErrorBody),
        (status = 404, description = "No such node.", body = ErrorBody),
        (status = 422, description = "`invalid_node`: a value out of range.", body = ErrorBody),
    ))]
async fn update(
    State(gw): State<Arc<Gateway>>,
    ApiPath(name): ApiPath<String>,
    ApiJson(change): ApiJson<NodePatch>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(gw.update_node(&name, change).await?))
}

/// Remove a node
///
/// Takes it out of rotation, waits for its in-flight requests (bounded), then forgets it.
#[utoipa::path(delete, path = "/admin/api/nodes/{name}", tag = "nodes",
    params(("name" = String, Path, description = "The node's name.")),
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 200, description = "Removed; `drained` says whether its requests finished first.",
            body = Object, example = json!({"removed": "gpu-b", "drained": true})),
        (status = 401, description = "Admin token missing or wrong.", body = ErrorBody),
        (status = 404, description = "No such node.", body = ErrorBody),
    ))]
async fn remove(
    State(gw): State<Arc<Gateway>>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(gw.remove_node(&name).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written body schema names exactly `NodeConfig`'s fields, and its example
    /// is a valid node.
    #[test]
    fn node_body_schema_matches_node_config() {
        let schema = serde_json::to_value(NodeBody::schema()).expect("schema");
        let example = schema["examples"][0].clone();
        let node: NodeConfig = serde_json::from_value(example).expect("the example parses");
        let fields: Vec<String> = serde_json::to_value(&node)
            .expect("serializes")
            .as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect();
        let described: Vec<String> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        let (mut fields, mut described) = (fields, described);
        fields.sort();
        described.sort();
        assert_eq!(described, fields);
    }
}
