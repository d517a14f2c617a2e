//! The ledger's durable log in redb, written by one dedicated thread.
//!
//! In-memory state is the read model; this journal is what survives a crash. Every state
//! change is decided under the ledger's mutex and submitted here in that same order, so the
//! store sees changes in the order clients could observe them. The writer commits
//! submissions in groups (one `Durability::Immediate` transaction for everything queued),
//! which is what lets 16 clients share one fsync.
//!
//! Two kinds of submission:
//! - *acknowledged* (acquire, renew, release, force-release, expiry hand-offs, recoveries):
//!   the writer commits at once and answers each acknowledgement after the commit; the
//!   HTTP response waits for it.
//! - *batched* (heartbeat updates, statistics, failed-attempt history): kept in memory by
//!   the writer, latest value per key, and committed with the next acknowledged submission
//!   or after `flush_interval`, whichever is first. A crash can lose at most that interval
//!   of heartbeat progress and counters, never a lock or a fencing token.
//!
//! Before a commit that carries a fencing token above its key's high-water mark, the writer
//! raises the mark ([`HighWater::cover`]); a failure there fails the commit like a store
//! error, so no token is answered that the mark does not cover.
//!
//! Tables (names carry the layout version; values are JSON):
//! `ledger_locks_v1` key → [`LockRow`], `ledger_history_v1` seq → history entry,
//! `ledger_actions_v1` seq → action entry, `ledger_tasks_v1` task id → task record,
//! `ledger_counters_v1` `lock:<key>` / `timeouts` → counters.

use super::error::JournalError;
use super::fencing::HighWater;
use super::records::{
    ActionEntry, HistoryEntry, LockCounters, LockRow, Op, TaskRecord, TimeoutCounters,
};
use crate::store::{Store, StoreError};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const LOCKS: TableDefinition<&str, &[u8]> = TableDefinition::new("ledger_locks_v1");
const HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("ledger_history_v1");
const ACTIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("ledger_actions_v1");
const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("ledger_tasks_v1");
const COUNTERS: TableDefinition<&str, &[u8]> = TableDefinition::new("ledger_counters_v1");
const TIMEOUT_COUNTERS_KEY: &str = "timeouts";

/// Answered once the submission's transaction committed (or failed).
pub type Ack = oneshot::Sender<Result<(), JournalError>>;
pub type AckRx = oneshot::Receiver<Result<(), JournalError>>;

pub fn ack_channel() -> (Ack, AckRx) {
    oneshot::channel()
}

enum Msg {
    Submit { ops: Vec<Op>, acks: Vec<Ack> },
    Close(std::sync::mpsc::SyncSender<()>),
}

/// Everything the store held at startup.
#[derive(Default)]
pub struct Loaded {
    pub locks: Vec<(String, LockRow)>,
    pub history: Vec<(u64, HistoryEntry)>,
    pub actions: Vec<(u64, ActionEntry)>,
    pub tasks: Vec<(String, TaskRecord)>,
    pub lock_counters: Vec<(String, LockCounters)>,
    pub timeout_counters: TimeoutCounters,
}

/// The handle the ledger submits through; cheap to share.
pub struct Journal {
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The last commit error, until a later commit succeeds.
    failure: Arc<Mutex<Option<JournalError>>>,
}

impl Journal {
    /// Starts the writer thread; `observe` histograms get each commit's duration and size.
    pub fn start(
        store: Store,
        fence: Arc<HighWater>,
        flush_interval: Duration,
        history_limit: usize,
        observe: CommitObserver,
    ) -> Journal {
        let (tx, rx) = mpsc::channel();
        let failure = Arc::new(Mutex::new(None));
        let writer = Writer {
            store,
            fence,
            flush_interval,
            history_limit: history_limit as u64,
            failure: failure.clone(),
            ordered: Vec::new(),
            acks: Vec::new(),
            tasks: HashMap::new(),
            counters: HashMap::new(),
            timeout_counters: None,
            oldest_pending: None,
            observe,
        };
        let thread = std::thread::Builder::new()
            .name("keel-ledger-journal".into())
            .spawn(move || writer.run(rx))
            .ok();
        if thread.is_none() {
            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(JournalError::NotStarted);
        }
        Journal {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(thread),
            failure,
        }
    }

