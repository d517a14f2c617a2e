//! The worker API (keel's addition to the reference): acquire / renew / release a lock with
//! fencing tokens, list locks, and the periodic heartbeat. Also the ledger's shared HTTP
//! plumbing: its router state, token checks, error mapping, optional JSON bodies.

use super::auth::{bearer_token, AdminAuth};
use super::error::{ApiError, ApiJson, ErrorBody, ErrorDetail};
use crate::config::Secret;
use crate::gpu::Gpus;
use crate::ledger::{
    AcquireRequest, Acquired, Busy, BusyReason, HeartbeatAck, HeartbeatUpdate, Held, Ledger,
    LedgerError, LockView, Released, Renewed, TokenResult,
};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// State of the ledger's routes (worker API, reference monitoring API, GPUs).
#[derive(Clone)]
pub struct LedgerApi {
    pub ledger: Ledger,
    pub gpus: Gpus,
    pub admin: AdminAuth,
    /// `[ledger] worker_token`: when set, worker calls need it (or the admin token).
    pub worker_token: Option<Arc<Secret>>,
}

impl LedgerApi {
    pub fn require_admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        self.admin.check(headers)
    }

    /// Worker calls: open when no worker token is configured.
    pub fn require_worker(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.worker_token else {
            return Ok(());
        };
        match bearer_token(headers) {
            Some(t)
                if bool::from(expected.expose().as_bytes().ct_eq(t.as_bytes()))
                    || self.admin.matches(t) =>
            {
                Ok(())
            }
            Some(_) => Err(ApiError::unauthorized("invalid worker token")),
            None => Err(ApiError::unauthorized(
                "missing worker token (Authorization: Bearer <[ledger] worker_token>)",
            )),
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::InvalidKey(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_lock_key", e.to_string())
            }
            LedgerError::UnknownLock(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_lock", e.to_string())
            }
            LedgerError::InvalidRequest(_) => ApiError::bad_request(e.to_string()),
            LedgerError::TooManyTasks { .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_tasks",
                e.to_string(),
            ),
            LedgerError::Store(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_error",
                e.to_string(),
            ),
            LedgerError::Open(_) | LedgerError::Fence(_) => ApiError::internal(e.to_string()),
        }
    }
}

/// A path parameter, with axum's rejection in our error shape (taken as a `Result` so that
/// the token is checked first).
pub(crate) fn path_param(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(v)| v).map_err(ApiError::from)
}

/// A JSON body that may be absent (an empty body means all defaults); unknown fields and
/// wrong types are 400s as with [`ApiJson`].
pub(crate) fn optional_body<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        let kind = if e.is_data() {
            "invalid_request"
        } else {
            "invalid_json"
        };
        ApiError::new(StatusCode::BAD_REQUEST, kind, e.to_string())
    })
}

/// The worker API's routes (state given by `super::ledger_router`).
pub(crate) fn routes() -> OpenApiRouter<LedgerApi> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(acquire))
        .routes(routes!(renew))
        .routes(routes!(release))
        .routes(routes!(heartbeat))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"holder": "worker-7", "task_id": "extract-001", "ttl_seconds": 300,
    "wait_seconds": 30})))]
pub(crate) struct AcquireBody {
    /// Who holds the lock (shown as `lock_holder`).
    holder: String,
    /// The task the lock is for; its heartbeat keeps the lease's task alive.
    task_id: Option<String>,
    /// Lease length; default `[ledger] lock_timeout`, at most `[ledger] max_ttl`.
    ttl_seconds: Option<f64>,
    /// Queue this long when the lock is held (at most `[ledger] max_wait`); 0 or absent
    /// answers 409 at once.
    wait_seconds: Option<f64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"fencing_token": 42, "ttl_seconds": 300})))]
pub(crate) struct RenewBody {
    /// The token the acquire answered.
    fencing_token: u64,
    /// New lease length from now; default `[ledger] lock_timeout`.
    ttl_seconds: Option<f64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"fencing_token": 42})))]
pub(crate) struct ReleaseBody {
    fencing_token: u64,
}

