//! The GPU ledger: TTL leases with fencing tokens, FIFO waiters, task heartbeats, the
//! monitor and timeout manager — serving the reference monitoring API and the worker API.
//!
//! Shape: all state lives in memory behind one mutex (the read model, `state`; status and
//! heartbeat calls never touch the disk) and every change is submitted, in decision order,
//! to the `journal` — a dedicated thread that commits to redb. Lock operations wait for
//! their commit (`Durability::Immediate`) before they answer; heartbeats and statistics are
//! batched. At startup the journal is read back, so locks (with their absolute expiry),
//! fencing counters, history and tasks survive restarts, `kill -9` included.
//!
//! Layout: this file is the facade ([`Ledger`]: open, lock and heartbeat operations, checks,
//! shutdown); `answers` holds what the operations take and answer, `report` the
//! reference API's documents, `records` everything persisted, `queue` the queued
//! acquire, `views` the scrape-time metric views.
//!
//! Time: leases and heartbeat ages run on the monotonic clock; Unix seconds appear only in
//! stored records and API answers (see `lease`).

mod answers;
mod error;
mod fencing;
mod health;
mod heartbeat;
mod history;
mod journal;
pub mod key;
mod lease;
mod locks;
mod metrics;
mod monitor;
mod operator_events;
mod queue;
mod records;
mod report;
mod report_shapes;
mod state;
mod stats;
mod timeout;
mod views;

pub use answers::{
    AcquireRequest, Acquired, Busy, BusyReason, ForceReleased, GpuIssue, HeartbeatAck, Held,
    LockHolding, LockView, Released, Renewed, TokenResult,
};
pub use error::{JournalError, LedgerError, RequestError};
pub use fencing::FenceError;
pub use health::HealthStatus;
pub use heartbeat::HeartbeatUpdate;
pub use report_shapes::*;
pub use timeout::CheckReport;

use crate::config::LedgerConfig;
use crate::store::{Store, StoreError};
use crate::telemetry::{ComponentStatus, Telemetry};
use fencing::{FencingCounter, HighWater};
use heartbeat::Task;
use history::Bounded;
use journal::{AckRx, Journal};
use lease::Lease;
use locks::{AcquireStep, LockState, TokenStep};
use operator_events::{LedgerEvent, MonitorToggled};
use queue::QueueSeat;
use records::{LockAction, LockCounters, LockRow};
use state::{Effects, Now, State};
use stats::LockStats;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Cheap to clone; all clones share one ledger.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    /// `[ledger]` as loaded.
    settings: LedgerConfig,
    state: Mutex<State>,
    journal: Journal,
    /// The fencing high-water marks beside the store (see [`fencing`]).
    fence: Arc<HighWater>,
    telemetry: Telemetry,
    metrics: metrics::LedgerMetrics,
    monitor_switch: watch::Sender<bool>,
    gpu_issues: RwLock<Vec<GpuIssue>>,
}

