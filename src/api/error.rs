//! The one place where errors become HTTP responses: `{"error":{"type","message"}}` with a
//! fitting status. axum's own rejections (bad JSON, wrong content type, a body over the
//! limit, a path or query that does not decode) are mapped here too, through `From` — so a
//! handler takes `ApiJson`/`ApiPath`, or `Result<Bytes | Query | Path, _>` and `?` — and a
//! panic in a handler becomes a 500 in the same shape ([`panic_answer`]).

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// An error answer. `kind` is a stable machine-readable type (`invalid_json`, `not_found`).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

/// The error object every error answer carries (also inside a 409's outcome).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable and machine-readable: `invalid_json`, `unauthorized`, `not_found`, ...
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// For people; its wording may change.
    pub message: String,
}

/// `{"error": {...}}`: the body of every error answer of the control API (the executor's
/// `/flow/codeblock` answers its reference envelope instead).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": {"type": "not_found", "message": "no route for GET /nope"}}))]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                kind: self.kind,
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// The answer to a request whose handler panicked (tower-http's `CatchPanicLayer` calls it
/// with the panic's payload): logged with its message, answered 500 in our shape. The
/// message to the client says nothing about the panic itself (it may quote internals).
pub(crate) fn panic_answer(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = crate::telemetry::logging::panic_message(&*payload);
    tracing::error!(panic = %message, "a control-listener request handler panicked");
    ApiError::internal("internal error: the request failed unexpectedly (see keel's log)")
        .into_response()
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_error",
            e.to_string(),
        )
    }
}

impl From<JsonRejection> for ApiError {
    /// 400 for syntax and types (with serde's path-aware message), 413 for oversize bodies,
    /// 415 for a missing JSON content type.
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.body_text())
            }
            JsonRejection::JsonDataError(e) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text())
            }
            JsonRejection::MissingJsonContentType(e) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                e.body_text(),
            ),
            JsonRejection::BytesRejection(e) => e.into(),
            other => ApiError::new(other.status(), "invalid_request", other.body_text()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    /// 413 when the body is over the control listener's limit, else the body could not be
    /// read (the client broke it off or framed it wrongly): 400.
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body is larger than the configured limit",
            );
        }
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            rejection.body_text(),
        )
    }
}

impl From<PathRejection> for ApiError {
    /// A path parameter that does not decode (`%FF` is not UTF-8) or does not parse: 400.
    /// (A route that does not match at all never gets here: that is the 404 fallback.)
    fn from(rejection: PathRejection) -> Self {
        let status = match rejection.status() {
            s if s.is_client_error() => s,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, "invalid_path", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            rejection.body_text(),
        )
    }
}

/// `axum::Json` with our error shape on rejection. Use it for every JSON request body.
pub(crate) struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

/// `axum::extract::Path` with our error shape on rejection. Handlers that must check a
/// token before they look at the path take `Result<Path<_>, PathRejection>` instead and
/// convert the error with `?` after the check.
pub(crate) struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(v) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(v))
    }
}
