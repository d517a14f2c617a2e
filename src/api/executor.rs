//! The executor's API under `/flow/*` (the reference code-block service's paths), served by
//! the V8 executor.
//!
//! Shapes follow `shared/spec/code-executor.md` (types in [`super::executor_shapes`]): `POST /flow/codeblock` answers
//! `{"success", "result" | "error":{"type","message"}, "timing", "timestamp", "request_id"}`
//! for *every* outcome (bad input included, never a panic), `GET /flow/health` carries the
//! `warmup` block that monitoring and probes read. Admin-issued access tokens are managed
//! under `/flow/admin/tokens`, and usage is reported under `/flow/stats/*` (both with the
//! admin bearer token: the stats name tokens).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{require_admin, AdminAuth};
use super::error::{ApiError, ApiPath, ErrorBody};
use super::executor_shapes::*;
use super::locks::optional_body;
use super::ratelimit::RateLimits;
use crate::config::{
    ENV_EXECUTION_TIMEOUT_MS, ENV_MAX_CODE_LENGTH, ENV_MAX_CONCURRENT, ENV_MAX_INPUT_SIZE,
    ENV_MAX_RESULT_SIZE,
};
use crate::executor::tokens::{IssuedToken, TokenStore};
use crate::executor::{ErrorKind, ExecError, ExecRequest, Executor};

/// State of the executor's routes.
#[derive(Clone)]
pub(crate) struct ExecutorApi {
    pub executor: Arc<Executor>,
    pub tokens: Arc<TokenStore>,
    pub limits: Arc<RateLimits>,
    pub started: Instant,
}

/// The executor's routes (state given by [`router`]); the token routes are admin only.
pub(crate) fn routes(admin: AdminAuth) -> OpenApiRouter<ExecutorApi> {
    let admin_routes = OpenApiRouter::new()
        .routes(routes!(issue_token, list_tokens))
        .routes(routes!(revoke_token))
        .routes(routes!(module_stats))
        .routes(routes!(module_stat))
        .routes(routes!(user_stats))
        .route_layer(middleware::from_fn_with_state(admin, require_admin));
    OpenApiRouter::new()
        .routes(routes!(service_info))
        .routes(routes!(service_info_slash))
        .routes(routes!(health))
        .routes(routes!(status))
        .routes(routes!(limits))
        .routes(routes!(codeblock))
        .merge(admin_routes)
}

pub(crate) fn router(state: ExecutorApi, admin: AdminAuth) -> OpenApiRouter {
    routes(admin).with_state(state)
}

const SERVICE: &str = "keel-executor";

fn mib(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// `2025-10-05 16:30:00` (UTC), the reference's codeblock timestamp format.
fn plain_timestamp() -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    OffsetDateTime::now_utc().format(&f).unwrap_or_default()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Service info
///
/// Name, version, engine, uptime, the endpoints and the preloaded libraries.
#[utoipa::path(get, path = "/flow", tag = "executor", responses(
    (status = 200, description = "The service.", body = ServiceInfo),
))]
async fn service_info(State(s): State<ExecutorApi>) -> Json<ServiceInfo> {
    Json(ServiceInfo {
        service: SERVICE,
        version: env!("CARGO_PKG_VERSION"),
        engine: format!("V8 {}", crate::executor::platform::version()),
        description: "JavaScript code-block executor (V8 isolates from a snapshot)",
        uptime: s.started.elapsed().as_secs(),
        endpoints: Endpoints {
            execute: "POST /flow/codeblock",
            health: "GET /flow/health",
            status: "GET /flow/status",
            limits: "GET /flow/limits",
        },
        modules: crate::executor::snapshot::MODULES,
    })
}

/// Service info (trailing slash)
///
/// The same document as `GET /flow`.
#[utoipa::path(get, path = "/flow/", tag = "executor", responses(
    (status = 200, description = "The service.", body = ServiceInfo),
))]
async fn service_info_slash(state: State<ExecutorApi>) -> Json<ServiceInfo> {
    service_info(state).await
}