impl Ledger {
    /// Reads the ledger back from the store and starts its journal. `extra_keys` are the
    /// GPU lock keys found at startup; keys held in the store stay known as well.
    pub async fn open(
        config: &LedgerConfig,
        extra_keys: &[String],
        store: Store,
        telemetry: Telemetry,
    ) -> Result<Ledger, LedgerError> {
        let settings = config.clone();
        let limit = settings.history_limit;
        let (loaded, fence) = {
            let store = store.clone();
            let data_dir = store
                .path()
                .parent()
                .unwrap_or(Path::new("."))
                .to_path_buf();
            tokio::task::spawn_blocking(move || {
                let fence = HighWater::load(&data_dir)?;
                Ok::<_, LedgerError>((journal::load(&store, limit)?, fence))
            })
            .await
            .map_err(StoreError::from)??
        };
        let fence = Arc::new(fence);
        let now = Now::read();
        let mut rows: BTreeMap<String, LockRow> = loaded.locks.into_iter().collect();
        let mut counters: BTreeMap<String, LockCounters> =
            loaded.lock_counters.into_iter().collect();
        let mut keys: Vec<String> = config.locks.clone();
        keys.extend(extra_keys.iter().cloned());
        keys.extend(rows.keys().cloned());
        keys.sort();
        keys.dedup();
        let mut lock_map = BTreeMap::new();
        for key in &keys {
            let row = rows.remove(key);
            let stored = row.as_ref().map_or(0, |r| r.fencing_last);
            let mark = fence.mark(key);
            if row.is_none() && mark > 0 {
                tracing::warn!(
                    lock_key = %key,
                    mark,
                    fence = %fence.path().display(),
                    "the store has no record of this lock but its tokens reached the high-water \
                     mark: the store was replaced or restored; tokens continue above the mark"
                );
            }
            let fencing = FencingCounter::starting_after(stored.max(mark));
            let lease = row
                .and_then(|r| r.lease)
                .map(|r| Lease::from_record(r, now.mono, now.unix));
            let stats = LockStats::restore(counters.remove(key).unwrap_or_default());
            lock_map.insert(key.clone(), LockState::new(fencing, lease, stats));
        }
        let tasks = loaded
            .tasks
            .into_iter()
            .map(|(id, r)| (id, Task::restore(r, now)))
            .collect();
        let state = State {
            locks: lock_map,
            tasks,
            history: Bounded::restore(limit, loaded.history),
            actions: Bounded::restore(limit, loaded.actions),
            timeouts: loaded.timeout_counters,
            monitor: monitor::MonitorStats::default(),
            next_waiter_id: 1,
            shutting_down: false,
        };
        let (monitor_switch, _) = watch::channel(settings.monitor_enabled);
        let metrics = metrics::LedgerMetrics::register(&telemetry.metrics);
        let observe = journal::CommitObserver {
            seconds: metrics.commit_seconds.clone(),
            ops: metrics.commit_ops.clone(),
        };
        let inner = Arc::new(Inner {
            journal: Journal::start(
                store,
                fence.clone(),
                settings.flush_interval,
                limit,
                observe,
            ),
            fence,
            metrics,
            settings,
            state: Mutex::new(state),
            telemetry,
            monitor_switch,
            gpu_issues: RwLock::new(Vec::new()),
        });
        let ledger = Ledger { inner };
        ledger.register_views();
        // Leases that ran out while keel was down expire now (history `timeout`).
        ledger.with_state(|st, fx, now| {
            for key in &keys {
                st.settle(key, now, fx);
            }
        });
        let held =
            ledger.with_state(|st, _, _| st.locks.values().filter(|l| l.lease.is_some()).count());
        ledger.inner.telemetry.health.set(
            "ledger",
            ComponentStatus::Healthy,
            format!(
                "{} locks ({held} held), monitor every {}",
                keys.len(),
                humantime::format_duration(ledger.inner.settings.check_interval)
            ),
        );
        tracing::info!(locks = ?keys, held, "ledger loaded");
        Ok(ledger)
    }

    /// Starts the monitor loop (it runs now if `monitor_enabled`).
    pub fn spawn_monitor(&self) -> JoinHandle<()> {
        if self.inner.settings.monitor_enabled {
            self.with_state(|st, _, now| mark_monitor(st, true, now));
        }
        monitor::spawn(
            self.clone(),
            self.inner.monitor_switch.subscribe(),
            self.inner.settings.check_interval,
        )
    }

    /// Every lock key keel manages.
    pub fn lock_keys(&self) -> Vec<String> {
        self.inner.lock_state().locks.keys().cloned().collect()
    }

    /// Runs `f` under the state mutex, then submits its effects and reports them.
    fn with_state<R>(&self, f: impl FnOnce(&mut State, &mut Effects, Now) -> R) -> R {
        self.inner.with_state(f)
    }

    /// A well-formed key that keel manages.
    fn known_key(&self, key: &str) -> Result<(), LedgerError> {
        key::check_lock_key(key)?;
        if self.inner.lock_state().locks.contains_key(key) {
            Ok(())
        } else {
            Err(LedgerError::UnknownLock(key.to_string()))
        }
    }

    fn ttl(&self, seconds: Option<f64>) -> Result<Duration, LedgerError> {
        let settings = &self.inner.settings;
        Ok(lease::requested_ttl(
            seconds,
            settings.lock_timeout,
            settings.max_ttl,
        )?)
    }

    async fn await_ack(&self, ack: AckRx) -> Result<(), LedgerError> {
        let result = match ack.await {
            Ok(r) => r,
            Err(_) => Err(JournalError::Stopped),
        };
        result.map_err(|e| {
            self.inner.telemetry.health.set(
                "ledger",
                ComponentStatus::Down,
                format!("store write failed: {e}"),
            );
            LedgerError::Store(e)
        })
    }

