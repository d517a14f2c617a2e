//! The typed event bus: anything an operator should see is emitted once and becomes a
//! structured log line, a metric update (`keel_events_total{kind}`) and a message for the
//! dashboard's SSE stream.
//!
//! Domain modules define their own event structs (no central enum to grow) and implement
//! [`Event`]; the bus stores them as [`EventRecord`]s in a bounded ring (for `Last-Event-ID`
//! resume) and broadcasts them. A slow subscriber lags and is told so by the broadcast
//! channel; emitting never waits for anyone.

use super::metrics::Built;
use prometheus::{IntCounterVec, Opts, Registry};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Events kept for resuming SSE clients.
pub(crate) const DEFAULT_BUFFER: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// A typed event. `kind` is a stable dotted name (`breaker.opened`), `component` one of
/// store/proxy/ledger/gpu/executor/alerts; the struct's fields become the event's `data`.
pub trait Event: Serialize {
    fn kind(&self) -> &'static str;
    fn component(&self) -> &'static str;
    /// One human sentence for the log line and the dashboard.
    fn message(&self) -> String;
    fn level(&self) -> Level {
        Level::Info
    }
}

/// What the bus stores and sends.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventRecord {
    pub id: u64,
    /// RFC 3339, UTC.
    pub time: String,
    pub kind: &'static str,
    pub component: &'static str,
    pub level: Level,
    pub message: String,
    pub data: serde_json::Value,
}

pub struct EventBus {
    next_id: AtomicU64,
    capacity: usize,
    ring: Mutex<VecDeque<Arc<EventRecord>>>,
    tx: broadcast::Sender<Arc<EventRecord>>,
    counter: IntCounterVec,
}

impl EventBus {
    pub fn new(capacity: usize, registry: &Registry) -> Self {
        let counter = IntCounterVec::new(
            Opts::new(
                super::catalog::EVENTS_TOTAL,
                "Operator events emitted, by kind",
            ),
            &["kind", "level"],
        )
        .built();
        if let Err(e) = registry.register(Box::new(counter.clone())) {
            tracing::error!(error = %e, "metric registration failed");
        }
        let (tx, _) = broadcast::channel(capacity.max(16));
        EventBus {
            next_id: AtomicU64::new(1),
            capacity: capacity.max(1),
            ring: Mutex::new(VecDeque::with_capacity(capacity)),
            tx,
            counter,
        }
    }

    /// Emits one event: log line, counter, ring buffer, broadcast.
    pub fn emit<E: Event>(&self, event: &E) -> Arc<EventRecord> {
        let record = Arc::new(EventRecord {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            time: crate::clock::now_rfc3339(),
            kind: event.kind(),
            component: event.component(),
            level: event.level(),
            message: event.message(),
            data: serde_json::to_value(event).unwrap_or(serde_json::Value::Null),
        });
        let data = record.data.to_string();
        match record.level {
            Level::Info => {
                tracing::info!(target: "keel::event", kind = record.kind, component = record.component, data = %data, "{}", record.message)
            }
            Level::Warn => {
                tracing::warn!(target: "keel::event", kind = record.kind, component = record.component, data = %data, "{}", record.message)
            }
            Level::Error => {
                tracing::error!(target: "keel::event", kind = record.kind, component = record.component, data = %data, "{}", record.message)
            }
        }
        let level = match record.level {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.counter.with_label_values(&[record.kind, level]).inc();
        {
            let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            if ring.len() == self.capacity {
                ring.pop_front();
            }
            ring.push_back(record.clone());
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(record.clone());
        record
    }

    /// Live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EventRecord>> {
        self.tx.subscribe()
    }

    /// Buffered events with id greater than `last_id` (oldest first), for SSE resume.
    pub fn since(&self, last_id: u64) -> Vec<Arc<EventRecord>> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter().filter(|r| r.id > last_id).cloned().collect()
    }

    /// The newest `n` buffered events, newest last.
    pub fn recent(&self, n: usize) -> Vec<Arc<EventRecord>> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter()
            .skip(ring.len().saturating_sub(n))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Ping {
        n: u32,
    }
    impl Event for Ping {
        fn kind(&self) -> &'static str {
            "test.ping"
        }
        fn component(&self) -> &'static str {
            "test"
        }
        fn message(&self) -> String {
            format!("ping {}", self.n)
        }
    }

    #[test]
    fn ring_is_bounded_and_resume_returns_only_newer() {
        let bus = EventBus::new(3, &Registry::new());
        for n in 0..5 {
            bus.emit(&Ping { n });
        }
        let all = bus.since(0);
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(bus.since(4).len(), 1);
        assert_eq!(all[2].data["n"], 4);
        assert_eq!(all[2].message, "ping 4");
    }

    #[tokio::test]
    async fn subscribers_receive_emitted_events() {
        let bus = EventBus::new(8, &Registry::new());
        let mut rx = bus.subscribe();
        bus.emit(&Ping { n: 7 });
        let got = rx.recv().await.unwrap();
        assert_eq!(got.kind, "test.ping");
    }
}
