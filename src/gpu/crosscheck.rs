//! The two cross-checks between GPUs and their locks that no other tool makes:
//!
//! - **unlocked use**: a compute process runs on a GPU whose lock (`gpu_lock:{index}`) is
//!   free — someone is using the GPU without the ledger;
//! - **idle lock**: a GPU's lock has been held for at least `idle_lock_after` while the
//!   GPU sat at 0 % utilization the whole time — a holder that forgot to release.

use super::source::GpuSample;
use crate::ledger::key::gpu_lock_key;
use crate::ledger::{GpuIssue, LockHolding};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const UNLOCKED_USE: &str = "unlocked_use";
pub const IDLE_LOCK: &str = "idle_lock";

/// Tracks, per GPU, since when utilization has been 0 % without interruption.
#[derive(Debug, Default)]
pub struct IdleTracker {
    zero_since: HashMap<u32, Instant>,
}

impl IdleTracker {
    pub fn observe(&mut self, samples: &[GpuSample], now: Instant) {
        for s in samples {
            if s.utilization_percent == 0 {
                self.zero_since.entry(s.index).or_insert(now);
            } else {
                self.zero_since.remove(&s.index);
            }
        }
    }

    /// How long GPU `index` has been idle (zero when it is busy).
    pub fn idle_for(&self, index: u32, now: Instant) -> Duration {
        self.zero_since.get(&index).map_or(Duration::ZERO, |since| {
            now.saturating_duration_since(*since)
        })
    }
}

/// The findings for one sample.
pub fn cross_check(
    samples: &[GpuSample],
    locks: &[LockHolding],
    idle: &IdleTracker,
    idle_lock_after: Duration,
    now: Instant,
) -> Vec<GpuIssue> {
    let mut issues = Vec::new();
    for s in samples {
        let key = gpu_lock_key(s.index);
        let lock = locks.iter().find(|l| l.lock_key == key);
        let holder = lock.and_then(|l| l.holder.as_deref());
        if holder.is_none() && !s.compute_processes.is_empty() {
            let pids: Vec<String> = s
                .compute_processes
                .iter()
                .map(|p| p.pid.to_string())
                .collect();
            issues.push(GpuIssue {
                gpu: s.index,
                lock_key: key.clone(),
                kind: UNLOCKED_USE,
                message: format!(
                    "unlocked use: GPU {} runs compute process(es) {} while {key} is free",
                    s.index,
                    pids.join(", ")
                ),
            });
        }
        if let (Some(holder), Some(held_for)) = (holder, lock.and_then(|l| l.held_for)) {
            let idle_for = idle.idle_for(s.index, now).min(held_for);
            if s.utilization_percent == 0 && idle_for >= idle_lock_after {
                issues.push(GpuIssue {
                    gpu: s.index,
                    lock_key: key.clone(),
                    kind: IDLE_LOCK,
                    message: format!(
                        "idle lock: {key} held by {holder} for {}s while GPU {} is at 0% utilization",
                        held_for.as_secs(),
                        s.index
                    ),
                });
            }
        }
    }
    issues
}
