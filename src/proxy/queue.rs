//! The bounded wait queue: while no node can take a request (every breaker open, a node
//! still prewarming), the request waits here until a node becomes available or its
//! deadline passes. Waiters re-try selection when the pool signals a change and on a short
//! tick (cooldowns end without an event). A full queue answers at once.

use super::metrics::GatewayMetrics;
use crate::config::QueueConfig;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Re-check interval while waiting (cooldowns end silently).
const RECHECK: Duration = Duration::from_millis(25);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the request queue is full")]
    Full,
    #[error("no node became available while the request waited")]
    TimedOut,
}

/// The waiters; `size` and `timeout` come with each wait from the `[proxy.queue]` in
/// force, so a reload changes them for the next request.
#[derive(Default)]
pub struct WaitQueue {
    depth: AtomicUsize,
}

/// Decrements the depth however the wait ends (including a client disconnect).
struct Slot<'a> {
    queue: &'a WaitQueue,
    metrics: &'a GatewayMetrics,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.queue.depth.fetch_sub(1, Ordering::AcqRel);
        self.metrics.queue_depth.dec();
    }
}

impl WaitQueue {
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Acquire)
    }

    /// Waits until `try_take` yields a value, up to the queue timeout or `deadline`.
    pub async fn wait<T, F>(
        &self,
        config: &QueueConfig,
        metrics: &GatewayMetrics,
        changed: &Notify,
        deadline: Instant,
        mut try_take: F,
    ) -> Result<T, QueueError>
    where
        F: FnMut() -> Option<T>,
    {
        let started = Instant::now();
        if self
            .depth
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| {
                (d < config.size).then_some(d + 1)
            })
            .is_err()
        {
            metrics.queue_wait.with_label_values(&["full"]).observe(0.0);
            return Err(QueueError::Full);
        }
        metrics.queue_depth.inc();
        let _slot = Slot {
            queue: self,
            metrics,
        };
        let until = deadline.min(started + config.timeout);
        loop {
            let notified = changed.notified();
            if let Some(v) = try_take() {
                metrics
                    .queue_wait
                    .with_label_values(&["served"])
                    .observe(started.elapsed().as_secs_f64());
                return Ok(v);
            }
            if Instant::now() >= until {
                metrics
                    .queue_wait
                    .with_label_values(&["timeout"])
                    .observe(started.elapsed().as_secs_f64());
                return Err(QueueError::TimedOut);
            }
            let next = (Instant::now() + RECHECK).min(until);
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(next) => {}
            }
        }
    }
}