    /// Queues `ops`; each ack is answered after they (and everything before them) committed.
    /// With no acks the ops are batched. After [`Journal::close`] acks fail at once.
    pub fn submit(&self, ops: Vec<Op>, acks: Vec<Ack>) {
        if ops.is_empty() && acks.is_empty() {
            return;
        }
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let sent = match guard.as_ref() {
            Some(tx) => tx.send(Msg::Submit { ops, acks }).map_err(|e| e.0),
            None => Err(Msg::Submit { ops, acks }),
        };
        if let Err(Msg::Submit { acks, .. }) = sent {
            for ack in acks {
                let _ = ack.send(Err(JournalError::Closed));
            }
        }
    }

    pub fn failure(&self) -> Option<JournalError> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Commits everything pending and stops the writer (blocking; call off the runtime).
    pub fn close(&self) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(tx) = tx {
            let (done_tx, done_rx) = mpsc::sync_channel(1);
            if tx.send(Msg::Close(done_tx)).is_ok() {
                let _ = done_rx.recv();
            }
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

struct Writer {
    store: Store,
    fence: Arc<HighWater>,
    flush_interval: Duration,
    history_limit: u64,
    failure: Arc<Mutex<Option<JournalError>>>,
    /// Ops whose order matters (locks, history, actions), oldest first.
    ordered: Vec<Op>,
    acks: Vec<Ack>,
    /// Batched values, latest per key.
    tasks: HashMap<String, Option<TaskRecord>>,
    counters: HashMap<String, LockCounters>,
    timeout_counters: Option<TimeoutCounters>,
    /// When the oldest uncommitted batched op arrived.
    oldest_pending: Option<Instant>,
    observe: CommitObserver,
}

/// Histograms the writer reports each commit into.
pub struct CommitObserver {
    pub seconds: prometheus::Histogram,
    pub ops: prometheus::Histogram,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        loop {
            let wait = match self.oldest_pending {
                Some(since) => self.flush_interval.saturating_sub(since.elapsed()),
                None => Duration::from_secs(3600),
            };
            let mut closing = None;
            match rx.recv_timeout(wait) {
                Ok(msg) => closing = self.take(msg),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.commit();
                    return;
                }
            }
            while closing.is_none() {
                match rx.try_recv() {
                    Ok(msg) => closing = self.take(msg),
                    Err(_) => break,
                }
            }
            let due = self
                .oldest_pending
                .is_some_and(|since| since.elapsed() >= self.flush_interval);
            if !self.acks.is_empty() || due || closing.is_some() {
                self.commit();
            }
            if let Some(done) = closing {
                let _ = done.send(());
                return;
            }
        }
    }

    /// Files one message; returns the close signal if it was one.
    fn take(&mut self, msg: Msg) -> Option<mpsc::SyncSender<()>> {
        match msg {
            Msg::Close(done) => Some(done),
            Msg::Submit { ops, acks } => {
                for op in ops {
                    match op {
                        Op::Task { task_id, record } => {
                            self.tasks.insert(task_id, record);
                        }
                        Op::LockCounters { key, counters } => {
                            self.counters.insert(key, counters);
                        }
                        Op::TimeoutCounters(c) => self.timeout_counters = Some(c),
                        other => self.ordered.push(other),
                    }
                }
                self.acks.extend(acks);
                if self.oldest_pending.is_none() {
                    self.oldest_pending = Some(Instant::now());
                }
                None
            }
        }
    }

    fn commit(&mut self) {
        self.oldest_pending = None;
        let ordered = std::mem::take(&mut self.ordered);
        let tasks = std::mem::take(&mut self.tasks);
        let counters = std::mem::take(&mut self.counters);
        let timeouts = self.timeout_counters.take();
        let acks = std::mem::take(&mut self.acks);
        if ordered.is_empty() && tasks.is_empty() && counters.is_empty() && timeouts.is_none() {
            for ack in acks {
                let _ = ack.send(Ok(()));
            }
            return;
        }
        let started = Instant::now();
        let tokens = ordered.iter().filter_map(|op| match op {
            Op::Lock { key, row } => Some((key.as_str(), row.fencing_last)),
            _ => None,
        });
        let result = match self.fence.cover(tokens) {
            Ok(()) => self
                .write(&ordered, &tasks, &counters, timeouts.as_ref())
                .map_err(|e| JournalError::Store(Arc::new(e))),
            Err(e) => Err(JournalError::Fence(Arc::new(e))),
        };
        self.observe
            .seconds
            .observe(started.elapsed().as_secs_f64());
        let size = ordered.len() + tasks.len() + counters.len() + usize::from(timeouts.is_some());
        self.observe.ops.observe(size as f64);
        {
            let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            match &result {
                Ok(()) => *failure = None,
                Err(e) => {
                    tracing::error!(error = %e, ops = ordered.len(), "ledger journal commit failed");
                    *failure = Some(e.clone());
                }
            }
        }
        for ack in acks {
            let _ = ack.send(result.clone());
        }
    }