fn runtime_block(ex: &Executor) -> Runtime {
    let st = ex.status();
    Runtime {
        pool_size: st.pool_size,
        max_concurrent: st.max_concurrent,
        current_executions: st.current_executions,
        total_executions: st.total_executions,
        success_rate: st.success_rate,
    }
}

fn memory_block(ex: &Executor) -> Memory {
    let h = ex.heap();
    Memory {
        alloc: mib(h.used),
        array_buffers: mib(h.array_buffers),
        array_buffer_bytes: h.array_buffers,
        process_memory_limit_bytes: ex.memory_ceiling(),
        total_alloc: mib(h.total),
        sys: mib(h.limit),
        heap_used_bytes: h.used,
        heap_total_bytes: h.total,
        heap_limit_bytes: h.limit,
        isolates: ex.status().pool_size,
        last_context_creation_ms: h.last_context_creation.as_secs_f64() * 1000.0,
        last_context_with_libraries_ms: h.last_context_with_libraries.as_secs_f64() * 1000.0,
    }
}

/// Executor health
///
/// The reference's health document with the snapshot `warmup` block that monitoring and
/// probes read (`.warmup.status == "completed"`), and V8 heap figures. `status` is
/// `degraded` (with `reason`) while the executor process restarts.
#[utoipa::path(get, path = "/flow/health", tag = "executor", responses(
    (status = 200, description = "Always 200; read `status` and `warmup.status`.", body = Health),
))]
async fn health(State(s): State<ExecutorApi>) -> Json<Health> {
    let ex = &s.executor;
    let w = ex.warmup();
    let down = ex.down_reason();
    Json(Health {
        // While the executor process restarts, calls get 503 at once: say so here too.
        status: if down.is_some() {
            "degraded"
        } else {
            "healthy"
        },
        reason: down,
        timestamp: rfc3339(OffsetDateTime::now_utc()),
        service: SERVICE,
        version: env!("CARGO_PKG_VERSION"),
        runtime: runtime_block(ex),
        memory: memory_block(ex),
        warmup: Warmup {
            success_count: w.modules.len(),
            elapsed: format!("{:?}", w.elapsed),
            elapsed_ms: w.elapsed.as_millis() as u64,
            timestamp: rfc3339(w.finished_at),
            details: w
                .module_times
                .iter()
                .map(|(n, t)| WarmupDetail {
                    name: n.clone(),
                    status: "ok",
                    elapsed_ms: t.as_secs_f64() * 1000.0,
                })
                .collect(),
            snapshot_bytes: w.snapshot_bytes,
            status: w.status,
            modules: w.modules,
            total_modules: w.total_modules,
        },
    })
}

/// Executor status
///
/// Uptime, memory, and the pool's counters and isolates.
#[utoipa::path(get, path = "/flow/status", tag = "executor", responses(
    (status = 200, description = "The pool.", body = Status),
))]
async fn status(State(s): State<ExecutorApi>) -> Json<Status> {
    let st = s.executor.status();
    Json(Status {
        status: "running",
        timestamp: rfc3339(OffsetDateTime::now_utc()),
        uptime: s.started.elapsed().as_secs(),
        memory: memory_block(&s.executor),
        executor: PoolStatus {
            current_executions: st.current_executions,
            max_concurrent: st.max_concurrent,
            queue_length: st.queue_length,
            total: st.total_executions,
            successful: st.successful,
            failed: st.failed,
            success_rate: st.success_rate,
            pool_size: st.pool_size,
            isolates_idle: st.isolates_idle,
            isolates_busy: st.isolates_busy,
            isolates_starting: st.isolates_starting,
            isolates_recycled: st.isolates_recycled,
            contexts_reused: st.contexts_reused,
            process_restarts: st.process_restarts,
            process_pid: st.process_pid,
            sandbox: st.sandbox,
        },
    })
}

