//! The operations surface the dashboard reads: browser sessions, the event stream, the
//! overview document, alerts, and the embedded web UI itself.

use super::auth::{require_admin, AdminAuth};
use super::{alerts, event_stream, overview, session, web};
use crate::alerts::AlertEngine;
use crate::telemetry::dashboard_feed::DashboardFeed;
use crate::telemetry::Telemetry;
use axum::middleware;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// State of the dashboard routes.
#[derive(Clone)]
pub struct DashboardState {
    pub telemetry: Telemetry,
    pub feed: Arc<DashboardFeed>,
    pub alerts: Arc<AlertEngine>,
    /// Random per process: a client that sees it change knows keel restarted.
    pub instance: Arc<str>,
    pub started: Instant,
    /// Flips to true on shutdown; open event streams end on it.
    pub stop: watch::Receiver<bool>,
}

/// Session routes (open: they are the login), admin-only data routes, and — when
/// `serve_ui` — the web UI's files.
pub fn router(state: DashboardState, auth: AdminAuth, serve_ui: bool) -> Router {
    let sessions = Router::new()
        .route(
            session::LOGIN_PATH,
            get(session::current)
                .post(session::login)
                .delete(session::logout),
        )
        .with_state(auth.clone());
    let data = Router::new()
        .route("/api/v1/events", get(event_stream::stream))
        .route("/api/v1/overview", get(overview::document))
        .route("/api/v1/alerts", get(alerts::list))
        .route_layer(middleware::from_fn_with_state(auth, require_admin))
        .with_state(state);
    let router = sessions.merge(data);
    if serve_ui {
        router.merge(web::router())
    } else {
        router
    }
}
