//! The connection cap of one listener and the count of connections keel closed on a client.
//!
//! Admission is one atomic add per connection (never per request): past the cap the new
//! connection is closed at once, before a byte is read — under a connection flood, answering
//! would cost more than refusing, and a client that is refused sees a closed connection.

use super::Listener;
use crate::telemetry::Metrics;
use prometheus::{IntCounter, IntGauge};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Why keel closed a client connection (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// A new connection did not deliver a complete request head in `header_read_timeout`.
    HeaderTimeout,
    /// A kept-alive connection did not deliver its next request head in `idle_timeout`.
    IdleTimeout,
    /// The listener already held `max_connections`.
    Limit,
    /// The TLS handshake failed (no or a rejected client certificate, no common protocol,
    /// not TLS at all).
    TlsHandshake,
}

impl CloseReason {
    pub const ALL: [CloseReason; 4] = [
        CloseReason::HeaderTimeout,
        CloseReason::IdleTimeout,
        CloseReason::Limit,
        CloseReason::TlsHandshake,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CloseReason::HeaderTimeout => "header_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Limit => "limit",
            CloseReason::TlsHandshake => "tls_handshake",
        }
    }
}

/// Open connections of one listener against its cap.
pub struct ConnLimit {
    open: AtomicUsize,
    max: usize,
    open_gauge: IntGauge,
    /// `keel_connections_closed_total{listener}` by [`CloseReason::ALL`] order, resolved once.
    closed: [IntCounter; 4],
}

/// One admitted connection; dropping it frees its place.
pub struct ConnSlot(Arc<ConnLimit>);

impl ConnLimit {
    pub fn new(listener: Listener, max: usize, metrics: &Metrics) -> Arc<Self> {
        let label = listener.label();
        Arc::new(ConnLimit {
            open: AtomicUsize::new(0),
            max,
            open_gauge: metrics.connections_open.with_label_values(&[label]),
            closed: CloseReason::ALL.map(|r| {
                metrics
                    .connections_closed
                    .with_label_values(&[label, r.label()])
            }),
        })
    }

    /// A place for a new connection, or `None` (counted as [`CloseReason::Limit`]) when the
    /// listener is full.
    pub fn admit(self: &Arc<Self>) -> Option<ConnSlot> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            self.closed(CloseReason::Limit);
            return None;
        }
        self.open_gauge.inc();
        Some(ConnSlot(self.clone()))
    }

    /// Counts a connection keel closed for `reason`.
    pub fn closed(&self, reason: CloseReason) {
        self.closed[reason as usize].inc();
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.open_gauge.dec();
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_refuses_and_counts_then_frees_places() {
        let metrics = Metrics::new();
        let limit = ConnLimit::new(Listener::Control, 2, &metrics);
        let a = limit.admit().expect("first");
        let _b = limit.admit().expect("second");
        assert!(limit.admit().is_none());
        assert_eq!(limit.open(), 2);
        drop(a);
        assert!(limit.admit().is_some());
        let closed = metrics
            .connections_closed
            .with_label_values(&["control", "limit"])
            .get();
        assert_eq!(closed, 1);
    }
}
