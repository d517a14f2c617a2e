//! The reference monitoring API's answers (`spec/gpu-ledger-api.md`), built from the
//! ledger state into the documents of [`super::report_shapes`].

use super::health::{heartbeat_failure_rate, task_counts, Findings};
use super::records::{HistoryEntry, LockCounters};
use super::report_shapes::*;
use super::state::{Now, State};
use super::stats::ratio;
use super::timeout::CONFIGURED_ACTIONS;
use super::{key, Ledger, LedgerError};
use std::collections::BTreeMap;
use std::time::Duration;

/// History entries in a lock status.
const RECENT_HISTORY: usize = 10;
/// Action-history entries in `/timeout/status`.
const ACTION_HISTORY: usize = 100;

/// `"30s"`, `"500ms"`.
fn frequency(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn percent(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

fn statistics(c: &LockCounters) -> LockStatistics {
    LockStatistics {
        total_attempts: c.total_attempts,
        success_count: c.success_count,
        timeout_count: c.timeout_count,
        failure_count: c.failure_count,
        average_execution_time: c.average_execution_time(),
        expired_count: c.expired_count,
        force_released_count: c.force_released_count,
    }
}

fn sum_counters<'a>(all: impl Iterator<Item = &'a LockCounters>) -> LockCounters {
    let mut t = LockCounters::default();
    for c in all {
        t.total_attempts += c.total_attempts;
        t.success_count += c.success_count;
        t.timeout_count += c.timeout_count;
        t.failure_count += c.failure_count;
        t.expired_count += c.expired_count;
        t.force_released_count += c.force_released_count;
        t.completed_holds += c.completed_holds;
        t.total_hold_seconds += c.total_hold_seconds;
    }
    t
}

fn average_interval(st: &State) -> f64 {
    let (sum, n) = st
        .tasks
        .values()
        .filter(|t| !t.is_dead())
        .fold((0.0, 0u64), |(s, n), t| {
            (s + t.record.interval_sum, n + t.record.updates)
        });
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

impl Ledger {
    fn lock_key_arg(key: &str) -> Result<(), LedgerError> {
        Ok(key::check_lock_key(key)?)
    }

    /// `GET /gpu-lock/status`: a well-formed unknown key reads as a free lock.
    pub fn lock_status(&self, lock_key: &str) -> Result<LockStatus, LedgerError> {
        Self::lock_key_arg(lock_key)?;
        let gpu = self.inner.gpu_issues();
        Ok(self.with_state(|st, fx, now| {
            st.settle(lock_key, now, fx);
            let view = st.view(lock_key, now);
            let findings = self.inner.lock_findings(st, lock_key, now, &gpu);
            let counters = st
                .locks
                .get(lock_key)
                .map(|l| l.stats.counters.clone())
                .unwrap_or_default();
            let recent: Vec<HistoryEntry> = st
                .history
                .iter()
                .filter(|e| e.lock_key == lock_key)
                .take(RECENT_HISTORY)
                .cloned()
                .collect();
            LockStatus {
                lock_key: lock_key.to_string(),
                is_locked: view.is_locked,
                lock_holder: view.lock_holder,
                ttl_seconds: view.ttl_seconds,
                timestamp: now.unix,
                health: LockHealthBlock {
                    status: findings.status,
                    last_check: now.unix,
                    issues: findings.issues,
                },
                statistics: statistics(&counters),
                recent_history: recent,
                lock_type: "GPU_LOCK",
                lock_age: view.lock_age,
                fencing_token: view.fencing_token,
                last_fencing_token: view.last_fencing_token,
                expires_at: view.expires_at,
                task_id: view.task_id,
                waiters: view.waiters,
                known: view.known,
            }
        }))
    }

    /// `GET /gpu-lock/health`.
    pub fn lock_health(&self, lock_key: &str) -> Result<LockHealth, LedgerError> {
        Self::lock_key_arg(lock_key)?;
        let gpu = self.inner.gpu_issues();
        Ok(self.with_state(|st, fx, now| {
            st.settle(lock_key, now, fx);
            let view = st.view(lock_key, now);
            let findings = self.inner.lock_findings(st, lock_key, now, &gpu);
            let (counters, recent) = st.locks.get(lock_key).map_or_else(
                || (LockCounters::default(), 1.0),
                |l| (l.stats.counters.clone(), l.stats.recent_success_rate()),
            );
            LockHealth {
                overall_status: findings.status,
                issues_count: findings.issues.len(),
                total_attempts: counters.total_attempts,
                success_rate: counters.success_rate(),
                timeout_rate: counters.timeout_rate(),
                average_execution_time: counters.average_execution_time(),
                recent_success_rate: recent,
                lock_holder: view.lock_holder,
                lock_age: view.lock_age,
                timestamp: now.unix,
                lock_key: lock_key.to_string(),
                issues: findings.issues,
            }
        }))
    }

    /// `GET /monitor/status`.
    pub fn monitor_status(&self) -> MonitorStatus {
        let s = &self.inner.settings;
        self.with_state(|st, _, now| {
            let m = &st.monitor;
            let tasks = st.tasks.values().filter(|t| !t.is_dead()).count();
            MonitorStatus {
                monitor_status: MonitorState {
                    running: m.running,
                    start_time: m.start_time,
                    last_check: m.last_check,
                    checks_performed: m.checks_performed,
                },
                monitor_stats: MonitorCounts {
                    gpu_locks_monitored: st.locks.len(),
                    tasks_monitored: tasks,
                    timeouts_detected: m.timeouts_detected,
                    tasks_recovered: m.tasks_recovered,
                },
                config: MonitorSettings {
                    check_interval: Seconds(s.check_interval),
                    gpu_timeout: Seconds(s.lock_timeout),
                    heartbeat_timeout: Seconds(s.heartbeat_timeout),
                    enabled: s.monitor_enabled,
                    auto_recovery: s.auto_recovery,
                },
                is_running: m.running,
                uptime: m.uptime(),
                timestamp: now.unix,
            }
        })
    }

    fn monitor_component(&self, st: &State, now: Now) -> (Findings, MonitorMetrics) {
        let s = &self.inner.settings;
        let f = self.inner.monitor_findings(st, now);
        let (active, orphaned, _) = task_counts(st, now, s.heartbeat_timeout);
        let task_coverage = if active + orphaned == 0 {
            1.0
        } else {
            ratio(active as u64, (active + orphaned) as u64)
        };
        let metrics = MonitorMetrics {
            check_frequency: frequency(s.check_interval),
            gpu_lock_coverage: if st.monitor.running { "100%" } else { "0%" },
            task_monitoring_coverage: percent(task_coverage),
            avg_response_time: format!("{:.1}ms", st.monitor.average_check_ms()),
        };
        (f, metrics)
    }

    /// `GET /monitor/health`.
    pub fn monitor_health(&self) -> MonitorHealth {
        self.with_state(|st, _, now| {
            let (f, metrics) = self.monitor_component(st, now);
            MonitorHealth {
                status: f.status,
                issues: f.issues,
                metrics,
                timestamp: now.unix,
            }
        })
    }

    /// `GET /heartbeat/task/{id}`.
    pub fn heartbeat_task(&self, task_id: &str) -> HeartbeatTask {
        let timeout = self.inner.settings.heartbeat_timeout;
        self.with_state(|st, _, now| match st.tasks.get(task_id) {
            Some(t) if !t.is_dead() => {
                let r = &t.record;
                HeartbeatTask {
                    task_id: task_id.to_string(),
                    heartbeat_exists: true,
                    is_registered: true,
                    status: t.status_text(now.mono, timeout),
                    heartbeat_data: Some(HeartbeatData {
                        task_name: r.task_name.clone(),
                        start_time: r.start_time,
                        last_update: r.last_update,
                        gpu_lock: r.gpu_lock.clone(),
                        progress: r.progress,
                    }),
                    last_update: Some(r.last_update),
                    is_running: !t.is_orphaned(now.mono, timeout),
                    seconds_since_update: Some(t.age(now.mono).as_secs_f64()),
                }
            }
            found => HeartbeatTask {
                task_id: task_id.to_string(),
                heartbeat_exists: false,
                is_registered: false,
                status: if found.is_some() {
                    "completed"
                } else {
                    "not_found"
                }
                .to_string(),
                heartbeat_data: None,
                last_update: None,
                is_running: false,
                seconds_since_update: None,
            },
        })
    }

    /// `GET /heartbeat/all`.
    pub fn heartbeats_all(&self) -> HeartbeatsAll {
        let timeout = self.inner.settings.heartbeat_timeout;
        self.with_state(|st, _, now| {
            let mut active = BTreeMap::new();
            let mut dead = Vec::new();
            let mut orphaned = Vec::new();
            for (id, t) in &st.tasks {
                let r = &t.record;
                if t.is_dead() {
                    dead.push(DeadTask {
                        task_id: id.clone(),
                        task_name: r.task_name.clone(),
                        last_update: r.last_update,
                        status: "completed",
                    });
                } else if t.is_orphaned(now.mono, timeout) {
                    orphaned.push(OrphanedTask {
                        task_id: id.clone(),
                        task_name: r.task_name.clone(),
                        last_update: r.last_update,
                        timeout: true,
                    });
                } else {
                    active.insert(
                        id.clone(),
                        ActiveTask {
                            task_name: r.task_name.clone(),
                            last_update: r.last_update,
                            status: t.status_text(now.mono, timeout),
                            progress: r.progress,
                            gpu_lock: r.gpu_lock.clone(),
                        },
                    );
                }
            }
            HeartbeatsAll {
                statistics: HeartbeatStatistics {
                    total_tasks: st.tasks.len(),
                    active_count: active.len(),
                    dead_count: dead.len(),
                    orphaned_count: orphaned.len(),
                    average_heartbeat_interval: average_interval(st),
                },
                active_tasks: active,
                dead_tasks: dead,
                orphaned_tasks: orphaned,
                timestamp: now.unix,
            }
        })
    }

    /// `GET /timeout/status`.
    pub fn timeout_status(&self) -> TimeoutStatus {
        let timeout = self.inner.settings.heartbeat_timeout;
        self.with_state(|st, _, now| {
            let (_, orphaned, _) = task_counts(st, now, timeout);
            let t = &st.timeouts;
            TimeoutStatus {
                timeout_stats: TimeoutStats {
                    total_timeouts_detected: t.total_timeouts_detected,
                    tasks_recovered: t.tasks_recovered,
                    resources_released: t.resources_released,
                    current_timeouts: orphaned,
                    expired_leases: t.expired_leases,
                    orphaned_tasks: t.orphaned_tasks,
                },
                action_history: st.actions.newest(ACTION_HISTORY),
                configured_actions: CONFIGURED_ACTIONS,
                timestamp: now.unix,
            }
        })
    }

    /// `GET /timeout/config`.
    pub fn timeout_config(&self) -> TimeoutSettings {
        let s = &self.inner.settings;
        TimeoutSettings {
            gpu_lock_timeout: Seconds(s.lock_timeout),
            task_heartbeat_timeout: Seconds(s.heartbeat_timeout),
            monitor_check_interval: Seconds(s.check_interval),
            auto_recovery_enabled: s.auto_recovery,
            max_retry_attempts: s.max_retry_attempts,
            max_ttl: Seconds(s.max_ttl),
            max_wait: Seconds(s.max_wait),
            timestamp: crate::clock::unix_now(),
        }
    }

    /// `GET /statistics`.
    pub fn statistics(&self) -> LedgerStatistics {
        let timeout = self.inner.settings.heartbeat_timeout;
        self.with_state(|st, _, now| {
            let findings = self.inner.overall(st, now);
            let total = sum_counters(st.locks.values().map(|l| &l.stats.counters));
            let (active, orphaned, dead) = task_counts(st, now, timeout);
            let t = &st.timeouts;
            LedgerStatistics {
                timestamp: now.unix,
                gpu_lock: LockSummary {
                    overall_status: findings.status,
                    total_attempts: total.total_attempts,
                    success_rate: total.success_rate(),
                    timeout_rate: total.timeout_rate(),
                    average_execution_time: total.average_execution_time(),
                    locks: st.locks.len(),
                    locks_held: st.locks.values().filter(|l| l.lease.is_some()).count(),
                },
                monitor: MonitorSummary {
                    running: st.monitor.running,
                    uptime: st.monitor.uptime(),
                    checks_performed: st.monitor.checks_performed,
                    issues_detected: st.monitor.issues_detected,
                },
                heartbeat: HeartbeatSummary {
                    active_tasks: active,
                    dead_tasks: dead,
                    orphaned_tasks: orphaned,
                    average_interval: average_interval(st),
                },
                timeout: TimeoutSummary {
                    total_timeouts: t.total_timeouts_detected,
                    tasks_recovered: t.tasks_recovered,
                    resources_released: t.resources_released,
                },
            }
        })
    }

    /// `GET /health`: overall status with the monitor and heartbeat components (and, as
    /// keel's addition, the locks').
    pub fn health(&self) -> LedgerHealth {
        let timeout = self.inner.settings.heartbeat_timeout;
        self.with_state(|st, fx, now| {
            let keys: Vec<String> = st.locks.keys().cloned().collect();
            for k in &keys {
                st.settle(k, now, fx);
            }
            let overall = self.inner.overall(st, now);
            let (monitor, metrics) = self.monitor_component(st, now);
            let hb = self.inner.heartbeat_findings(st, now);
            let counts = task_counts(st, now, timeout);
            let mut locks = Findings::default();
            let gpu = self.inner.gpu_issues();
            for k in &keys {
                locks.merge(self.inner.lock_findings(st, k, now, &gpu));
            }
            LedgerHealth {
                status: overall.status,
                issues: overall.issues,
                components: HealthComponents {
                    monitor: MonitorComponent {
                        status: monitor.status,
                        issues: monitor.issues,
                        metrics: CheckFrequency {
                            check_frequency: metrics.check_frequency,
                        },
                        timestamp: now.unix,
                    },
                    heartbeat: HeartbeatComponent {
                        total_tasks: counts.0 + counts.1 + counts.2,
                        active_count: counts.0,
                        failure_rate: heartbeat_failure_rate(counts),
                        status: hb.status,
                        issues: hb.issues,
                        timestamp: now.unix,
                    },
                    gpu_lock: Component {
                        status: locks.status,
                        issues: locks.issues,
                        timestamp: now.unix,
                    },
                    gpu: None,
                },
                timestamp: now.unix,
            }
        })
    }
}
