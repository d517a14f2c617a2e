//! Per-node circuit breaker: Closed → Open → HalfOpen → Closed, as the reference specifies,
//! plus Envoy's refinements: the open period grows for a node that keeps failing (doubling,
//! capped), and the caller may veto an ejection (the max-ejected share).
//!
//! Statistics live in a ring of time buckets (requests, failures) covering `window`, so old
//! outcomes age out without a timer. Every method takes `now`, which keeps the state machine
//! deterministic under test. The breaker itself is not synchronized; [`super::node::Node`]
//! holds it behind a mutex that is only taken for these few arithmetic steps.

use crate::config::BreakerConfig;
use std::time::{Duration, Instant};

/// Buckets in the sliding window.
const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub const ALL: [BreakerState; 3] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ];

    /// Our label value (`keel_breaker_state{state}`, admin JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The reference proxy's state string, kept in the admin JSON for its users.
    pub fn reference_name(self) -> &'static str {
        match self {
            BreakerState::Closed => "circuit_breaker_closed",
            BreakerState::Open => "circuit_breaker_open",
            BreakerState::HalfOpen => "circuit_breaker_half_open",
        }
    }
}

/// What a request may do on this node right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: a normal request.
    Allowed,
    /// Half-open: one of the limited probe requests.
    Probe,
    Denied,
}

/// A state change the caller turns into an event and metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Opened {
        /// Why: `"failure rate 0.60 over 20 requests"` or `"5 consecutive failures"`.
        reason: String,
        cooldown: Duration,
        /// Ejections in a row, this one included.
        ejections: u32,
    },
    HalfOpened,
    Closed,
    /// The breaker would have opened but the caller's ejection cap forbade it.
    EjectionCapped {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    epoch: u64,
    requests: u32,
    failures: u32,
}

/// Window statistics at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowStats {
    pub requests: u32,
    pub failures: u32,
}

impl WindowStats {
    pub fn failure_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failures as f64 / self.requests as f64
        }
    }
}

#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    origin: Instant,
    bucket_len: Duration,
    ring: [Bucket; BUCKETS],
    consecutive_failures: u32,
    /// Ejections in a row; reset after a full window spent closed.
    streak: u32,
    open_until: Option<Instant>,
    closed_since: Instant,
    probes_admitted: u32,
    probe_successes: u32,
}

