//! keel: one binary for a GPU box — LLM gateway, GPU ledger, code-block executor and the
//! operations surface. `main.rs` is only the CLI; [`start`] runs everything in-process so
//! tests and the binary share one code path.

pub mod alerts;
pub mod api;
pub(crate) mod clock;
pub mod config;
pub mod executor;
pub(crate) mod gpu;
pub(crate) mod ledger;
pub(crate) mod limits;
pub(crate) mod proxy;
pub mod reload;
pub mod runfile;
pub mod signals;
pub(crate) mod store;
pub mod systemd;
pub mod telemetry;
pub(crate) mod tls;

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
    #[error("admin token: {0}")]
    AdminToken(#[source] std::io::Error),
    #[error(transparent)]
    Executor(#[from] executor::StartError),
    #[error(transparent)]
    Gpu(#[from] gpu::GpuStartError),
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    #[error(transparent)]
    Gateway(#[from] proxy::GatewayError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

impl StartError {
    /// The store or its fencing mark is damaged: an operator must restore or move a file
    /// (the message says which), so restarting would fail the same way.
    pub fn needs_operator(&self) -> bool {
        match self {
            StartError::Store(e) => e.is_integrity(),
            StartError::Ledger(ledger::LedgerError::Open(e)) => e.is_integrity(),
            StartError::Ledger(ledger::LedgerError::Fence(ledger::FenceError::Unreadable {
                ..
            })) => true,
            _ => false,
        }
    }
}

/// A started keel: bound addresses and the handle to stop it.
pub struct Running {
    pub control_addr: SocketAddr,
    pub proxy_addr: SocketAddr,
    pub telemetry: Telemetry,
    pub store: Store,
    pub ledger: ledger::Ledger,
    readiness: Arc<Readiness>,
    drain_delay: Duration,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    gateway: proxy::GatewayHandle,
    background: Vec<JoinHandle<()>>,
    executor: Option<Arc<executor::Executor>>,
    /// Puts a re-read config in force ([`Running::reload`]).
    reloader: Arc<reload::Reloader>,
    /// Where [`runfile`] was written.
    data_dir: std::path::PathBuf,
}

impl Running {
    /// Graceful stop: readiness turns 503 `draining` while both listeners keep serving for
    /// `drain_delay` (load balancers polling readiness move traffic away meanwhile), then
    /// the listeners stop accepting, in-flight requests get the rest of `grace` to finish,
    /// background work stops and the store is closed.
    pub async fn shutdown(self, grace: Duration) {
        self.readiness.set_draining();
        let deadline = tokio::time::Instant::now() + grace;
        if !self.drain_delay.is_zero() {
            tracing::info!(drain_delay = ?self.drain_delay, "readiness is 503 draining; still serving");
            tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + self.drain_delay))
                .await;
        }
        let _ = self.stop.send(true);
        // Queued lock waiters get their 409 now instead of holding the drain open.
        self.ledger.begin_shutdown();
        // The proxy and the control listener drain side by side within the same grace.
        let gateway = tokio::spawn(self.gateway.shutdown(deadline));
        match tokio::time::timeout_at(deadline, self.server).await {
            Ok(Ok(Ok(()))) => tracing::info!("control listener drained"),
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "control listener failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "control listener task failed"),
            Err(_) => {
                tracing::warn!(grace = ?grace, "shutdown grace passed with requests in flight")
            }
        }
        match gateway.await {
            Ok(0) => tracing::info!("proxy drained"),
            Ok(left) => tracing::warn!(
                in_flight = left,
                "shutdown grace passed with proxy requests in flight"
            ),
            Err(e) => tracing::error!(error = %e, "proxy shutdown task failed"),
        }
        for task in self.background {
            task.abort();
        }
        if let Some(ex) = self.executor {
            // Workers finish their current block and exit; V8 runs off the async runtime.
            let _ = tokio::task::spawn_blocking(move || ex.shutdown()).await;
        }
        // Commits batched heartbeats and statistics, then stops the journal thread.
        self.ledger.close().await;
        drop(self.store);
        runfile::remove(&self.data_dir);
        tracing::info!("store closed; keel stopped");
    }

    /// Re-reads the config at `path` and applies what can change live, or refuses it
    /// whole (see [`reload`]); the report says which.
    pub async fn reload(&self, path: &std::path::Path) -> reload::ReloadReport {
        self.reloader.reload(path).await
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
    if !config.executor.enabled {
        telemetry.health.set(
            "executor",
            ComponentStatus::Disabled,
            "disabled by config ([executor] enabled = false)",
        );
    }

    let (admin_token, source) = config
        .control
        .resolve_admin_token(&config.data_dir)
        .map_err(StartError::AdminToken)?;
    log_admin_token_source(&source);
    let admin = api::auth::AdminAuth::with_sessions(
        admin_token,
        api::session::SessionStore::persistent(&config.dashboard, store.clone())?,
    );

    let core = CoreState {
        telemetry: telemetry.clone(),
        readiness: readiness.clone(),
        started,
    };
    let gpu_config = config.gpu.clone();
    let detected = tokio::task::spawn_blocking(move || gpu::detect(&gpu_config))
        .await
        .map_err(|e| StartError::Store(e.into()))??;
    let ledger = ledger::Ledger::open(
        &config.ledger,
        &detected.lock_keys(),
        store.clone(),
        telemetry.clone(),
    )
    .await?;
    let gpus = gpu::Gpus::start(detected, &config.gpu, ledger.clone(), telemetry.clone());
    let ledger_api = api::locks::LedgerApi {
        ledger: ledger.clone(),
        gpus: gpus.clone(),
        admin: admin.clone(),
        worker_token: config.ledger.worker_token.clone().map(Arc::new),
    };
    let feed = telemetry::dashboard_feed::DashboardFeed::new(telemetry.clone());
    let alert_engine =
        alerts::AlertEngine::new(config.alerts.clone(), telemetry.clone(), feed.clone());
    {
        let engine = alert_engine.clone();
        telemetry.sections.add("alerts", move || {
            serde_json::to_value(engine.firing()).unwrap_or_default()
        });
    }
    let dashboard = api::dashboard::DashboardState {
        telemetry: telemetry.clone(),
        feed: feed.clone(),
        alerts: alert_engine.clone(),
        instance: uuid::Uuid::new_v4().to_string().into(),
        started,
        stop: stop_rx.clone(),
    };
    let gateway = proxy::start(
        &config.proxy,
        proxy::request::access::AccessLog::of(&config.log),
        store.clone(),
        telemetry.clone(),
    )
    .await?;
    let mut domains = utoipa_axum::router::OpenApiRouter::new()
        .merge(api::nodes::router(gateway.gateway.clone(), admin.clone()))
        .merge(api::dashboard::router(
            dashboard,
            admin.clone(),
            config.dashboard.enabled,
        ))
        .merge(api::ledger_router(ledger_api));
    let mut executor_handle = None;
    let mut executor_api_state = None;
    if config.executor.enabled {
        let ex = start_executor(&config, &telemetry).await?;
        // The dashboard's live figures that the registry does not carry. A weak reference:
        // the section must not keep the pool alive past shutdown.
        let weak = Arc::downgrade(&ex);
        telemetry.sections.add("executor", move || {
            weak.upgrade()
                .map_or(serde_json::Value::Null, |ex| ex.dashboard_section())
        });
        let fixed: Vec<String> = config
            .executor
            .access_tokens
            .iter()
            .map(|t| t.expose().to_string())
            .collect();
        let tokens = Arc::new(executor::tokens::TokenStore::open(store.clone(), &fixed)?);
        let rate_limits = api::ratelimit::RateLimits::start(&config.executor.rate_limit);
        executor_api_state = Some((tokens.clone(), rate_limits.clone()));
        domains = domains.merge(api::executor::router(
            api::executor::ExecutorApi {
                executor: ex.clone(),
                tokens,
                limits: rate_limits,
                started,
            },
            admin.clone(),
        ));
        executor_handle = Some(ex);
    }
    let control_tls = match &config.control.tls {
        Some(c) => Some(Arc::new(tls::TlsTerminator::load("control", c)?)),
        None => None,
    };
    let tls = tls::ListenerTls {
        proxy: gateway.gateway.tls.clone(),
        control: control_tls.clone(),
    };
    let reloader = reload::Reloader::new(
        &config,
        telemetry.clone(),
        gateway.gateway.clone(),
        alert_engine.clone(),
        executor_api_state,
        tls,
    );
    let control_auth_failures = Arc::new(limits::AuthFailures::new(
        limits::Listener::Control,
        config.control.auth_failures_per_minute,
        &telemetry.metrics,
    ));
    let app = api::router(
        core,
        config.control.max_body_bytes,
        control_auth_failures,
        domains,
    );

    let addr = config.control.listen.addr();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            what: "control",
            addr,
            source,
        })?;
    let control_addr = listener.local_addr().unwrap_or(addr);
    let limits = api::serve::ServeLimits {
        header_read_timeout: config.control.header_read_timeout,
        idle_timeout: config.control.idle_timeout,
        conns: limits::ConnLimit::new(
            limits::Listener::Control,
            config.control.max_connections,
            &telemetry.metrics,
        ),
        tls: control_tls.clone(),
    };
    let server = tokio::spawn(api::serve::serve(listener, app, limits, stop_rx.clone()));

    let mut background = vec![
        spawn_process_sampler(telemetry.clone()),
        feed.spawn(),
        ledger.spawn_monitor(),
    ];
    if let gpu::Gpus::Enabled(monitor) = &gpus {
        background.push(monitor.spawn());
    }
    if config.alerts.enabled {
        background.push(alert_engine.spawn());
    }

    let run = runfile::RunInfo {
        pid: std::process::id(),
        control: control_addr,
        proxy: gateway.addr,
    };
    if let Err(e) = runfile::write(&config.data_dir, &run) {
        tracing::warn!(error = %e, "cannot write {} in the data dir", runfile::FILE);
    }
    readiness.set_ready();
    tracing::info!(
        control = %control_addr,
        proxy = %gateway.addr,
        startup_ms = started.elapsed().as_millis() as u64,
        "keel ready"
    );
    Ok(Running {
        control_addr,
        proxy_addr: gateway.addr,
        gateway,
        telemetry,
        store,
        ledger,
        readiness,
        drain_delay: config.drain_delay,
        stop,
        server,
        background,
        executor: executor_handle,
        reloader,
        data_dir: config.data_dir.clone(),
    })
}

/// Says where the admin token is — never the token itself.
fn log_admin_token_source(source: &config::AdminTokenSource) {
    use config::AdminTokenSource as S;
    match source {
        S::Config => {}
        S::File(path) => tracing::info!(file = %path.display(), "admin token read from file"),
        S::Generated(path) => tracing::warn!(
            file = %path.display(),
            "no admin token configured: generated one into this file (mode 0600); \
             use its content as the bearer token, or set control.admin_token_file"
        ),
        S::Reused(path) => tracing::info!(
            file = %path.display(),
            "no admin token configured: using the one generated earlier in this file"
        ),
    }
}

/// Makes the snapshot (fail fast, naming the module) and starts the isolate pool, off the
/// async runtime; returns once every isolate has its first context ready.
async fn start_executor(
    config: &Config,
    telemetry: &Telemetry,
) -> Result<Arc<executor::Executor>, StartError> {
    let cfg = config.executor.clone();
    let log = config.log.clone();
    let handle = tokio::runtime::Handle::current();
    let t = telemetry.clone();
    // The executor process reports its own health (including its sandbox) once warm.
    let ex =
        tokio::task::spawn_blocking(move || executor::Executor::start(&cfg, &log, handle, Some(t)))
            .await
            .map_err(|e| executor::StartError::Runtime(format!("executor start task: {e}")))??;
    let w = ex.warmup();
    let st = ex.status();
    tracing::info!(
        pool_size = config.executor.pool_size,
        pid = st.process_pid,
        warmup_ms = w.elapsed.as_millis() as u64,
        snapshot_bytes = w.snapshot_bytes,
        memory_limit_mb = config.executor.memory_limit_mib(),
        sandbox = st.sandbox.as_deref().unwrap_or("-"),
        "executor warm"
    );
    Ok(Arc::new(ex))
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
