//! The ledger's in-memory state — the read model every answer is computed from — and what
//! one decision under its mutex produces ([`Effects`]): store ops in decision order,
//! acknowledgements to answer after their commit, events and metric updates to report once
//! the mutex is released.

use super::answers::LockView;
use super::heartbeat::Task;
use super::history::Bounded;
use super::journal::Ack;
use super::lease::ttl_whole_seconds;
use super::locks::LockState;
use super::monitor::MonitorStats;
use super::operator_events::LedgerEvent;
use super::records::{ActionEntry, HistoryEntry, Op, TimeoutCounters};
use super::stats::AttemptResult;
use std::collections::BTreeMap;
use std::time::Instant;

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
    pub(super) ops: Vec<Op>,
    pub(super) acks: Vec<Ack>,
    pub(super) events: Vec<LedgerEvent>,
    pub(super) attempts: Vec<AttemptResult>,
    pub(super) timeouts: Vec<&'static str>,
    pub(super) wait_seconds: Vec<f64>,
    pub(super) recoveries: u64,
}

pub(crate) struct State {
    pub(super) locks: BTreeMap<String, LockState>,
    pub(super) tasks: BTreeMap<String, Task>,
    pub(super) history: Bounded<HistoryEntry>,
    pub(super) actions: Bounded<ActionEntry>,
    pub(super) timeouts: TimeoutCounters,
    pub(super) monitor: MonitorStats,
    pub(super) next_waiter_id: u64,
    pub(super) shutting_down: bool,
}

impl State {
    pub(super) fn history_push(&mut self, entry: HistoryEntry, fx: &mut Effects) {
        let seq = self.history.push(entry.clone());
        fx.ops.push(Op::History { seq, entry });
    }

    pub(super) fn view(&self, key: &str, now: Now) -> LockView {
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