/// Executor limits
///
/// The limits in force, and the reference's environment variable behind each.
#[utoipa::path(get, path = "/flow/limits", tag = "executor", responses(
    (status = 200, description = "The limits.", body = Limits),
))]
async fn limits(State(s): State<ExecutorApi>) -> Json<Limits> {
    let c = s.executor.config();
    Json(Limits {
        execution_timeout: c.execution_timeout.as_millis() as u64,
        max_code_length: c.max_code_length,
        max_input_size: c.max_input_size,
        max_concurrent: c.max_concurrent,
        max_result_size: c.max_result_size,
        heap_limit_mb: c.heap_limit_mb,
        array_buffer_limit_mb: c.array_buffer_limit_mb,
        memory_limit_mb: c.memory_limit_mib(),
        env: LimitVariables {
            execution_timeout: ENV_EXECUTION_TIMEOUT_MS,
            max_code_length: ENV_MAX_CODE_LENGTH,
            max_input_size: ENV_MAX_INPUT_SIZE,
            max_concurrent: ENV_MAX_CONCURRENT,
            max_result_size: ENV_MAX_RESULT_SIZE,
        },
    })
}

/// The reference's failure envelope with a status.
fn failure(
    status: StatusCode,
    kind: &str,
    message: &str,
    exec: Duration,
    started: Instant,
    rid: &str,
) -> Response {
    let body = Codeblock {
        success: false,
        result: None,
        error: Some(CodeblockError {
            kind: kind.to_string(),
            message: message.to_string(),
        }),
        timing: timing(exec, started),
        timestamp: plain_timestamp(),
        request_id: rid.to_string(),
    };
    with_rid((status, Json(body)).into_response(), rid)
}

fn timing(exec: Duration, started: Instant) -> Timing {
    Timing {
        execution_time: exec.as_millis() as u64,
        total_time: started.elapsed().as_millis() as u64,
    }
}

fn with_rid(mut resp: Response, rid: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

fn status_of(kind: &ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Overloaded | ErrorKind::QueueTimeout | ErrorKind::Unavailable => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorKind::Crashed => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Parses the request body into an [`ExecRequest`]; every problem is a ValidationError.
fn parse_body(body: &[u8]) -> Result<ExecRequest, ExecError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ExecError::validation(format!("body is not valid JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ExecError::validation("body must be a JSON object"))?;
    let input = obj
        .get("input")
        .cloned()
        .ok_or_else(|| ExecError::validation("missing required field: input"))?;
    let code_b64 = match (obj.get("codebase64"), obj.get("codeBase64")) {
        (Some(Value::String(s)), _) | (None, Some(Value::String(s))) => s,
        (Some(_), _) | (None, Some(_)) => {
            return Err(ExecError::validation("codebase64 must be a string"))
        }
        (None, None) => return Err(ExecError::validation("missing required field: codebase64")),
    };
    let cleaned: String = code_b64.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&cleaned)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&cleaned))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&cleaned))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&cleaned))
        .map_err(|e| ExecError::validation(format!("codebase64 is not valid Base64: {e}")))?;
    let code = String::from_utf8(bytes)
        .map_err(|_| ExecError::validation("decoded code is not valid UTF-8"))?;
    let timeout = match obj.get("timeout") {
        None | Some(Value::Null) => None,
        Some(t) => Some(timeout_ms(t)?),
    };
    Ok(ExecRequest {
        code,
        input,
        timeout,
        tenant: String::new(),
    })
}

/// The `timeout` field (milliseconds) as a duration. Any non-negative number is taken: the
/// spec says a call's timeout is "capped by the server's limit", so one too large for a
/// `Duration` (`1e30`) becomes the longest one and the pool caps it at
/// `execution_timeout`. Negative numbers and anything that is not a number are a
/// ValidationError.
fn timeout_ms(t: &Value) -> Result<Duration, ExecError> {
    match t.as_f64() {
        Some(ms) if ms >= 0.0 => {
            Ok(Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX))
        }
        _ => Err(ExecError::validation(
            "timeout must be a non-negative number of milliseconds",
        )),
    }
}

