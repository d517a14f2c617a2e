//! The executor API's rate limits (`[executor.rate_limit]`, the reference's defaults): per
//! client IP before authentication, per client IP after it, and per access token.
//!
//! One keyed `governor` limiter (GCRA) per rate class, so every key is judged by its own
//! class's quota, and its state is one timestamp per key in a sharded map. Keys whose
//! state is back to "never seen" are dropped by a sweeper task every [`SWEEP_EVERY`], off
//! the request path; memory is bounded by the keys active within one refill of a burst.

use crate::config::RateLimitConfig;
use arc_swap::ArcSwap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often idle keys are dropped.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The executor API's limits: whether they apply, and the three limiters. A reload with a
/// changed `[executor.rate_limit]` swaps them ([`RateLimits::reconfigure`]).
pub struct RateLimits {
    enabled: AtomicBool,
    limiters: ArcSwap<Limiters>,
}

/// The three limiters of the executor API.
struct Limiters {
    ip_unauthenticated: DefaultKeyedRateLimiter<IpAddr>,
    ip_authenticated: DefaultKeyedRateLimiter<IpAddr>,
    token: DefaultKeyedRateLimiter<String>,
}

impl Limiters {
    fn new(cfg: &RateLimitConfig) -> Self {
        Limiters {
            ip_unauthenticated: RateLimiter::keyed(quota(
                cfg.ip_unauthenticated_qps,
                cfg.ip_unauthenticated_burst,
            )),
            ip_authenticated: RateLimiter::keyed(quota(
                cfg.ip_authenticated_qps,
                cfg.ip_authenticated_burst,
            )),
            token: RateLimiter::keyed(quota(cfg.token_per_minute / 60.0, cfg.token_burst)),
        }
    }
}

/// `per_second` sustained with bursts of `burst`. Both are validated positive by the config;
/// the period is clamped to what a limiter can represent (1 ns .. 100 years).
fn quota(per_second: f64, burst: u32) -> Quota {
    const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let period = Duration::try_from_secs_f64(1.0 / per_second)
        .unwrap_or(LONGEST)
        .clamp(Duration::from_nanos(1), LONGEST);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl RateLimits {
    pub fn new(cfg: &RateLimitConfig) -> Self {
        RateLimits {
            enabled: AtomicBool::new(cfg.enabled),
            limiters: ArcSwap::from_pointee(Limiters::new(cfg)),
        }
    }

    /// Whether the limits apply (`[executor.rate_limit] enabled`).
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Puts a reloaded `[executor.rate_limit]` in force. New quotas need new limiters, so
    /// every key starts with a full burst again.
    pub fn reconfigure(&self, cfg: &RateLimitConfig) {
        self.limiters.store(Arc::new(Limiters::new(cfg)));
        self.enabled.store(cfg.enabled, Ordering::Relaxed);
    }

    /// The limits plus their sweeper task (needs a Tokio runtime); the task ends once the
    /// limits are dropped.
    pub fn start(cfg: &RateLimitConfig) -> Arc<Self> {
        let limits = Arc::new(Self::new(cfg));
        let weak: Weak<Self> = Arc::downgrade(&limits);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(limits) = weak.upgrade() else {
                    return;
                };
                limits.sweep();
            }
        });
        limits
    }

    /// A request without a valid access token, from `ip`.
    pub fn allow_unauthenticated(&self, ip: IpAddr) -> bool {
        self.limiters
            .load()
            .ip_unauthenticated
            .check_key(&ip)
            .is_ok()
    }

    /// A request with the access token whose key is `token`, from `ip`: both limits must
    /// allow it (the token's is not charged when the address's refuses).
    pub fn allow_authenticated(&self, ip: IpAddr, token: &str) -> bool {
        let l = self.limiters.load();
        l.ip_authenticated.check_key(&ip).is_ok() && l.token.check_key(&token.to_string()).is_ok()
    }

    /// Drops every key whose bucket is full again (it carries no state worth keeping).
    pub fn sweep(&self) {
        let l = self.limiters.load();
        sweep(&l.ip_unauthenticated);
        sweep(&l.ip_authenticated);
        sweep(&l.token);
    }
}

fn sweep<K: Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>) {
    limiter.retain_recent();
    limiter.shrink_to_fit();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RateLimitConfig {
        RateLimitConfig {
            ip_unauthenticated_qps: 1.0 / 60.0,
            ip_unauthenticated_burst: 10,
            token_per_minute: 1.0,
            token_burst: 10,
            ..RateLimitConfig::default()
        }
    }

    #[test]
    fn reconfigure_puts_new_quotas_and_the_switch_in_force() {
        let r = RateLimits::new(&config());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..10).all(|_| r.allow_unauthenticated(a)));
        assert!(!r.allow_unauthenticated(a));
        r.reconfigure(&RateLimitConfig {
            ip_unauthenticated_burst: 20,
            enabled: false,
            ..config()
        });
        assert!(!r.enabled());
        assert!((0..20).all(|_| r.allow_unauthenticated(a)));
        assert!(!r.allow_unauthenticated(a));
    }

    #[test]
    fn burst_then_refuse() {
        let r = RateLimits::new(&config());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..10).all(|_| r.allow_unauthenticated(a)));
        assert!(!r.allow_unauthenticated(a));
        assert!(r.allow_unauthenticated(b));
        // Each token has its own bucket; the address limit is a different class.
        assert!((0..10).all(|_| r.allow_authenticated(a, "t")));
        assert!(!r.allow_authenticated(a, "t"));
        assert!(r.allow_authenticated(a, "other"));
    }

    #[test]
    fn sweeping_keeps_spent_buckets_and_drops_full_ones() {
        let mut cfg = config();
        // A class that refills at once: its keys are idle right after their request.
        cfg.ip_authenticated_qps = 1e9;
        let r = RateLimits::new(&cfg);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            r.allow_unauthenticated(a);
        }
        for i in 0..100u8 {
            r.allow_authenticated(IpAddr::from([198, 51, 100, i]), "t");
        }
        std::thread::sleep(Duration::from_millis(5));
        r.sweep();
        // Judged by its own (slow) quota, the spent address is kept; the token's bucket
        // (1/min) is kept too; the fast class's 100 addresses are gone.
        assert!(!r.allow_unauthenticated(a));
        let l = r.limiters.load();
        let keys = l.ip_unauthenticated.len() + l.ip_authenticated.len() + l.token.len();
        assert_eq!(keys, 2);
    }
}
