//! The timeout manager: one check finds expired leases and orphaned tasks and, with
//! `auto_recovery`, force-releases the locks orphaned tasks hold. Every action goes to the
//! action history (and the event bus through the effects).
//!
//! Configured actions, as the reference lists them: `force_release_gpu_lock` (recovery),
//! `update_task_status` (the task is marked orphaned), `log_timeout_event` (an event).

use super::operator_events as events;
use super::records::{ActionEntry, LockAction, Op};
use super::state::{Effects, Now, State};
use serde::Serialize;
use std::time::Duration;

pub const CONFIGURED_ACTIONS: [&str; 3] = [
    "force_release_gpu_lock",
    "update_task_status",
    "log_timeout_event",
];

/// The answer of `POST /timeout/check`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckReport {
    pub checked_locks: Vec<String>,
    pub timeouts_detected: u64,
    pub actions_taken: Vec<String>,
    pub timestamp: f64,
}

impl State {
    pub(super) fn action_push(
        &mut self,
        action: &str,
        task_id: String,
        success: bool,
        lock_key: Option<&str>,
        now: Now,
        fx: &mut Effects,
    ) {
        let entry = ActionEntry {
            timestamp: now.unix,
            action: action.to_string(),
            task_id,
            result: if success { "success" } else { "failed" }.to_string(),
            lock_key: lock_key.map(str::to_string),
        };
        let seq = self.actions.push(entry.clone());
        fx.ops.push(Op::Action { seq, entry });
    }

    /// One timeout check over `keys` (and every task).
    pub(super) fn timeout_check(
        &mut self,
        keys: &[String],
        heartbeat_timeout: Duration,
        auto_recovery: bool,
        now: Now,
        fx: &mut Effects,
    ) -> CheckReport {
        let mut report = CheckReport {
            checked_locks: keys.to_vec(),
            timeouts_detected: 0,
            actions_taken: Vec::new(),
            timestamp: now.unix,
        };
        for key in keys {
            let holder = self
                .locks
                .get(key)
                .and_then(|l| l.lease.as_ref())
                .map(|l| l.holder.clone());
            if self.settle(key, now, fx) {
                report.timeouts_detected += 1;
                report.actions_taken.push(format!(
                    "released expired lease on {key} (holder {})",
                    holder.unwrap_or_default()
                ));
            }
        }
        let orphans = self.orphan_scan(now, heartbeat_timeout, fx);
        for id in &orphans {
            report.timeouts_detected += 1;
            self.timeouts.total_timeouts_detected += 1;
            self.timeouts.orphaned_tasks += 1;
            fx.timeouts.push(super::metrics::TIMEOUT_HEARTBEAT);
            self.action_push("task_orphaned", id.clone(), true, None, now, fx);
            report
                .actions_taken
                .push(format!("marked task {id} orphaned (no heartbeat)"));
        }
        if !orphans.is_empty() {
            fx.ops.push(Op::TimeoutCounters(self.timeouts.clone()));
        }
        if auto_recovery {
            self.recover_orphans(keys, heartbeat_timeout, now, fx, &mut report);
        }
        report
    }

    /// Force-releases every lock in `keys` whose holder is an orphaned task.
    fn recover_orphans(
        &mut self,
        keys: &[String],
        heartbeat_timeout: Duration,
        now: Now,
        fx: &mut Effects,
        report: &mut CheckReport,
    ) {
        let mut targets = Vec::new();
        for key in keys {
            let Some(lease) = self.locks.get(key).and_then(|l| l.lease.as_ref()) else {
                continue;
            };
            let owner = self.tasks.iter().find(|(id, t)| {
                t.is_orphaned(now.mono, heartbeat_timeout)
                    && (lease.task_id.as_deref() == Some(id.as_str())
                        || lease.holder == **id
                        || (t.record.gpu_lock.as_deref() == Some(key.as_str())
                            && lease.holder == t.record.task_name))
            });
            if let Some((id, _)) = owner {
                targets.push((key.clone(), id.clone()));
            }
        }
        for (key, task_id) in targets {
            let Some(lease) =
                self.force_release(&key, LockAction::TimeoutRecovery, "monitor", now, fx)
            else {
                continue;
            };
            self.timeouts.tasks_recovered += 1;
            self.timeouts.resources_released += 1;
            fx.ops.push(Op::TimeoutCounters(self.timeouts.clone()));
            self.action_push(
                "timeout_recovery",
                task_id.clone(),
                true,
                Some(&key),
                now,
                fx,
            );
            fx.events
                .push(events::LedgerEvent::Recovered(events::TaskRecovered {
                    task_id: task_id.clone(),
                    lock_key: key.clone(),
                    fencing_token: lease.fencing_token,
                }));
            fx.recoveries += 1;
            report.actions_taken.push(format!(
                "force-released {key} held by orphaned task {task_id}"
            ));
        }
    }
}