/// A 409 body: the outcome's fields plus the usual `error` object.
#[derive(Serialize, ToSchema)]
pub(crate) struct Conflict<T> {
    #[serde(flatten)]
    outcome: T,
    error: ErrorDetail,
}

fn conflict<T: Serialize>(outcome: T, kind: &'static str, message: String) -> Response {
    let error = ErrorDetail { kind, message };
    (StatusCode::CONFLICT, Json(Conflict { outcome, error })).into_response()
}

/// Which call a stale token was refused on: its flag (`renewed` / `released`) reads false.
#[derive(Clone, Copy)]
enum TokenCall {
    Renew,
    Release,
}

/// The lock's state with the refused call's flag.
#[derive(Serialize, ToSchema)]
pub(crate) struct Stale {
    #[serde(skip_serializing_if = "Option::is_none")]
    renewed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    released: Option<bool>,
    #[serde(flatten)]
    view: LockView,
}

fn stale(call: TokenCall, token: u64, view: LockView) -> Response {
    let message = match view.fencing_token {
        Some(current) => format!(
            "fencing token {token} is not the holder's: {} holds {} with token {current}",
            view.lock_holder.as_deref().unwrap_or(""),
            view.lock_key
        ),
        None => format!(
            "fencing token {token} is not the holder's: {} is free (expired or released)",
            view.lock_key
        ),
    };
    let body = Stale {
        renewed: matches!(call, TokenCall::Renew).then_some(false),
        released: matches!(call, TokenCall::Release).then_some(false),
        view,
    };
    conflict(body, "stale_token", message)
}

/// `GET /api/v1/locks`.
#[derive(Serialize, ToSchema)]
pub(crate) struct LockList {
    locks: Vec<LockView>,
    /// Unix seconds.
    timestamp: f64,
}

/// List locks
///
/// Every lock keel manages or has seen, with holder, fencing token and expiry.
#[utoipa::path(get, path = "/api/v1/locks", tag = "locks", responses(
    (status = 200, description = "The locks.", body = LockList),
))]
async fn list(State(s): State<LedgerApi>) -> Json<LockList> {
    Json(LockList {
        locks: s.ledger.locks(),
        timestamp: crate::clock::unix_now(),
    })
}

/// Acquire a lock
///
/// 200 with a fencing token, or 409 when it is held (after `wait_seconds` in the queue, if
/// given). The token grows with every grant, across restarts: pass it to whatever the lock
/// protects so a holder whose lease expired is refused there.
#[utoipa::path(post, path = "/api/v1/locks/{lock_key}/acquire", tag = "locks",
    params(("lock_key" = String, Path, description = "`gpu_lock:{n}` or another configured key.")),
    request_body = AcquireBody,
    security((), ("worker" = [])),
    responses(
        (status = 200, description = "Granted.", body = Held),
        (status = 409, description = "Held by another holder (`lock_held`), or keel is shutting down.",
            body = Conflict<Busy>),
        (status = 400, description = "Bad key, bad JSON, or values out of range.", body = ErrorBody),
        (status = 401, description = "Worker token missing or wrong (when one is configured).", body = ErrorBody),
        (status = 404, description = "`unknown_lock`: the key is not one keel manages.", body = ErrorBody),
        (status = 429, description = "`too_many_tasks`: the wait queue is full.", body = ErrorBody),
    ))]
async fn acquire(
    State(s): State<LedgerApi>,
    headers: HeaderMap,
    key: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<AcquireBody>,
) -> Result<Response, ApiError> {
    s.require_worker(&headers)?;
    let lock_key = path_param(key)?;
    let outcome = s
        .ledger
        .acquire(AcquireRequest {
            lock_key,
            holder: body.holder,
            task_id: body.task_id,
            ttl_seconds: body.ttl_seconds,
            wait_seconds: body.wait_seconds,
        })
        .await?;
    Ok(match outcome {
        Acquired::Held(h) => Json(h).into_response(),
        Acquired::Busy(b) => {
            let holder = b.lock_holder.as_deref().unwrap_or("another holder");
            let message = match b.reason {
                BusyReason::Held => format!("{} is held by {holder}", b.lock_key),
                BusyReason::WaitTimeout => {
                    format!("{} is still held by {holder} after the wait", b.lock_key)
                }
                BusyReason::ShuttingDown => {
                    format!("keel is shutting down; {} was not granted", b.lock_key)
                }
            };
            conflict(b, "lock_held", message)
        }
    })
}

