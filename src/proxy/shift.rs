//! Gradual shift: a node that joins or recovers takes 10 % → 50 % → 100 % of its weight
//! (`[proxy.shift] stages`), holding each stage for `stage_hold`. A stage passes its health
//! gate when its failure rate stays below `rollback_on_failure_rate`; crossing the rate at
//! any moment (with `min_requests` seen in the stage) rolls the node back to 0 %, and it
//! re-enters through prewarm after another hold.

use crate::config::ShiftConfig;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShiftPhase {
    /// Full weight: no shift under way.
    Full,
    /// At `stages[index]` since `since`, with the stage's own statistics.
    Stage {
        index: usize,
        since: Instant,
        requests: u32,
        failures: u32,
    },
    /// Taken out after a failed gate; re-enters after `stage_hold` through prewarm.
    RolledBack { since: Instant },
}

/// A change the pool turns into an event.
#[derive(Debug, Clone, PartialEq)]
pub enum ShiftTransition {
    Started {
        percent: u32,
    },
    Advanced {
        percent: u32,
    },
    Completed,
    RolledBack {
        percent: u32,
        failure_rate: f64,
        requests: u32,
    },
}

#[derive(Debug, Clone)]
pub struct Shift {
    phase: ShiftPhase,
}

impl Default for Shift {
    fn default() -> Self {
        Shift {
            phase: ShiftPhase::Full,
        }
    }
}

impl Shift {
    pub fn phase(&self) -> ShiftPhase {
        self.phase
    }

    /// Percent of the node's weight it gets now.
    pub fn percent(&self, config: &ShiftConfig) -> u32 {
        match self.phase {
            ShiftPhase::Full => 100,
            ShiftPhase::Stage { index, .. } => config.stages.get(index).copied().unwrap_or(100),
            ShiftPhase::RolledBack { .. } => 0,
        }
    }

    /// A node becomes active: start at the first stage (or at full weight when disabled).
    pub fn begin(&mut self, config: &ShiftConfig, now: Instant) -> Option<ShiftTransition> {
        if !config.enabled || config.stages.first().is_none_or(|p| *p >= 100) {
            self.phase = ShiftPhase::Full;
            return None;
        }
        self.phase = ShiftPhase::Stage {
            index: 0,
            since: now,
            requests: 0,
            failures: 0,
        };
        Some(ShiftTransition::Started {
            percent: self.percent(config),
        })
    }

    /// Counts one outcome in the current stage; rolls back when the gate is crossed.
    pub fn record(
        &mut self,
        config: &ShiftConfig,
        success: bool,
        now: Instant,
    ) -> Option<ShiftTransition> {
        let ShiftPhase::Stage {
            requests, failures, ..
        } = &mut self.phase
        else {
            return None;
        };
        *requests += 1;
        if !success {
            *failures += 1;
        }
        let (requests, failures) = (*requests, *failures);
        let rate = failures as f64 / requests as f64;
        if requests >= config.min_requests && rate >= config.rollback_on_failure_rate {
            let percent = self.percent(config);
            self.phase = ShiftPhase::RolledBack { since: now };
            return Some(ShiftTransition::RolledBack {
                percent,
                failure_rate: rate,
                requests,
            });
        }
        None
    }

    /// Advances a stage whose hold has passed (the gate held, or `record` would have rolled
    /// it back already).
    pub fn tick(&mut self, config: &ShiftConfig, now: Instant) -> Option<ShiftTransition> {
        let ShiftPhase::Stage { index, since, .. } = self.phase else {
            return None;
        };
        if now.duration_since(since) < config.stage_hold {
            return None;
        }
        let next = index + 1;
        if next + 1 >= config.stages.len() {
            self.phase = ShiftPhase::Full;
            Some(ShiftTransition::Completed)
        } else {
            self.phase = ShiftPhase::Stage {
                index: next,
                since: now,
                requests: 0,
                failures: 0,
            };
            Some(ShiftTransition::Advanced {
                percent: self.percent(config),
            })
        }
    }

    /// Rolled back and held out long enough to try again.
    pub fn may_reenter(&self, config: &ShiftConfig, now: Instant) -> bool {
        matches!(self.phase, ShiftPhase::RolledBack { since } if now.duration_since(since) >= config.stage_hold)
    }

    pub fn is_rolled_back(&self) -> bool {
        matches!(self.phase, ShiftPhase::RolledBack { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config() -> ShiftConfig {
        ShiftConfig {
            enabled: true,
            stages: vec![10, 50, 100],
            stage_hold: Duration::from_secs(30),
            rollback_on_failure_rate: 0.5,
            min_requests: 4,
        }
    }

    #[test]
    fn stages_advance_after_each_hold_and_complete_at_full_weight() {
        let c = config();
        let t0 = Instant::now();
        let mut s = Shift::default();
        assert_eq!(
            s.begin(&c, t0),
            Some(ShiftTransition::Started { percent: 10 })
        );
        assert_eq!(s.percent(&c), 10);
        assert_eq!(s.tick(&c, t0 + Duration::from_secs(29)), None);
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(
            s.tick(&c, t1),
            Some(ShiftTransition::Advanced { percent: 50 })
        );
        assert_eq!(s.percent(&c), 50);
        assert_eq!(
            s.tick(&c, t1 + Duration::from_secs(30)),
            Some(ShiftTransition::Completed)
        );
        assert_eq!(s.percent(&c), 100);
        assert_eq!(s.phase(), ShiftPhase::Full);
    }

    #[test]
    fn a_failing_stage_rolls_back_and_may_reenter_after_the_hold() {
        let c = config();
        let t0 = Instant::now();
        let mut s = Shift::default();
        s.begin(&c, t0);
        assert_eq!(s.record(&c, false, t0), None);
        assert_eq!(s.record(&c, true, t0), None);
        assert_eq!(s.record(&c, false, t0), None, "below min_requests");
        let t = s.record(&c, true, t0);
        assert_eq!(
            t,
            Some(ShiftTransition::RolledBack {
                percent: 10,
                failure_rate: 0.5,
                requests: 4
            })
        );
        assert_eq!(s.percent(&c), 0);
        assert!(!s.may_reenter(&c, t0 + Duration::from_secs(1)));
        assert!(s.may_reenter(&c, t0 + Duration::from_secs(30)));
    }

    #[test]
    fn disabled_shift_goes_straight_to_full_weight() {
        let c = ShiftConfig {
            enabled: false,
            ..config()
        };
        let mut s = Shift::default();
        assert_eq!(s.begin(&c, Instant::now()), None);
        assert_eq!(s.percent(&c), 100);
    }
}
