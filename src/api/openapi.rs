//! The control API's OpenAPI 3.1 document, generated from the handlers (utoipa).
//!
//! Every control route is registered through `utoipa-axum`'s [`OpenApiRouter`] with
//! `routes!(handler)`: the handler's `#[utoipa::path]` gives its method and path to the router
//! *and* its operation to the document, so both come from one list. A process serves, at
//! `GET /api/openapi.json`, the document of the routes it mounted (the executor's only with
//! `[executor] enabled`, the web UI only with the dashboard); [`reference_document`] holds
//! every family at once and is the source of `docs/api.md` (rendered by `api::openapi_page`, a test).
//!
//! The document needs no token, like `/health`: it describes routes, never data, and a client
//! reads it before it holds a token.

use super::auth::AdminAuth;
use super::error::ErrorBody;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, OnceLock};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Security scheme names, as the handlers' `security(...)` lists spell them.
pub const ADMIN: &str = "admin";
pub const SESSION: &str = "session";
pub const WORKER: &str = "worker";
pub const ACCESS_TOKEN: &str = "accessToken";

/// Metadata, tags, security schemes and the shared error body; the paths come from the
/// routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "keel control API",
        description = "The control listener of keel (`[control] listen`): health and metrics, \
            the GPU ledger (worker API and the reference monitoring API), the gateway's node \
            admin, the reference code-block executor under `/flow`, and the dashboard's API. \
            The LLM traffic itself goes to the proxy listener and is not described here.\n\n\
            Errors answer `{\"error\": {\"type\", \"message\"}}` ([`ErrorBody`](#errorbody)) \
            except where a reference API has its own shape (`/flow/codeblock` answers its \
            envelope for every outcome). Every answer carries `X-Request-ID` (the client's \
            own when it sent one). Bodies of 1 KiB or more are gzip-compressed when the client \
            accepts it; request bodies are limited by `[control] max_body_bytes` (413)."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health", description = "Liveness, readiness and per-component health; open."),
        (name = "metrics", description = "Prometheus exposition and the reference's performance JSON; open."),
        (name = "locks", description = "keel's worker API: GPU locks with fencing tokens, and \
            heartbeats. Needs the worker token (`[ledger] worker_token`, or the admin token) \
            when one is configured."),
        (name = "monitoring", description = "The reference monitoring API \
            (`/api/v1/monitoring/*`, `spec/gpu-ledger-api.md`): its paths and fields, served \
            from keel's ledger. Reads are open; monitor start/stop, cleanup, the timeout check \
            and the emergency release need the admin token; heartbeat start/stop are worker \
            calls."),
        (name = "gpus", description = "GPUs seen through NVML with their locks; open."),
        (name = "nodes", description = "The gateway's upstream nodes at runtime (admin)."),
        (name = "executor", description = "The reference code-block service \
            (`spec/code-executor.md`), mounted when `[executor] enabled`: run a JavaScript code \
            block on a V8 isolate with the `accessToken` header; tokens are issued under \
            `/flow/admin/tokens` (admin)."),
        (name = "dashboard", description = "What the dashboard reads (admin token or a \
            dashboard session), and the session login itself."),
        (name = "web", description = "The dashboard's embedded files, mounted when \
            `[dashboard] enabled`; open (the data they show needs a session)."),
        (name = "openapi", description = "This document; open."),
    ),
    components(schemas(ErrorBody))
)]
struct Base;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            ADMIN,
            bearer(
                "The admin token (`[control] admin_token`, or the one keel generated into \
                 `data_dir/admin.token`).",
            ),
        );
        c.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::session::COOKIE,
                "A dashboard session (`POST /api/v1/session`). Requests that change state \
                 must also send the session's CSRF token in `X-Keel-CSRF`, and an `Origin` \
                 (when sent) naming this host.",
            ))),
        );
        c.add_security_scheme(
            WORKER,
            bearer(
                "The worker token (`[ledger] worker_token`) or the admin token. Worker calls \
                 are open while no worker token is configured.",
            ),
        );
        c.add_security_scheme(
            ACCESS_TOKEN,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "accessToken",
                "An executor access token: one of `[executor] access_tokens`, or one issued \
                 with `POST /flow/admin/tokens`.",
            ))),
        );
    }
}