    /// Acquire: at once, or queued FIFO for up to `wait_seconds`. Answers only after the
    /// grant is committed.
    pub async fn acquire(&self, req: AcquireRequest) -> Result<Acquired, LedgerError> {
        self.known_key(&req.lock_key)?;
        check_name("holder", &req.holder)?;
        if let Some(t) = &req.task_id {
            check_name("task_id", t)?;
        }
        let ttl = self.ttl(req.ttl_seconds)?;
        let wait = lease::requested_wait(req.wait_seconds, self.inner.settings.max_wait)?;
        let key = req.lock_key.as_str();
        let started = Instant::now();
        let step = self.with_state(|st, fx, now| {
            st.try_acquire(key, &req.holder, req.task_id.as_deref(), ttl, wait, now, fx)
        });
        match step {
            AcquireStep::Granted {
                fencing_token,
                expires_at,
                ack,
            } => {
                self.await_ack(ack).await?;
                Ok(Acquired::Held(Held {
                    acquired: true,
                    lock_key: key.to_string(),
                    holder: req.holder,
                    fencing_token,
                    expires_at,
                    ttl_seconds: ttl.as_secs_f64(),
                    waited_seconds: 0.0,
                }))
            }
            AcquireStep::Busy => Ok(Acquired::Busy(self.busy(key, BusyReason::Held))),
            AcquireStep::Queued { waiter_id, rx } => {
                let seat = QueueSeat {
                    inner: self.inner.clone(),
                    key: key.to_string(),
                    waiter_id,
                    rx: Some(rx),
                };
                self.wait_in_queue(seat, &req.holder, ttl, started, started + wait)
                    .await
            }
        }
    }

    /// Renew by the holder's token (before expiry).
    pub async fn renew(
        &self,
        key: &str,
        fencing_token: u64,
        ttl_seconds: Option<f64>,
    ) -> Result<TokenResult<Renewed>, LedgerError> {
        self.known_key(key)?;
        let ttl = self.ttl(ttl_seconds)?;
        let (step, view) = self.with_state(|st, fx, now| {
            let step = st.renew(key, fencing_token, ttl, now, fx);
            (step, st.view(key, now))
        });
        match step {
            TokenStep::Done {
                ack,
                held_seconds,
                expires_at,
            } => {
                self.await_ack(ack).await?;
                Ok(TokenResult::Done(Renewed {
                    renewed: true,
                    lock_key: key.to_string(),
                    fencing_token,
                    expires_at,
                    ttl_seconds: ttl.as_secs_f64(),
                    lock_age: held_seconds,
                }))
            }
            TokenStep::Stale => Ok(TokenResult::Stale(view)),
        }
    }

    /// Release by the holder's token; the next waiter gets the lock.
    pub async fn release(
        &self,
        key: &str,
        fencing_token: u64,
    ) -> Result<TokenResult<Released>, LedgerError> {
        self.known_key(key)?;
        let (step, view) = self.with_state(|st, fx, now| {
            let step = st.release(key, fencing_token, now, fx);
            (step, st.view(key, now))
        });
        match step {
            TokenStep::Done {
                ack, held_seconds, ..
            } => {
                self.await_ack(ack).await?;
                Ok(TokenResult::Done(Released {
                    released: true,
                    lock_key: key.to_string(),
                    fencing_token,
                    held_seconds,
                }))
            }
            TokenStep::Stale => Ok(TokenResult::Stale(view)),
        }
    }

    /// The reference's emergency release: audited in the history, the holder's token stops
    /// working at once. A well-formed unknown key answers `success: false`.
    pub async fn force_release(
        &self,
        key: &str,
        task_name: &str,
    ) -> Result<ForceReleased, LedgerError> {
        key::check_lock_key(key)?;
        check_name("task_name", task_name)?;
        let (lease, ack) = self.with_state(|st, fx, now| {
            if !st.locks.contains_key(key) {
                return (None, None);
            }
            let lease = st.force_release(key, LockAction::ForceRelease, task_name, now, fx);
            let (tx, rx) = journal::ack_channel();
            fx.acks.push(tx);
            (lease, Some(rx))
        });
        if let Some(ack) = ack {
            self.await_ack(ack).await?;
        }
        let message = match &lease {
            Some(l) => format!(
                "lock {key} released (holder {}, token {})",
                l.holder, l.fencing_token
            ),
            None => format!("lock {key} is not held"),
        };
        Ok(ForceReleased {
            success: lease.is_some(),
            message,
            lock_key: key.to_string(),
            task_name: task_name.to_string(),
            released_holder: lease.as_ref().map(|l| l.holder.clone()),
            released_fencing_token: lease.map(|l| l.fencing_token),
        })
    }