/// Run a code block
///
/// Runs the JavaScript on an isolate of the pool and answers the reference's envelope for
/// every outcome: `success`, then `result` or `error: {type, message}`, `timing`
/// (milliseconds), `timestamp` and `request_id` (the client's `X-Request-ID`, or a new
/// one; echoed in the header too). Rate limits (per IP before and after authentication,
/// per token) answer 429 in the same envelope.
#[utoipa::path(post, path = "/flow/codeblock", tag = "executor",
    params(("X-Request-ID" = Option<String>, Header, description = "Echoed as `request_id`; made when absent.")),
    request_body = CodeblockRequest,
    security(("accessToken" = [])),
    responses(
        (status = 200, description = "The code returned; `result` is its value.", body = Codeblock,
            example = json!({"success": true, "result": {"result": 50, "name": "sum"},
                "timing": {"executionTime": 15, "totalTime": 16},
                "timestamp": "2025-10-05 16:30:00",
                "request_id": "96ff0a85-d8dd-440a-923f-59690bcb8e0d"})),
        (status = 400, description = "The code failed (`SyntaxError`, `ReferenceError`, \
            `TypeError`, `RangeError`, `TimeoutError`, any thrown error's name, ...) or the \
            request is invalid (`ValidationError`: missing field, bad Base64, code too long, \
            input too large).", body = Codeblock,
            examples(
                ("SyntaxError" = (summary = "The code does not compile.", value = json!({
                    "success": false,
                    "error": {"type": "SyntaxError", "message": "Unexpected end of input"},
                    "timing": {"executionTime": 0, "totalTime": 5},
                    "timestamp": "2025-10-05 16:30:00",
                    "request_id": "5b7c1d2e-8f9a-4b3c-9d0e-1f2a3b4c5d6e"}))),
                ("ValidationError" = (summary = "A required field is missing.", value = json!({
                    "success": false,
                    "error": {"type": "ValidationError", "message": "missing required field: codebase64"},
                    "timing": {"executionTime": 0, "totalTime": 0},
                    "timestamp": "2025-10-05 16:30:00",
                    "request_id": "0e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b"}))),
            )),
        (status = 401, description = "`AuthenticationError`: no or an unknown `accessToken`.",
            body = Codeblock, example = json!({"success": false,
                "error": {"type": "AuthenticationError", "message": "missing accessToken header"},
                "timing": {"executionTime": 0, "totalTime": 0},
                "timestamp": "2025-10-05 16:30:00",
                "request_id": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"})),
        (status = 413, description = "`ValidationError`: the body is over `[control] max_body_bytes`.",
            body = Codeblock),
        (status = 429, description = "`RateLimitError`: over a rate limit.", body = Codeblock,
            example = json!({"success": false,
                "error": {"type": "RateLimitError", "message": "rate limit exceeded"},
                "timing": {"executionTime": 0, "totalTime": 0},
                "timestamp": "2025-10-05 16:30:00",
                "request_id": "d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f6a"})),
        (status = 500, description = "The executor process crashed while running it; it restarts.",
            body = Codeblock),
        (status = 503, description = "Overloaded (queue full or queue wait over), or the \
            executor process is restarting.", body = Codeblock),
    ))]
async fn codeblock(
    State(s): State<ExecutorApi>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let rid = request_id(&headers);
    let limited = s.limits.enabled();
    let ip = peer.ip();
    let token = headers
        .get("accesstoken")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let owner = s.tokens.check(token);
    if limited {
        let allowed = match &owner {
            None => s.limits.allow_unauthenticated(ip),
            Some(o) => s.limits.allow_authenticated(ip, &o.key),
        };
        if !allowed {
            return failure(
                StatusCode::TOO_MANY_REQUESTS,
                "RateLimitError",
                "rate limit exceeded",
                Duration::ZERO,
                started,
                &rid,
            );
        }
    }
    if owner.is_none() {
        let msg = if token.is_empty() {
            "missing accessToken header"
        } else {
            "invalid accessToken"
        };
        return failure(
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            msg,
            Duration::ZERO,
            started,
            &rid,
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            // 413 when over the body limit, 400 otherwise; the reference's shape either way.
            return failure(
                e.status(),
                "ValidationError",
                &format!("cannot read body: {}", e.body_text()),
                Duration::ZERO,
                started,
                &rid,
            );
        }
    };
    let mut req = match parse_body(&body) {
        Ok(r) => r,
        Err(e) => {
            return failure(
                status_of(&e.kind),
                e.kind.type_name(),
                &e.message,
                Duration::ZERO,
                started,
                &rid,
            )
        }
    };
    if let Some(o) = &owner {
        req.tenant.clone_from(&o.key);
    }
    let outcome = s.executor.execute(req).await;
    if let Some(o) = &owner {
        s.executor.record_usage(&o.name, &outcome);
    }
    match outcome {
        Ok(out) => {
            if !out.logs.is_empty() {
                tracing::debug!(request_id = %rid, lines = out.logs.len(), dropped = out.logs_dropped, logs = ?out.logs, "code block console output");
            }
            let body = Codeblock {
                success: true,
                result: Some(out.result),
                error: None,
                timing: timing(out.execution_time, started),
                timestamp: plain_timestamp(),
                request_id: rid.clone(),
            };
            with_rid((StatusCode::OK, Json(body)).into_response(), &rid)
        }
        Err(e) => failure(
            status_of(&e.kind),
            e.kind.type_name(),
            &e.message,
            e.execution_time,
            started,
            &rid,
        ),
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0.0%".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

/// Executions per module
///
/// Executions that required each bundled module since keel started (from the `require`
/// calls blocks actually made), most used first.
#[utoipa::path(get, path = "/flow/stats/modules", tag = "executor",
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 200, description = "Per-module figures.", body = ModuleStats),
        (status = 401, description = "Admin token missing or wrong.", body = ErrorBody),
    ))]
