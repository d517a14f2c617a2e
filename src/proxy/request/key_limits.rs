//! The configured client keys at run time: how a presented key is recognised (compared in
//! constant time, or by its SHA-256), and the limits a named key carries —
//! `requests_per_minute`, `tokens_per_minute`, `max_concurrent`, `models`.
//!
//! Both per-minute limits are token buckets that hold a minute's worth and refill evenly
//! (so a key may burst its whole minute, then goes on at the configured rate). Tokens are
//! only known when the answer ends, so the token bucket admits a request while it has any
//! tokens left and is charged afterwards; it may go below zero, and the key then waits
//! until it has refilled past zero. A refusal is a 429 with `Retry-After` (the seconds
//! until the bucket allows the next request); a model outside `models` is a 403.

use crate::config::{parse_key_hash, ClientKeyConfig, Secret};
use crate::telemetry::metrics::Built;
use parking_lot::Mutex;
use prometheus::IntCounterVec;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;
use subtle::ConstantTimeEq;

/// How a configured key is recognised.
enum Matcher {
    Key(Secret),
    /// SHA-256 of the key (`key_hash`).
    Hash([u8; 32]),
}

/// One configured client key.
pub(crate) struct ClientKeyEntry {
    pub name: Arc<str>,
    matcher: Matcher,
    pub limits: Option<Arc<KeyLimits>>,
}

/// Why a key's request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    #[error("client key {key:?} exceeded its requests_per_minute ({limit}); retry in {after} s")]
    Requests {
        key: Arc<str>,
        limit: u32,
        after: u64,
    },
    #[error("client key {key:?} exceeded its tokens_per_minute ({limit}); retry in {after} s")]
    Tokens {
        key: Arc<str>,
        limit: u64,
        after: u64,
    },
    #[error(
        "client key {key:?} has {limit} requests in flight (max_concurrent); retry in {after} s"
    )]
    Concurrent {
        key: Arc<str>,
        limit: u32,
        after: u64,
    },
    #[error("client key {key:?} may not use model {model:?}")]
    Model { key: Arc<str>, model: String },
}

impl KeyRefusal {
    /// Status, error type and `code` of the answer, and its `Retry-After`.
    pub fn answer(&self) -> (u16, &'static str, &'static str, Option<u64>) {
        match self {
            KeyRefusal::Requests { after, .. }
            | KeyRefusal::Tokens { after, .. }
            | KeyRefusal::Concurrent { after, .. } => {
                (429, "rate_limit_error", "rate_limit_exceeded", Some(*after))
            }
            KeyRefusal::Model { .. } => (403, "permission_error", "model_not_allowed", None),
        }
    }

    /// `outcome` label of `keel_client_key_requests_total`.
    fn label(&self) -> &'static str {
        match self {
            KeyRefusal::Requests { .. } => "requests_limited",
            KeyRefusal::Tokens { .. } => "tokens_limited",
            KeyRefusal::Concurrent { .. } => "concurrency_limited",
            KeyRefusal::Model { .. } => "model_denied",
        }
    }
}

/// A bucket holding a minute's worth of `per_minute`, refilling evenly.
struct Bucket {
    per_minute: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn new(per_minute: f64, now: Instant) -> Self {
        Bucket {
            per_minute,
            state: Mutex::new((per_minute, now)),
        }
    }

    /// The level now (refilled since the last look).
    fn refill(&self, state: &mut (f64, Instant), now: Instant) {
        let secs = now.saturating_duration_since(state.1).as_secs_f64();
        state.0 = (state.0 + secs * self.per_minute / 60.0).min(self.per_minute);
        state.1 = now;
    }

    /// Takes `cost` when at least `need` is left; else the whole seconds until it is.
    fn take(&self, need: f64, cost: f64, now: Instant) -> Result<(), u64> {
        let mut state = self.state.lock();
        self.refill(&mut state, now);
        if state.0 >= need {
            state.0 -= cost;
            return Ok(());
        }
        let missing = need - state.0;
        Err(((missing * 60.0 / self.per_minute).ceil() as u64).max(1))
    }

    fn charge(&self, cost: f64, now: Instant) {
        let mut state = self.state.lock();
        self.refill(&mut state, now);
        state.0 -= cost;
    }
}

/// The limits of one named key and its usage counters.
pub struct KeyLimits {
    name: Arc<str>,
    requests: Option<(u32, Bucket)>,
    tokens: Option<(u64, Bucket)>,
    max_concurrent: Option<u32>,
    in_flight: AtomicU32,
    models: Vec<String>,
}

/// Holds one of a key's `max_concurrent` slots until dropped, and charges the tokens the
/// request used.
pub struct KeyPermit {
    limits: Arc<KeyLimits>,
}

