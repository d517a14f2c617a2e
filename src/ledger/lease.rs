//! A lock lease: who holds the lock, with which fencing token, until when.
//!
//! Expiry is decided on the monotonic clock (`Instant`), so a wall-clock jump never frees or
//! extends a lock. The absolute expiry is also kept as wall time (Unix seconds) because that
//! is what survives a restart: on load, the remaining time is recomputed from it, so a lease
//! keeps its absolute expiry across `kill -9` and restart.

use super::error::RequestError;
use super::records::LeaseRecord;
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

/// The lease length a client asked for (`ttl_seconds`): `default` when absent, else a
/// number of seconds in `(0, max]`. NaN, infinities, negatives and anything over `max`
/// are refused, so no client number reaches a `Duration` unchecked.
pub fn requested_ttl(
    seconds: Option<f64>,
    default: Duration,
    max: Duration,
) -> Result<Duration, RequestError> {
    match seconds {
        None => Ok(default),
        Some(s) if s > 0.0 && s <= max.as_secs_f64() => Ok(seconds_up_to(s, max)),
        Some(got) => Err(RequestError::Ttl {
            got,
            max: max.as_secs_f64(),
        }),
    }
}

/// How long a client is willing to queue (`wait_seconds`): 0 when absent, else a number
/// of seconds in `[0, max]`, refused otherwise (as [`requested_ttl`]).
pub fn requested_wait(seconds: Option<f64>, max: Duration) -> Result<Duration, RequestError> {
    match seconds {
        None => Ok(Duration::ZERO),
        Some(w) if (0.0..=max.as_secs_f64()).contains(&w) => Ok(seconds_up_to(w, max)),
        Some(got) => Err(RequestError::Wait {
            got,
            max: max.as_secs_f64(),
        }),
    }
}

/// `s` seconds (already checked to be within `0..=max` as floats) as a duration, never
/// more than `max` (`max.as_secs_f64()` may round up past what a `Duration` holds).
fn seconds_up_to(s: f64, max: Duration) -> Duration {
    Duration::try_from_secs_f64(s).map_or(max, |d| d.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn requested_durations_are_checked_against_their_bounds() {
        let (default, max) = (Duration::from_secs(300), Duration::from_secs(3600));
        assert_eq!(requested_ttl(None, default, max), Ok(default));
        assert_eq!(
            requested_ttl(Some(1.5), default, max),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(requested_ttl(Some(3600.0), default, max), Ok(max));
        for bad in [
            0.0,
            -1.0,
            3600.5,
            1e30,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert!(requested_ttl(Some(bad), default, max).is_err(), "{bad}");
        }
        assert_eq!(requested_wait(None, max), Ok(Duration::ZERO));
        assert_eq!(requested_wait(Some(0.0), max), Ok(Duration::ZERO));
        for bad in [-0.001, 3601.0, 1e300, f64::NAN, f64::INFINITY] {
            assert!(requested_wait(Some(bad), max).is_err(), "{bad}");
        }
        // Even a bound as large as a Duration gets does not overflow.
        let edge = Duration::MAX.as_secs_f64(); // 2^64: rounds up past what a Duration holds
        assert_eq!(
            requested_ttl(Some(edge), default, Duration::MAX),
            Ok(Duration::MAX)
        );
    }

    proptest! {
        /// Any float, with any bound: no panic, and an accepted value is within bounds.
        #[test]
        fn any_requested_seconds_are_classified_without_panic(
            s in proptest::num::f64::ANY,
            max_secs in proptest::num::u64::ANY,
        ) {
            let max = Duration::from_secs(max_secs);
            if let Ok(ttl) = requested_ttl(Some(s), Duration::from_secs(1), max) {
                prop_assert!(ttl <= max);
            }
            if let Ok(wait) = requested_wait(Some(s), max) {
                prop_assert!(wait <= max);
            }
        }
    }

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