/// The document of a set of routes: [`Base`] plus their paths and schemas, with axum's
/// catch-all segments (`{*file}`) written as the OpenAPI path parameters they are
/// (`{file}`).
pub fn document(routes: Document) -> Document {
    let mut doc = Base::openapi();
    doc.merge(routes);
    doc.paths.paths = std::mem::take(&mut doc.paths.paths)
        .into_iter()
        .map(|(path, item)| (openapi_path(&path), item))
        .collect();
    doc
}

/// An axum route template as an OpenAPI path: `{*rest}` becomes `{rest}`.
pub fn openapi_path(axum_path: &str) -> String {
    axum_path.replace("{*", "{")
}

/// The served document, set once the control router is assembled (it describes the very
/// router it is part of, so it can only be filled in afterwards).
#[derive(Clone, Default)]
pub struct Served(Arc<OnceLock<Bytes>>);

impl Served {
    pub fn set(&self, doc: &Document) {
        match serde_json::to_vec(doc) {
            Ok(json) => {
                let _ = self.0.set(Bytes::from(json));
            }
            Err(e) => tracing::error!(error = %e, "cannot serialize the OpenAPI document"),
        }
    }
}

/// The API document
///
/// This document. It describes the routes this process mounted, so it differs between
/// keels with different `[executor]` and `[dashboard]` settings.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "openapi",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this control listener.",
            content_type = "application/json", body = Object),
    )
)]
pub async fn openapi_json(State(doc): State<Served>) -> Response {
    match doc.0.get() {
        Some(json) => ([(header::CONTENT_TYPE, "application/json")], json.clone()).into_response(),
        None => super::error::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "the API document is not assembled yet",
        )
        .into_response(),
    }
}

/// The document's own route.
pub fn routes(served: Served) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .with_state(served)
}

/// Receives each route family of the control listener, without its state.
pub trait Families {
    fn family<S: Clone + Send + Sync + 'static>(&mut self, routes: OpenApiRouter<S>);
}

/// Every route family the control listener can mount, as `crate::start` composes them (the
/// executor's and the web UI's included). Families built only for their shape carry an
/// empty admin token, which authorizes nothing.
pub fn each_family(visit: &mut impl Families) {
    let admin = AdminAuth::new(crate::config::Secret::new(""));
    visit.family(super::core_routes());
    visit.family(routes(Served::default()));
    visit.family(super::nodes::routes(admin.clone()));
    visit.family(super::locks::routes());
    visit.family(super::monitoring::routes());
    visit.family(super::gpus::routes());
    visit.family(super::dashboard::session_routes(admin.clone()));
    visit.family(super::dashboard::data_routes(admin.clone()));
    visit.family(super::web::routes());
    visit.family(super::executor::routes(admin));
}

