//! One upstream node: its fixed settings (target, key, model mapping), the settings the
//! admin API may change (weight, priority, enabled) as atomics, and its runtime state —
//! readiness (prewarmed), breaker and shift behind one short mutex, counters.

use super::attempt::AttemptError;
use super::breaker::{Breaker, BreakerState};
use super::shift::Shift;
use crate::config::{NodeConfig, ProxyConfig};
use pingora::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a resolved address is used before it is looked up again (the ops spec's DNS
/// cache TTL).
const DNS_TTL: Duration = Duration::from_secs(300);

/// A duration as whole nanoseconds (saturating; a config duration is far below the limit).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Where a node came from; runtime nodes are persisted in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Config,
    Runtime,
}

/// Why a node's `base_url` cannot be used as an upstream.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{0}")]
    Url(#[from] url::ParseError),
    #[error("unsupported scheme {0} (http or https)")]
    Scheme(String),
    #[error("no host")]
    NoHost,
    #[error("no port")]
    NoPort,
}

/// A node's base URL, split for building peers and request paths.
#[derive(Debug, Clone)]
pub struct Target {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash ("" for none).
    pub prefix: String,
    /// `Host` header value: host, plus the port when it is not the scheme's default.
    pub authority: String,
}

impl Target {
    pub fn parse(base_url: &str) -> Result<Target, TargetError> {
        let url = url::Url::parse(base_url)?;
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(TargetError::Scheme(other.to_string())),
        };
        let host = url
            .host_str()
            .ok_or(TargetError::NoHost)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port_or_known_default().ok_or(TargetError::NoPort)?;
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or(&host)),
            None => url.host_str().unwrap_or(&host).to_string(),
        };
        Ok(Target {
            tls,
            host,
            port,
            prefix: url.path().trim_end_matches('/').to_string(),
            authority,
        })
    }

    /// The upstream path for a client path (`/v1/messages?x` under the prefix).
    pub fn path_for(&self, client_path_and_query: &str) -> String {
        format!("{}{}", self.prefix, client_path_and_query)
    }
}

/// Breaker and shift of one node; locked together because a recorded outcome updates both.
#[derive(Debug)]
pub struct Control {
    pub breaker: Breaker,
    pub shift: Shift,
}

#[derive(Debug)]
pub struct Node {
    pub name: String,
    /// As configured or added (weight/priority/enabled here are the initial values).
    pub config: NodeConfig,
    pub source: Source,
    pub target: Target,
    weight: AtomicU32,
    priority: AtomicU32,
    enabled: AtomicBool,
    /// Prewarmed (or started with keel): may take traffic.
    ready: AtomicBool,
    draining: AtomicBool,
    prewarming: AtomicBool,
    /// The last prewarm failed; cleared by a passing one.
    prewarm_failed: AtomicBool,
    /// An ejection was vetoed by the max-ejected share (panic).
    capped: AtomicBool,
    /// Breaker open or half-open: counts toward the max-ejected share.
    ejected: AtomicBool,
    next_prewarm: Mutex<Instant>,
    control: Mutex<Control>,
    pub in_flight: AtomicI64,
    pub requests_total: AtomicU64,
    pub failures_total: AtomicU64,
    pub tokens_input: AtomicU64,
    pub tokens_output: AtomicU64,
    peer: Mutex<Option<(Arc<HttpPeer>, Instant)>>,
    /// `[proxy.timeouts] connect` in nanoseconds; a reload may change it.
    connect_timeout: AtomicU64,
    /// This node's metric series, resolved once (see [`super::metrics::NodeSeries`]).
    pub series: super::metrics::NodeSeries,
    /// Idle keep-alive connections to this node.
    pub conns: super::conns::IdleConns,
    /// Bounds this node's `upstream.failed` events.
    pub failure_events: super::node_events::FailureEventLimit,
}