/// Renew a lease
///
/// Only with the holder's fencing token, before the lease expired.
#[utoipa::path(post, path = "/api/v1/locks/{lock_key}/renew", tag = "locks",
    params(("lock_key" = String, Path, description = "The lock's key.")),
    request_body = RenewBody,
    security((), ("worker" = [])),
    responses(
        (status = 200, description = "Renewed.", body = Renewed),
        (status = 409, description = "`stale_token`: the token is not the holder's (expired or \
            taken over); the lock's current state is attached.", body = Conflict<Stale>),
        (status = 400, description = "Bad key or body.", body = ErrorBody),
        (status = 401, description = "Worker token missing or wrong.", body = ErrorBody),
        (status = 404, description = "Unknown lock.", body = ErrorBody),
    ))]
async fn renew(
    State(s): State<LedgerApi>,
    headers: HeaderMap,
    key: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<RenewBody>,
) -> Result<Response, ApiError> {
    s.require_worker(&headers)?;
    let lock_key = path_param(key)?;
    Ok(
        match s
            .ledger
            .renew(&lock_key, body.fencing_token, body.ttl_seconds)
            .await?
        {
            TokenResult::Done(r) => Json(r).into_response(),
            TokenResult::Stale(view) => stale(TokenCall::Renew, body.fencing_token, view),
        },
    )
}

/// Release a lock
///
/// Only with the holder's fencing token.
#[utoipa::path(post, path = "/api/v1/locks/{lock_key}/release", tag = "locks",
    params(("lock_key" = String, Path, description = "The lock's key.")),
    request_body = ReleaseBody,
    security((), ("worker" = [])),
    responses(
        (status = 200, description = "Released.", body = Released),
        (status = 409, description = "`stale_token`: the token is not the holder's.", body = Conflict<Stale>),
        (status = 400, description = "Bad key or body.", body = ErrorBody),
        (status = 401, description = "Worker token missing or wrong.", body = ErrorBody),
        (status = 404, description = "Unknown lock.", body = ErrorBody),
    ))]
async fn release(
    State(s): State<LedgerApi>,
    headers: HeaderMap,
    key: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<ReleaseBody>,
) -> Result<Response, ApiError> {
    s.require_worker(&headers)?;
    let lock_key = path_param(key)?;
    Ok(
        match s.ledger.release(&lock_key, body.fencing_token).await? {
            TokenResult::Done(r) => Json(r).into_response(),
            TokenResult::Stale(view) => stale(TokenCall::Release, body.fencing_token, view),
        },
    )
}

/// Heartbeat
///
/// The periodic update of a running task; an unknown task is started. The body is optional
/// (empty means "still alive").
#[utoipa::path(post, path = "/api/v1/heartbeats/{task_id}", tag = "locks",
    params(("task_id" = String, Path, description = "The task's id.")),
    request_body(content = Option<HeartbeatUpdate>, description = "Optional."),
    security((), ("worker" = [])),
    responses(
        (status = 200, description = "Recorded.", body = HeartbeatAck),
        (status = 400, description = "Bad body (progress outside 0..1, empty texts).", body = ErrorBody),
        (status = 401, description = "Worker token missing or wrong.", body = ErrorBody),
        (status = 429, description = "`too_many_tasks`: the task table is full.", body = ErrorBody),
    ))]
async fn heartbeat(
    State(s): State<LedgerApi>,
    headers: HeaderMap,
    task: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<HeartbeatAck>, ApiError> {
    s.require_worker(&headers)?;
    let task_id = path_param(task)?;
    let update: HeartbeatUpdate = optional_body(&body?)?;
    Ok(Json(s.ledger.heartbeat(&task_id, update)?))
}