async fn module_stats(State(s): State<ExecutorApi>) -> Json<ModuleStats> {
    let mut rows = s.executor.module_requires();
    let total: u64 = rows.iter().map(|(_, n)| n).sum();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    Json(ModuleStats {
        success: true,
        data: ModuleStatsData {
            total_requires: total,
            modules: rows
                .into_iter()
                .map(|(name, n)| ModuleRequires {
                    name,
                    requires: n,
                    share: percent(n, total),
                })
                .collect(),
        },
        timestamp: rfc3339(OffsetDateTime::now_utc()),
    })
}

/// One module's executions
///
/// One bundled module's figure; 404 (in the service's own shape) for a module keel does not
/// have.
#[utoipa::path(get, path = "/flow/stats/modules/{name}", tag = "executor",
    security(("admin" = []), ("session" = [])),
    params(("name" = String, Path, description = "A bundled module, e.g. `lodash`.")),
    responses(
        (status = 200, description = "The module's figure.", body = ModuleStat),
        (status = 404, description = "No such module.", body = NotFound),
        (status = 401, description = "Admin token missing or wrong.", body = ErrorBody),
    ))]
async fn module_stat(
    State(s): State<ExecutorApi>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let rows = s.executor.module_requires();
    let total: u64 = rows.iter().map(|(_, n)| n).sum();
    match rows.into_iter().find(|(m, _)| *m == name) {
        Some((m, n)) => Json(ModuleStat {
            success: true,
            data: ModuleStatData {
                module: ModuleRequires {
                    name: m,
                    requires: n,
                    share: percent(n, total),
                },
                total_requires: total,
            },
            timestamp: rfc3339(OffsetDateTime::now_utc()),
        })
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(NotFound {
                success: false,
                error: CodeblockError {
                    kind: "NotFound".into(),
                    message: format!(
                        "no module {name:?} (modules: {})",
                        crate::executor::snapshot::MODULES.join(", ")
                    ),
                },
            }),
        )
            .into_response(),
    }
}

