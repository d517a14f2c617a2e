//! Lock state and its transitions: acquire (at once or queued FIFO), renew, release by the
//! holder's fencing token, force-release, and expiry.
//!
//! Expiry is lazy and exact: every operation on a lock first *settles* it — a lease whose
//! TTL has passed is released right there (history `timeout`) and the lock handed to the
//! first waiter — so an acquire after the TTL succeeds at once, without waiting for the
//! monitor. Waiters additionally wake at the holder's expiry instant to settle the lock.
//!
//! Hand-off to a waiter happens under the ledger mutex: the waiter gets a [`Grant`] whose
//! acknowledgement fires when the journal committed it. A waiter whose request went away
//! (its receiver dropped) is skipped, so a disconnecting waiter leaves the queue.

use super::fencing::FencingCounter;
use super::journal::{ack_channel, AckRx};
use super::lease::Lease;
use super::operator_events as events;
use super::records::{HistoryEntry, LockAction, LockRow, Op};
use super::state::{Effects, Now, State};
use super::stats::{AttemptResult, LockStats};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub struct LockState {
    pub lease: Option<Lease>,
    pub fencing: FencingCounter,
    pub waiters: VecDeque<Waiter>,
    pub stats: LockStats,
}

impl LockState {
    pub fn new(fencing: FencingCounter, lease: Option<Lease>, stats: LockStats) -> Self {
        LockState {
            lease,
            fencing,
            waiters: VecDeque::new(),
            stats,
        }
    }

    pub fn row(&self) -> LockRow {
        LockRow {
            fencing_last: self.fencing.last(),
            lease: self.lease.as_ref().map(Lease::record),
        }
    }
}

/// A queued acquire.
pub struct Waiter {
    pub id: u64,
    pub holder: String,
    pub task_id: Option<String>,
    pub ttl: Duration,
    pub since: Instant,
    pub tx: oneshot::Sender<Grant>,
}

/// The lock, handed to a waiter; `ack` resolves when the hand-off is durable.
pub struct Grant {
    pub fencing_token: u64,
    pub expires_at: f64,
    pub ack: AckRx,
}

/// What an acquire decided under the mutex.
pub enum AcquireStep {
    Granted {
        fencing_token: u64,
        expires_at: f64,
        ack: AckRx,
    },
    Busy,
    Queued {
        waiter_id: u64,
        rx: oneshot::Receiver<Grant>,
    },
}

/// The outcome of a renew or release: done, or the token is not the holder's.
pub enum TokenStep {
    Done {
        ack: AckRx,
        held_seconds: f64,
        expires_at: f64,
    },
    Stale,
}

impl State {
    /// Expires the lease of `key` if its TTL passed and hands the lock to the next waiter.
    /// Returns whether a lease expired.
    pub(super) fn settle(&mut self, key: &str, now: Now, fx: &mut Effects) -> bool {
        let Some(lock) = self.locks.get_mut(key) else {
            return false;
        };
        let expired = match &lock.lease {
            Some(l) if l.is_expired(now.mono) => lock.lease.take(),
            _ => None,
        };
        let did_expire = expired.is_some();
        if let Some(lease) = expired {
            // The hold ended at the expiry instant, not when we noticed.
            let ended = lease.expires_mono;
            lock.stats.record_hold(lease.acquired_mono, ended);
            lock.stats.counters.expired_count += 1;
            let row = lock.row();
            let counters = lock.stats.counters.clone();
            fx.ops.push(Op::Lock {
                key: key.to_string(),
                row,
            });
            fx.ops.push(Op::LockCounters {
                key: key.to_string(),
                counters,
            });
            self.timeouts.expired_leases += 1;
            self.timeouts.total_timeouts_detected += 1;
            fx.ops.push(Op::TimeoutCounters(self.timeouts.clone()));
            fx.timeouts.push(super::metrics::TIMEOUT_LEASE);
            self.history_push(
                HistoryEntry {
                    action: LockAction::Timeout,
                    task_name: lease.holder.clone(),
                    timestamp: lease.expires_at,
                    success: true,
                    lock_key: key.to_string(),
                    fencing_token: Some(lease.fencing_token),
                    detail: Some("lease expired without a renew".into()),
                },
                fx,
            );
            self.action_push(
                "lease_expired",
                lease
                    .task_id
                    .clone()
                    .unwrap_or_else(|| lease.holder.clone()),
                true,
                Some(key),
                now,
                fx,
            );
            fx.events
                .push(events::LedgerEvent::Expired(events::LockExpired {
                    lock_key: key.to_string(),
                    holder: lease.holder,
                    fencing_token: lease.fencing_token,
                }));
        }
        self.hand_off(key, now, fx);
        did_expire
    }

