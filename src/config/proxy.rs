//! `[proxy]`: the LLM gateway — listener, client keys, upstream nodes and the resilience
//! layers (retry, breaker, prewarm, gradual shift, queue, timeouts).
//!
//! Defaults follow `spec/proxy-resilience.md` (the reference's environment defaults): retry
//! 3 tries with 10–100 ms jittered backoff on 502/503/504, breaker at 50 % over 60 s with 20
//! requests minimum or 5 consecutive failures with 3 half-open probes (the open period is
//! keel's own: 10 s growing to at most 20 s, so recovery is found within 30 s of any outage),
//! prewarm on (2 probes, 5 s), shift and queue off. Timeouts follow
//! `spec/ops-observability.md`: connect 5 s, read 10 s, total 30 s.

use super::llm::{
    default_fallback_for, validate_fallback_for, validate_llm_timeouts, DedupConfig, ErrorClass,
    DEFAULT_FIRST_BYTE, DEFAULT_FIRST_TOKEN, DEFAULT_MAX_RETRY_AFTER, DEFAULT_STREAM_FIRST_BYTE,
    DEFAULT_STREAM_IDLE,
};
use super::validate::Scope;
use super::{Secret, SocketAddrString};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Where LLM clients connect.
    pub listen: SocketAddrString,
    /// Threads serving the listener, each with its own single-threaded runtime (a
    /// connection stays on one thread, like an nginx worker); 0 = half the CPU cores, at
    /// least one (see [`ProxyConfig::thread_count`]).
    pub threads: usize,
    /// Keys clients must present (`x-api-key` or `Authorization: Bearer`); empty = no check.
    /// Plain strings or named entries with limits (`super::client_keys`).
    pub client_keys: Vec<super::ClientKeyConfig>,
    /// Upstream nodes from the file; runtime changes from the admin API are kept in the store.
    pub nodes: Vec<NodeConfig>,
    pub retry: RetryConfig,
    pub breaker: BreakerConfig,
    pub prewarm: PrewarmConfig,
    pub shift: ShiftConfig,
    pub queue: QueueConfig,
    pub timeouts: TimeoutConfig,
    /// Duplicate suppression by idempotency key (LLM routes, non-streaming).
    pub dedup: DedupConfig,
    /// A new client connection must send its first complete request head within this.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A kept-alive client connection must send its next complete request head within this.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Open client connections at most (all proxy threads together); more are closed at once.
    pub max_connections: usize,
    /// Wrong client keys per client address and minute (with `client_keys` set); past them,
    /// every request from that address that presents a key gets 429 until the budget refills.
    pub auth_failures_per_minute: u32,
    /// `[proxy.tls]`: TLS on the listener (none: plain HTTP).
    pub tls: Option<super::TlsConfig>,
    /// This keel's name in the `Via` header it adds to every forwarded request, and by
    /// which it recognises a request that already passed through it (loop → 508). None:
    /// `keel-<12 hex digits>`, generated on the first start and kept in the store, so it is
    /// stable across restarts and differs between any two data dirs.
    pub via_id: Option<String>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: SocketAddrString(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8080))),
            threads: 0,
            client_keys: Vec::new(),
            nodes: Vec::new(),
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
            prewarm: PrewarmConfig::default(),
            shift: ShiftConfig::default(),
            queue: QueueConfig::default(),
            timeouts: TimeoutConfig::default(),
            dedup: DedupConfig::default(),
            header_read_timeout: super::clients::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: super::clients::DEFAULT_IDLE_TIMEOUT,
            max_connections: super::clients::DEFAULT_PROXY_MAX_CONNECTIONS,
            auth_failures_per_minute: super::clients::DEFAULT_AUTH_FAILURES_PER_MINUTE,
            tls: None,
            via_id: None,
        }
    }
}

/// Longest `via_id`.
pub const MAX_VIA_ID: usize = 64;

