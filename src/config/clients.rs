//! What one client may hold on a listener: how long it may take to send a request head, how
//! long a kept-alive connection may sit idle, how many connections all clients may hold at
//! once, and how many failed authentications an address may make per minute. `[control]`
//! and `[proxy]` carry the same four keys (each section its own values); this module holds
//! their defaults and the one check both sections run.

use super::validate::Scope;
use std::time::Duration;

/// A new connection must deliver its first complete request head within this.
pub(super) const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A kept-alive connection must deliver its next complete request head within this after
/// its previous response (nginx's `keepalive_timeout` is 75 s; 60 s is a common choice).
pub(super) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Control listener connections: operators, workers, Prometheus, dashboards.
pub(super) const DEFAULT_CONTROL_MAX_CONNECTIONS: usize = 1024;
/// Proxy listener connections: LLM clients, many of them streaming at once.
pub(super) const DEFAULT_PROXY_MAX_CONNECTIONS: usize = 10_000;
/// Failed authentications per client address and minute (also the burst).
pub(super) const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 20;

/// Longest timeout either listener accepts: beyond this a timeout protects nothing.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The checks shared by `[control]` and `[proxy]`.
pub(super) fn validate(
    v: &mut Scope<'_>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
    auth_failures_per_minute: u32,
) {
    for (key, d) in [
        ("header_read_timeout", header_read_timeout),
        ("idle_timeout", idle_timeout),
    ] {
        v.positive_duration(key, d);
        if d > MAX_TIMEOUT {
            v.error(
                key,
                format!(
                    "must be at most {}",
                    humantime::format_duration(MAX_TIMEOUT)
                ),
            );
        }
    }
    // A kept-alive connection's wait for its next head is the idle timeout; a fresh one's
    // the header timeout. A header timeout above the idle timeout would give a client that
    // never sent anything more time than one that already completed a request.
    if header_read_timeout > idle_timeout {
        v.error("header_read_timeout", "must not exceed idle_timeout");
    }
    v.range("max_connections", max_connections, 1, 1_000_000);
    v.range(
        "auth_failures_per_minute",
        auth_failures_per_minute,
        1,
        100_000,
    );
}
