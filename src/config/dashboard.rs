//! `[dashboard]`: the embedded web UI and its browser sessions.
//!
//! Browsers cannot put the admin token on an `EventSource`, so the login form exchanges it
//! for a session cookie; these keys bound how long and how many such sessions live.

use super::validate::Scope;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// Serve the web UI at `/` (the APIs stay available either way).
    pub enabled: bool,
    /// Lifetime of a browser session from login (the cookie's Max-Age).
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Sessions kept in memory; the oldest is dropped when a login would exceed it.
    pub max_sessions: usize,
    /// Mark the session cookie `Secure` (set when keel sits behind HTTPS).
    pub secure_cookie: bool,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            enabled: true,
            session_ttl: Duration::from_secs(12 * 3600),
            max_sessions: 64,
            secure_cookie: false,
        }
    }
}

impl DashboardConfig {
    pub(super) fn validate(&self, v: &mut Scope<'_>) {
        v.positive_duration("session_ttl", self.session_ttl);
        v.range("max_sessions", self.max_sessions, 1, 10_000);
    }
}