/// One upstream node (`[[proxy.nodes]]`, or a `POST /admin/api/nodes` body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Unique name; used in metrics labels, logs and the admin API path.
    pub name: String,
    /// `http(s)://host[:port][/path-prefix]`; the client's path is appended to the prefix.
    pub base_url: String,
    /// Traffic weight 0..=100 (0 keeps the node configured but idle).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Lower is preferred; traffic goes to the best priority that has an available node.
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// Replaces the client's key upstream, in the header style the client used.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Prewarm probe path (`GET`); `""` probes with `HEAD /`.
    #[serde(default = "default_health_path")]
    pub health_path: String,
    /// Request `model` rewrites, e.g. `{ "claude-x" = "claude-x-2025" }`.
    #[serde(default)]
    pub model_mapping: BTreeMap<String, String>,
    /// A disabled node takes no traffic; enabling it again prewarms it first.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// LLM routes: the failure classes of another node this node may take over. The default
    /// takes every transient class; `context_length` must be listed explicitly.
    #[serde(default = "default_fallback_for")]
    pub fallback_for: Vec<ErrorClass>,
    /// LLM routes: the node accepts a trailing assistant message and continues it, so a
    /// stream broken elsewhere can be finished here.
    #[serde(default)]
    pub supports_prefill: bool,
}

fn default_weight() -> u32 {
    100
}
fn default_priority() -> u32 {
    1
}
fn default_health_path() -> String {
    "/health".into()
}
fn default_true() -> bool {
    true
}

/// Longest node name: names are metric labels and URL path segments.
pub(super) const MAX_NODE_NAME: usize = 64;
/// Highest node weight.
pub const MAX_WEIGHT: u32 = 100;

impl NodeConfig {
    /// Checks one node; used for the file and for admin API input alike.
    pub fn validate(&self, v: &mut Scope<'_>) {
        if self.name.is_empty() {
            v.error("name", "must not be empty");
        } else if self.name.len() > MAX_NODE_NAME
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            v.error(
                "name",
                format!(
                    "{:?} must be 1..={MAX_NODE_NAME} characters of A-Z a-z 0-9 - _ .",
                    self.name
                ),
            );
        }
        if let Err(problem) = check_base_url(&self.base_url) {
            v.error("base_url", problem.to_string());
        }
        v.range("weight", self.weight, 0, MAX_WEIGHT);
        let p = &self.health_path;
        if !p.is_empty() && (!p.starts_with('/') || p.bytes().any(|b| b <= b' ' || b == 0x7f)) {
            v.error(
                "health_path",
                format!("{p:?} must start with '/' and hold no spaces or control characters (or be empty)"),
            );
        }
        if let Some(key) = &self.api_key {
            // It goes into a request header as it is: what a header value may not hold is
            // refused here (line breaks would let it add headers of its own).
            let k = key.expose();
            if k.trim().is_empty() || http::HeaderValue::from_str(k).is_err() {
                v.error(
                    "api_key",
                    "must be a non-empty single-line value without control characters",
                );
            }
        }
        for (from, to) in &self.model_mapping {
            if from.is_empty() || to.is_empty() {
                v.error("model_mapping", "model names must not be empty");
            }
        }
        validate_fallback_for(v, &self.fallback_for);
    }
}

/// Why a node's `base_url` cannot be forwarded to.
#[derive(Debug, thiserror::Error)]
enum BaseUrlProblem {
    #[error("{0:?} is not a URL: {1}")]
    NotAUrl(String, #[source] url::ParseError),
    #[error("{0:?}: scheme must be http or https")]
    Scheme(String),
    #[error("{0:?} has no host")]
    NoHost(String),
    #[error("{0:?} must not have a query or fragment")]
    QueryOrFragment(String),
    #[error("{0:?} must not carry credentials (use api_key)")]
    Credentials(String),
}

/// A base URL keel can forward to: http or https, a host, no query or fragment.
fn check_base_url(text: &str) -> Result<(), BaseUrlProblem> {
    let url = url::Url::parse(text).map_err(|e| BaseUrlProblem::NotAUrl(text.into(), e))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BaseUrlProblem::Scheme(text.into()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(BaseUrlProblem::NoHost(text.into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(BaseUrlProblem::QueryOrFragment(text.into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BaseUrlProblem::Credentials(text.into()));
    }
    Ok(())
}

/// `[proxy.retry]`: retries happen before any response byte reaches the client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Tries per request, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before retry n: `min * 2^n` capped at `max`, plus jitter in `[0, base/2)`.
    #[serde(with = "humantime_serde")]
    pub backoff_min: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Upstream statuses that are retried on another node.
    pub on_status: Vec<u16>,
    /// Limit for one try until the upstream's response header arrives.
    #[serde(with = "humantime_serde")]
    pub per_try_timeout: Duration,
    /// Largest request body kept for replay (and accepted at all), in bytes.
    pub max_body: usize,
    /// LLM routes: the longest `Retry-After` of a 429 that keel honours by waiting and
    /// retrying the same node; longer waits move to a fallback node instead.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// LLM routes: when a stream has no content within `timeouts.first_token` and a node
    /// takes over `timeout`, start it beside the slow one and keep whichever produces
    /// content first (a hedge). Off: the slow node is abandoned and the fallback starts then.
    pub hedge: bool,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            on_status: vec![502, 503, 504],
            per_try_timeout: Duration::from_secs(30),
            max_body: 8 * 1024 * 1024,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            hedge: true,
        }
    }
}

/// `[proxy.breaker]`: per-node circuit breaker (Closed → Open → HalfOpen).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Sliding window of the failure-rate statistics (a ring of 10 time buckets).
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Requests in the window before the failure rate can trip the breaker.
    pub min_requests: u32,
    /// Failure rate (0..=1) that trips the breaker.
    pub failure_rate: f64,
    /// Consecutive failures that trip the breaker regardless of the rate.
    pub consecutive_failures: u32,
    /// First open period; it doubles for each further ejection in a row, up to `max_cooldown`.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    /// Cap of the growing open period. Small by default (20 s) so a node that recovers
    /// after an outage of any length is probed — and gets its traffic back — within 30 s.
    #[serde(with = "humantime_serde")]
    pub max_cooldown: Duration,
    /// Requests admitted while half-open; that many successes close the breaker.
    pub half_open_probes: u32,
    /// At most this share of nodes is ejected at once (at least one always may be); a node
    /// that would exceed it stays in rotation ("panic": traffic spreads over all nodes).
    pub max_ejected_percent: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window: Duration::from_secs(60),
            min_requests: 20,
            failure_rate: 0.5,
            consecutive_failures: 5,
            cooldown: Duration::from_secs(10),
            max_cooldown: Duration::from_secs(20),
            half_open_probes: 3,
            max_ejected_percent: 50,
        }
    }
}

