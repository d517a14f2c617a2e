//! The GPU ledger: TTL leases with fencing tokens, FIFO waiters, task heartbeats, the
//! monitor and timeout manager — serving the reference monitoring API and the worker API.
//!
//! Shape: all state lives in memory behind one mutex (the read model; status and heartbeat
//! calls never touch the disk) and every change is submitted, in decision order, to the
//! [`journal`] — a dedicated thread that commits to redb. Lock operations wait for their
//! commit (`Durability::Immediate`) before they answer; heartbeats and statistics are
//! batched. At startup the journal is read back, so locks (with their absolute expiry),
//! fencing counters, history and tasks survive restarts, `kill -9` included.
//!
//! Time: leases and heartbeat ages run on the monotonic clock; Unix seconds appear only in
//! stored records and API answers (see [`lease`]).

mod events;
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
mod report;
mod stats;
mod timeout;

pub use health::HealthStatus;
pub use heartbeat::HeartbeatUpdate;
pub use timeout::CheckReport;

use crate::config::LedgerConfig;
use crate::store::{Store, StoreError};
use crate::telemetry::{ComponentStatus, Telemetry};
use events::LedgerEvent;
pub use fencing::FenceError;
use fencing::{FencingCounter, HighWater};
use heartbeat::Task;
use history::{ActionEntry, Bounded, HistoryEntry, LockAction};
use journal::{Ack, AckRx, Journal, Op};
use lease::{ttl_whole_seconds, Lease};
use locks::{AcquireStep, Grant, LockState, TokenStep};
use serde::Serialize;
use stats::{AttemptResult, LockStats};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};
use timeout::TimeoutCounters;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The key is not `<kind>:<id>`.
    #[error("{0}")]
    InvalidKey(String),
    /// Well-formed, but not a lock this keel manages.
    #[error("unknown lock {0:?}: not in [ledger] locks and no GPU with that index")]
    UnknownLock(String),
    #[error("{0}")]
    InvalidRequest(String),
    /// A bound was reached (tracked tasks); the caller may retry after a cleanup.
    #[error("{0}")]
    Capacity(String),
    /// The durable write failed; the operation was not acknowledged.
    #[error("ledger store write failed: {0}")]
    Store(String),
    #[error("cannot open the ledger: {0}")]
    Open(#[from] StoreError),
    #[error(transparent)]
    Fence(#[from] FenceError),
}

/// The ledger's settings, from `[ledger]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub lock_timeout: Duration,
    pub max_ttl: Duration,
    pub max_wait: Duration,
    pub check_interval: Duration,
    pub heartbeat_timeout: Duration,
    pub auto_recovery: bool,
    pub max_retry_attempts: u32,
    pub monitor_enabled: bool,
    pub history_limit: usize,
    pub flush_interval: Duration,
}

impl From<&LedgerConfig> for Settings {
    fn from(c: &LedgerConfig) -> Self {
        Settings {
            lock_timeout: c.lock_timeout,
            max_ttl: c.max_ttl,
            max_wait: c.max_wait,
            check_interval: c.check_interval,
            heartbeat_timeout: c.heartbeat_timeout,
            auto_recovery: c.auto_recovery,
            max_retry_attempts: c.max_retry_attempts,
            monitor_enabled: c.monitor_enabled,
            history_limit: c.history_limit,
            flush_interval: c.flush_interval,
        }
    }
}

/// One moment on both clocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    pub mono: Instant,
    pub unix: f64,
}

impl Now {
    pub fn read() -> Now {
        Now {
            mono: Instant::now(),
            unix: crate::clock::unix_now(),
        }
    }
}

/// What one decision under the mutex produced: store ops (in order), acknowledgements to
/// answer after their commit, events and metric updates to report after the mutex.
#[derive(Default)]
pub(crate) struct Effects {
    ops: Vec<Op>,
    acks: Vec<Ack>,
    events: Vec<LedgerEvent>,
    attempts: Vec<AttemptResult>,
    timeouts: Vec<&'static str>,
    wait_seconds: Vec<f64>,
    recoveries: u64,
}

