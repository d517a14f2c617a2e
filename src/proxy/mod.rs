//! The LLM gateway: Pingora's HTTP server and upstream connector with keel's resilience
//! layers — retry before any byte reaches the client, per-node circuit breakers, prewarm,
//! gradual weight shift, a bounded wait queue — plus LLM awareness (model mapping, token
//! usage) and the node admin operations behind `/admin/api/nodes`.
//!
//! keel owns the process: Pingora's `Server` (which installs its own signal handlers and
//! exits the process) is not used. [`start`] binds the listener itself and starts
//! `[proxy] threads` proxy threads, each running a Pingora listening service on its own
//! single-threaded Tokio runtime over a duplicate of the listening socket, with a shutdown
//! watch keel controls; [`GatewayHandle::shutdown`] stops accepting and waits for in-flight
//! requests up to the grace period.
//!
//! Why threads of their own: a connection then lives on one thread from accept to close,
//! with its upstream connections ([`conns`]) opened on the same runtime — the nginx worker
//! model. On keel's shared work-stealing runtime every I/O event could wake another worker
//! to steal the task; on a 2-core box those wake-ups cost more CPU than the proxying
//! itself. The control plane (admin API, dashboard, ledger) stays on the main runtime, so a
//! burst there does not delay proxied requests.

pub(crate) mod admin;
pub(crate) mod admission;
pub(crate) mod attempt;
pub(crate) mod body;
pub(crate) mod breaker;
pub(crate) mod conns;
pub(crate) mod generic;
pub(crate) mod head;
pub(crate) mod llm;
pub(crate) mod metrics;
pub(crate) mod node;
pub(crate) mod node_events;
pub(crate) mod path;
pub(crate) mod persist;
pub(crate) mod pool;
pub(crate) mod prewarm;
pub(crate) mod queue;
pub(crate) mod reconfigure;
pub(crate) mod request;
pub(crate) mod retry;
pub(crate) mod service;
pub(crate) mod shift;
pub(crate) mod swrr;
pub(crate) mod via;

use crate::config::ProxyConfig;
use crate::limits::{AuthFailures, ConnLimit, Listener};
use crate::store::{Store, StoreError};
use crate::telemetry::Telemetry;
use metrics::GatewayMetrics;
use node::{Node, Source};
use pingora::connectors::TransportConnector;
use pingora::server::Fds;
use pingora::services::Service as _;
use pool::{Picked, Pool};
use queue::WaitQueue;
use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant as TokioInstant;

/// How often the supervisor advances shifts, schedules prewarms and updates health.
const TICK: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot bind the proxy listener on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a proxy thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("node {name}: {source}")]
    Node {
        name: String,
        #[source]
        source: node::TargetError,
    },
    #[error("client key {name}: {source}")]
    ClientKey {
        name: String,
        #[source]
        source: request::key_limits::KeyEntryError,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// Everything the proxy service, the supervisor and the admin API share.
pub struct Gateway {
    pub pool: Pool,
    /// Opens new upstream connections (TCP or TLS); idle ones live in each node's pool.
    pub transport: TransportConnector,
    pub store: Store,
    pub queue: WaitQueue,
    /// Accepted client keys (`[proxy] client_keys`; none: open), judged in
    /// [`request::identity`].
    /// Each with its name for logs and metrics and its limits (`request::key_limits`).
    /// Swapped whole by a reload ([`reconfigure`]).
    client_keys: arc_swap::ArcSwap<Vec<request::key_limits::ClientKeyEntry>>,
    /// Requests and tokens per client key name.
    pub key_metrics: request::key_limits::KeyMetrics,
    /// Wrong client keys per client address (`[proxy] auth_failures_per_minute`).
    auth_failures: AuthFailures,
    /// Open client connections against `[proxy] max_connections`, and the closes counted.
    pub conns: Arc<ConnLimit>,
    /// Serializes admin changes (read-modify-write of the node list and the store).
    admin: tokio::sync::Mutex<()>,
    in_flight: AtomicUsize,
    /// `keel_http_in_flight{listener="proxy"}`, resolved once.
    in_flight_gauge: std::sync::OnceLock<prometheus::IntGauge>,
    idle: Notify,
    /// Set by [`GatewayHandle::shutdown`]: how long proxy threads keep serving what is in
    /// flight after they stopped accepting.
    drain_until: std::sync::OnceLock<Instant>,
    /// `[log] access`: the access line written when a request ends.
    pub access: request::access::AccessLog,
    /// `[proxy.tls]`: the certificate the listener serves; a configuration reload
    /// ([`crate::tls::ListenerTls::prepare`]) replaces it while connections run.
    pub tls: Option<Arc<crate::tls::TlsTerminator>>,
    /// This keel's `Via` entry and loop check (`[proxy] via_id`).
    pub via: via::Via,
}

impl Gateway {
    /// The `[proxy]` section in force (see [`Pool::config`]).
    pub fn config(&self) -> arc_swap::Guard<Arc<ProxyConfig>> {
        self.pool.config()
    }

    fn in_flight_gauge(&self) -> &prometheus::IntGauge {
        self.in_flight_gauge.get_or_init(|| {
            self.pool
                .telemetry
                .metrics
                .http_in_flight
                .with_label_values(&["proxy"])
        })
    }

    /// Client requests being served.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Waits until no client request is in flight or `deadline` passes.
    async fn drained(&self, deadline: TokioInstant) {
        loop {
            let idle = self.idle.notified();
            if self.in_flight() == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return;
            }
        }
    }

    /// The node for a request's first attempt when [`Pool::pick`] found none: waits in the
    /// bounded queue (when it is enabled) until one becomes available, up to `deadline`.
    pub async fn wait_in_queue(&self, deadline: TokioInstant) -> Option<Picked> {
        let config = self.config();
        if !config.queue.enabled {
            return None;
        }
        self.queue
            .wait(
                &config.queue,
                &self.pool.metrics,
                &self.pool.available,
                deadline,
                || self.pool.pick(|_| false, Instant::now()),
            )
            .await
            .ok()
    }

    /// A summary for `/api/metrics` (`performance.gateway`).
    fn summary(&self) -> serde_json::Value {
        let nodes = self.pool.nodes();
        let sum = |f: fn(&Node) -> u64| nodes.iter().map(|n| f(n)).sum::<u64>();
        serde_json::json!({
            "nodes": nodes.len(),
            "nodes_available": self.pool.metrics.nodes_available.get(),
            "in_flight": self.in_flight(),
            "queue_depth": self.queue.depth(),
            "upstream_requests_total": sum(|n| n.requests_total.load(Ordering::Relaxed)),
            "upstream_failures_total": sum(|n| n.failures_total.load(Ordering::Relaxed)),
            "tokens": {
                "input": sum(|n| n.tokens_input.load(Ordering::Relaxed)),
                "output": sum(|n| n.tokens_output.load(Ordering::Relaxed)),
            },
            "panic": self.pool.panic(),
        })
    }
}