impl Breaker {
    pub fn new(config: &BreakerConfig, now: Instant) -> Self {
        let bucket_len = (config.window / BUCKETS as u32).max(Duration::from_millis(1));
        Breaker {
            config: config.clone(),
            state: BreakerState::Closed,
            origin: now,
            bucket_len,
            ring: [Bucket::default(); BUCKETS],
            consecutive_failures: 0,
            streak: 0,
            open_until: None,
            closed_since: now,
            probes_admitted: 0,
            probe_successes: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Puts a reloaded `[proxy.breaker]` in force and keeps the state: an open breaker
    /// stays open until its cooldown ends, the ejection streak and the failure count stay.
    /// A different `window` changes the buckets' length, so the window statistics start
    /// over (the old buckets measured other spans).
    pub fn reconfigure(&mut self, config: &BreakerConfig, now: Instant) {
        if config.window != self.config.window {
            self.bucket_len = (config.window / BUCKETS as u32).max(Duration::from_millis(1));
            self.origin = now;
            self.ring = [Bucket::default(); BUCKETS];
        }
        self.config = config.clone();
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Ejections in a row (0 when the node has been healthy for a window).
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// When an open breaker's cooldown ends.
    pub fn open_until(&self) -> Option<Instant> {
        (self.state == BreakerState::Open)
            .then_some(self.open_until)
            .flatten()
    }

    /// Open and its cooldown has passed: the node may be probed again.
    pub fn cooldown_elapsed(&self, now: Instant) -> bool {
        self.state == BreakerState::Open && self.open_until.is_some_and(|t| now >= t)
    }

    /// Whether a request may go to this node. An open breaker whose cooldown has passed turns
    /// half-open here (the returned transition says so) and admits the first probe.
    pub fn allow(&mut self, now: Instant) -> (Admission, Option<Transition>) {
        match self.state {
            BreakerState::Closed => (Admission::Allowed, None),
            BreakerState::Open => {
                if self.cooldown_elapsed(now) {
                    self.half_open();
                    self.probes_admitted = 1;
                    (Admission::Probe, Some(Transition::HalfOpened))
                } else {
                    (Admission::Denied, None)
                }
            }
            BreakerState::HalfOpen => {
                if self.probes_admitted < self.config.half_open_probes {
                    self.probes_admitted += 1;
                    (Admission::Probe, None)
                } else {
                    (Admission::Denied, None)
                }
            }
        }
    }

    /// Whether [`Self::allow`] would admit a request, without changing anything.
    pub fn would_allow(&self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open => self.cooldown_elapsed(now),
            BreakerState::HalfOpen => self.probes_admitted < self.config.half_open_probes,
        }
    }

    /// Gives back a probe slot whose request ended without an outcome for the node (it
    /// never reached it), so the half-open budget cannot leak.
    pub fn release_probe(&mut self) {
        if self.state == BreakerState::HalfOpen {
            self.probes_admitted = self.probes_admitted.saturating_sub(1);
        }
    }

    /// Half-open now (after a passed prewarm), regardless of the cooldown.
    pub fn begin_half_open(&mut self) -> Option<Transition> {
        (self.state != BreakerState::HalfOpen).then(|| {
            self.half_open();
            Transition::HalfOpened
        })
    }

    fn half_open(&mut self) {
        self.state = BreakerState::HalfOpen;
        self.open_until = None;
        self.probes_admitted = 0;
        self.probe_successes = 0;
    }

    /// Records one outcome. `probe` says the request was admitted as a half-open probe;
    /// `may_eject` is the caller's ejection cap (false: tripping is reported, not done).
    pub fn record(
        &mut self,
        now: Instant,
        success: bool,
        probe: bool,
        may_eject: bool,
    ) -> Option<Transition> {
        self.count(now, success);
        if success {
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        }
        match self.state {
            BreakerState::Closed if !success => {
                let reason = self.trip_reason(now)?;
                if may_eject {
                    Some(self.open(now, reason))
                } else {
                    Some(Transition::EjectionCapped { reason })
                }
            }
            BreakerState::HalfOpen if probe => {
                if success {
                    self.probe_successes += 1;
                    (self.probe_successes >= self.config.half_open_probes).then(|| {
                        self.close(now);
                        Transition::Closed
                    })
                } else {
                    Some(self.open(now, "a half-open probe failed".into()))
                }
            }
            _ => None,
        }
    }

    /// Opens again from open or half-open (e.g. a failed prewarm), with a longer cooldown.
    pub fn reopen(&mut self, now: Instant, reason: String) -> Transition {
        self.open(now, reason)
    }

    fn trip_reason(&self, now: Instant) -> Option<String> {
        if self.consecutive_failures >= self.config.consecutive_failures {
            return Some(format!(
                "{} consecutive failures",
                self.consecutive_failures
            ));
        }
        let w = self.window(now);
        (w.requests >= self.config.min_requests && w.failure_rate() >= self.config.failure_rate)
            .then(|| {
                format!(
                    "failure rate {:.2} over {} requests",
                    w.failure_rate(),
                    w.requests
                )
            })
    }

    fn open(&mut self, now: Instant, reason: String) -> Transition {
        if self.state == BreakerState::Closed
            && now.duration_since(self.closed_since) >= self.config.window
        {
            self.streak = 0;
        }
        let factor = 1u32.checked_shl(self.streak.min(16)).unwrap_or(u32::MAX);
        let cooldown = self
            .config
            .cooldown
            .checked_mul(factor)
            .unwrap_or(self.config.max_cooldown)
            .min(self.config.max_cooldown);
        self.streak = self.streak.saturating_add(1);
        self.state = BreakerState::Open;
        self.open_until = Some(now + cooldown);
        self.probes_admitted = 0;
        self.probe_successes = 0;
        Transition::Opened {
            reason,
            cooldown,
            ejections: self.streak,
        }
    }

    fn close(&mut self, now: Instant) {
        self.state = BreakerState::Closed;
        self.open_until = None;
        self.consecutive_failures = 0;
        self.ring = [Bucket::default(); BUCKETS];
        self.closed_since = now;
    }

    fn epoch(&self, now: Instant) -> u64 {
        (now.duration_since(self.origin).as_nanos() / self.bucket_len.as_nanos().max(1)) as u64
    }

    fn count(&mut self, now: Instant, success: bool) {
        let epoch = self.epoch(now);
        let bucket = &mut self.ring[(epoch % BUCKETS as u64) as usize];
        if bucket.epoch != epoch {
            *bucket = Bucket {
                epoch,
                ..Bucket::default()
            };
        }
        bucket.requests += 1;
        if !success {
            bucket.failures += 1;
        }
    }

    /// Requests and failures in the window ending at `now`.
    pub fn window(&self, now: Instant) -> WindowStats {
        let epoch = self.epoch(now);
        let oldest = epoch.saturating_sub(BUCKETS as u64 - 1);
        self.ring
            .iter()
            .filter(|b| b.requests > 0 && b.epoch >= oldest && b.epoch <= epoch)
            .fold(WindowStats::default(), |acc, b| WindowStats {
                requests: acc.requests + b.requests,
                failures: acc.failures + b.failures,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            window: Duration::from_secs(10),
            min_requests: 4,
            failure_rate: 0.5,
            consecutive_failures: 3,
            cooldown: Duration::from_secs(1),
            max_cooldown: Duration::from_secs(3),
            half_open_probes: 3,
            max_ejected_percent: 50,
        }
    }

    #[test]
    fn reconfigure_keeps_the_state_and_applies_the_new_thresholds() {
        let t0 = Instant::now();
        let mut b = Breaker::new(&config(), t0);
        for _ in 0..3 {
            b.record(t0, false, false, true);
        }
        let until = b.open_until();
        b.reconfigure(
            &BreakerConfig {
                half_open_probes: 1,
                window: Duration::from_secs(20),
                ..config()
            },
            t0,
        );
        assert_eq!(
            (b.state(), b.open_until(), b.streak()),
            (BreakerState::Open, until, 1)
        );
        assert_eq!(b.window(t0).requests, 0, "a new window length starts over");
        // One probe now closes it (half_open_probes = 1).
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(b.allow(t1).0, Admission::Probe);
        assert_eq!(b.record(t1, true, true, true), Some(Transition::Closed));
    }

    #[test]
    fn three_failures_open_then_cooldown_half_open_then_three_successes_close() {
        let t0 = Instant::now();
        let mut b = Breaker::new(&config(), t0);
        assert_eq!(b.allow(t0).0, Admission::Allowed);
        assert_eq!(b.record(t0, false, false, true), None);
        assert_eq!(b.record(t0, false, false, true), None);
        let opened = b.record(t0, false, false, true);
        assert!(
            matches!(opened, Some(Transition::Opened { ejections: 1, cooldown, .. }) if cooldown == Duration::from_secs(1)),
            "{opened:?}"
        );
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.allow(t0 + Duration::from_millis(999)).0,
            Admission::Denied
        );

        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            b.allow(t1),
            (Admission::Probe, Some(Transition::HalfOpened))
        );
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.allow(t1).0, Admission::Probe);
        assert_eq!(b.allow(t1).0, Admission::Probe);
        assert_eq!(b.allow(t1).0, Admission::Denied, "probe budget is 3");
        assert_eq!(b.record(t1, true, true, true), None);
        assert_eq!(b.record(t1, true, true, true), None);
        assert_eq!(b.record(t1, true, true, true), Some(Transition::Closed));
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.window(t1), WindowStats::default(), "window reset");
    }

    #[test]
    fn failed_probe_reopens_with_a_growing_capped_cooldown() {
        let t0 = Instant::now();
        let mut b = Breaker::new(&config(), t0);
        for _ in 0..3 {
            b.record(t0, false, false, true);
        }
        let mut t = t0;
        let mut cooldowns = vec![];
        for _ in 0..3 {
            t = b.open_until().unwrap();
            assert_eq!(b.allow(t).0, Admission::Probe);
            match b.record(t, false, true, true) {
                Some(Transition::Opened { cooldown, .. }) => cooldowns.push(cooldown.as_secs()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(cooldowns, vec![2, 3, 3], "doubles, capped at max_cooldown");
        assert_eq!(b.streak(), 4);
        let _ = t;
    }

    #[test]
    fn failure_rate_trips_only_with_enough_requests() {
        let t0 = Instant::now();
        let mut b = Breaker::new(&config(), t0);
        // alternate so consecutive failures never reach 3
        assert_eq!(b.record(t0, false, false, true), None);
        assert_eq!(b.record(t0, true, false, true), None);
        assert_eq!(b.record(t0, false, false, true), None, "3 requests < min 4");
        let t = b.record(t0, false, false, true);
        assert!(
            matches!(&t, Some(Transition::Opened { reason, .. }) if reason.starts_with("failure rate 0.75")),
            "{t:?}"
        );
    }

    #[test]
    fn old_buckets_age_out_of_the_window() {
        let t0 = Instant::now();
        let mut b = Breaker::new(&config(), t0);
        b.record(t0, false, false, true);
        b.record(t0, false, false, true);
        assert_eq!(b.window(t0).failures, 2);
        assert_eq!(b.window(t0 + Duration::from_secs(11)).requests, 0);
    }

    #[test]
    fn capped_ejection_is_reported_but_not_done() {
        let t0 = Instant::now();
        let mut b = Breaker::new(&config(), t0);
        b.record(t0, false, false, false);
        b.record(t0, false, false, false);
        let t = b.record(t0, false, false, false);
        assert!(
            matches!(t, Some(Transition::EjectionCapped { .. })),
            "{t:?}"
        );
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
