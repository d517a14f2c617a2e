//! What clients can hold of keel's listeners, bounded: open connections (a cap per listener,
//! closes by timeout or cap counted) and failed authentications (a budget per client
//! address). Both listeners — the proxy's Pingora threads and the control listener's hyper
//! connections — share these types, so the two enforce and report the same way:
//! `keel_connections_closed_total{listener,reason}`, `keel_connections_open{listener}`,
//! `keel_auth_failures_total{listener}`, `keel_auth_throttled_total{listener}`.

pub(crate) mod auth_failures;
pub(crate) mod connections;

pub(crate) use auth_failures::AuthFailures;
pub(crate) use connections::{CloseReason, ConnLimit, ConnSlot};

/// The listener a limit belongs to (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Proxy,
    Control,
}

impl Listener {
    pub const ALL: [Listener; 2] = [Listener::Proxy, Listener::Control];

    pub fn label(self) -> &'static str {
        match self {
            Listener::Proxy => "proxy",
            Listener::Control => "control",
        }
    }
}