/// The running gateway: its address, shared state and the tasks to stop.
pub(crate) struct GatewayHandle {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    shutdown: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    supervisor: JoinHandle<()>,
}

impl GatewayHandle {
    /// Stops accepting, lets idle keep-alive connections close, and waits until in-flight
    /// requests are done or `deadline` passes. Returns the requests still in flight.
    pub(crate) async fn shutdown(mut self, deadline: TokioInstant) -> usize {
        let gw = &self.gateway;
        let _ = gw.drain_until.set(deadline.into_std());
        // The accept loops end at once; Pingora then wakes idle keep-alive readers, and
        // each proxy thread ends when nothing is in flight (or at the deadline).
        let _ = self.shutdown.send(true);
        let threads = std::mem::take(&mut self.threads);
        let joined = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        });
        // Each thread exits only once nothing is in flight or the deadline passed, so there
        // is nothing left to wait for after this.
        let _ = tokio::time::timeout_at(deadline, joined).await;
        self.supervisor.abort();
        gw.in_flight()
    }
}

/// A handle dropped without [`GatewayHandle::shutdown`] (keel's startup failed after the
/// gateway started) still ends the accept loops the regular way: a closed shutdown channel
/// is what Pingora would otherwise find, and it logs that as an error.
impl Drop for GatewayHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Starts proxy thread `index`: a single-threaded runtime running a Pingora listening
/// service on `listener` (its own duplicate of the socket) until shutdown, then serving
/// what is in flight until the drain deadline.
fn spawn_proxy_thread(
    index: usize,
    gw: &Arc<Gateway>,
    llm: &Arc<llm::route::LlmRoute>,
    listener: std::net::TcpListener,
    shutdown: watch::Receiver<bool>,
) -> Result<std::thread::JoinHandle<()>, GatewayError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(GatewayError::Thread)?;
    let key = format!("proxy-{index}");
    let mut fds = Fds::new();
    fds.add(key.clone(), listener.into_raw_fd());
    let mut service = pingora::services::listening::Service::new(
        "keel-gateway".to_string(),
        admission::Admission::new(
            service::GatewayService::new(gw.clone(), llm.clone()),
            gw.conns.clone(),
            gw.tls.clone(),
            gw.config().header_read_timeout,
        ),
    );
    service.add_tcp(&key);
    let gw = gw.clone();
    std::thread::Builder::new()
        .name(format!("keel-proxy-{index}"))
        .spawn(move || {
            conns::bind_thread(index);
            let fds = Arc::new(parking_lot::Mutex::new(fds));
            runtime.block_on(async move {
                service.start_service(Some(fds), shutdown, 1).await;
                // Connections of this thread are tasks of this runtime: keep it running
                // while requests are in flight.
                let until = gw.drain_until.get().copied().unwrap_or_else(Instant::now);
                gw.drained(until.into()).await;
            });
        })
        .map_err(GatewayError::Thread)
}