impl Node {
    /// A node as keel starts with it (`ready`) or as the admin API adds it (not ready until
    /// prewarmed).
    pub fn new(
        config: NodeConfig,
        source: Source,
        proxy: &ProxyConfig,
        ready: bool,
        now: Instant,
    ) -> Result<Node, TargetError> {
        let target = Target::parse(&config.base_url)?;
        Ok(Node {
            name: config.name.clone(),
            weight: AtomicU32::new(config.weight),
            priority: AtomicU32::new(config.priority),
            enabled: AtomicBool::new(config.enabled),
            ready: AtomicBool::new(ready),
            draining: AtomicBool::new(false),
            prewarming: AtomicBool::new(false),
            prewarm_failed: AtomicBool::new(false),
            capped: AtomicBool::new(false),
            ejected: AtomicBool::new(false),
            next_prewarm: Mutex::new(now),
            control: Mutex::new(Control {
                breaker: Breaker::new(&proxy.breaker, now),
                shift: Shift::default(),
            }),
            in_flight: AtomicI64::new(0),
            requests_total: AtomicU64::new(0),
            failures_total: AtomicU64::new(0),
            tokens_input: AtomicU64::new(0),
            tokens_output: AtomicU64::new(0),
            peer: Mutex::new(None),
            connect_timeout: AtomicU64::new(nanos(proxy.timeouts.connect)),
            series: Default::default(),
            conns: Default::default(),
            failure_events: Default::default(),
            config,
            source,
            target,
        })
    }

