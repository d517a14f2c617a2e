//! Task heartbeats: start, periodic update (with progress), stop, orphan detection, cleanup.
//!
//! Updates are the hot path (p99 target < 1 ms): an update touches only the in-memory map
//! and queues the record for the journal's batched write (at most `flush_interval` later),
//! so a crash can lose the last interval of progress, never a lock.

use super::error::RequestError;
use super::operator_events as events;
use super::records::{Op, TaskPhase, TaskRecord};
use super::state::{Effects, Now, State};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// Completed tasks kept for `dead_tasks` until a cleanup (oldest dropped beyond this).
pub const DEAD_TASK_LIMIT: usize = 1000;
/// Tasks tracked at once (running, orphaned, dead). A new task id beyond this is refused
/// until a cleanup: it bounds memory and the `task` label of the heartbeat-age gauge.
pub const TRACKED_TASK_LIMIT: usize = 10_000;

/// A task in memory: its record plus the monotonic time of its last heartbeat.
#[derive(Debug, Clone)]
pub struct Task {
    pub record: TaskRecord,
    pub last_mono: Instant,
}

impl Task {
    pub fn restore(record: TaskRecord, now: Now) -> Task {
        let age = Duration::from_secs_f64((now.unix - record.last_update).max(0.0));
        Task {
            last_mono: now.mono.checked_sub(age).unwrap_or(now.mono),
            record,
        }
    }

    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_mono)
    }

    /// Orphaned: flagged by the monitor, or running without a heartbeat within `timeout`.
    pub fn is_orphaned(&self, now: Instant, timeout: Duration) -> bool {
        match self.record.phase {
            TaskPhase::Orphaned => true,
            TaskPhase::Running => self.age(now) > timeout,
            TaskPhase::Completed => false,
        }
    }

    pub fn is_dead(&self) -> bool {
        self.record.phase == TaskPhase::Completed
    }

    /// The reference's `status` value.
    pub fn status_text(&self, now: Instant, timeout: Duration) -> String {
        if self.is_dead() {
            "completed".into()
        } else if self.is_orphaned(now, timeout) {
            "orphaned".into()
        } else {
            self.record
                .status
                .clone()
                .unwrap_or_else(|| "running".into())
        }
    }
}

/// Fields a start or update may carry (all optional).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatUpdate {
    /// 0..=1.
    pub progress: Option<f64>,
    pub status: Option<String>,
    pub gpu_lock: Option<String>,
    pub task_name: Option<String>,
}

impl HeartbeatUpdate {
    pub fn check(&self) -> Result<(), RequestError> {
        if let Some(p) = self.progress {
            if !(0.0..=1.0).contains(&p) {
                return Err(RequestError::Progress(p));
            }
        }
        for (field, value) in [("status", &self.status), ("task_name", &self.task_name)] {
            if let Some(v) = value {
                if v.is_empty() || v.len() > 256 {
                    return Err(RequestError::Text { field });
                }
            }
        }
        if let Some(key) = &self.gpu_lock {
            super::key::check_lock_key(key)?;
        }
        Ok(())
    }
}

impl State {
    /// Registers (or restarts) a task's heartbeat; `false` when the task is new and
    /// [`TRACKED_TASK_LIMIT`] tasks are already tracked.
    pub(super) fn heartbeat_start(
        &mut self,
        task_id: &str,
        update: HeartbeatUpdate,
        now: Now,
        fx: &mut Effects,
    ) -> bool {
        if !self.tasks.contains_key(task_id) && self.tasks.len() >= TRACKED_TASK_LIMIT {
            return false;
        }
        let record = TaskRecord {
            task_name: update.task_name.unwrap_or_else(|| task_id.to_string()),
            start_time: now.unix,
            last_update: now.unix,
            gpu_lock: update.gpu_lock,
            progress: update.progress,
            status: update.status,
            phase: TaskPhase::Running,
            updates: 0,
            interval_sum: 0.0,
        };
        fx.ops.push(Op::Task {
            task_id: task_id.to_string(),
            record: Some(record.clone()),
        });
        self.tasks.insert(
            task_id.to_string(),
            Task {
                record,
                last_mono: now.mono,
            },
        );
        true
    }