/// Builds the node set (file + stored runtime changes), binds the listener and starts the
/// Pingora service and the supervisor.
pub(crate) async fn start(
    config: &ProxyConfig,
    access: request::access::AccessLog,
    store: Store,
    telemetry: Telemetry,
) -> Result<GatewayHandle, GatewayError> {
    let config = Arc::new(config.clone());
    let metrics = GatewayMetrics::register(&telemetry.metrics);
    let pool = Pool::new(config.clone(), telemetry.clone(), metrics);
    let records = persist::load(&store).await?;
    let now = Instant::now();
    let mut nodes = Vec::new();
    for (node_config, source) in persist::merge(&config.nodes, records) {
        // Nodes present at startup take traffic at once; only later arrivals prewarm.
        let name = node_config.name.clone();
        let node = Node::new(node_config, source, &config, true, now)
            .map_err(|source| GatewayError::Node { name, source })?;
        nodes.push(Arc::new(node));
    }
    pool.replace(nodes);
    let tls = match &config.tls {
        Some(c) => Some(Arc::new(crate::tls::TlsTerminator::load("proxy", c)?)),
        None => None,
    };
    let via = via::Via::new(&via::resolve_id(config.via_id.as_deref(), &store).await?);
    let client_keys = request::key_limits::ClientKeyEntry::all(&config.client_keys, &[], now)?;

    let gw = Arc::new(Gateway {
        pool,
        transport: TransportConnector::new(None),
        store,
        queue: WaitQueue::default(),
        client_keys: arc_swap::ArcSwap::from_pointee(client_keys),
        key_metrics: request::key_limits::KeyMetrics::register(&telemetry.metrics),
        auth_failures: AuthFailures::new(
            Listener::Proxy,
            config.auth_failures_per_minute,
            &telemetry.metrics,
        ),
        conns: ConnLimit::new(Listener::Proxy, config.max_connections, &telemetry.metrics),
        admin: tokio::sync::Mutex::new(()),
        in_flight: AtomicUsize::new(0),
        in_flight_gauge: std::sync::OnceLock::new(),
        idle: Notify::new(),
        drain_until: std::sync::OnceLock::new(),
        access,
        tls,
        via,
    });
    gw.pool.tick(Instant::now());
    {
        let gw = Arc::downgrade(&gw);
        telemetry.sections.add("gateway", move || {
            gw.upgrade()
                .map(|g| g.summary())
                .unwrap_or(serde_json::Value::Null)
        });
    }

    // Bind here so a busy port is a clean startup error, then give Pingora the socket.
    let addr = config.listen.addr();
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| GatewayError::Bind { addr, source })?;
    // Pingora wraps the fd in a Tokio listener, which needs it non-blocking: a blocking
    // accept would stall a runtime worker.
    listener
        .set_nonblocking(true)
        .map_err(|source| GatewayError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let llm = Arc::new(llm::route::LlmRoute::new(&gw));
    let count = config.thread_count();
    let mut threads = Vec::with_capacity(count);
    for index in 0..count {
        // Every thread accepts on its own descriptor of the one socket: the kernel hands
        // each new connection to one of them.
        let copy = listener
            .try_clone()
            .map_err(|source| GatewayError::Bind { addr, source })?;
        let started = spawn_proxy_thread(index, &gw, &llm, copy, shutdown_rx.clone());
        match started {
            Ok(t) => threads.push(t),
            Err(e) => {
                let _ = shutdown.send(true);
                return Err(e);
            }
        }
    }
    // The threads hold their own descriptors; this one is not needed any more.
    drop(listener);
    let supervisor = tokio::spawn(supervise(Arc::downgrade(&gw)));
    tracing::info!(
        listen = %bound,
        tls = gw.tls.is_some(),
        via = gw.via.id(),
        threads = count,
        nodes = gw.pool.nodes().len(),
        "gateway listening"
    );
    Ok(GatewayHandle {
        addr: bound,
        gateway: gw,
        shutdown,
        threads,
        supervisor,
    })
}

/// Background duties: prewarm nodes that wait for it, advance shift stages, keep health.
async fn supervise(gw: std::sync::Weak<Gateway>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(gw) = gw.upgrade() else { return };
        let now = Instant::now();
        gw.pool.tick(now);
        for node in gw.pool.nodes().iter() {
            node.conns.expire(now);
            if !node.enabled() || node.draining() || node.ready() || node.prewarming() {
                continue;
            }
            if now < node.next_prewarm() {
                continue;
            }
            if let Some(until) = node.control().breaker.open_until() {
                if now < until {
                    continue;
                }
            }
            let reason = prewarm::reason_for(node);
            if gw.config().prewarm.enabled {
                prewarm::spawn(&gw, node, reason);
            } else {
                prewarm::activate_unprobed(&gw, node, reason);
            }
        }
    }
}

/// The source of a node, for the admin API.
pub(crate) fn source_name(s: Source) -> &'static str {
    match s {
        Source::Config => "config",
        Source::Runtime => "runtime",
    }
}