pub(crate) struct State {
    locks: BTreeMap<String, LockState>,
    tasks: BTreeMap<String, Task>,
    history: Bounded<HistoryEntry>,
    actions: Bounded<ActionEntry>,
    timeouts: TimeoutCounters,
    monitor: monitor::MonitorStats,
    next_waiter_id: u64,
    shutting_down: bool,
}

impl State {
    fn history_push(&mut self, entry: HistoryEntry, fx: &mut Effects) {
        let seq = self.history.push(entry.clone());
        fx.ops.push(Op::History { seq, entry });
    }

    fn view(&self, key: &str, now: Now) -> LockView {
        let lock = self.locks.get(key);
        let lease = lock.and_then(|l| l.lease.as_ref());
        LockView {
            lock_key: key.to_string(),
            known: lock.is_some(),
            is_locked: lease.is_some(),
            lock_holder: lease.map(|l| l.holder.clone()),
            task_id: lease.and_then(|l| l.task_id.clone()),
            fencing_token: lease.map(|l| l.fencing_token),
            last_fencing_token: lock.map_or(0, |l| l.fencing.last()),
            acquired_at: lease.map(|l| l.acquired_at),
            expires_at: lease.map(|l| l.expires_at),
            ttl_seconds: lease.map(|l| ttl_whole_seconds(l.remaining(now.mono))),
            lock_age: lease.map(|l| l.age(now.mono)),
            waiters: lock.map_or(0, |l| {
                l.waiters.iter().filter(|w| !w.tx.is_closed()).count()
            }),
        }
    }
}

/// A lock as `GET /api/v1/locks` and the 409 answers show it.
#[derive(Debug, Clone, Serialize)]
pub struct LockView {
    pub lock_key: String,
    /// Whether keel manages this key (configured or a GPU's).
    pub known: bool,
    pub is_locked: bool,
    pub lock_holder: Option<String>,
    pub task_id: Option<String>,
    /// The current holder's token (null when free).
    pub fencing_token: Option<u64>,
    /// The last token issued for this key; the next is larger.
    pub last_fencing_token: u64,
    pub acquired_at: Option<f64>,
    pub expires_at: Option<f64>,
    pub ttl_seconds: Option<u64>,
    pub lock_age: Option<f64>,
    pub waiters: usize,
}

/// A worker's acquire.
#[derive(Debug, Clone)]
pub struct AcquireRequest {
    pub lock_key: String,
    pub holder: String,
    pub task_id: Option<String>,
    /// Seconds; `None` means `lock_timeout`.
    pub ttl_seconds: Option<f64>,
    /// Seconds to queue when held; `None`/0 answers at once.
    pub wait_seconds: Option<f64>,
}

/// A granted lease.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    pub acquired: bool,
    pub lock_key: String,
    pub holder: String,
    pub fencing_token: u64,
    pub expires_at: f64,
    pub ttl_seconds: f64,
    /// Seconds spent queued before the grant.
    pub waited_seconds: f64,
}

/// Why an acquire did not get the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BusyReason {
    /// Held by another holder (answered at once, `wait_seconds` 0).
    Held,
    /// Still held after `wait_seconds`.
    WaitTimeout,
    /// keel is shutting down; waiters are answered at once.
    ShuttingDown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Busy {
    pub acquired: bool,
    pub lock_key: String,
    pub lock_holder: Option<String>,
    pub ttl_seconds: Option<u64>,
    pub reason: BusyReason,
}

pub enum Acquired {
    Held(Held),
    Busy(Busy),
}