    /// The node a reload puts in this one's place when `config` changes what cannot change
    /// in place (target, key, model mapping, source). For the same `base_url` it is the
    /// same upstream, so the breaker, shift, readiness and counters carry over; a new
    /// `base_url` starts fresh and is prewarmed before it takes traffic.
    pub fn successor(
        &self,
        config: NodeConfig,
        source: Source,
        proxy: &ProxyConfig,
        now: Instant,
    ) -> Result<Node, TargetError> {
        let same_upstream = config.base_url == self.config.base_url;
        let next = Node::new(config, source, proxy, same_upstream && self.ready(), now)?;
        if same_upstream {
            {
                let old = self.control();
                let mut control = next.control();
                control.breaker = old.breaker.clone();
                control.breaker.reconfigure(&proxy.breaker, now);
                control.shift = old.shift.clone();
            }
            next.set_ejected(self.ejected());
            next.set_capped(self.capped());
            next.set_prewarm_failed(self.prewarm_failed());
            next.set_next_prewarm(self.next_prewarm());
            for (to, from) in [
                (&next.requests_total, &self.requests_total),
                (&next.failures_total, &self.failures_total),
                (&next.tokens_input, &self.tokens_input),
                (&next.tokens_output, &self.tokens_output),
            ] {
                to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
        Ok(next)
    }

    /// Puts a reloaded `[proxy]` section's per-node parts in force on this node: the
    /// breaker's settings (its state stays) and the connect timeout (the cached peer that
    /// carries it is dropped, so the next connection uses the new one).
    pub fn reconfigure(&self, proxy: &ProxyConfig, now: Instant) {
        self.control().breaker.reconfigure(&proxy.breaker, now);
        let connect = nanos(proxy.timeouts.connect);
        if self.connect_timeout.swap(connect, Ordering::Relaxed) != connect {
            *self.peer.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    /// The breaker and shift, locked. Held only for arithmetic, never across an await.
    pub fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn weight(&self) -> u32 {
        self.weight.load(Ordering::Relaxed)
    }
    pub fn set_weight(&self, w: u32) {
        self.weight.store(w, Ordering::Relaxed)
    }
    pub fn priority(&self) -> u32 {
        self.priority.load(Ordering::Relaxed)
    }
    pub fn set_priority(&self, p: u32) {
        self.priority.store(p, Ordering::Relaxed)
    }
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }
    pub fn set_enabled(&self, e: bool) {
        self.enabled.store(e, Ordering::Relaxed)
    }
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
    pub fn set_ready(&self, r: bool) {
        self.ready.store(r, Ordering::Release)
    }
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed)
    }
    pub fn prewarm_failed(&self) -> bool {
        self.prewarm_failed.load(Ordering::Relaxed)
    }
    pub fn set_prewarm_failed(&self, f: bool) {
        self.prewarm_failed.store(f, Ordering::Relaxed)
    }
    pub fn capped(&self) -> bool {
        self.capped.load(Ordering::Relaxed)
    }
    pub fn set_capped(&self, c: bool) {
        self.capped.store(c, Ordering::Relaxed)
    }
    pub fn ejected(&self) -> bool {
        self.ejected.load(Ordering::Relaxed)
    }
    pub fn set_ejected(&self, e: bool) {
        self.ejected.store(e, Ordering::Relaxed)
    }

    /// Claims the right to run a prewarm; false when one is already running.
    pub fn begin_prewarm(&self) -> bool {
        !self.prewarming.swap(true, Ordering::AcqRel)
    }
    pub fn end_prewarm(&self) {
        self.prewarming.store(false, Ordering::Release)
    }
    pub fn prewarming(&self) -> bool {
        self.prewarming.load(Ordering::Acquire)
    }

    pub fn next_prewarm(&self) -> Instant {
        *self.next_prewarm.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn set_next_prewarm(&self, at: Instant) {
        *self.next_prewarm.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    /// May take new requests at all (breaker and shift aside).
    pub fn in_rotation(&self) -> bool {
        self.enabled() && self.ready() && !self.draining()
    }

    /// A short state for the admin API and health reasons.
    pub fn state_name(&self, breaker: BreakerState) -> &'static str {
        if self.draining() {
            "draining"
        } else if !self.enabled() {
            "disabled"
        } else if breaker != BreakerState::Closed {
            breaker.reference_name()
        } else if self.prewarming() {
            "prewarming"
        } else if !self.ready() && self.prewarm_failed() {
            "prewarm_failed"
        } else if !self.ready() {
            "waiting_for_prewarm"
        } else {
            "active"
        }
    }

    /// The Pingora peer for this node, resolving its host off the runtime's workers
    /// (`lookup_host`) and caching the address for `DNS_TTL`.
    pub async fn peer(&self) -> Result<Arc<HttpPeer>, AttemptError> {
        let now = Instant::now();
        if let Some((peer, at)) = self.peer.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if now.duration_since(*at) < DNS_TTL {
                return Ok(peer.clone());
            }
        }
        let addr: SocketAddr = match self.target.host.parse::<std::net::IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, self.target.port),
            Err(_) => tokio::net::lookup_host((self.target.host.as_str(), self.target.port))
                .await
                .map_err(|e| AttemptError::Connect(format!("resolving {}: {e}", self.target.host)))?
                .next()
                .ok_or_else(|| {
                    AttemptError::Connect(format!("{} has no address", self.target.host))
                })?,
        };
        let mut peer = HttpPeer::new(addr, self.target.tls, self.target.host.clone());
        let connect = Duration::from_nanos(self.connect_timeout.load(Ordering::Relaxed));
        peer.options.connection_timeout = Some(connect);
        peer.options.total_connection_timeout = Some(connect);
        peer.options.alpn = pingora::protocols::ALPN::H1;
        let peer = Arc::new(peer);
        *self.peer.lock().unwrap_or_else(|p| p.into_inner()) = Some((peer.clone(), now));
        Ok(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_keep_prefix_port_and_authority() {
        let t = Target::parse("https://api.example.com/openai/").unwrap();
        assert!(t.tls);
        assert_eq!(t.port, 443);
        assert_eq!(t.authority, "api.example.com");
        assert_eq!(t.path_for("/v1/chat?x=1"), "/openai/v1/chat?x=1");
        let t = Target::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(t.authority, "127.0.0.1:9000");
        assert_eq!(t.path_for("/v1/messages"), "/v1/messages");
    }
}