/// `[proxy.prewarm]`: probes before a node takes traffic.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrewarmConfig {
    pub enabled: bool,
    /// Probes sent; at least one success activates the node.
    pub attempts: u32,
    /// Limit for one probe.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Wait before a failed prewarm is tried again.
    #[serde(with = "humantime_serde")]
    pub retry_interval: Duration,
}

impl Default for PrewarmConfig {
    fn default() -> Self {
        PrewarmConfig {
            enabled: true,
            attempts: 2,
            timeout: Duration::from_secs(5),
            retry_interval: Duration::from_secs(10),
        }
    }
}

/// `[proxy.shift]`: a joining or recovering node gets its weight in stages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShiftConfig {
    pub enabled: bool,
    /// Percent of the node's weight per stage, ascending, ending at 100.
    pub stages: Vec<u32>,
    /// Time at each stage before its health gate is checked.
    #[serde(with = "humantime_serde")]
    pub stage_hold: Duration,
    /// A stage whose failure rate reaches this (0..=1) rolls the node back out.
    pub rollback_on_failure_rate: f64,
    /// Requests in a stage before its failure rate counts.
    pub min_requests: u32,
}

impl Default for ShiftConfig {
    fn default() -> Self {
        ShiftConfig {
            enabled: false,
            stages: vec![10, 50, 100],
            stage_hold: Duration::from_secs(30),
            rollback_on_failure_rate: 0.2,
            min_requests: 10,
        }
    }
}

/// `[proxy.queue]`: requests wait here while no node can take them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    pub enabled: bool,
    /// Requests waiting at once; more are answered 503 at once.
    pub size: usize,
    /// Longest wait for a node; then 503.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            enabled: false,
            size: 1000,
            timeout: Duration::from_secs(5),
        }
    }
}

/// `[proxy.timeouts]`: outbound limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutConfig {
    /// TCP (and TLS) connect to a node.
    #[serde(with = "humantime_serde")]
    pub connect: Duration,
    /// Longest silence between two response body reads (idle, not total).
    #[serde(with = "humantime_serde")]
    pub read: Duration,
    /// Whole request: queue wait, every try and the response body. On LLM routes it bounds
    /// when attempts may start; a streaming answer then runs as long as events keep coming.
    #[serde(with = "humantime_serde")]
    pub total: Duration,
    /// LLM routes: response header of one non-streaming attempt. A non-streaming answer's
    /// header comes only when the whole answer is ready, so this also bounds generation time.
    #[serde(with = "humantime_serde")]
    pub first_byte: Duration,
    /// LLM routes: response header of one streaming attempt. A streaming provider answers
    /// its header at once (the generation is bounded by `first_token`/`stream_idle`), so
    /// this is short: a silent node makes way for the fallback well within `total`.
    #[serde(with = "humantime_serde")]
    pub stream_first_byte: Duration,
    /// LLM routes: first content event of a stream, from the attempt's start; until then
    /// keel holds the response header and can still fail over invisibly.
    #[serde(with = "humantime_serde")]
    pub first_token: Duration,
    /// LLM routes: longest silence between two stream events once content flows.
    #[serde(with = "humantime_serde")]
    pub stream_idle: Duration,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(10),
            total: Duration::from_secs(30),
            first_byte: DEFAULT_FIRST_BYTE,
            stream_first_byte: DEFAULT_STREAM_FIRST_BYTE,
            first_token: DEFAULT_FIRST_TOKEN,
            stream_idle: DEFAULT_STREAM_IDLE,
        }
    }
}

