//! Per-lock statistics (the reference's `statistics` object plus keel's additions) and the
//! one-hour window of held time behind the "held > 80 % of the last hour" health rule.
//!
//! Every acquire attempt ends as exactly one of success, timeout (waited `wait_seconds` in
//! vain) or failure (refused at once, or the wait ended by shutdown), so
//! `total_attempts = success_count + timeout_count + failure_count` as in the reference.

use super::records::LockCounters;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Attempts remembered for `recent_success_rate`.
const RECENT_ATTEMPTS: usize = 100;
/// The window of the held-time rule.
pub const HOLD_WINDOW: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Success,
    Timeout,
    Failure,
}

impl AttemptResult {
    /// The `result` label of `keel_gpu_lock_acquisitions_total`.
    pub fn label(self) -> &'static str {
        match self {
            AttemptResult::Success => "acquired",
            AttemptResult::Timeout => "timeout",
            AttemptResult::Failure => "conflict",
        }
    }
}

impl LockCounters {
    /// Mean seconds a completed hold lasted (`average_execution_time`).
    pub fn average_execution_time(&self) -> f64 {
        if self.completed_holds == 0 {
            0.0
        } else {
            self.total_hold_seconds / self.completed_holds as f64
        }
    }

    pub fn success_rate(&self) -> f64 {
        ratio(self.success_count, self.total_attempts)
    }

    pub fn timeout_rate(&self) -> f64 {
        ratio(self.timeout_count, self.total_attempts)
    }
}

pub fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Counters plus in-memory windows (recent attempts, held intervals).
#[derive(Debug, Default)]
pub struct LockStats {
    pub counters: LockCounters,
    recent: VecDeque<bool>,
    /// Closed hold intervals that end within the last hour.
    holds: VecDeque<(Instant, Instant)>,
}

impl LockStats {
    pub fn restore(counters: LockCounters) -> Self {
        LockStats {
            counters,
            ..Default::default()
        }
    }

    pub fn record_attempt(&mut self, result: AttemptResult) {
        let c = &mut self.counters;
        c.total_attempts += 1;
        match result {
            AttemptResult::Success => c.success_count += 1,
            AttemptResult::Timeout => c.timeout_count += 1,
            AttemptResult::Failure => c.failure_count += 1,
        }
        if self.recent.len() == RECENT_ATTEMPTS {
            self.recent.pop_back();
        }
        self.recent
            .push_front(matches!(result, AttemptResult::Success));
    }

    /// A hold from `start` ended at `end`.
    pub fn record_hold(&mut self, start: Instant, end: Instant) {
        self.counters.completed_holds += 1;
        self.counters.total_hold_seconds += end.saturating_duration_since(start).as_secs_f64();
        self.holds.push_back((start, end));
        while self.holds.len() > 1024 {
            self.holds.pop_front();
        }
    }

    /// Success rate of the last 100 attempts (1.0 when there were none).
    pub fn recent_success_rate(&self) -> f64 {
        if self.recent.is_empty() {
            return 1.0;
        }
        self.recent.iter().filter(|ok| **ok).count() as f64 / self.recent.len() as f64
    }

    /// Share of the last hour (0..=1) the lock was held, counting a current hold that
    /// started at `current`.
    pub fn held_fraction_last_hour(&mut self, now: Instant, current: Option<Instant>) -> f64 {
        let Some(window_start) = now.checked_sub(HOLD_WINDOW) else {
            // Less than an hour of monotonic time exists: everything is inside the window.
            return self.held_seconds_since(None, now, current) / HOLD_WINDOW.as_secs_f64();
        };
        while self
            .holds
            .front()
            .is_some_and(|(_, end)| *end <= window_start)
        {
            self.holds.pop_front();
        }
        (self.held_seconds_since(Some(window_start), now, current) / HOLD_WINDOW.as_secs_f64())
            .min(1.0)
    }

    fn held_seconds_since(
        &self,
        from: Option<Instant>,
        now: Instant,
        current: Option<Instant>,
    ) -> f64 {
        let clip = |start: Instant, end: Instant| {
            let start = from.map_or(start, |f| start.max(f));
            end.saturating_duration_since(start).as_secs_f64()
        };
        let closed: f64 = self.holds.iter().map(|(s, e)| clip(*s, *e)).sum();
        closed + current.map_or(0.0, |s| clip(s, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_partition_and_rates() {
        let mut s = LockStats::default();
        for r in [
            AttemptResult::Success,
            AttemptResult::Success,
            AttemptResult::Timeout,
            AttemptResult::Failure,
        ] {
            s.record_attempt(r);
        }
        let c = &s.counters;
        assert_eq!(c.total_attempts, 4);
        assert_eq!(c.success_count + c.timeout_count + c.failure_count, 4);
        assert_eq!(c.success_rate(), 0.5);
        assert_eq!(c.timeout_rate(), 0.25);
        assert_eq!(s.recent_success_rate(), 0.5);
    }

    #[test]
    fn held_fraction_counts_closed_and_current_holds() {
        let mut s = LockStats::default();
        let t0 = Instant::now();
        let now = t0 + Duration::from_secs(7200);
        // 30 min closed hold inside the window, 20 min current hold.
        s.record_hold(
            now - Duration::from_secs(3000),
            now - Duration::from_secs(1200),
        );
        let f = s.held_fraction_last_hour(now, Some(now - Duration::from_secs(1200)));
        assert!((f - 0.8333).abs() < 0.01, "{f}");
        assert_eq!(s.counters.completed_holds, 1);
        assert_eq!(s.counters.average_execution_time(), 1800.0);
    }
}
