//! A lock lease: who holds the lock, with which fencing token, until when.
//!
//! Expiry is decided on the monotonic clock (`Instant`), so a wall-clock jump never frees or
//! extends a lock. The absolute expiry is also kept as wall time (Unix seconds) because that
//! is what survives a restart: on load, the remaining time is recomputed from it, so a lease
//! keeps its absolute expiry across `kill -9` and restart.

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// A live lease held in memory.
#[derive(Debug, Clone)]
pub struct Lease {
    pub holder: String,
    pub task_id: Option<String>,
    pub fencing_token: u64,
    /// Wall time of the acquisition (Unix seconds), for `lock_age` and history.
    pub acquired_at: f64,
    /// Monotonic acquisition time, for hold durations.
    pub acquired_mono: Instant,
    /// Monotonic expiry: the lease is void from this instant on.
    pub expires_mono: Instant,
    /// The same expiry as Unix seconds, for the API and the store.
    pub expires_at: f64,
}

/// The persisted form of a [`Lease`] (JSON in `ledger_locks_v1`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeaseRecord {
    pub holder: String,
    pub task_id: Option<String>,
    pub fencing_token: u64,
    pub acquired_at: f64,
    pub expires_at: f64,
}

impl Lease {
    /// A lease starting now (`now`/`now_unix` are the same moment on both clocks).
    pub fn new(
        holder: String,
        task_id: Option<String>,
        fencing_token: u64,
        ttl: Duration,
        now: Instant,
        now_unix: f64,
    ) -> Lease {
        Lease {
            holder,
            task_id,
            fencing_token,
            acquired_at: now_unix,
            acquired_mono: now,
            expires_mono: now + ttl,
            expires_at: now_unix + ttl.as_secs_f64(),
        }
    }

    pub fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_mono
    }

    pub fn remaining(&self, now: Instant) -> Duration {
        self.expires_mono.saturating_duration_since(now)
    }

    /// Extends the lease to `ttl` from now.
    pub fn renew(&mut self, ttl: Duration, now: Instant, now_unix: f64) {
        self.expires_mono = now + ttl;
        self.expires_at = now_unix + ttl.as_secs_f64();
    }

    /// Seconds held so far, on the monotonic clock.
    pub fn age(&self, now: Instant) -> f64 {
        now.saturating_duration_since(self.acquired_mono)
            .as_secs_f64()
    }

    pub fn record(&self) -> LeaseRecord {
        LeaseRecord {
            holder: self.holder.clone(),
            task_id: self.task_id.clone(),
            fencing_token: self.fencing_token,
            acquired_at: self.acquired_at,
            expires_at: self.expires_at,
        }
    }

    /// Rebuilds a lease after a restart: both monotonic instants are placed so that the
    /// wall-clock distances from `now_unix` are preserved (a lease whose expiry passed while
    /// keel was down comes back already expired).
    pub fn from_record(r: LeaseRecord, now: Instant, now_unix: f64) -> Lease {
        let remaining = Duration::from_secs_f64((r.expires_at - now_unix).max(0.0));
        let age = Duration::from_secs_f64((now_unix - r.acquired_at).max(0.0));
        Lease {
            acquired_mono: now.checked_sub(age).unwrap_or(now),
            expires_mono: now + remaining,
            holder: r.holder,
            task_id: r.task_id,
            fencing_token: r.fencing_token,
            acquired_at: r.acquired_at,
            expires_at: r.expires_at,
        }
    }
}

/// Remaining TTL in whole seconds as the reference (Redis `TTL`) reported it, rounded up so
/// a lease with time left never reads as 0.
pub fn ttl_whole_seconds(remaining: Duration) -> u64 {
    let ms = remaining.as_millis() as u64;
    ms.div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_monotonic_and_survives_a_round_trip() {
        let now = Instant::now();
        let lease = Lease::new("w".into(), None, 7, Duration::from_secs(10), now, 1000.0);
        assert!(!lease.is_expired(now));
        assert!(lease.is_expired(now + Duration::from_secs(10)));
        assert_eq!(lease.expires_at, 1010.0);
        // Restarted 4 s (wall) later: 6 s left, 4 s old, same absolute expiry.
        let later = now + Duration::from_secs(100);
        let back = Lease::from_record(lease.record(), later, 1004.0);
        assert_eq!(back.expires_at, 1010.0);
        assert_eq!(back.remaining(later).as_secs(), 6);
        assert_eq!(back.age(later).round() as u64, 4);
        // Restarted after the expiry: comes back expired.
        let gone = Lease::from_record(lease.record(), later, 2000.0);
        assert!(gone.is_expired(later));
    }

    #[test]
    fn whole_second_ttl_rounds_up() {
        assert_eq!(ttl_whole_seconds(Duration::from_millis(300)), 1);
        assert_eq!(ttl_whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(ttl_whole_seconds(Duration::ZERO), 0);
    }
}