    /// A periodic heartbeat; an unknown or completed task is (re)started by it. `false`
    /// when a new task would exceed [`TRACKED_TASK_LIMIT`].
    pub(super) fn heartbeat_update(
        &mut self,
        task_id: &str,
        update: HeartbeatUpdate,
        now: Now,
        fx: &mut Effects,
    ) -> bool {
        let Some(task) = self.tasks.get_mut(task_id).filter(|t| !t.is_dead()) else {
            return self.heartbeat_start(task_id, update, now, fx);
        };
        let gap = now
            .mono
            .saturating_duration_since(task.last_mono)
            .as_secs_f64();
        let r = &mut task.record;
        r.updates += 1;
        r.interval_sum += gap;
        r.last_update = now.unix;
        r.phase = TaskPhase::Running;
        if update.progress.is_some() {
            r.progress = update.progress;
        }
        if update.status.is_some() {
            r.status = update.status;
        }
        if update.gpu_lock.is_some() {
            r.gpu_lock = update.gpu_lock;
        }
        if let Some(name) = update.task_name {
            r.task_name = name;
        }
        task.last_mono = now.mono;
        fx.ops.push(Op::Task {
            task_id: task_id.to_string(),
            record: Some(task.record.clone()),
        });
        true
    }

    /// Stops a task's heartbeat: it becomes a dead (completed) task. `false` if unknown.
    pub(super) fn heartbeat_stop(&mut self, task_id: &str, now: Now, fx: &mut Effects) -> bool {
        let Some(task) = self.tasks.get_mut(task_id).filter(|t| !t.is_dead()) else {
            return false;
        };
        task.record.phase = TaskPhase::Completed;
        task.record.last_update = now.unix;
        task.last_mono = now.mono;
        fx.ops.push(Op::Task {
            task_id: task_id.to_string(),
            record: Some(task.record.clone()),
        });
        self.trim_dead_tasks(fx);
        true
    }

    fn trim_dead_tasks(&mut self, fx: &mut Effects) {
        let mut dead: Vec<(f64, String)> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.is_dead())
            .map(|(id, t)| (t.record.last_update, id.clone()))
            .collect();
        if dead.len() <= DEAD_TASK_LIMIT {
            return;
        }
        dead.sort_by(|a, b| a.0.total_cmp(&b.0));
        let excess = dead.len() - DEAD_TASK_LIMIT;
        for (_, id) in dead.into_iter().take(excess) {
            self.tasks.remove(&id);
            fx.ops.push(Op::Task {
                task_id: id,
                record: None,
            });
        }
    }

    /// Removes dead tasks and orphaned heartbeats; returns (dead, orphaned) counts.
    pub(super) fn heartbeat_cleanup(
        &mut self,
        now: Now,
        timeout: Duration,
        fx: &mut Effects,
    ) -> (usize, usize) {
        let mut dead = 0;
        let mut orphaned = 0;
        self.tasks.retain(|id, t| {
            let remove = if t.is_dead() {
                dead += 1;
                true
            } else if t.is_orphaned(now.mono, timeout) {
                orphaned += 1;
                true
            } else {
                false
            };
            if remove {
                fx.ops.push(Op::Task {
                    task_id: id.clone(),
                    record: None,
                });
            }
            !remove
        });
        (dead, orphaned)
    }

    /// Flags running tasks without a heartbeat within `timeout` as orphaned; returns the
    /// newly orphaned task ids.
    pub(super) fn orphan_scan(
        &mut self,
        now: Now,
        timeout: Duration,
        fx: &mut Effects,
    ) -> Vec<String> {
        let mut newly = Vec::new();
        for (id, task) in self.tasks.iter_mut() {
            if task.record.phase == TaskPhase::Running && task.age(now.mono) > timeout {
                task.record.phase = TaskPhase::Orphaned;
                fx.ops.push(Op::Task {
                    task_id: id.clone(),
                    record: Some(task.record.clone()),
                });
                fx.events
                    .push(events::LedgerEvent::Orphaned(events::TaskOrphaned {
                        task_id: id.clone(),
                        task_name: task.record.task_name.clone(),
                        last_update: task.record.last_update,
                        seconds_since_heartbeat: task.age(now.mono).as_secs_f64(),
                    }));
                newly.push(id.clone());
            }
        }
        newly
    }
}