    fn write(
        &self,
        ordered: &[Op],
        tasks: &HashMap<String, Option<TaskRecord>>,
        counters: &HashMap<String, LockCounters>,
        timeouts: Option<&TimeoutCounters>,
    ) -> Result<(), StoreError> {
        let txn = self.store.begin_write()?;
        {
            let mut locks = txn.open_table(LOCKS)?;
            let mut history = txn.open_table(HISTORY)?;
            let mut actions = txn.open_table(ACTIONS)?;
            for op in ordered {
                match op {
                    Op::Lock { key, row } => {
                        locks.insert(key.as_str(), serde_json::to_vec(row)?.as_slice())?;
                    }
                    Op::History { seq, entry } => {
                        history.insert(*seq, serde_json::to_vec(entry)?.as_slice())?;
                        if *seq > self.history_limit {
                            history.remove(*seq - self.history_limit)?;
                        }
                    }
                    Op::Action { seq, entry } => {
                        actions.insert(*seq, serde_json::to_vec(entry)?.as_slice())?;
                        if *seq > self.history_limit {
                            actions.remove(*seq - self.history_limit)?;
                        }
                    }
                    // Batched kinds never land in `ordered`.
                    Op::Task { .. } | Op::LockCounters { .. } | Op::TimeoutCounters(_) => {}
                }
            }
            let mut task_table = txn.open_table(TASKS)?;
            for (id, record) in tasks {
                match record {
                    Some(r) => {
                        task_table.insert(id.as_str(), serde_json::to_vec(r)?.as_slice())?;
                    }
                    None => {
                        task_table.remove(id.as_str())?;
                    }
                }
            }
            let mut counter_table = txn.open_table(COUNTERS)?;
            for (key, c) in counters {
                let k = format!("lock:{key}");
                counter_table.insert(k.as_str(), serde_json::to_vec(c)?.as_slice())?;
            }
            if let Some(t) = timeouts {
                counter_table.insert(TIMEOUT_COUNTERS_KEY, serde_json::to_vec(t)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// Creates the tables if missing and reads everything back (blocking).
pub fn load(store: &Store, history_limit: usize) -> Result<Loaded, StoreError> {
    let txn = store.begin_write()?;
    let mut out = Loaded::default();
    {
        let locks = txn.open_table(LOCKS)?;
        for row in locks.iter()? {
            let (k, v) = row?;
            out.locks
                .push((k.value().to_string(), serde_json::from_slice(v.value())?));
        }
        out.history = read_seq(&txn, HISTORY, history_limit)?;
        out.actions = read_seq(&txn, ACTIONS, history_limit)?;
        let tasks = txn.open_table(TASKS)?;
        for row in tasks.iter()? {
            let (k, v) = row?;
            out.tasks
                .push((k.value().to_string(), serde_json::from_slice(v.value())?));
        }
        let counters = txn.open_table(COUNTERS)?;
        for row in counters.iter()? {
            let (k, v) = row?;
            let key = k.value();
            if key == TIMEOUT_COUNTERS_KEY {
                out.timeout_counters = serde_json::from_slice(v.value())?;
            } else if let Some(lock) = key.strip_prefix("lock:") {
                out.lock_counters
                    .push((lock.to_string(), serde_json::from_slice(v.value())?));
            }
        }
    }
    txn.commit()?;
    Ok(out)
}

/// The newest `limit` entries of a sequence table; older ones (a smaller limit than the
/// previous run's) are deleted.
fn read_seq<T: serde::de::DeserializeOwned>(
    txn: &WriteTransaction,
    def: TableDefinition<u64, &[u8]>,
    limit: usize,
) -> Result<Vec<(u64, T)>, StoreError> {
    let mut table = txn.open_table(def)?;
    let mut out = Vec::new();
    let mut stale = Vec::new();
    for row in table.iter()?.rev() {
        let (k, v) = row?;
        if out.len() < limit {
            out.push((k.value(), serde_json::from_slice(v.value())?));
        } else {
            stale.push(k.value());
        }
    }
    for seq in stale {
        table.remove(seq)?;
    }
    Ok(out)
}
