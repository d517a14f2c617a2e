//! The control listener (axum): health, metrics, admin and domain APIs, the dashboard.
//!
//! `router` builds the core routes and merges each domain's router (already carrying its own
//! state), then wraps everything in the shared layers: request ids in and out, gzip for
//! bodies of 1 KiB or more, a body-size limit, per-route metrics, JSON 404/405 answers,
//! and the failed-authentication limit. [`serve`] runs it with the listener's connection
//! bounds. Every route is registered with its OpenAPI operation (see [`openapi`]), and the
//! assembled document is served at `/api/openapi.json`.

pub(crate) mod alerts;
pub(crate) mod auth;
pub(crate) mod dashboard;
pub(crate) mod error;
pub(crate) mod event_stream;
pub(crate) mod executor;
pub(crate) mod executor_shapes;
pub(crate) mod gpus;
pub(crate) mod health;
pub(crate) mod locks;
pub(crate) mod metrics;
pub(crate) mod monitoring;
pub(crate) mod nodes;
pub mod openapi;
#[cfg(test)]
mod openapi_page;
pub(crate) mod overview;
pub(crate) mod ratelimit;
pub(crate) mod serve;
pub(crate) mod session;
pub(crate) mod throttle;
pub(crate) mod web;

use crate::telemetry::Telemetry;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use error::ApiError;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Startup → ready → draining; `/health/ready` answers 200 only while ready.
/// Starts at 0 (starting).
#[derive(Default)]
pub struct Readiness(AtomicU8);

const READY: u8 = 1;
const DRAINING: u8 = 2;

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(READY, Ordering::SeqCst);
    }
    pub fn set_draining(&self) {
        self.0.store(DRAINING, Ordering::SeqCst);
    }
    pub fn state(&self) -> &'static str {
        match self.0.load(Ordering::SeqCst) {
            READY => "ready",
            DRAINING => "draining",
            _ => "starting",
        }
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst) == READY
    }
}

/// State of the core routes (health, metrics).
#[derive(Clone)]
pub struct CoreState {
    pub telemetry: Telemetry,
    pub readiness: Arc<Readiness>,
    pub started: Instant,
}

/// The core routes: health and metrics.
pub fn core_routes() -> OpenApiRouter<CoreState> {
    OpenApiRouter::new()
        .routes(routes!(health::basic))
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(health::detailed))
        .routes(routes!(metrics::prometheus_health))
        .routes(routes!(metrics::prometheus))
        .routes(routes!(metrics::perf_json))
}

/// The whole control-listener router; `auth_failures` rate-limits failed authentication on
/// every route (see [`throttle`]). `/api/openapi.json` describes exactly the routes mounted
/// here.
pub fn router(
    core: CoreState,
    max_body_bytes: usize,
    auth_failures: Arc<crate::limits::AuthFailures>,
    domains: OpenApiRouter,
) -> Router {
    let compress_when = SizeAbove::new(1024)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    let served = openapi::Served::default();
    let (routes, doc) = core_routes()
        .with_state(core.clone())
        .merge(domains)
        .merge(openapi::routes(served.clone()))
        .split_for_parts();
    served.set(&openapi::document(doc));
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Inside the metrics layer: a panicking handler is answered 500 JSON and counted
        // like any other 5xx, and everything the handler held is dropped on the unwind.
        .layer(CatchPanicLayer::custom(error::panic_answer))
        .layer(middleware::from_fn_with_state(
            auth_failures,
            throttle::throttle,
        ))
        .layer(middleware::from_fn_with_state(core, track_http))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CompressionLayer::new().gzip(true).compress_when(compress_when))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The ledger's routes: worker API, reference monitoring API, GPUs.
pub fn ledger_router(state: locks::LedgerApi) -> OpenApiRouter {
    locks::routes()
        .merge(monitoring::routes())
        .merge(gpus::routes())
        .with_state(state)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Counts every request by route template (never the raw path: labels stay bounded).
async fn track_http(State(core): State<CoreState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().clone();
    let m = &core.telemetry.metrics;
    let in_flight = GaugeGuard::inc(m.http_in_flight.with_label_values(&["control"]));
    let start = Instant::now();
    let resp = next.run(req).await;
    drop(in_flight);
    let class = crate::telemetry::metrics::status_class(resp.status().as_u16());
    m.http_requests
        .with_label_values(&[route.as_str(), method.as_str(), class])
        .inc();
    m.http_duration
        .with_label_values(&[route.as_str()])
        .observe(start.elapsed().as_secs_f64());
    m.observe_request(start.elapsed(), resp.status().is_server_error());
    resp
}

/// Holds a gauge one higher until dropped: the in-flight count goes back down however the
/// request ends — answered, or its future dropped when the client went away.
struct GaugeGuard(prometheus::IntGauge);

impl GaugeGuard {
    fn inc(gauge: prometheus::IntGauge) -> Self {
        gauge.inc();
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    fn core() -> CoreState {
        CoreState {
            telemetry: Telemetry::new(),
            readiness: Arc::new(Readiness::default()),
            started: Instant::now(),
        }
    }

    fn auth_failures(core: &CoreState) -> Arc<crate::limits::AuthFailures> {
        Arc::new(crate::limits::AuthFailures::new(
            crate::limits::Listener::Control,
            20,
            &core.telemetry.metrics,
        ))
    }

    fn in_flight(core: &CoreState) -> i64 {
        core.telemetry
            .metrics
            .http_in_flight
            .with_label_values(&["control"])
            .get()
    }

    fn get_request(path: &str) -> Request {
        Request::builder()
            .uri(path)
            .body(Body::empty())
            .expect("request")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_json_and_releases_the_in_flight_gauge() {
        async fn buggy() -> &'static str {
            panic!("handler bug")
        }
        let core = core();
        let app = router(
            core.clone(),
            1024,
            auth_failures(&core),
            Router::new().route("/buggy", get(buggy)).into(),
        );
        let resp = app
            .clone()
            .oneshot(get_request("/buggy"))
            .await
            .expect("answered");
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 4096)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["error"]["type"], "internal");
        assert!(!body.to_string().contains("handler bug"), "{body}");
        assert_eq!(in_flight(&core), 0);
        let counted = core
            .telemetry
            .metrics
            .http_requests
            .with_label_values(&["/buggy", "GET", "5xx"])
            .get();
        assert_eq!(counted, 1, "the panic is counted as a 5xx");
        // The router keeps serving.
        let resp = app.oneshot(get_request("/health/live")).await.expect("ok");
        assert_eq!(resp.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_request_dropped_mid_way_releases_the_in_flight_gauge() {
        async fn stuck() -> &'static str {
            std::future::pending::<()>().await;
            "never"
        }
        let core = core();
        let app = router(
            core.clone(),
            1024,
            auth_failures(&core),
            Router::new().route("/stuck", get(stuck)).into(),
        );
        let mut call = Box::pin(app.oneshot(get_request("/stuck")));
        // Polled until the handler waits (the gauge is up), then dropped as hyper does when
        // the client goes away.
        let polled = futures::poll!(call.as_mut());
        assert!(polled.is_pending());
        assert_eq!(in_flight(&core), 1);
        drop(call);
        assert_eq!(in_flight(&core), 0);
    }
}