    /// While the lock is free, grants it to the first waiter still listening.
    fn hand_off(&mut self, key: &str, now: Now, fx: &mut Effects) {
        loop {
            let Some(lock) = self.locks.get_mut(key) else {
                return;
            };
            if lock.lease.is_some() {
                return;
            }
            let Some(waiter) = lock.waiters.pop_front() else {
                return;
            };
            if waiter.tx.is_closed() {
                continue;
            }
            let token = lock.fencing.issue();
            let lease = Lease::new(
                waiter.holder.clone(),
                waiter.task_id.clone(),
                token,
                waiter.ttl,
                now.mono,
                now.unix,
            );
            let (ack_tx, ack_rx) = ack_channel();
            let grant = Grant {
                fencing_token: token,
                expires_at: lease.expires_at,
                ack: ack_rx,
            };
            if waiter.tx.send(grant).is_err() {
                // Went away between the check and the send; the token stays unused.
                continue;
            }
            fx.wait_seconds.push(
                now.mono
                    .saturating_duration_since(waiter.since)
                    .as_secs_f64(),
            );
            self.grant(key, lease, now, fx);
            fx.acks.push(ack_tx);
        }
    }

    /// Installs `lease` on `key` and records the successful attempt.
    fn grant(&mut self, key: &str, lease: Lease, now: Now, fx: &mut Effects) {
        let Some(lock) = self.locks.get_mut(key) else {
            return;
        };
        let entry = HistoryEntry {
            action: LockAction::Acquire,
            task_name: lease.holder.clone(),
            timestamp: now.unix,
            success: true,
            lock_key: key.to_string(),
            fencing_token: Some(lease.fencing_token),
            detail: None,
        };
        fx.events
            .push(events::LedgerEvent::Acquired(events::LockAcquired {
                lock_key: key.to_string(),
                holder: lease.holder.clone(),
                fencing_token: lease.fencing_token,
                expires_at: lease.expires_at,
            }));
        lock.lease = Some(lease);
        let row = lock.row();
        fx.ops.push(Op::Lock {
            key: key.to_string(),
            row,
        });
        self.history_push(entry, fx);
        self.attempt(key, AttemptResult::Success, None, now, fx);
    }

    /// Counts one finished acquire attempt; failures also go to the history (batched).
    pub(super) fn attempt(
        &mut self,
        key: &str,
        result: AttemptResult,
        failed_holder: Option<(&str, &str)>,
        now: Now,
        fx: &mut Effects,
    ) {
        let Some(lock) = self.locks.get_mut(key) else {
            return;
        };
        lock.stats.record_attempt(result);
        fx.ops.push(Op::LockCounters {
            key: key.to_string(),
            counters: lock.stats.counters.clone(),
        });
        fx.attempts.push(result);
        if let Some((holder, why)) = failed_holder {
            self.history_push(
                HistoryEntry {
                    action: LockAction::Acquire,
                    task_name: holder.to_string(),
                    timestamp: now.unix,
                    success: false,
                    lock_key: key.to_string(),
                    fencing_token: None,
                    detail: Some(why.to_string()),
                },
                fx,
            );
        }
    }

