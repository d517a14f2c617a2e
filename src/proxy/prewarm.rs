//! Prewarm: before a node takes traffic (added at runtime, enabled again, leaving the open
//! breaker state, re-entering after a shift rollback) keel sends `[proxy.prewarm] attempts`
//! probes — `GET health_path`, or `HEAD /` when the path is empty — over the node's own
//! keep-alive pool ([`super::conns`]), so the node's first requests find a warm connection
//! there. One probe with a status below 500 activates the node; otherwise it stays out and
//! is tried again after `retry_interval` (or after its breaker's next cooldown).

use super::node::Node;
use super::node_events::{
    NodePrewarmed, NodePrewarming, NodeSwitched, PrewarmFailed, PrewarmProbe,
};
use super::Gateway;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest body read from a probe answer before the connection is dropped instead of reused.
const MAX_PROBE_BODY: usize = 64 * 1024;

/// Starts a prewarm of `node` in the background unless one is running.
pub(crate) fn spawn(gw: &Arc<Gateway>, node: &Arc<Node>, reason: &str) {
    if !node.begin_prewarm() {
        return;
    }
    let gw = gw.clone();
    let node = node.clone();
    let reason = reason.to_string();
    tokio::spawn(async move {
        run(&gw, &node, &reason).await;
        node.end_prewarm();
    });
}

/// Chooses why a node that is out of rotation gets prewarmed now.
pub(crate) fn reason_for(node: &Node) -> &'static str {
    let c = node.control();
    if c.breaker.state() != super::breaker::BreakerState::Closed {
        "breaker cooldown over"
    } else if c.shift.is_rolled_back() {
        "re-entering after a shift rollback"
    } else {
        "joined the pool"
    }
}

async fn run(gw: &Arc<Gateway>, node: &Arc<Node>, reason: &str) {
    // A copy: the probes span awaits, and a reload meanwhile applies to the next prewarm.
    let cfg = gw.pool.config().prewarm.clone();
    let events = &gw.pool.telemetry.events;
    events.emit(&NodePrewarming {
        node: node.name.clone(),
        reason: reason.to_string(),
    });
    let mut successes = 0;
    for attempt in 1..=cfg.attempts {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(cfg.timeout, probe(gw, node)).await {
            Ok(r) => r,
            Err(_) => Err(ProbeError::Timeout(cfg.timeout)),
        };
        let latency = started.elapsed();
        gw.pool
            .metrics
            .prewarm
            .with_label_values(&[&node.name])
            .observe(latency.as_secs_f64());
        let (success, detail) = match outcome {
            Ok(status) if status < 500 => (true, format!("status {status}")),
            Ok(status) => (false, format!("status {status}")),
            Err(e) => (false, e.to_string()),
        };
        successes += u32::from(success);
        events.emit(&PrewarmProbe {
            node: node.name.clone(),
            attempt,
            attempts: cfg.attempts,
            success,
            latency_ms: latency.as_millis() as u64,
            detail,
        });
    }
    let now = Instant::now();
    if successes > 0 {
        events.emit(&NodePrewarmed {
            node: node.name.clone(),
            successes,
            attempts: cfg.attempts,
        });
        activate(gw, node, reason, now);
    } else {
        let reopened = {
            let mut c = node.control();
            (c.breaker.state() != super::breaker::BreakerState::Closed)
                .then(|| c.breaker.reopen(now, "prewarm probes failed".into()))
        };
        let mut next = now + cfg.retry_interval;
        if let Some(t) = reopened {
            if let super::breaker::Transition::Opened { cooldown, .. } = &t {
                next = now + *cooldown;
            }
            gw.pool.on_breaker(node, t);
        }
        node.set_prewarm_failed(true);
        node.set_next_prewarm(next);
        events.emit(&PrewarmFailed {
            node: node.name.clone(),
            attempts: cfg.attempts,
            retry_in_ms: next.saturating_duration_since(now).as_millis() as u64,
        });
    }
}

/// The node passed its probes: half-open if its breaker was open (probe requests decide
/// the rest), otherwise into the first shift stage; then it takes traffic.
fn activate(gw: &Arc<Gateway>, node: &Arc<Node>, reason: &str, now: Instant) {
    let (breaker, shift) = {
        let mut c = node.control();
        if c.breaker.state() == super::breaker::BreakerState::Closed {
            (None, c.shift.begin(&gw.pool.config().shift, now))
        } else {
            (c.breaker.begin_half_open(), None)
        }
    };
    node.set_prewarm_failed(false);
    node.set_ready(true);
    if let Some(t) = breaker {
        gw.pool.on_breaker(node, t);
    }
    if let Some(t) = shift {
        gw.pool.on_shift(node, t);
    }
    gw.pool.telemetry.events.emit(&NodeSwitched {
        node: node.name.clone(),
        reason: format!("{reason}, prewarmed"),
    });
    gw.pool.available.notify_waiters();
}

/// Activates a node without probes (prewarm disabled).
pub(crate) fn activate_unprobed(gw: &Arc<Gateway>, node: &Arc<Node>, reason: &str) {
    activate(gw, node, reason, Instant::now());
}

/// Why a probe got no status.
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error("{0}")]
    Attempt(#[from] super::attempt::AttemptError),
    #[error("no response header")]
    NoHeader,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// One probe: its status, or why there was none.
async fn probe(gw: &Gateway, node: &Node) -> Result<u16, ProbeError> {
    let (method, path) = if node.config.health_path.is_empty() {
        ("HEAD", node.target.path_for("/"))
    } else {
        ("GET", node.target.path_for(&node.config.health_path))
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {}\r\nuser-agent: keel/{}\r\n\r\n",
        node.target.authority,
        env!("CARGO_PKG_VERSION")
    );
    let (mut session, peer) =
        super::conns::round_trip(&gw.transport, node, head.as_bytes(), &Bytes::new()).await?;
    let status = session
        .response_header()
        .map(|h| h.status.as_u16())
        .ok_or(ProbeError::NoHeader)?;
    if method == "HEAD" {
        // No body follows; the session would wait for the announced one, so the
        // connection is closed instead of reused (see `conns::round_trip`).
        return Ok(status);
    }
    let mut read = 0usize;
    let mut reusable = true;
    loop {
        match session.read_response_body().await {
            Ok(Some(chunk)) => {
                read += Bytes::len(&chunk);
                if read > MAX_PROBE_BODY {
                    reusable = false;
                    break;
                }
            }
            Ok(None) => break,
            Err(_) => {
                reusable = false;
                break;
            }
        }
    }
    if reusable {
        super::conns::checkin(&node.conns, session, &peer).await;
    }
    Ok(status)
}