#[derive(Debug, Clone, Serialize)]
pub struct Renewed {
    pub renewed: bool,
    pub lock_key: String,
    pub fencing_token: u64,
    pub expires_at: f64,
    pub ttl_seconds: f64,
    pub lock_age: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Released {
    pub released: bool,
    pub lock_key: String,
    pub fencing_token: u64,
    pub held_seconds: f64,
}

/// A renew or release: done, or refused because the token is not the holder's (the
/// current state attached).
pub enum TokenResult<T> {
    Done(T),
    Stale(LockView),
}

/// The reference's `/lock/release` answer.
#[derive(Debug, Clone, Serialize)]
pub struct ForceReleased {
    pub success: bool,
    pub message: String,
    pub lock_key: String,
    pub task_name: String,
    /// The holder and token that were invalidated (null when the lock was free).
    pub released_holder: Option<String>,
    pub released_fencing_token: Option<u64>,
}

/// A GPU cross-check finding, published by the GPU sampler into the ledger's health.
#[derive(Debug, Clone, Serialize)]
pub struct GpuIssue {
    pub gpu: u32,
    pub lock_key: String,
    /// `unlocked_use` or `idle_lock`.
    pub kind: &'static str,
    pub message: String,
}

/// A lock as the GPU sampler sees it.
#[derive(Debug, Clone)]
pub struct LockSnapshot {
    pub lock_key: String,
    pub holder: Option<String>,
    pub held_for: Option<Duration>,
}

/// Cheap to clone; all clones share one ledger.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
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
        let settings = Settings::from(config);
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
        let mut rows: BTreeMap<String, journal::LockRow> = loaded.locks.into_iter().collect();
        let mut counters: BTreeMap<String, stats::LockCounters> =
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

    /// The scrape-time gauges and the `/api/metrics` section; both hold a weak reference so
    /// the registry does not keep the ledger alive.
    fn register_views(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let w = weak.clone();
        self.inner
            .telemetry
            .metrics
            .register(metrics::StateCollector::new(move || {
                let Some(inner) = w.upgrade() else {
                    return metrics::GaugeSnapshot::default();
                };
                let st = inner.lock_state();
                let now = Instant::now();
                let counts =
                    health::task_counts(&st, Now::read(), inner.settings.heartbeat_timeout);
                metrics::GaugeSnapshot {
                    heartbeat_failure_ratio: health::heartbeat_failure_rate(counts),
                    locks: st
                        .locks
                        .iter()
                        .map(|(k, l)| {
                            let held = l.lease.as_ref().is_some_and(|x| !x.is_expired(now));
                            (k.clone(), held, l.fencing.last(), l.waiters.len())
                        })
                        .collect(),
                    tasks: st
                        .tasks
                        .iter()
                        .filter(|(_, t)| !t.is_dead())
                        .map(|(id, t)| (id.clone(), t.age(now).as_secs_f64()))
                        .collect(),
                }
            }));
        self.inner.telemetry.sections.add("ledger", move || {
            let Some(inner) = weak.upgrade() else {
                return serde_json::Value::Null;
            };
            let st = inner.lock_state();
            let now = Instant::now();
            serde_json::json!({
                "locks": st.locks.len(),
                "locks_held": st.locks.values().filter(|l| l.lease.as_ref().is_some_and(|x| !x.is_expired(now))).count(),
                "tasks_running": st.tasks.values().filter(|t| !t.is_dead()).count(),
                "monitor_running": st.monitor.running,
            })
        });
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
        key::check_lock_key(key).map_err(LedgerError::InvalidKey)?;
        if self.inner.lock_state().locks.contains_key(key) {
            Ok(())
        } else {
            Err(LedgerError::UnknownLock(key.to_string()))
        }
    }

    fn ttl(&self, seconds: Option<f64>) -> Result<Duration, LedgerError> {
        let settings = &self.inner.settings;
        lease::requested_ttl(seconds, settings.lock_timeout, settings.max_ttl)
            .map_err(LedgerError::InvalidRequest)
    }

