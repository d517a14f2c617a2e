//! The dashboard's files, embedded at build time from `web/` (rust-embed): no files to
//! install, no Node at build time, works without internet. `/` is the app shell; `/app/*`
//! our modules and styles; `/vendor/*` the pinned third-party modules.
//!
//! Files carry their content hash as ETag and `Cache-Control: no-cache`, so a browser
//! revalidates cheaply (304) and never runs a stale module after an upgrade. The shell sets
//! a strict Content-Security-Policy: scripts only from this origin, no framing.

use super::error::{ApiError, ApiPath};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(RustEmbed)]
#[folder = "web/"]
#[include = "index.html"]
#[include = "app/*"]
#[include = "vendor/*.js"]
#[include = "vendor/*.css"]
#[include = "vendor/LICENSE.*"]
struct Assets;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

pub(crate) fn routes() -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(index))
        .routes(routes!(app_file))
        .routes(routes!(vendor_file))
}

/// The dashboard
///
/// The app shell, with a strict Content-Security-Policy.
#[utoipa::path(get, path = "/", tag = "web", responses(
    (status = 200, description = "The page.", content_type = "text/html", body = String),
    (status = 304, description = "Unchanged (`If-None-Match`)."),
))]
async fn index(headers: HeaderMap) -> Result<Response, ApiError> {
    let mut resp = serve("index.html", &headers)?;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(resp)
}

/// The dashboard's modules and styles
#[utoipa::path(get, path = "/app/{*file}", tag = "web",
    params(("file" = String, Path, description = "A file under `web/app/`.")),
    responses(
        (status = 200, description = "The file, with its ETag.", body = String),
        (status = 304, description = "Unchanged (`If-None-Match`)."),
        (status = 404, description = "No such file.", body = super::error::ErrorBody),
    ))]
async fn app_file(
    ApiPath(file): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve(&format!("app/{file}"), &headers)
}

/// The dashboard's pinned third-party modules
#[utoipa::path(get, path = "/vendor/{*file}", tag = "web",
    params(("file" = String, Path, description = "A file under `web/vendor/`.")),
    responses(
        (status = 200, description = "The file, with its ETag.", body = String),
        (status = 304, description = "Unchanged (`If-None-Match`)."),
        (status = 404, description = "No such file.", body = super::error::ErrorBody),
    ))]
async fn vendor_file(
    ApiPath(file): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve(&format!("vendor/{file}"), &headers)
}

fn serve(path: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let file = Assets::get(path).ok_or_else(|| ApiError::not_found(format!("no file /{path}")))?;
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..12]));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mime = file.metadata.mimetype().to_owned();
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, file.data.into_owned()).into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