    /// Every managed lock (expired leases settled first).
    pub fn locks(&self) -> Vec<LockView> {
        self.with_state(|st, fx, now| {
            let keys: Vec<String> = st.locks.keys().cloned().collect();
            keys.iter()
                .map(|k| {
                    st.settle(k, now, fx);
                    st.view(k, now)
                })
                .collect()
        })
    }

    /// What the GPU sampler cross-checks against.
    pub fn lock_holdings(&self) -> Vec<LockHolding> {
        self.locks()
            .into_iter()
            .map(|v| LockHolding {
                held_for: v.lock_age.map(Duration::from_secs_f64),
                lock_key: v.lock_key,
                holder: v.lock_holder,
            })
            .collect()
    }

    /// Replaces the GPU cross-check findings shown in the ledger's health.
    pub fn set_gpu_issues(&self, issues: Vec<GpuIssue>) {
        *self
            .inner
            .gpu_issues
            .write()
            .unwrap_or_else(|p| p.into_inner()) = issues;
    }

    /// `POST /api/v1/heartbeats/{task_id}`: the periodic update (starts unknown tasks).
    pub fn heartbeat(
        &self,
        task_id: &str,
        update: HeartbeatUpdate,
    ) -> Result<HeartbeatAck, LedgerError> {
        check_name("task_id", task_id)?;
        update.check()?;
        let timeout = self.inner.settings.heartbeat_timeout;
        let answer = self.with_state(|st, fx, now| {
            if !st.heartbeat_update(task_id, update, now, fx) {
                return None;
            }
            Some(HeartbeatAck {
                success: true,
                task_id: task_id.to_string(),
                last_update: now.unix,
                status: st
                    .tasks
                    .get(task_id)
                    .map(|t| t.status_text(now.mono, timeout)),
            })
        });
        answer.ok_or_else(too_many_tasks)
    }

    /// `POST /heartbeat/task/{id}/start`.
    pub fn heartbeat_start(
        &self,
        task_id: &str,
        update: HeartbeatUpdate,
    ) -> Result<(), LedgerError> {
        check_name("task_id", task_id)?;
        update.check()?;
        if self.with_state(|st, fx, now| st.heartbeat_start(task_id, update, now, fx)) {
            Ok(())
        } else {
            Err(too_many_tasks())
        }
    }

    /// `DELETE /heartbeat/task/{id}`: `false` when no running task has that id.
    pub fn heartbeat_stop(&self, task_id: &str) -> Result<bool, LedgerError> {
        check_name("task_id", task_id)?;
        Ok(self.with_state(|st, fx, now| st.heartbeat_stop(task_id, now, fx)))
    }

    /// `POST /heartbeat/cleanup`: (dead tasks removed, orphaned heartbeats removed).
    pub fn heartbeat_cleanup(&self) -> (usize, usize) {
        let timeout = self.inner.settings.heartbeat_timeout;
        self.with_state(|st, fx, now| st.heartbeat_cleanup(now, timeout, fx))
    }

    /// `POST /timeout/check`: one check of `key` (and every task's heartbeat) now.
    pub async fn timeout_check(&self, key: &str) -> Result<CheckReport, LedgerError> {
        key::check_lock_key(key)?;
        let keys: Vec<String> = if self.inner.lock_state().locks.contains_key(key) {
            vec![key.to_string()]
        } else {
            Vec::new()
        };
        let (report, _) = self.check(&keys).await?;
        Ok(CheckReport {
            checked_locks: vec![key.to_string()],
            ..report
        })
    }

    /// One check over `keys`, committed (with retries) before it returns.
    async fn check(&self, keys: &[String]) -> Result<(CheckReport, u64), LedgerError> {
        let s = &self.inner.settings;
        let (report, ops, recoveries) = self.with_state(|st, fx, now| {
            let report = st.timeout_check(keys, s.heartbeat_timeout, s.auto_recovery, now, fx);
            (report, fx.ops.clone(), fx.recoveries)
        });
        if recoveries > 0 {
            // Recoveries are lock releases: make them durable, retrying a failed commit.
            // Re-submitting is idempotent: the rows carry the state, not a delta.
            let mut attempt = 0;
            loop {
                attempt += 1;
                let (tx, rx) = journal::ack_channel();
                self.inner.journal.submit(
                    if attempt == 1 {
                        Vec::new()
                    } else {
                        ops.clone()
                    },
                    vec![tx],
                );
                match self.await_ack(rx).await {
                    Ok(()) => break,
                    Err(e) if attempt >= s.max_retry_attempts => return Err(e),
                    Err(e) => {
                        tracing::warn!(error = %e, attempt, "recovery commit failed; retrying")
                    }
                }
            }
        }
        Ok((report, recoveries))
    }

