//! The operations surface the dashboard reads: browser sessions, the event stream, the
//! overview document, alerts, and the embedded web UI itself.

use super::auth::{require_admin, AdminAuth};
use super::{alerts, event_stream, overview, session, web};
use crate::alerts::AlertEngine;
use crate::telemetry::dashboard_feed::DashboardFeed;
use crate::telemetry::Telemetry;
use axum::middleware;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// State of the dashboard routes.
#[derive(Clone)]
pub(crate) struct DashboardState {
    pub telemetry: Telemetry,
    pub feed: Arc<DashboardFeed>,
    pub alerts: Arc<AlertEngine>,
    /// Random per process: a client that sees it change knows keel restarted.
    pub instance: Arc<str>,
    pub started: Instant,
    /// Flips to true on shutdown; open event streams end on it.
    pub stop: watch::Receiver<bool>,
}

/// The session routes: open, they are the login.
pub(crate) fn session_routes(auth: AdminAuth) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(session::current, session::login, session::logout))
        .with_state(auth)
}

/// The data routes, admin only (state given by [`router`]).
pub(crate) fn data_routes(auth: AdminAuth) -> OpenApiRouter<DashboardState> {
    OpenApiRouter::new()
        .routes(routes!(event_stream::stream))
        .routes(routes!(overview::document))
        .routes(routes!(alerts::list))
        .route_layer(middleware::from_fn_with_state(auth, require_admin))
}

/// Session routes, admin-only data routes, and — when `serve_ui` — the web UI's files.
pub(crate) fn router(state: DashboardState, auth: AdminAuth, serve_ui: bool) -> OpenApiRouter {
    let router = session_routes(auth.clone()).merge(data_routes(auth).with_state(state));
    if serve_ui {
        router.merge(web::routes())
    } else {
        router
    }
}
