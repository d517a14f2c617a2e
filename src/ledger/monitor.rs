//! The monitor: runs the timeout check over every lock and task each `check_interval`,
//! and can be started and stopped through the API (a `watch` switch; the loop parks while
//! stopped). Its counters feed `/monitor/status`, `/monitor/health` and `/statistics`.

use super::Ledger;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Default, Clone)]
pub(super) struct MonitorStats {
    pub running: bool,
    /// Unix seconds of the last start, while running.
    pub start_time: Option<f64>,
    /// Monotonic start, for `uptime`.
    pub started_mono: Option<std::time::Instant>,
    pub last_check: Option<f64>,
    pub checks_performed: u64,
    /// Health issues seen by checks, summed over checks.
    pub issues_detected: u64,
    pub timeouts_detected: u64,
    pub tasks_recovered: u64,
    pub total_check_seconds: f64,
}

impl MonitorStats {
    pub(super) fn uptime(&self) -> f64 {
        self.started_mono
            .filter(|_| self.running)
            .map_or(0.0, |s| s.elapsed().as_secs_f64())
    }

    pub(super) fn average_check_ms(&self) -> f64 {
        if self.checks_performed == 0 {
            0.0
        } else {
            self.total_check_seconds * 1000.0 / self.checks_performed as f64
        }
    }
}

/// The monitor loop; checks while the switch is on, parks while it is off.
pub(super) fn spawn(
    ledger: Ledger,
    mut switch: watch::Receiver<bool>,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if !*switch.borrow_and_update() {
                if switch.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate: a (re)started monitor checks at once.
            loop {
                tokio::select! {
                    _ = tick.tick() => ledger.monitor_check().await,
                    changed = switch.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        break;
                    }
                }
            }
        }
    })
}
