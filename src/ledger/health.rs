//! Health rules of the ledger (`health.status` healthy / warning / critical), following the
//! reference's alert guidance:
//!
//! | rule | status |
//! |---|---|
//! | the journal's last commit failed (locks are not being persisted) | critical |
//! | a lock was held more than 80 % of the last hour | warning |
//! | orphaned heartbeats exist (no heartbeat within `heartbeat_timeout`) | warning |
//! | heartbeat failure rate > 10 % (orphaned / all tracked tasks) | warning |
//! | the monitor is stopped, or its last check is over 3 intervals old | warning |
//! | GPU cross-checks: "unlocked use" or "idle lock" | warning |
//!
//! The worst finding decides the status; `issues` lists every finding.

use super::answers::GpuIssue;
use super::state::{Now, State};
use super::stats::ratio;
use super::Inner;
use serde::Serialize;

pub const HELD_FRACTION_WARNING: f64 = 0.8;
pub const HEARTBEAT_FAILURE_WARNING: f64 = 0.1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Healthy,
    Warning,
    Critical,
}

#[derive(Debug, Clone)]
pub struct Findings {
    pub status: HealthStatus,
    pub issues: Vec<String>,
}

impl Default for Findings {
    fn default() -> Self {
        Findings {
            status: HealthStatus::Healthy,
            issues: Vec::new(),
        }
    }
}

impl Findings {
    pub fn add(&mut self, status: HealthStatus, issue: String) {
        self.status = self.status.max(status);
        self.issues.push(issue);
    }

    pub fn merge(&mut self, other: Findings) {
        self.status = self.status.max(other.status);
        self.issues.extend(other.issues);
    }
}

/// Heartbeat counts: (active, orphaned, dead).
pub fn task_counts(st: &State, now: Now, timeout: std::time::Duration) -> (usize, usize, usize) {
    let mut counts = (0, 0, 0);
    for t in st.tasks.values() {
        if t.is_dead() {
            counts.2 += 1;
        } else if t.is_orphaned(now.mono, timeout) {
            counts.1 += 1;
        } else {
            counts.0 += 1;
        }
    }
    counts
}

/// Orphaned tasks over all tracked tasks.
pub fn heartbeat_failure_rate(counts: (usize, usize, usize)) -> f64 {
    let (active, orphaned, dead) = counts;
    ratio(orphaned as u64, (active + orphaned + dead) as u64)
}

impl Inner {
    /// Findings about one lock: store failure, held time, GPU cross-checks on its GPU.
    pub(super) fn lock_findings(
        &self,
        st: &mut State,
        key: &str,
        now: Now,
        gpu: &[GpuIssue],
    ) -> Findings {
        let mut f = Findings::default();
        if let Some(e) = self.journal.failure() {
            f.add(
                HealthStatus::Critical,
                format!("store writes are failing: {e}"),
            );
        }
        if let Some(lock) = st.locks.get_mut(key) {
            let current = lock.lease.as_ref().map(|l| l.acquired_mono);
            let fraction = lock.stats.held_fraction_last_hour(now.mono, current);
            if fraction > HELD_FRACTION_WARNING {
                f.add(
                    HealthStatus::Warning,
                    format!(
                        "lock {key} held {:.0}% of the last hour (over 80%)",
                        fraction * 100.0
                    ),
                );
            }
        }
        for issue in gpu.iter().filter(|i| i.lock_key == key) {
            f.add(HealthStatus::Warning, issue.message.clone());
        }
        f
    }

    pub(super) fn heartbeat_findings(&self, st: &State, now: Now) -> Findings {
        let mut f = Findings::default();
        let counts = task_counts(st, now, self.settings.heartbeat_timeout);
        if counts.1 > 0 {
            f.add(
                HealthStatus::Warning,
                format!(
                    "{} orphaned heartbeat(s): no update within {}",
                    counts.1,
                    humantime::format_duration(self.settings.heartbeat_timeout)
                ),
            );
        }
        let rate = heartbeat_failure_rate(counts);
        if rate > HEARTBEAT_FAILURE_WARNING {
            f.add(
                HealthStatus::Warning,
                format!("heartbeat failure rate too high ({:.0}%)", rate * 100.0),
            );
        }
        f
    }

    pub(super) fn monitor_findings(&self, st: &State, now: Now) -> Findings {
        let mut f = Findings::default();
        if !st.monitor.running {
            f.add(HealthStatus::Warning, "monitor is not running".into());
        } else if let Some(last) = st.monitor.last_check {
            let late = 3.0 * self.settings.check_interval.as_secs_f64();
            if now.unix - last > late {
                f.add(
                    HealthStatus::Warning,
                    format!("monitor's last check was {:.0}s ago", now.unix - last),
                );
            }
        }
        f
    }

    /// Everything: every lock, heartbeats, the monitor, GPU findings.
    pub(super) fn overall(&self, st: &mut State, now: Now) -> Findings {
        let gpu = self.gpu_issues();
        let keys: Vec<String> = st.locks.keys().cloned().collect();
        let mut f = Findings::default();
        let mut store_reported = false;
        for key in &keys {
            let mut lf = self.lock_findings(st, key, now, &gpu);
            if store_reported {
                lf.issues.retain(|i| !i.starts_with("store writes"));
            }
            store_reported |= lf.status == HealthStatus::Critical;
            f.merge(lf);
        }
        for issue in gpu.iter().filter(|i| !st.locks.contains_key(&i.lock_key)) {
            f.add(HealthStatus::Warning, issue.message.clone());
        }
        f.merge(self.heartbeat_findings(st, now));
        f.merge(self.monitor_findings(st, now));
        f
    }
}