/// The document of every route keel can serve, whatever its configuration.
pub fn reference_document() -> Document {
    struct Merge(Document);
    impl Families for Merge {
        fn family<S: Clone + Send + Sync + 'static>(&mut self, routes: OpenApiRouter<S>) {
            self.0.merge(routes.into_openapi());
        }
    }
    let mut all = Merge(utoipa::openapi::OpenApiBuilder::new().build());
    each_family(&mut all);
    document(all.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{router, CoreState, Readiness};
    use crate::telemetry::Telemetry;
    use axum::body::Body;
    use axum::http::Request;
    use serde_json::Value;
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Instant;
    use tower::ServiceExt;

    /// Route template → methods (`GET`, `POST`, ...; `HEAD` is implied by `GET`).
    type RouteSet = BTreeMap<String, BTreeSet<String>>;

    /// The routes an axum router holds, read from its `Debug` form: axum has no API to list
    /// them. The form is axum's (pinned in Cargo.lock); should it change, this finds nothing
    /// and the tests below fail rather than pass vacuously.
    fn walk<S>(router: &axum::Router<S>) -> RouteSet {
        let text = format!("{router:?}");
        // The main path router comes first; the fallback router's paths are axum's own.
        let main = text.split("fallback_router:").next().unwrap_or("");
        let (endpoints, node) = main.split_once("node: Node").unwrap_or((main, ""));
        let mut paths = BTreeMap::new();
        for entry in node.split("RouteId(").skip(1) {
            let (id, rest) = entry.split_once("): \"").expect("RouteId(n): \"path\"");
            let path = rest.split('"').next().expect("quoted path");
            paths.insert(id.to_string(), path.to_string());
        }
        let mut routes = RouteSet::new();
        for entry in endpoints.split("RouteId(").skip(1) {
            let (id, rest) = entry.split_once("): ").expect("RouteId(n): endpoint");
            let allow = rest
                .split_once("allow_header: Bytes(b\"")
                .and_then(|(_, a)| a.split('"').next())
                .unwrap_or_else(|| panic!("no methods for route {id}: {rest}"));
            let methods = allow
                .split(',')
                .filter(|m| *m != "HEAD")
                .map(str::to_string)
                .collect();
            let path = paths.get(id).unwrap_or_else(|| panic!("no path for {id}"));
            routes.insert(openapi_path(path), methods);
        }
        routes
    }

    fn documented(doc: &Document) -> RouteSet {
        let json = serde_json::to_value(doc).expect("document serializes");
        let mut routes = RouteSet::new();
        for (path, item) in json["paths"].as_object().expect("paths") {
            let methods = item
                .as_object()
                .expect("path item")
                .keys()
                .filter(|k| {
                    [
                        "get", "put", "post", "delete", "options", "head", "patch", "trace",
                    ]
                    .contains(&k.as_str())
                })
                .map(|m| m.to_uppercase())
                .collect();
            routes.insert(path.clone(), methods);
        }
        routes
    }

    /// Every example in the document — a schema's `examples`, a request's or response's
    /// `example`/`examples` — is valid against the schema beside it (JSON Schema 2020-12,
    /// the dialect of OpenAPI 3.1, with `$ref`s into the document's components).
    #[test]
    fn every_example_validates_against_its_schema() {
        let doc = serde_json::to_value(reference_document()).expect("document serializes");
        let components = doc["components"].clone();
        let mut checked = Vec::new();
        let mut failures = Vec::new();
        let mut check = |what: String, schema: &Value, example: &Value| {
            let mut root = schema.clone();
            root.as_object_mut()
                .expect("a schema object")
                .insert("components".into(), components.clone());
            let validator = jsonschema::draft202012::new(&root)
                .unwrap_or_else(|e| panic!("{what}: the schema does not compile: {e}"));
            let errors: Vec<String> = validator
                .iter_errors(example)
                .map(|e| format!("{what}: {e} at {}", e.instance_path()))
                .collect();
            failures.extend(errors);
            checked.push(what);
        };
        for (name, schema) in components["schemas"].as_object().expect("schemas") {
            for example in schema["examples"].as_array().into_iter().flatten() {
                check(format!("schema {name}"), schema, example);
            }
        }
        let media_examples = |media: &Value| {
            let mut all: Vec<(String, Value)> = Vec::new();
            if let Some(e) = media.get("example") {
                all.push(("example".into(), e.clone()));
            }
            for (name, e) in media["examples"].as_object().into_iter().flatten() {
                all.push((name.clone(), e["value"].clone()));
            }
            all
        };
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let mut media = Vec::new();
                for (ctype, m) in op["requestBody"]["content"]
                    .as_object()
                    .into_iter()
                    .flatten()
                {
                    media.push((format!("{method} {path} request {ctype}"), m));
                }
                for (status, r) in op["responses"].as_object().into_iter().flatten() {
                    for (ctype, m) in r["content"].as_object().into_iter().flatten() {
                        media.push((format!("{method} {path} {status} {ctype}"), m));
                    }
                }
                for (what, m) in media {
                    for (name, example) in media_examples(m) {
                        check(format!("{what} {name}"), &m["schema"], &example);
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(
            checked.len() >= 25,
            "only {} examples: {checked:?}",
            checked.len()
        );
        for needed in [
            "schema CodeblockRequest",
            "post /flow/codeblock 200 application/json example",
            "post /flow/codeblock 400 application/json SyntaxError",
            "post /flow/codeblock 400 application/json ValidationError",
        ] {
            assert!(
                checked.iter().any(|c| c == needed),
                "{needed} missing: {checked:?}"
            );
        }
    }

    /// The examples are not the only check: real answers validate too.
    #[tokio::test]
    async fn real_error_answers_validate_against_the_error_schema() {
        let doc = serde_json::to_value(reference_document()).expect("document serializes");
        let mut root = serde_json::json!({"$ref": "#/components/schemas/ErrorBody"});
        root["components"] = doc["components"].clone();
        let validator = jsonschema::draft202012::new(&root).expect("compiles");
        let resp = super::super::error::ApiError::not_found("nothing here").into_response();
        let body = axum::body::to_bytes(resp.into_body(), 4096)
            .await
            .expect("body");
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        assert!(validator.is_valid(&body), "{body}");
        assert!(!validator.is_valid(&serde_json::json!({"error": "flat"})));
    }

    /// Every family's router holds exactly the routes its document lists.
    #[test]
    fn every_registered_route_is_documented() {
        /// Routes counted, and every schema by name (a name is one type: merging documents
        /// keeps the first schema of a name and drops the others silently).
        struct Check(usize, BTreeMap<String, Value>);
        impl Families for Check {
            fn family<S: Clone + Send + Sync + 'static>(&mut self, routes: OpenApiRouter<S>) {
                let (router, doc) = routes.split_for_parts();
                let served = walk(&router);
                assert!(!served.is_empty(), "no routes read from {router:?}");
                assert_eq!(served, documented(&document(doc.clone())));
                self.0 += served.len();
                let json = serde_json::to_value(&doc).expect("serializes");
                for (name, schema) in json["components"]["schemas"]
                    .as_object()
                    .into_iter()
                    .flatten()
                {
                    let known = self.1.entry(name.clone()).or_insert_with(|| schema.clone());
                    assert_eq!(known, schema, "two types are documented as {name}");
                }
            }
        }
        let mut check = Check(0, BTreeMap::new());
        each_family(&mut check);
        assert_eq!(
            check.0,
            documented(&reference_document()).len(),
            "two families share a path"
        );
    }

    /// The assembled control router (core routes, layers, fallbacks) serves exactly what its
    /// own `/api/openapi.json` lists: nothing is added around the documented families.
    #[tokio::test]
    async fn the_assembled_router_serves_its_own_document() {
        let core = CoreState {
            telemetry: Telemetry::new(),
            readiness: Arc::new(Readiness::default()),
            started: Instant::now(),
        };
        let failures = Arc::new(crate::limits::AuthFailures::new(
            crate::limits::Listener::Control,
            20,
            &core.telemetry.metrics,
        ));
        let app = router(core, 1024, failures, crate::api::web::routes());
        let resp = app
            .clone()
            .oneshot(
                Request::builder()
                    .uri("/api/openapi.json")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("answered");
        assert_eq!(resp.status(), StatusCode::OK);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 22)
            .await
            .expect("body");
        let served: Document = serde_json::from_slice(&body).expect("an OpenAPI document");
        let json: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(json["openapi"], "3.1.0");
        let routes = walk(&app);
        assert!(routes.contains_key("/health") && routes.contains_key("/app/{file}"));
        assert_eq!(routes, documented(&served));
    }
}