/// Executions per access token
///
/// Calls per access token (by token name), most active first.
#[utoipa::path(get, path = "/flow/stats/users", tag = "executor",
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 200, description = "Per-token figures.", body = UserStats),
        (status = 401, description = "Admin token missing or wrong.", body = ErrorBody),
    ))]
async fn user_stats(State(s): State<ExecutorApi>) -> Json<UserStats> {
    Json(UserStats {
        success: true,
        data: UserStatsData {
            users: s
                .executor
                .usage()
                .into_iter()
                .map(|(token, usage)| UserUsage {
                    success_rate: percent(usage.successful, usage.executions),
                    token,
                    usage,
                })
                .collect(),
        },
        timestamp: rfc3339(OffsetDateTime::now_utc()),
    })
}

/// `POST /flow/admin/tokens` body: optional (no body means an unnamed token); when given,
/// a JSON object with at most a `name`.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "ci-pipeline"})))]
struct IssueBody {
    /// A label for listings (at most 100 characters); default `unnamed`.
    name: Option<String>,
}

/// Longest token name kept (it is only a label in listings).
const MAX_TOKEN_NAME: usize = 100;

/// Issue an access token
///
/// The answer is the only time the token's text is shown: keel keeps its hash.
#[utoipa::path(post, path = "/flow/admin/tokens", tag = "executor",
    request_body(content = Option<IssueBody>, description = "Optional."),
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 201, description = "Issued.", body = IssuedToken,
            example = json!({"id": "3f9a1c2b7d4e", "name": "ci-pipeline",
                "created_at": "2025-10-05T16:30:00Z", "token": "kt_Zm9vYmFyYmF6cXV4"})),
        (status = 400, description = "Bad body or name.", body = ErrorBody),
        (status = 401, description = "Admin token missing or wrong.", body = ErrorBody),
    ))]
async fn issue_token(
    State(s): State<ExecutorApi>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: IssueBody = optional_body(&body?)?;
    let name = match body.name {
        None => "unnamed".to_string(),
        Some(n) if n.trim().is_empty() => {
            return Err(ApiError::bad_request("name must not be empty"))
        }
        Some(n) if n.chars().count() > MAX_TOKEN_NAME => {
            return Err(ApiError::bad_request(format!(
                "name is longer than {MAX_TOKEN_NAME} characters"
            )))
        }
        Some(n) => n,
    };
    let issued = s.tokens.issue(name).await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// List access tokens
///
/// Issued tokens (never their text); the config's `access_tokens` are not listed.
#[utoipa::path(get, path = "/flow/admin/tokens", tag = "executor",
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 200, description = "The tokens.", body = TokenList),
        (status = 401, description = "Admin token missing or wrong.", body = ErrorBody),
    ))]
async fn list_tokens(State(s): State<ExecutorApi>) -> Json<TokenList> {
    Json(TokenList {
        tokens: s.tokens.list(),
    })
}

/// Revoke an access token
#[utoipa::path(delete, path = "/flow/admin/tokens/{id}", tag = "executor",
    params(("id" = String, Path, description = "The token's id (from the listing).")),
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 204, description = "Revoked."),
        (status = 401, description = "Admin token missing or wrong.", body = ErrorBody),
        (status = 404, description = "No token with this id.", body = ErrorBody),
    ))]
