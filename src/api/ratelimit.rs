//! Token-bucket rate limits keyed by client IP or access token (reference defaults in
//! `[executor.rate_limit]`). One mutex-guarded map: the check is a few arithmetic operations,
//! far below the cost of the request it guards.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Buckets kept before idle ones are swept.
const SWEEP_AT: usize = 50_000;

impl RateLimiter {
    /// Takes one token from `key`'s bucket (`rate` per second, `burst` capacity).
    pub fn allow(&self, key: &str, rate: f64, burst: u32) -> bool {
        let now = Instant::now();
        let burst = f64::from(burst.max(1));
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > SWEEP_AT {
            // A bucket refilled to capacity carries no state worth keeping.
            map.retain(|_, b| (b.tokens + now.duration_since(b.last).as_secs_f64() * rate) < burst);
        }
        let b = map.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse() {
        let r = RateLimiter::default();
        assert!((0..10).all(|_| r.allow("t", 1.0 / 60.0, 10)));
        assert!(!r.allow("t", 1.0 / 60.0, 10));
        assert!(r.allow("other", 1.0 / 60.0, 10));
    }
}
