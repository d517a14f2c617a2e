//! A budget of failed authentications per client address.
//!
//! Each address has a token bucket of `per_minute` failures that refills at `per_minute`
//! a minute. A request that presents credentials asks [`AuthFailures::check`] first: with
//! less than one failure left, it is answered 429 with `Retry-After` *whatever the
//! credentials are* — otherwise the difference between a 429 for a wrong guess and a 200
//! for the right one would let a guesser go on at full speed. Only a refused credential
//! spends from the bucket ([`AuthFailures::failed`]), so clients that authenticate
//! correctly are never slowed.
//!
//! Why not `governor`: its keyed limiter has no way to look at a key's state without
//! spending a cell, and the look before the credential check is the point here.
//!
//! Memory is bounded: buckets that have refilled carry no state and are swept once a minute
//! (and at most once a second while the table is full); at [`MAX_TRACKED`] addresses a new
//! one is not tracked until a sweep frees room. IPv6 addresses count by their /64, the
//! block one host usually has.

use super::Listener;
use crate::telemetry::Metrics;
use parking_lot::Mutex;
use prometheus::IntCounter;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Addresses tracked at most (about 40 bytes each).
pub(crate) const MAX_TRACKED: usize = 65_536;
/// How often refilled buckets are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often a full table may be swept (a sweep walks every bucket).
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(1);

struct Bucket {
    /// Failures left (fractional while refilling).
    left: f64,
    last: Instant,
}

struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    last_sweep: Instant,
}

pub struct AuthFailures {
    burst: f64,
    /// Failures regained per second.
    rate: f64,
    table: Mutex<Table>,
    /// Buckets in the table: with none, [`AuthFailures::check`] takes no lock (the proxy
    /// asks on every request that carries a key).
    tracked: AtomicUsize,
    failures: IntCounter,
    throttled: IntCounter,
}

impl AuthFailures {
    pub fn new(listener: Listener, per_minute: u32, metrics: &Metrics) -> Self {
        let label = listener.label();
        let burst = f64::from(per_minute.max(1));
        AuthFailures {
            burst,
            rate: burst / 60.0,
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            tracked: AtomicUsize::new(0),
            failures: metrics.auth_failures.with_label_values(&[label]),
            throttled: metrics.auth_throttled.with_label_values(&[label]),
        }
    }

    /// Before a credential is checked: `Err(retry_after)` when `ip` has no failure left.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.tracked.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut table = self.table.lock();
        self.sweep_if_due(&mut table, now);
        let Some(bucket) = table.buckets.get(&key(ip)) else {
            return Ok(());
        };
        let left = self.refilled(bucket, now);
        if left >= 1.0 {
            return Ok(());
        }
        self.throttled.inc();
        let wait = ((1.0 - left) / self.rate).ceil().max(1.0);
        Err(Duration::from_secs_f64(wait))
    }

    /// After a credential from `ip` was refused: spends one failure.
    pub fn failed(&self, ip: IpAddr) {
        self.failures.inc();
        let now = Instant::now();
        let mut table = self.table.lock();
        self.sweep_if_due(&mut table, now);
        let key = key(ip);
        if !table.buckets.contains_key(&key) && table.buckets.len() >= MAX_TRACKED {
            return;
        }
        let burst = self.burst;
        let bucket = table.buckets.entry(key).or_insert(Bucket {
            left: burst,
            last: now,
        });
        bucket.left = (self.refilled(bucket, now) - 1.0).max(0.0);
        bucket.last = now;
        self.tracked.store(table.buckets.len(), Ordering::Release);
    }

    fn refilled(&self, b: &Bucket, now: Instant) -> f64 {
        (b.left + now.duration_since(b.last).as_secs_f64() * self.rate).min(self.burst)
    }

    /// Drops buckets that have refilled: once a minute, or once a second while full.
    fn sweep_if_due(&self, table: &mut Table, now: Instant) {
        let since = now.duration_since(table.last_sweep);
        let full = table.buckets.len() >= MAX_TRACKED;
        if since < SWEEP_EVERY && !(full && since >= FULL_SWEEP_EVERY) {
            return;
        }
        table.last_sweep = now;
        table
            .buckets
            .retain(|_, b| self.refilled(b, now) < self.burst);
        self.tracked.store(table.buckets.len(), Ordering::Release);
    }
}

/// The address a budget belongs to: IPv4 as is (also when mapped into IPv6), IPv6 by /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_spend_the_budget_then_every_attempt_waits() {
        let metrics = Metrics::new();
        let f = AuthFailures::new(Listener::Control, 3, &metrics);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(f.check(a).is_ok());
            f.failed(a);
        }
        // No failure left: refused before any credential is looked at.
        let wait = f.check(a).unwrap_err();
        assert!(
            wait >= Duration::from_secs(1) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(f.check(b).is_ok(), "another address is not affected");
        assert_eq!(
            metrics.auth_throttled.with_label_values(&["control"]).get(),
            1
        );
        assert_eq!(
            metrics.auth_failures.with_label_values(&["control"]).get(),
            3
        );
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        let x: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(key(x), key(y));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_table_is_bounded() {
        let metrics = Metrics::new();
        let f = AuthFailures::new(Listener::Proxy, 5, &metrics);
        for i in 0..(MAX_TRACKED as u32 + 10) {
            f.failed(IpAddr::V4(i.into()));
        }
        assert_eq!(f.table.lock().buckets.len(), MAX_TRACKED);
    }
}
