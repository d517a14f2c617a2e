//! keel: one binary for a GPU box — LLM gateway, GPU ledger, code-block executor and the
//! operations surface. `main.rs` is only the CLI; [`start`] runs everything in-process so
//! tests and the binary share one code path.

pub mod alerts;
pub mod api;
pub mod clock;
pub mod config;
pub mod proxy;
pub mod store;
pub mod systemd;
pub mod telemetry;

use api::{CoreState, Readiness};
use config::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{Store, StoreError};
use telemetry::{ComponentStatus, Telemetry};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot bind {what} listener on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the admin token: {0}")]
    AdminToken(#[source] std::io::Error),
}

/// A started keel: bound addresses and the handle to stop it.
pub struct Running {
    pub control_addr: SocketAddr,
    pub telemetry: Telemetry,
    pub store: Store,
    readiness: Arc<Readiness>,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
}

impl Running {
    /// Graceful stop: readiness turns 503, listeners stop accepting, in-flight requests get
    /// up to `grace` to finish, background work stops and the store is closed.
    pub async fn shutdown(self, grace: Duration) {
        self.readiness.set_draining();
        let _ = self.stop.send(true);
        match tokio::time::timeout(grace, self.server).await {
            Ok(Ok(Ok(()))) => tracing::info!("control listener drained"),
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "control listener failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "control listener task failed"),
            Err(_) => {
                tracing::warn!(grace = ?grace, "shutdown grace passed with requests in flight")
            }
        }
        for task in self.background {
            task.abort();
        }
        drop(self.store);
        tracing::info!("store closed; keel stopped");
    }

    /// Resolves when a stop was requested (used by callers that wait on the listener).
    pub fn stop_requested(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
}

/// Opens the store, starts every component and binds the listeners. Readiness turns 200
/// only when everything has started.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let started = Instant::now();
    let telemetry = Telemetry::new();
    let readiness = Arc::new(Readiness::default());
    let (stop, stop_rx) = watch::channel(false);

    let store = Store::open(&config.data_dir)?;
    telemetry.health.set(
        "store",
        ComponentStatus::Healthy,
        format!(
            "{} (schema v{})",
            store.path().display(),
            store::SCHEMA_VERSION
        ),
    );
    for component in ["proxy", "ledger", "gpu", "executor"] {
        telemetry.health.set(
            component,
            ComponentStatus::Disabled,
            "not built into this version yet",
        );
    }

    let admin = api::auth::AdminAuth::with_sessions(
        config
            .control
            .resolve_admin_token()
            .map_err(StartError::AdminToken)?,
        api::session::SessionStore::persistent(&config.dashboard, store.clone())?,
    );
    if admin.matches("change-me") {
        tracing::warn!("control.admin_token is the example value \"change-me\"; set a real token");
    }

    let core = CoreState {
        telemetry: telemetry.clone(),
        readiness: readiness.clone(),
        started,
    };
    let snapshots = telemetry::snapshot::Snapshots::new(telemetry.clone());
    let alert_engine =
        alerts::AlertEngine::new(config.alerts.clone(), telemetry.clone(), snapshots.clone());
    {
        let engine = alert_engine.clone();
        telemetry
            .sections
            .add("alerts", move || serde_json::json!(engine.firing()));
    }
    let dashboard = api::dashboard::DashboardState {
        telemetry: telemetry.clone(),
        snapshots: snapshots.clone(),
        alerts: alert_engine.clone(),
        instance: uuid::Uuid::new_v4().to_string().into(),
        started,
        stop: stop_rx.clone(),
    };
    let domains = axum::Router::new().merge(api::dashboard::router(
        dashboard,
        admin.clone(),
        config.dashboard.enabled,
    ));
    let app = api::router(core, config.control.max_body_bytes, domains);

    let addr = config.control.listen.addr();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            what: "control",
            addr,
            source,
        })?;
    let control_addr = listener.local_addr().unwrap_or(addr);
    let mut shutdown_rx = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = shutdown_rx.wait_for(|stop| *stop).await;
        })
        .await
    });

    let mut background = vec![spawn_process_sampler(telemetry.clone()), snapshots.spawn()];
    if config.alerts.enabled {
        background.push(alert_engine.spawn());
    }

    readiness.set_ready();
    tracing::info!(
        control = %control_addr,
        startup_ms = started.elapsed().as_millis() as u64,
        "keel ready"
    );
    Ok(Running {
        control_addr,
        telemetry,
        store,
        readiness,
        stop,
        server,
        background,
    })
}

/// Samples RSS/CPU every second and logs a statistics line once a minute (never per request).
fn spawn_process_sampler(telemetry: Telemetry) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            telemetry.process.sample();
            n += 1;
            if n % 60 == 0 {
                tracing::info!(
                    rss_mb = telemetry.process.rss_bytes() / (1024 * 1024),
                    cpu_percent = telemetry.process.cpu_percent(),
                    active_sessions = telemetry.metrics.active_sessions(),
                    "periodic statistics"
                );
            }
        }
    })
}
