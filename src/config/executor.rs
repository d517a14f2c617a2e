//! `[executor]`: the V8 code-block executor — pool size, per-execution limits, the fetch
//! network policy, access tokens and rate limits. Every field has a documented default so an
//! empty section (or none at all) gives a working, locked-down executor.

use super::types::Secret;
use super::validate::Scope;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Configuration of the code-block executor (`[executor]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutorConfig {
    /// Serve `/flow/*` and start the isolate pool at all.
    pub enabled: bool,
    /// Number of V8 isolates, each on its own OS thread (reference `poolSize`).
    pub pool_size: usize,
    /// Executions admitted at once, running plus queued (reference `maxConcurrent`,
    /// env `MAX_CONCURRENT_EXECUTIONS`). Past this, calls get 503 at once.
    pub max_concurrent: usize,
    /// How long an admitted call may wait for a free isolate before it gets 503.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
    /// Default and maximum execution time of one block, promise chains and pending fetches
    /// included (env `EXECUTION_TIMEOUT_MS`). A request's `timeout` may only lower it.
    #[serde(with = "humantime_serde")]
    pub execution_timeout: Duration,
    /// Maximum length of the decoded code, in bytes (env `MAX_CODE_LENGTH`).
    pub max_code_length: usize,
    /// Maximum size of the JSON `input`, in bytes (env `MAX_INPUT_SIZE`).
    pub max_input_size: usize,
    /// Maximum size of the JSON result, in bytes (env `MAX_RESULT_SIZE`).
    pub max_result_size: usize,
    /// V8 heap limit per isolate, in MiB. Must leave room above the ~30 MiB that the
    /// preloaded libraries (mostly pinyin's dictionary) take.
    pub heap_limit_mb: usize,
    /// Bytes of `ArrayBuffer`/typed-array/`Buffer` backing stores one isolate may hold at
    /// once, in MiB (the heap limit does not cover them). Past it, the allocation throws a
    /// `RangeError` and the call fails.
    pub array_buffer_limit_mb: usize,
    /// Memory ceiling of the executor process as a whole (its RSS), in MiB. Past it the
    /// process is killed, the calls running in it fail with `MemoryLimitError`, and it is
    /// restarted. Omitted: `pool_size × (heap_limit_mb + array_buffer_limit_mb) + 256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit_mb: Option<usize>,
    /// `console.*` lines kept per execution; further lines are dropped and counted.
    pub max_console_lines: usize,
    /// Bytes of `console.*` output kept per execution.
    pub max_console_bytes: usize,
    /// Keep a call's context warm for the next call of the same access token that starts
    /// from the same kind of context: no context is made for it, and the libraries it
    /// `require`s are the objects the last call used, already compiled to optimised code
    /// (what the reference's runtime pool and a Node `vm` service do). Off by default:
    /// library state a block changes (`axios.defaults`, `_.templateSettings`, a module's
    /// own caches) is then seen by that token's later calls, which may come from other end
    /// users of the platform holding the token. Calls of other tokens never share a
    /// context; a call that fails, times out, adds or removes a global, or leaves work
    /// pending hands its context back to no one.
    pub reuse_contexts: bool,
    /// Fixed access tokens for `POST /flow/codeblock` (header `accessToken`), for clients
    /// provisioned by configuration management. Admin-issued tokens live in the store.
    pub access_tokens: Vec<Secret>,
    /// Per-IP and per-token rate limits (reference defaults).
    pub rate_limit: RateLimitConfig,
    /// `fetch`/axios network policy.
    pub fetch: FetchConfig,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            pool_size: 4,
            max_concurrent: 256,
            queue_timeout: Duration::from_secs(10),
            execution_timeout: Duration::from_secs(5),
            max_code_length: 65_536,
            max_input_size: 1_048_576,
            max_result_size: 5_242_880,
            heap_limit_mb: 128,
            array_buffer_limit_mb: 128,
            memory_limit_mb: None,
            max_console_lines: 200,
            max_console_bytes: 65_536,
            reuse_contexts: false,
            access_tokens: Vec::new(),
            rate_limit: RateLimitConfig::default(),
            fetch: FetchConfig::default(),
        }
    }
}

/// Rate limits of `POST /flow/codeblock`. Defaults are the reference service's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Turn all three limits off (benchmarks, trusted networks).
    pub enabled: bool,
    /// Per client IP before authentication succeeded: sustained requests per second.
    pub ip_unauthenticated_qps: f64,
    /// ... and burst.
    pub ip_unauthenticated_burst: u32,
    /// Per client IP once the token was accepted.
    pub ip_authenticated_qps: f64,
    /// ... and burst.
    pub ip_authenticated_burst: u32,
    /// Per access token: sustained requests per minute.
    pub token_per_minute: f64,
    /// ... and burst.
    pub token_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ip_unauthenticated_qps: 50.0,
            ip_unauthenticated_burst: 100,
            ip_authenticated_qps: 200.0,
            ip_authenticated_burst: 400,
            token_per_minute: 60.0,
            token_burst: 10,
        }
    }
}

/// Network policy of the `fetch` global (and so of axios).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// Offer `fetch` at all; when false every call rejects.
    pub enabled: bool,
    /// Host names that may be fetched (`example.com`, or `*.example.com` for subdomains).
    /// Empty: any host whose addresses pass the CIDR checks.
    pub allowed_hosts: Vec<String>,
    /// Address ranges never connected to, checked after DNS resolution and on every
    /// redirect. Default: [`DEFAULT_DENIED_CIDRS`] — loopback, private, link-local (cloud
    /// metadata 169.254.169.254), CGNAT, unspecified, multicast, the IPv6 equivalents and
    /// the IPv6 forms that reach IPv4 space (mapped, compatible, 6to4, Teredo, NAT64).
    pub denied_cidrs: Vec<IpNet>,
    /// Exceptions to `denied_cidrs` (e.g. `["127.0.0.1/32"]` for a local sidecar).
    pub allowed_cidrs: Vec<IpNet>,
    /// Time limit of one fetch (connect, redirects and body), further capped by what is
    /// left of the execution's own timeout.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Largest response body read; larger bodies fail the fetch.
    pub max_response_size: usize,
    /// Largest request body sent.
    pub max_request_size: usize,
    /// Redirects followed (each hop re-checked against the policy).
    pub max_redirects: usize,
    /// Fetches one execution may start.
    pub max_requests_per_execution: usize,
}

/// The ranges denied by default (`executor.fetch.denied_cidrs`), with what each one is:
/// everything that is not the public internet, and every IPv6 form that reaches IPv4
/// space or a private network through a translator or tunnel.
///
/// The tunnel and translation prefixes (IPv4-compatible, IPv4-mapped, 6to4, Teredo, NAT64)
/// are denied whole, whatever IPv4 address they embed: one of them pointing at a public
/// IPv4 address is refused too. A code block that needs such a host can name its IPv4
/// address (or a name that resolves to it) instead; an operator can open a range again with
/// `allowed_cidrs`. Listed most specific first: a refusal names the first range that
/// matches, so `::1` is reported as loopback, not as IPv4-compatible.
pub const DEFAULT_DENIED_CIDRS: [(&str, &str); 23] = [
    (
        "0.0.0.0/8",
        "IPv4 \"this network\" (0.0.0.0 reaches the local host)",
    ),
    ("10.0.0.0/8", "IPv4 private"),
    ("100.64.0.0/10", "IPv4 carrier-grade NAT"),
    ("127.0.0.0/8", "IPv4 loopback"),
    (
        "169.254.0.0/16",
        "IPv4 link-local (cloud metadata 169.254.169.254)",
    ),
    ("172.16.0.0/12", "IPv4 private"),
    ("192.0.0.0/24", "IPv4 protocol assignments"),
    ("192.168.0.0/16", "IPv4 private"),
    ("198.18.0.0/15", "IPv4 benchmarking"),
    ("224.0.0.0/4", "IPv4 multicast"),
    ("240.0.0.0/4", "IPv4 reserved and broadcast"),
    ("::/128", "IPv6 unspecified"),
    ("::1/128", "IPv6 loopback"),
    (
        "::/96",
        "IPv4-compatible IPv6 (deprecated; ::a.b.c.d reaches a.b.c.d)",
    ),
    (
        "::ffff:0:0/96",
        "IPv4-mapped IPv6 (::ffff:a.b.c.d is a.b.c.d)",
    ),
    (
        "64:ff9b::/96",
        "NAT64 well-known prefix (reaches any IPv4 address)",
    ),
    ("64:ff9b:1::/48", "NAT64 local-use prefix"),
    ("2001::/32", "Teredo (IPv4 tunnel)"),
    ("2002::/16", "6to4 (IPv4 tunnel)"),
    ("fc00::/7", "IPv6 unique local (private)"),
    ("fe80::/10", "IPv6 link-local"),
    ("fec0::/10", "IPv6 site-local (deprecated private)"),
    ("ff00::/8", "IPv6 multicast"),
];

/// The ranges denied by default: [`DEFAULT_DENIED_CIDRS`] parsed.
pub fn default_denied_cidrs() -> Vec<IpNet> {
    DEFAULT_DENIED_CIDRS
        .iter()
        .filter_map(|(net, _)| net.parse().ok())
        .collect()
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allowed_hosts: Vec::new(),
            denied_cidrs: default_denied_cidrs(),
            allowed_cidrs: Vec::new(),
            timeout: Duration::from_secs(10),
            max_response_size: 5 * 1024 * 1024,
            max_request_size: 1024 * 1024,
            max_redirects: 5,
            max_requests_per_execution: 20,
        }
    }
}

/// The reference service's environment variables, accepted as aliases (`/flow/limits`
/// reports them).
pub const ENV_EXECUTION_TIMEOUT_MS: &str = "EXECUTION_TIMEOUT_MS";
pub const ENV_MAX_CODE_LENGTH: &str = "MAX_CODE_LENGTH";
pub const ENV_MAX_INPUT_SIZE: &str = "MAX_INPUT_SIZE";
pub const ENV_MAX_CONCURRENT: &str = "MAX_CONCURRENT_EXECUTIONS";
pub const ENV_MAX_RESULT_SIZE: &str = "MAX_RESULT_SIZE";

impl ExecutorConfig {
    /// Applies the reference's environment variables (they win over the file, as the
    /// reference's did). `env` is injected so tests need not touch the process environment.
    pub fn apply_env_aliases(
        &mut self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Vec<super::ConfigError> {
        let mut errors = Vec::new();
        let mut num = |name: &str, path: &str| -> Option<u64> {
            let raw = env(name)?;
            match raw.trim().parse::<u64>() {
                Ok(v) => Some(v),
                Err(_) => {
                    errors.push(super::ConfigError {
                        path: path.to_string(),
                        message: format!("{name}={raw:?} is not a non-negative integer"),
                    });
                    None
                }
            }
        };
        if let Some(v) = num(ENV_EXECUTION_TIMEOUT_MS, "executor.execution_timeout") {
            self.execution_timeout = Duration::from_millis(v);
        }
        if let Some(v) = num(ENV_MAX_CODE_LENGTH, "executor.max_code_length") {
            self.max_code_length = v as usize;
        }
        if let Some(v) = num(ENV_MAX_INPUT_SIZE, "executor.max_input_size") {
            self.max_input_size = v as usize;
        }
        if let Some(v) = num(ENV_MAX_CONCURRENT, "executor.max_concurrent") {
            self.max_concurrent = v as usize;
        }
        if let Some(v) = num(ENV_MAX_RESULT_SIZE, "executor.max_result_size") {
            self.max_result_size = v as usize;
        }
        errors
    }

    /// Every semantic problem, reported under `executor.`.
    pub(super) fn validate(&self, v: &mut Scope<'_>) {
        v.range("pool_size", self.pool_size, 1, 1024);
        if self.max_concurrent < self.pool_size {
            v.error(
                "max_concurrent",
                format!(
                    "must be at least pool_size ({}), got {}",
                    self.pool_size, self.max_concurrent
                ),
            );
        }
        v.positive_duration("execution_timeout", self.execution_timeout);
        v.positive_duration("queue_timeout", self.queue_timeout);
        for (name, n) in [
            ("max_code_length", self.max_code_length),
            ("max_input_size", self.max_input_size),
            ("max_result_size", self.max_result_size),
        ] {
            if n == 0 {
                v.error(name, "must be greater than zero");
            }
        }
        if self.heap_limit_mb < 64 {
            v.error(
                "heap_limit_mb",
                format!(
                    "must be at least 64 (the preloaded libraries alone take ~30 MiB), got {}",
                    self.heap_limit_mb
                ),
            );
        }
        if self.array_buffer_limit_mb == 0 || self.array_buffer_limit_mb > 1 << 20 {
            v.error(
                "array_buffer_limit_mb",
                format!(
                    "must be between 1 and 1048576, got {}",
                    self.array_buffer_limit_mb
                ),
            );
        }
        if let Some(m) = self.memory_limit_mb {
            if m < 256 {
                v.error(
                    "memory_limit_mb",
                    format!("must be at least 256 (one warm isolate takes ~90 MiB), got {m}"),
                );
            }
        }
        for (i, t) in self.access_tokens.iter().enumerate() {
            if t.expose().len() < 8 {
                v.error(
                    &format!("access_tokens[{i}]"),
                    "tokens must be at least 8 characters",
                );
            }
        }
        let rl = &self.rate_limit;
        for (name, n) in [
            (
                "rate_limit.ip_unauthenticated_qps",
                rl.ip_unauthenticated_qps,
            ),
            ("rate_limit.ip_authenticated_qps", rl.ip_authenticated_qps),
            ("rate_limit.token_per_minute", rl.token_per_minute),
        ] {
            if !(n.is_finite() && n > 0.0) {
                v.error(name, format!("must be a positive number, got {n}"));
            }
        }
        for (name, n) in [
            (
                "rate_limit.ip_unauthenticated_burst",
                rl.ip_unauthenticated_burst,
            ),
            (
                "rate_limit.ip_authenticated_burst",
                rl.ip_authenticated_burst,
            ),
            ("rate_limit.token_burst", rl.token_burst),
        ] {
            if n == 0 {
                v.error(name, "must be at least 1");
            }
        }
        for (i, h) in self.fetch.allowed_hosts.iter().enumerate() {
            let bare = h.strip_prefix("*.").unwrap_or(h);
            if bare.is_empty() || bare.contains(['/', ':', ' ', '*']) {
                v.error(
                    &format!("fetch.allowed_hosts[{i}]"),
                    format!("{h:?} is not a host name or *.domain pattern"),
                );
            }
        }
        v.positive_duration("fetch.timeout", self.fetch.timeout);
        v.range("fetch.max_redirects", self.fetch.max_redirects, 0, 20);
    }

    /// The heap limit in bytes.
    pub fn heap_limit_bytes(&self) -> usize {
        self.heap_limit_mb.saturating_mul(1024 * 1024)
    }

    /// The per-isolate array-buffer budget in bytes.
    pub fn array_buffer_limit_bytes(&self) -> usize {
        self.array_buffer_limit_mb.saturating_mul(1024 * 1024)
    }

    /// The executor process's memory ceiling in MiB (configured, or derived from the pool).
    pub fn memory_limit_mib(&self) -> usize {
        self.memory_limit_mb.unwrap_or_else(|| {
            self.pool_size
                .saturating_mul(
                    self.heap_limit_mb
                        .saturating_add(self.array_buffer_limit_mb),
                )
                .saturating_add(256)
        })
    }

    /// [`Self::memory_limit_mib`] in bytes.
    pub fn memory_limit_bytes(&self) -> usize {
        self.memory_limit_mib().saturating_mul(1024 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Validator;
    use super::*;

    fn errors(c: &ExecutorConfig) -> Vec<String> {
        let mut v = Validator::default();
        c.validate(&mut v.at("executor"));
        v.into_errors().into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert!(errors(&ExecutorConfig::default()).is_empty());
    }

    #[test]
    fn validate_reports_every_error() {
        let mut c = ExecutorConfig {
            pool_size: 0,
            heap_limit_mb: 1,
            ..Default::default()
        };
        c.fetch.allowed_hosts = vec!["http://x".into()];
        c.access_tokens = vec![Secret::new("short")];
        let paths = errors(&c);
        for p in [
            "executor.pool_size",
            "executor.heap_limit_mb",
            "executor.fetch.allowed_hosts[0]",
            "executor.access_tokens[0]",
        ] {
            assert!(paths.contains(&p.to_string()), "{p} missing from {paths:?}");
        }
    }

    #[test]
    fn env_aliases_apply_and_report_garbage() {
        let mut c = ExecutorConfig::default();
        let errs = c.apply_env_aliases(|k| match k {
            ENV_EXECUTION_TIMEOUT_MS => Some("1500".into()),
            ENV_MAX_CODE_LENGTH => Some("nope".into()),
            _ => None,
        });
        assert_eq!(c.execution_timeout, Duration::from_millis(1500));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, "executor.max_code_length");
    }

    #[test]
    fn parses_from_toml_with_unknown_field_rejected() {
        let c: ExecutorConfig = toml::from_str(
            "pool_size = 2\nexecution_timeout = \"250ms\"\n[fetch]\nallowed_cidrs = [\"127.0.0.0/8\"]\n",
        )
        .expect("parse");
        assert_eq!(c.pool_size, 2);
        assert_eq!(c.execution_timeout, Duration::from_millis(250));
        assert_eq!(c.fetch.allowed_cidrs.len(), 1);
        assert!(toml::from_str::<ExecutorConfig>("nope = 1").is_err());
    }
}