    async fn await_ack(&self, ack: AckRx) -> Result<(), LedgerError> {
        let result = match ack.await {
            Ok(r) => r,
            Err(_) => Err("the ledger journal stopped".to_string()),
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
        let wait = lease::requested_wait(req.wait_seconds, self.inner.settings.max_wait)
            .map_err(LedgerError::InvalidRequest)?;
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

    async fn wait_in_queue(
        &self,
        mut seat: QueueSeat,
        holder: &str,
        ttl: Duration,
        started: Instant,
        deadline: Instant,
    ) -> Result<Acquired, LedgerError> {
        let key = seat.key.clone();
        loop {
            let lease_end = self
                .inner
                .lock_state()
                .locks
                .get(&key)
                .and_then(|l| l.lease.as_ref().map(|x| x.expires_mono));
            let wake = lease_end.map_or(deadline, |e| e.min(deadline));
            let Some(rx) = seat.rx.as_mut() else {
                return Ok(Acquired::Busy(self.busy(&key, BusyReason::ShuttingDown)));
            };
            tokio::select! {
                got = rx => {
                    seat.rx = None;
                    return match got {
                        Ok(grant) => self.granted(&key, holder, ttl, started, grant).await,
                        Err(_) => {
                            // The queue was emptied: keel is shutting down.
                            self.with_state(|st, fx, now| {
                                st.attempt(&key, AttemptResult::Failure, Some((holder, "shutting down")), now, fx)
                            });
                            Ok(Acquired::Busy(self.busy(&key, BusyReason::ShuttingDown)))
                        }
                    };
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
            if Instant::now() >= deadline {
                let raced = self.with_state(|st, fx, now| {
                    st.leave_queue(&key, seat.waiter_id);
                    // A grant sent just before we left the queue still counts.
                    let raced = seat.rx.take().and_then(|mut rx| rx.try_recv().ok());
                    if raced.is_none() {
                        st.attempt(
                            &key,
                            AttemptResult::Timeout,
                            Some((holder, "wait timed out")),
                            now,
                            fx,
                        );
                    }
                    raced
                });
                return match raced {
                    Some(grant) => self.granted(&key, holder, ttl, started, grant).await,
                    None => Ok(Acquired::Busy(self.busy(&key, BusyReason::WaitTimeout))),
                };
            }
            // The holder's lease ran out: settle hands the lock to the queue's head.
            self.with_state(|st, fx, now| {
                st.settle(&key, now, fx);
            });
        }
    }

    async fn granted(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
        started: Instant,
        grant: Grant,
    ) -> Result<Acquired, LedgerError> {
        self.await_ack(grant.ack).await?;
        Ok(Acquired::Held(Held {
            acquired: true,
            lock_key: key.to_string(),
            holder: holder.to_string(),
            fencing_token: grant.fencing_token,
            expires_at: grant.expires_at,
            ttl_seconds: ttl.as_secs_f64(),
            waited_seconds: started.elapsed().as_secs_f64(),
        }))
    }

    fn busy(&self, key: &str, reason: BusyReason) -> Busy {
        let view = self.inner.lock_state().view(key, Now::read());
        Busy {
            acquired: false,
            lock_key: key.to_string(),
            lock_holder: view.lock_holder,
            ttl_seconds: view.ttl_seconds,
            reason,
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
        key::check_lock_key(key).map_err(LedgerError::InvalidKey)?;
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
    pub fn lock_snapshots(&self) -> Vec<LockSnapshot> {
        self.locks()
            .into_iter()
            .map(|v| LockSnapshot {
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
    ) -> Result<serde_json::Value, LedgerError> {
        check_name("task_id", task_id)?;
        update.check().map_err(LedgerError::InvalidRequest)?;
        let answer = self.with_state(|st, fx, now| {
            if !st.heartbeat_update(task_id, update, now, fx) {
                return None;
            }
            Some(serde_json::json!({
                "success": true,
                "task_id": task_id,
                "last_update": now.unix,
                "status": st.tasks.get(task_id).map(|t| t.status_text(now.mono, self.inner.settings.heartbeat_timeout)),
            }))
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
        update.check().map_err(LedgerError::InvalidRequest)?;
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
        key::check_lock_key(key).map_err(LedgerError::InvalidKey)?;
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
                .push(LedgerEvent::Monitor(events::MonitorToggled { running }));
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
    LedgerError::Capacity(format!(
        "{} tasks are tracked already; stop finished tasks or run POST /api/v1/monitoring/heartbeat/cleanup",
        heartbeat::TRACKED_TASK_LIMIT
    ))
}

/// Holder names, task ids and the like: 1..=256 characters, no control characters.
fn check_name(field: &str, value: &str) -> Result<(), LedgerError> {
    if value.trim().is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
        Err(LedgerError::InvalidRequest(format!(
            "{field} must be 1..256 printable characters"
        )))
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

/// A queued acquire's place in line. Dropping it (the request went away) leaves the queue;
/// a grant that already arrived is released again so the lock is not stranded.
struct QueueSeat {
    inner: Arc<Inner>,
    key: String,
    waiter_id: u64,
    rx: Option<oneshot::Receiver<Grant>>,
}

impl Drop for QueueSeat {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        let key = self.key.clone();
        let id = self.waiter_id;
        self.inner.with_state(|st, fx, now| {
            st.leave_queue(&key, id);
            if let Ok(grant) = rx.try_recv() {
                // Nobody will ever use this token: give the lock back (the ack is not awaited).
                let _ = st.release(&key, grant.fencing_token, now, fx);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(history_limit: usize) -> LedgerConfig {
        LedgerConfig {
            locks: vec!["gpu_lock:0".into(), "gpu_lock:1".into()],
            history_limit,
            ..LedgerConfig::default()
        }
    }

    async fn open(dir: &std::path::Path, history_limit: usize) -> Ledger {
        let store = Store::open(dir).unwrap();
        Ledger::open(&config(history_limit), &[], store, Telemetry::new())
            .await
            .unwrap()
    }

    fn request(holder: &str, ttl: f64) -> AcquireRequest {
        AcquireRequest {
            lock_key: "gpu_lock:0".into(),
            holder: holder.into(),
            task_id: None,
            ttl_seconds: Some(ttl),
            wait_seconds: None,
        }
    }

    async fn take(l: &Ledger, holder: &str) -> Held {
        match l.acquire(request(holder, 60.0)).await.unwrap() {
            Acquired::Held(h) => h,
            Acquired::Busy(b) => panic!("busy: {b:?}"),
        }
    }

    #[tokio::test]
    async fn history_is_bounded_and_survives_reopen_with_counters_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let last_token;
        {
            let l = open(dir.path(), 10).await;
            for i in 0..8 {
                let h = take(&l, &format!("w{i}")).await;
                assert!(matches!(
                    l.release("gpu_lock:0", h.fencing_token).await.unwrap(),
                    TokenResult::Done(_)
                ));
            }
            last_token = take(&l, "final").await.fencing_token;
            assert_eq!(last_token, 9);
            l.close().await;
        }
        let l = open(dir.path(), 10).await;
        let status = l.lock_status("gpu_lock:0").unwrap();
        assert_eq!(status["lock_holder"], "final");
        assert_eq!(status["fencing_token"], last_token);
        assert_eq!(status["statistics"]["success_count"], 9);
        let history = l.inner.lock_state().history.newest(100);
        assert_eq!(history.len(), 10, "bounded by history_limit");
        assert_eq!(history[0].task_name, "final");
        assert_eq!(history[0].action, LockAction::Acquire);
        // Reopened with a smaller limit: trimmed, newest kept.
        l.close().await;
        drop(l);
        let l = open(dir.path(), 5).await;
        let history = l.inner.lock_state().history.newest(100);
        assert_eq!(history.len(), 5);
        assert_eq!(history[0].task_name, "final");
        let next = {
            let h = l.force_release("gpu_lock:0", "ops").await.unwrap();
            assert!(h.success);
            take(&l, "after").await.fencing_token
        };
        assert_eq!(next, last_token + 1);
    }

    /// Takes and releases `n` tokens on gpu_lock:0; returns the last one.
    async fn cycle(l: &Ledger, n: usize) -> u64 {
        let mut last = 0;
        for i in 0..n {
            let h = take(l, &format!("w{i}")).await;
            last = h.fencing_token;
            assert!(matches!(
                l.release("gpu_lock:0", last).await.unwrap(),
                TokenResult::Done(_)
            ));
        }
        last
    }

    #[tokio::test]
    async fn tokens_never_go_back_when_the_store_is_lost_or_restored() {
        let dir = tempfile::tempdir().unwrap();
        let store_file = dir.path().join(crate::store::FILE_NAME);
        let backup = dir.path().join("backup.redb");
        let l = open(dir.path(), 10).await;
        cycle(&l, 3).await;
        l.close().await;
        drop(l);
        std::fs::copy(&store_file, &backup).unwrap();
        let l = open(dir.path(), 10).await;
        let before_loss = cycle(&l, 4).await;
        assert_eq!(before_loss, 7, "a clean restart continues without a gap");
        l.close().await;
        drop(l);
        // The store moved away: a new, empty one; tokens continue above the mark.
        std::fs::remove_file(&store_file).unwrap();
        let l = open(dir.path(), 10).await;
        assert_eq!(cycle(&l, 1).await, before_loss + 1);
        let before_restore = cycle(&l, 2).await;
        l.close().await;
        drop(l);
        // An older backup restored: its counter (3) is below what was handed out since.
        std::fs::copy(&backup, &store_file).unwrap();
        let l = open(dir.path(), 10).await;
        assert!(take(&l, "after-restore").await.fencing_token > before_restore);
    }

    #[tokio::test]
    async fn tracked_tasks_are_bounded_until_a_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let l = open(dir.path(), 100).await;
        for i in 0..heartbeat::TRACKED_TASK_LIMIT {
            l.heartbeat(&format!("t{i}"), HeartbeatUpdate::default())
                .unwrap();
        }
        assert!(matches!(
            l.heartbeat("one-more", HeartbeatUpdate::default()),
            Err(LedgerError::Capacity(_))
        ));
        // Known tasks keep working; a stopped task is cleaned and makes room.
        l.heartbeat("t0", HeartbeatUpdate::default()).unwrap();
        assert!(l.heartbeat_stop("t1").unwrap());
        assert_eq!(l.heartbeat_cleanup(), (1, 0));
        l.heartbeat_start("one-more", HeartbeatUpdate::default())
            .unwrap();
    }

    #[tokio::test]
    async fn renew_and_release_need_the_current_token() {
        let dir = tempfile::tempdir().unwrap();
        let l = open(dir.path(), 100).await;
        let h = take(&l, "a").await;
        assert!(matches!(
            l.renew("gpu_lock:0", h.fencing_token + 1, Some(5.0))
                .await
                .unwrap(),
            TokenResult::Stale(_)
        ));
        match l
            .renew("gpu_lock:0", h.fencing_token, Some(5.0))
            .await
            .unwrap()
        {
            TokenResult::Done(r) => assert!(r.expires_at <= h.expires_at),
            TokenResult::Stale(v) => panic!("stale: {v:?}"),
        }
        assert!(matches!(
            l.acquire(request("b", 1.0)).await.unwrap(),
            Acquired::Busy(Busy {
                reason: BusyReason::Held,
                ..
            })
        ));
        assert!(matches!(
            l.release("gpu_lock:1", h.fencing_token).await.unwrap(),
            TokenResult::Stale(_)
        ));
        assert!(matches!(
            l.release("gpu_lock:0", h.fencing_token).await.unwrap(),
            TokenResult::Done(_)
        ));
        assert!(matches!(
            l.release("gpu_lock:0", h.fencing_token).await.unwrap(),
            TokenResult::Stale(_)
        ));
        assert!(matches!(
            l.acquire(request("c", 0.0)).await,
            Err(LedgerError::InvalidRequest(_))
        ));
        assert!(matches!(
            l.acquire(AcquireRequest {
                lock_key: "gpu_lock:7".into(),
                ..request("c", 1.0)
            })
            .await,
            Err(LedgerError::UnknownLock(_))
        ));
    }
}