impl Drop for KeyPermit {
    fn drop(&mut self) {
        self.limits.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl KeyPermit {
    /// Charges the request's tokens to the key's `tokens_per_minute`.
    pub fn charge_tokens(&self, tokens: u64) {
        if let Some((_, bucket)) = &self.limits.tokens {
            bucket.charge(tokens as f64, Instant::now());
        }
    }
}

impl KeyLimits {
    /// Same limits (not the same usage): a reload may keep this key's state.
    fn same_settings(&self, other: &KeyLimits) -> bool {
        self.requests.as_ref().map(|r| r.0) == other.requests.as_ref().map(|r| r.0)
            && self.tokens.as_ref().map(|t| t.0) == other.tokens.as_ref().map(|t| t.0)
            && self.max_concurrent == other.max_concurrent
            && self.models == other.models
    }

    /// Admits a request for `model` (`None`: the body names none), or says why not.
    pub fn admit(
        self: &Arc<Self>,
        model: Option<&str>,
        now: Instant,
    ) -> Result<KeyPermit, KeyRefusal> {
        let key = self.name.clone();
        if let Some(model) = model {
            if !self.models.is_empty() && !self.models.iter().any(|m| m == model) {
                return Err(KeyRefusal::Model {
                    key,
                    model: model.to_string(),
                });
            }
        }
        let held = self.in_flight.fetch_add(1, Ordering::AcqRel);
        // From here the permit gives the slot back however this ends.
        let permit = KeyPermit {
            limits: self.clone(),
        };
        if let Some(limit) = self.max_concurrent {
            if held >= limit {
                return Err(KeyRefusal::Concurrent {
                    key,
                    limit,
                    after: 1,
                });
            }
        }
        if let Some((limit, bucket)) = &self.tokens {
            // Admitted while any tokens are left (the cost is known only at the end).
            if let Err(after) = bucket.take(f64::MIN_POSITIVE, 0.0, now) {
                return Err(KeyRefusal::Tokens {
                    key,
                    limit: *limit,
                    after,
                });
            }
        }
        if let Some((limit, bucket)) = &self.requests {
            if let Err(after) = bucket.take(1.0, 1.0, now) {
                return Err(KeyRefusal::Requests {
                    key,
                    limit: *limit,
                    after,
                });
            }
        }
        Ok(permit)
    }
}

/// Why a client key entry cannot be used (validation catches the hash; the file can still
/// vanish between validation and start).
#[derive(Debug, thiserror::Error)]
pub enum KeyEntryError {
    #[error("cannot read key_file {}", path.display())]
    KeyFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key_hash is not 64 hex digits")]
    KeyHash,
}

impl ClientKeyEntry {
    /// The run-time form of every configured key. A key of `previous` (the entries in
    /// force before a reload) with the same name and the same limits keeps its
    /// [`KeyLimits`]: its buckets and requests in flight carry over, so a reload neither
    /// refills a spent budget nor frees a `max_concurrent` slot.
    pub(crate) fn all(
        configs: &[ClientKeyConfig],
        previous: &[ClientKeyEntry],
        now: Instant,
    ) -> Result<Vec<ClientKeyEntry>, crate::proxy::GatewayError> {
        configs
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let mut entry = ClientKeyEntry::of(i, k, now).map_err(|source| {
                    crate::proxy::GatewayError::ClientKey {
                        name: k.name(i),
                        source,
                    }
                })?;
                let kept = previous
                    .iter()
                    .filter(|p| p.name == entry.name)
                    .find_map(|p| p.limits.as_ref())
                    .filter(|old| {
                        entry
                            .limits
                            .as_ref()
                            .is_some_and(|new| old.same_settings(new))
                    });
                if let Some(old) = kept {
                    entry.limits = Some(old.clone());
                }
                Ok(entry)
            })
            .collect()
    }

    /// The run-time form of entry `index` of `[proxy] client_keys`; `Err` when its
    /// `key_file` cannot be read.
    pub(crate) fn of(
        index: usize,
        config: &ClientKeyConfig,
        now: Instant,
    ) -> Result<Self, KeyEntryError> {
        let name: Arc<str> = Arc::from(config.name(index));
        let named = match config {
            ClientKeyConfig::Plain(key) => {
                return Ok(ClientKeyEntry {
                    name,
                    matcher: Matcher::Key(key.clone()),
                    limits: None,
                })
            }
            ClientKeyConfig::Named(k) => k,
        };
        let matcher = if let Some(key) = &named.key {
            Matcher::Key(key.clone())
        } else if let Some(path) = &named.key_file {
            let text = std::fs::read_to_string(path).map_err(|source| KeyEntryError::KeyFile {
                path: path.clone(),
                source,
            })?;
            Matcher::Key(Secret::new(text.trim()))
        } else {
            let hash = named
                .key_hash
                .as_deref()
                .and_then(parse_key_hash)
                .ok_or(KeyEntryError::KeyHash)?;
            Matcher::Hash(hash)
        };
        let limited = named.requests_per_minute.is_some()
            || named.tokens_per_minute.is_some()
            || named.max_concurrent.is_some()
            || !named.models.is_empty();
        let limits = limited.then(|| {
            Arc::new(KeyLimits {
                name: name.clone(),
                requests: named
                    .requests_per_minute
                    .map(|n| (n, Bucket::new(f64::from(n), now))),
                tokens: named
                    .tokens_per_minute
                    .map(|n| (n, Bucket::new(n as f64, now))),
                max_concurrent: named.max_concurrent,
                in_flight: AtomicU32::new(0),
                models: named.models.clone(),
            })
        });
        Ok(ClientKeyEntry {
            name,
            matcher,
            limits,
        })
    }