    /// The monitor's periodic check over every lock.
    pub async fn monitor_check(&self) {
        let started = Instant::now();
        let keys = self.lock_keys();
        let outcome = self.check(&keys).await;
        let elapsed = started.elapsed().as_secs_f64();
        let (status, issues) = self.with_state(|st, _, now| {
            let m = &mut st.monitor;
            m.checks_performed += 1;
            m.last_check = Some(now.unix);
            m.total_check_seconds += elapsed;
            if let Ok((report, recovered)) = &outcome {
                m.timeouts_detected += report.timeouts_detected;
                m.tasks_recovered += recovered;
            }
            let overall = self.inner.overall(st, now);
            st.monitor.issues_detected += overall.issues.len() as u64;
            (overall.status, overall.issues)
        });
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "ledger check failed");
        }
        let (component, reason) = match status {
            HealthStatus::Healthy => (ComponentStatus::Healthy, "all checks pass".to_string()),
            HealthStatus::Warning => (ComponentStatus::Degraded, issues.join("; ")),
            HealthStatus::Critical => (ComponentStatus::Down, issues.join("; ")),
        };
        self.inner.telemetry.health.set("ledger", component, reason);
    }

    /// `POST /monitor/start|stop`: `false` when it already was in that state.
    pub fn set_monitor(&self, running: bool) -> bool {
        let changed = self.with_state(|st, fx, now| {
            if st.monitor.running == running {
                return false;
            }
            mark_monitor(st, running, now);
            fx.events
                .push(LedgerEvent::Monitor(MonitorToggled { running }));
            true
        });
        if changed {
            self.inner.monitor_switch.send_replace(running);
        }
        changed
    }

    /// Shutdown, step 1: stop queueing and answer every waiter now (409 `shutting_down`).
    pub fn begin_shutdown(&self) {
        self.with_state(|st, _, _| {
            st.shutting_down = true;
            for lock in st.locks.values_mut() {
                lock.waiters.clear();
            }
        });
    }

    /// Shutdown, step 2: commit everything batched and stop the journal thread, then lower
    /// the fencing marks to the exact counters. Only after the journal stopped: from then on
    /// no token can be answered, and every token answered before is at most its counter.
    pub async fn close(&self) {
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || {
            inner.journal.close();
            let last: Vec<(String, u64)> = inner
                .lock_state()
                .locks
                .iter()
                .map(|(k, l)| (k.clone(), l.fencing.last()))
                .collect();
            if let Err(e) = inner.fence.settle(last) {
                // The reservations stay: the next start continues above them, still forward.
                tracing::warn!(error = %e, "cannot settle the fencing high-water marks");
            }
        })
        .await;
    }
}

fn mark_monitor(st: &mut State, running: bool, now: Now) {
    st.monitor.running = running;
    if running {
        st.monitor.start_time = Some(now.unix);
        st.monitor.started_mono = Some(now.mono);
    } else {
        st.monitor.start_time = None;
        st.monitor.started_mono = None;
    }
}

fn too_many_tasks() -> LedgerError {
    LedgerError::TooManyTasks {
        limit: heartbeat::TRACKED_TASK_LIMIT,
    }
}

/// Holder names, task ids and the like: 1..=256 characters, no control characters.
fn check_name(field: &'static str, value: &str) -> Result<(), LedgerError> {
    if value.trim().is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
        Err(RequestError::Name { field }.into())
    } else {
        Ok(())
    }
}

impl Inner {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_state<R>(&self, f: impl FnOnce(&mut State, &mut Effects, Now) -> R) -> R {
        let mut fx = Effects::default();
        let mut st = self.lock_state();
        let out = f(&mut st, &mut fx, Now::read());
        // Submitted under the mutex, so the journal sees changes in decision order.
        self.journal
            .submit(std::mem::take(&mut fx.ops), std::mem::take(&mut fx.acks));
        drop(st);
        self.report(fx);
        out
    }

    fn report(&self, fx: Effects) {
        for e in &fx.events {
            e.emit(&self.telemetry.events);
        }
        for a in &fx.attempts {
            self.metrics
                .acquisitions
                .with_label_values(&[a.label()])
                .inc();
        }
        for w in &fx.wait_seconds {
            self.metrics.wait_seconds.observe(*w);
        }
        for kind in &fx.timeouts {
            self.metrics.timeouts.with_label_values(&[kind]).inc();
        }
    }

    fn gpu_issues(&self) -> Vec<GpuIssue> {
        self.gpu_issues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests;
