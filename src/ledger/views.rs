//! The ledger's scrape-time views: the Prometheus gauges computed from the state when
//! `/metrics` is read, and the `ledger` section of `/api/metrics` and the dashboard. Both
//! hold a weak reference, so the registry does not keep the ledger alive.

use super::health;
use super::metrics::{GaugeReading, StateCollector};
use super::state::Now;
use super::{Inner, Ledger};
use serde::Serialize;
use std::sync::{Arc, Weak};
use std::time::Instant;

/// The `ledger` section of `/api/metrics` and the dashboard's live payload.
#[derive(Debug, Serialize)]
struct Section {
    locks: usize,
    locks_held: usize,
    tasks_running: usize,
    monitor_running: bool,
}

impl Ledger {
    pub(super) fn register_views(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let w = weak.clone();
        self.inner
            .telemetry
            .metrics
            .register(StateCollector::new(move || {
                let Some(inner) = w.upgrade() else {
                    return GaugeReading::default();
                };
                let st = inner.lock_state();
                let now = Instant::now();
                let counts =
                    health::task_counts(&st, Now::read(), inner.settings.heartbeat_timeout);
                GaugeReading {
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
            let section = Section {
                locks: st.locks.len(),
                locks_held: st
                    .locks
                    .values()
                    .filter(|l| l.lease.as_ref().is_some_and(|x| !x.is_expired(now)))
                    .count(),
                tasks_running: st.tasks.values().filter(|t| !t.is_dead()).count(),
                monitor_running: st.monitor.running,
            };
            serde_json::to_value(section).unwrap_or_default()
        });
    }
}