async fn revoke_token(
    State(s): State<ExecutorApi>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if s.tokens.revoke(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no access token with id {id}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body(timeout: &str, code: &str, input: &str) -> String {
        format!(r#"{{"input":{input},"codeBase64":{code},"timeout":{timeout}}}"#)
    }

    fn parsed(timeout: &str) -> Result<Option<Duration>, ExecError> {
        let code = format!(
            "\"{}\"",
            base64::engine::general_purpose::STANDARD.encode("return 1")
        );
        parse_body(body(timeout, &code, "{}").as_bytes()).map(|r| r.timeout)
    }

    #[test]
    fn timeout_is_capped_not_a_panic_and_bad_ones_are_validation_errors() {
        assert_eq!(parsed("250").unwrap(), Some(Duration::from_millis(250)));
        assert_eq!(parsed("null").unwrap(), None);
        // Too large for a Duration: the longest one, which the pool caps at its limit.
        for huge in [
            "1e30",
            "1e300",
            "1.7976931348623157e308",
            "18446744073709551616000",
        ] {
            assert_eq!(parsed(huge).unwrap(), Some(Duration::MAX), "{huge}");
        }
        for bad in ["-1", "-1e300", "\"100\"", "true", "[]", "{}"] {
            let e = parsed(bad).expect_err(bad);
            assert!(matches!(e.kind, ErrorKind::Validation), "{bad}: {e}");
        }
        // Beyond f64 (serde_json refuses the number): the body is not valid JSON.
        let e = parsed("1e400").expect_err("out of range");
        assert!(matches!(e.kind, ErrorKind::Validation), "{e}");
    }

    /// A JSON token for `timeout`: numbers of every size and sign, and things that are not
    /// numbers at all.
    fn timeout_token() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::num::f64::ANY.prop_map(|f| format!("{f:e}")),
            proptest::num::f64::ANY.prop_map(|f| format!("{f}")),
            proptest::num::i64::ANY.prop_map(|i| i.to_string()),
            "[0-9]{1,400}",
            "-?[0-9]{1,3}e[+-]?[0-9]{1,4}",
            "\"[^\"\\\\]{0,20}\"",
            Just("null".to_string()),
            Just("true".to_string()),
            Just("[]".to_string()),
            Just("{}".to_string()),
        ]
    }

    /// `codeBase64`: valid code, Base64 of garbage bytes, not Base64, not a string.
    fn code_token() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(format!(
                "\"{}\"",
                base64::engine::general_purpose::STANDARD.encode("return input")
            )),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| format!(
                "\"{}\"",
                base64::engine::general_purpose::STANDARD.encode(b)
            )),
            "\"[A-Za-z0-9+/=_ \\-]{0,64}\"",
            Just("12".to_string()),
            Just("null".to_string()),
        ]
    }

    /// `input`: small values and deeply nested arrays/objects (past serde_json's limit).
    fn input_token() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("{}".to_string()),
            Just("{\"a\":[1,2,{\"b\":null}]}".to_string()),
            (0usize..3000).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d))),
            (0usize..3000).prop_map(|d| format!("{}1{}", "{\"a\":".repeat(d), "}".repeat(d))),
            (0usize..3000).prop_map(|d| "[".repeat(d)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Hostile bodies never panic the parser: each is a request or a ValidationError,
        /// and an accepted timeout is a non-negative duration.
        #[test]
        fn codeblock_bodies_parse_or_fail_validation(
            timeout in timeout_token(),
            code in code_token(),
            input in input_token(),
        ) {
            match parse_body(body(&timeout, &code, &input).as_bytes()) {
                Ok(req) => {
                    if let Ok(ms) = serde_json::from_str::<f64>(&timeout) {
                        prop_assert!(ms >= 0.0);
                        prop_assert!(req.timeout.is_some());
                    }
                }
                Err(e) => prop_assert!(matches!(e.kind, ErrorKind::Validation), "{e}"),
            }
        }

        /// Arbitrary bytes as a body: no panic, always a ValidationError or a request.
        #[test]
        fn arbitrary_bytes_are_classified(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Err(e) = parse_body(&bytes) {
                prop_assert!(matches!(e.kind, ErrorKind::Validation), "{e}");
            }
        }
    }
}