/// Most proxy threads (`threads`); keel keeps a connection pool slot per thread.
pub const MAX_PROXY_THREADS: usize = 64;

impl ProxyConfig {
    /// The number of proxy threads to start: `threads`, or half the CPU cores when 0.
    ///
    /// Why half: keel shares the box with the inference servers and its own control plane,
    /// and one proxy thread already serves about 30 000 small requests a second (see
    /// `docs/gateway.md`). A thread that has no CPU to spare costs more than it brings:
    /// measured on 2 cores under full load, 2 threads made 12× the context switches of one
    /// and used 40 % more CPU per request.
    pub fn thread_count(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| (n.get() / 2).clamp(1, MAX_PROXY_THREADS)),
            n => n,
        }
    }

    pub(super) fn validate(&self, v: &mut Scope<'_>) {
        v.range("threads", self.threads, 0, MAX_PROXY_THREADS);
        super::clients::validate(
            v,
            self.header_read_timeout,
            self.idle_timeout,
            self.max_connections,
            self.auth_failures_per_minute,
        );
        super::client_keys::validate(v, &self.client_keys);
        if let Some(tls) = &self.tls {
            tls.validate(&mut v.at("tls"));
        }
        if let Some(id) = &self.via_id {
            // It is a `received-by` pseudonym in `Via` (RFC 9110 §7.6.3): a token.
            if id.is_empty()
                || id.len() > MAX_VIA_ID
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                v.error(
                    "via_id",
                    format!("{id:?} must be 1..={MAX_VIA_ID} characters of A-Z a-z 0-9 - _ ."),
                );
            }
        }
        let mut names = HashSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let mut scope = v.at(&format!("nodes[{i}]"));
            node.validate(&mut scope);
            if !names.insert(node.name.as_str()) {
                scope.error("name", format!("duplicate node name {:?}", node.name));
            }
        }

        let r = &self.retry;
        let mut rv = v.at("retry");
        rv.range("max_attempts", r.max_attempts, 1, 10);
        rv.positive_duration("backoff_min", r.backoff_min);
        rv.positive_duration("backoff_max", r.backoff_max);
        if r.backoff_max < r.backoff_min {
            rv.error("backoff_max", "must not be less than backoff_min");
        }
        for (i, s) in r.on_status.iter().enumerate() {
            rv.range(&format!("on_status[{i}]"), *s, 500, 599);
        }
        rv.positive_duration("per_try_timeout", r.per_try_timeout);
        rv.range("max_body", r.max_body, 1024, 1 << 30);
        rv.positive_duration("max_retry_after", r.max_retry_after);

        let b = &self.breaker;
        let mut bv = v.at("breaker");
        bv.positive_duration("window", b.window);
        bv.range("min_requests", b.min_requests, 1, 1_000_000);
        bv.range("failure_rate", b.failure_rate, 0.01, 1.0);
        bv.range("consecutive_failures", b.consecutive_failures, 1, 1_000_000);
        bv.positive_duration("cooldown", b.cooldown);
        if b.max_cooldown < b.cooldown {
            bv.error("max_cooldown", "must not be less than cooldown");
        }
        bv.range("half_open_probes", b.half_open_probes, 1, 1000);
        bv.range("max_ejected_percent", b.max_ejected_percent, 0, 100);

        let p = &self.prewarm;
        let mut pv = v.at("prewarm");
        pv.range("attempts", p.attempts, 1, 100);
        pv.positive_duration("timeout", p.timeout);
        pv.positive_duration("retry_interval", p.retry_interval);

        let s = &self.shift;
        let mut sv = v.at("shift");
        if s.stages.is_empty() {
            sv.error("stages", "needs at least one stage");
        } else {
            if s.stages.windows(2).any(|w| w[0] >= w[1]) {
                sv.error("stages", "must be strictly ascending");
            }
            if s.stages.iter().any(|p| *p == 0 || *p > 100) {
                sv.error("stages", "each stage is a percent in 1..=100");
            }
            if s.stages.last() != Some(&100) {
                sv.error("stages", "the last stage must be 100");
            }
        }
        sv.positive_duration("stage_hold", s.stage_hold);
        sv.range(
            "rollback_on_failure_rate",
            s.rollback_on_failure_rate,
            0.01,
            1.0,
        );
        sv.range("min_requests", s.min_requests, 1, 1_000_000);

        let q = &self.queue;
        let mut qv = v.at("queue");
        qv.range("size", q.size, 1, 1_000_000);
        qv.positive_duration("timeout", q.timeout);

        let t = &self.timeouts;
        let mut tv = v.at("timeouts");
        tv.positive_duration("connect", t.connect);
        tv.positive_duration("read", t.read);
        tv.positive_duration("total", t.total);
        validate_llm_timeouts(
            &mut tv,
            t.first_byte,
            t.stream_first_byte,
            t.first_token,
            t.stream_idle,
        );

        self.dedup.validate(&mut v.at("dedup"));
    }

    /// Number of configured upstream nodes (for the startup summary).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Validator;

    fn node(name: &str, url: &str) -> NodeConfig {
        NodeConfig {
            name: name.into(),
            base_url: url.into(),
            weight: 100,
            priority: 1,
            api_key: None,
            health_path: "/health".into(),
            model_mapping: BTreeMap::new(),
            enabled: true,
            fallback_for: default_fallback_for(),
            supports_prefill: false,
        }
    }

    fn errors(c: &ProxyConfig) -> Vec<String> {
        let mut v = Validator::default();
        c.validate(&mut v.at("proxy"));
        v.into_errors().iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert!(errors(&ProxyConfig::default()).is_empty());
    }

    #[test]
    fn every_node_and_section_problem_is_reported_with_its_path() {
        let mut c = ProxyConfig::default();
        let mut bad = node("a", "ftp://x");
        bad.weight = 101;
        bad.health_path = "health".into();
        c.nodes = vec![
            node("a", "http://127.0.0.1:1"),
            bad,
            node("b c", "http://"),
            node("d", "https://h/p?q=1"),
        ];
        c.retry.per_try_timeout = Duration::ZERO;
        c.retry.on_status = vec![404];
        c.breaker.failure_rate = 1.5;
        c.shift.stages = vec![50, 10];
        c.timeouts.read = Duration::ZERO;
        c.threads = MAX_PROXY_THREADS + 1;
        let errs = errors(&c);
        let has = |prefix: &str| errs.iter().any(|e| e.starts_with(prefix));
        assert!(
            has("proxy.nodes[1].base_url: \"ftp://x\": scheme"),
            "{errs:#?}"
        );
        assert!(
            has("proxy.nodes[1].weight: 101 is out of range"),
            "{errs:#?}"
        );
        assert!(has("proxy.nodes[1].health_path"), "{errs:#?}");
        assert!(has("proxy.nodes[1].name: duplicate node name"), "{errs:#?}");
        assert!(has("proxy.nodes[2].name"), "{errs:#?}");
        assert!(has("proxy.nodes[2].base_url"), "{errs:#?}");
        assert!(has("proxy.nodes[3].base_url"), "{errs:#?}");
        assert!(
            has("proxy.retry.per_try_timeout: duration must be"),
            "{errs:#?}"
        );
        assert!(has("proxy.retry.on_status[0]"), "{errs:#?}");
        assert!(has("proxy.breaker.failure_rate"), "{errs:#?}");
        assert!(
            has("proxy.shift.stages: must be strictly ascending"),
            "{errs:#?}"
        );
        assert!(
            has("proxy.shift.stages: the last stage must be 100"),
            "{errs:#?}"
        );
        assert!(has("proxy.timeouts.read"), "{errs:#?}");
        assert!(has("proxy.threads: 65 is out of range"), "{errs:#?}");
    }

    #[test]
    fn threads_default_to_half_the_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(ProxyConfig::default().thread_count(), (cores / 2).max(1));
        let three = ProxyConfig {
            threads: 3,
            ..ProxyConfig::default()
        };
        assert_eq!(three.thread_count(), 3);
    }
}