    /// Whether `presented` (and its SHA-256, computed once per request) is this key, in
    /// constant time.
    pub(crate) fn matches(&self, presented: &[u8], digest: &[u8; 32]) -> bool {
        match &self.matcher {
            Matcher::Key(k) => bool::from(k.expose().as_bytes().ct_eq(presented)),
            Matcher::Hash(h) => bool::from(h.ct_eq(digest)),
        }
    }
}

/// The SHA-256 of a presented key, for `key_hash` entries.
pub(crate) fn digest(presented: &[u8]) -> [u8; 32] {
    Sha256::digest(presented).into()
}

/// `keel_client_key_requests_total{key,outcome}` and `keel_client_key_tokens_total{key,kind}`.
pub struct KeyMetrics {
    pub requests: IntCounterVec,
    pub tokens: IntCounterVec,
}

impl KeyMetrics {
    pub fn register(metrics: &crate::telemetry::Metrics) -> Self {
        use crate::telemetry::catalog::{CLIENT_KEY_REQUESTS_TOTAL, CLIENT_KEY_TOKENS_TOTAL};
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(prometheus::Opts::new(name, help), labels).built();
            metrics.register(c.clone());
            c
        };
        KeyMetrics {
            requests: counter(
                CLIENT_KEY_REQUESTS_TOTAL,
                "Proxy requests by client key name and outcome (admitted or why refused)",
                &["key", "outcome"],
            ),
            tokens: counter(
                CLIENT_KEY_TOKENS_TOTAL,
                "LLM tokens by client key name and kind (input, output)",
                &["key", "kind"],
            ),
        }
    }

    pub fn refused(&self, refusal: &KeyRefusal) {
        let key = match refusal {
            KeyRefusal::Requests { key, .. }
            | KeyRefusal::Tokens { key, .. }
            | KeyRefusal::Concurrent { key, .. }
            | KeyRefusal::Model { key, .. } => key,
        };
        self.requests
            .with_label_values(&[key, refusal.label()])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NamedClientKey;
    use std::time::Duration;

    fn limits(
        rpm: Option<u32>,
        tpm: Option<u64>,
        conc: Option<u32>,
        models: &[&str],
    ) -> Arc<KeyLimits> {
        let cfg = ClientKeyConfig::Named(NamedClientKey {
            name: "team".into(),
            key: Some(Secret::new("k")),
            key_file: None,
            key_hash: None,
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
            max_concurrent: conc,
            models: models.iter().map(|m| m.to_string()).collect(),
        });
        ClientKeyEntry::of(0, &cfg, Instant::now())
            .unwrap()
            .limits
            .unwrap()
    }

    #[test]
    fn requests_per_minute_allows_a_minutes_burst_then_says_when_to_retry() {
        let l = limits(Some(2), None, None, &[]);
        let now = Instant::now();
        let a = l.admit(None, now).unwrap();
        let b = l.admit(None, now).unwrap();
        drop((a, b));
        let Err(KeyRefusal::Requests { after, .. }) = l.admit(None, now) else {
            panic!("third request admitted");
        };
        assert_eq!(after, 30, "one request refills every 30 s at 2 a minute");
        assert!(l.admit(None, now + Duration::from_secs(30)).is_ok());
    }

    #[test]
    fn tokens_are_charged_after_the_answer_and_block_until_refilled() {
        let l = limits(None, Some(60), None, &[]);
        let now = Instant::now();
        let p = l.admit(None, now).unwrap();
        p.charge_tokens(90);
        drop(p);
        assert!(matches!(
            l.admit(None, Instant::now()),
            Err(KeyRefusal::Tokens { .. })
        ));
    }

    #[test]
    fn concurrency_is_held_by_the_permit_and_models_are_allow_listed() {
        let l = limits(None, None, Some(1), &["m1"]);
        let now = Instant::now();
        let p = l.admit(Some("m1"), now).unwrap();
        assert!(matches!(
            l.admit(None, now),
            Err(KeyRefusal::Concurrent { .. })
        ));
        drop(p);
        assert!(l.admit(None, now).is_ok());
        let Err(refused) = l.admit(Some("m2"), now) else {
            panic!("a model outside the list was admitted");
        };
        assert_eq!(refused.answer().0, 403);
    }

    #[test]
    fn a_key_hash_entry_matches_the_key_whose_sha256_it_is() {
        let cfg = ClientKeyConfig::Named(NamedClientKey {
            name: "h".into(),
            key: None,
            key_file: None,
            key_hash: Some(
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            ),
            requests_per_minute: None,
            tokens_per_minute: None,
            max_concurrent: None,
            models: vec![],
        });
        let e = ClientKeyEntry::of(0, &cfg, Instant::now()).unwrap();
        assert!(e.matches(b"test", &digest(b"test")));
        assert!(!e.matches(b"tess", &digest(b"tess")));
    }
}
