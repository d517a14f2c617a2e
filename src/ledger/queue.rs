//! Queued acquires: a waiter's place in line ([`QueueSeat`]) and the wait itself — woken by
//! a hand-off, by the holder's expiry instant (to settle the lock) or by its deadline.

use super::answers::{Acquired, Busy, BusyReason, Held};
use super::locks::Grant;
use super::state::Now;
use super::stats::AttemptResult;
use super::{Inner, Ledger, LedgerError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A queued acquire's place in line. Dropping it (the request went away) leaves the queue;
/// a grant that already arrived is released again so the lock is not stranded.
pub(super) struct QueueSeat {
    pub(super) inner: Arc<Inner>,
    pub(super) key: String,
    pub(super) waiter_id: u64,
    pub(super) rx: Option<oneshot::Receiver<Grant>>,
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

impl Ledger {
    pub(super) async fn wait_in_queue(
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

    pub(super) fn busy(&self, key: &str, reason: BusyReason) -> Busy {
        let view = self.inner.lock_state().view(key, Now::read());
        Busy {
            acquired: false,
            lock_key: key.to_string(),
            lock_holder: view.lock_holder,
            ttl_seconds: view.ttl_seconds,
            reason,
        }
    }
}