    /// Acquire: granted at once when free and nobody queues before us; else queued when
    /// `wait` is set, else busy.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn try_acquire(
        &mut self,
        key: &str,
        holder: &str,
        task_id: Option<&str>,
        ttl: Duration,
        wait: Duration,
        now: Now,
        fx: &mut Effects,
    ) -> AcquireStep {
        self.settle(key, now, fx);
        let shutting_down = self.shutting_down;
        let next_id = self.next_waiter_id;
        let Some(lock) = self.locks.get_mut(key) else {
            return AcquireStep::Busy;
        };
        if lock.lease.is_none() && lock.waiters.iter().all(|w| w.tx.is_closed()) {
            lock.waiters.clear();
            let token = lock.fencing.issue();
            let lease = Lease::new(
                holder.to_string(),
                task_id.map(str::to_string),
                token,
                ttl,
                now.mono,
                now.unix,
            );
            let expires_at = lease.expires_at;
            fx.wait_seconds.push(0.0);
            self.grant(key, lease, now, fx);
            let (ack_tx, ack) = ack_channel();
            fx.acks.push(ack_tx);
            return AcquireStep::Granted {
                fencing_token: token,
                expires_at,
                ack,
            };
        }
        if wait.is_zero() || shutting_down {
            self.attempt(key, AttemptResult::Failure, Some((holder, "held")), now, fx);
            return AcquireStep::Busy;
        }
        let (tx, rx) = oneshot::channel();
        lock.waiters.push_back(Waiter {
            id: next_id,
            holder: holder.to_string(),
            task_id: task_id.map(str::to_string),
            ttl,
            since: now.mono,
            tx,
        });
        self.next_waiter_id += 1;
        AcquireStep::Queued {
            waiter_id: next_id,
            rx,
        }
    }

    /// Removes a waiter (its wait ended or its request went away).
    pub(super) fn leave_queue(&mut self, key: &str, waiter_id: u64) -> bool {
        let Some(lock) = self.locks.get_mut(key) else {
            return false;
        };
        let before = lock.waiters.len();
        lock.waiters.retain(|w| w.id != waiter_id);
        lock.waiters.len() != before
    }

    /// Renew: only the current holder's token, only before expiry.
    pub(super) fn renew(
        &mut self,
        key: &str,
        token: u64,
        ttl: Duration,
        now: Now,
        fx: &mut Effects,
    ) -> TokenStep {
        self.settle(key, now, fx);
        let Some(lock) = self.locks.get_mut(key) else {
            return TokenStep::Stale;
        };
        match lock.lease.as_mut() {
            Some(lease) if lease.fencing_token == token => {
                lease.renew(ttl, now.mono, now.unix);
                let held_seconds = lease.age(now.mono);
                let expires_at = lease.expires_at;
                let row = lock.row();
                fx.ops.push(Op::Lock {
                    key: key.to_string(),
                    row,
                });
                let (ack_tx, ack) = ack_channel();
                fx.acks.push(ack_tx);
                TokenStep::Done {
                    ack,
                    held_seconds,
                    expires_at,
                }
            }
            _ => TokenStep::Stale,
        }
    }

    /// Release by the holder's token; the lock goes to the next waiter.
    pub(super) fn release(
        &mut self,
        key: &str,
        token: u64,
        now: Now,
        fx: &mut Effects,
    ) -> TokenStep {
        self.settle(key, now, fx);
        let matches = self
            .locks
            .get(key)
            .and_then(|l| l.lease.as_ref())
            .is_some_and(|l| l.fencing_token == token);
        if !matches {
            return TokenStep::Stale;
        }
        let Some(lease) = self.end_hold(key, LockAction::Release, None, now, fx) else {
            return TokenStep::Stale;
        };
        let (ack_tx, ack) = ack_channel();
        fx.acks.push(ack_tx);
        self.hand_off(key, now, fx);
        TokenStep::Done {
            ack,
            held_seconds: lease.age(now.mono),
            expires_at: lease.expires_at,
        }
    }

    /// Ends the current hold of `key` (release, force-release, recovery): history, stats,
    /// the lock row. Returns the lease that ended; `None` when the lock was free.
    pub(super) fn end_hold(
        &mut self,
        key: &str,
        action: LockAction,
        by: Option<&str>,
        now: Now,
        fx: &mut Effects,
    ) -> Option<Lease> {
        let lock = self.locks.get_mut(key)?;
        let lease = lock.lease.take()?;
        lock.stats.record_hold(lease.acquired_mono, now.mono);
        if action != LockAction::Release {
            lock.stats.counters.force_released_count += 1;
        }
        let row = lock.row();
        fx.ops.push(Op::Lock {
            key: key.to_string(),
            row,
        });
        fx.ops.push(Op::LockCounters {
            key: key.to_string(),
            counters: lock.stats.counters.clone(),
        });
        let task_name = by.unwrap_or(&lease.holder).to_string();
        self.history_push(
            HistoryEntry {
                action,
                task_name,
                timestamp: now.unix,
                success: true,
                lock_key: key.to_string(),
                fencing_token: Some(lease.fencing_token),
                detail: (action != LockAction::Release)
                    .then(|| format!("holder was {}", lease.holder)),
            },
            fx,
        );
        let released = events::LockReleased {
            lock_key: key.to_string(),
            holder: lease.holder.clone(),
            fencing_token: lease.fencing_token,
            held_seconds: lease.age(now.mono),
        };
        fx.events.push(match action {
            LockAction::ForceRelease | LockAction::TimeoutRecovery => {
                events::LedgerEvent::ForceReleased(events::LockForceReleased {
                    released,
                    by: by.unwrap_or("manual").to_string(),
                    recovery: action == LockAction::TimeoutRecovery,
                })
            }
            _ => events::LedgerEvent::Released(released),
        });
        Some(lease)
    }

    /// Force-release (operator or recovery): the holder's token stops working at once and
    /// the lock goes to the next waiter. Returns the lease that was released.
    pub(super) fn force_release(
        &mut self,
        key: &str,
        action: LockAction,
        by: &str,
        now: Now,
        fx: &mut Effects,
    ) -> Option<Lease> {
        self.settle(key, now, fx);
        let lease = self.end_hold(key, action, Some(by), now, fx);
        match &lease {
            Some(_) => self.hand_off(key, now, fx),
            None => self.history_push(
                HistoryEntry {
                    action,
                    task_name: by.to_string(),
                    timestamp: now.unix,
                    success: false,
                    lock_key: key.to_string(),
                    fencing_token: None,
                    detail: Some("lock was not held".into()),
                },
                fx,
            ),
        }
        lease
    }
}
