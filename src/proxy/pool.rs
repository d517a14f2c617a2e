//! The node set and node selection.
//!
//! The list of nodes is an `arc-swap` snapshot: a request loads it without a lock, the admin
//! API replaces it whole. Selection per try:
//! 1. a half-open node with probe budget gets the request (a probe; if it fails the retry
//!    layer moves on, so the client does not notice), so recovery needs no idle waiting;
//! 2. otherwise, among nodes in rotation whose breaker is closed and that were not tried
//!    for this request, the best (lowest) priority wins, and smooth weighted round robin
//!    picks within it by effective weight (weight × shift stage percent).
//!
//! Outcomes feed the node's breaker and shift; their transitions become events and metrics
//! here, in one place.

use super::breaker::{Admission, BreakerState, Transition};
use super::metrics::GatewayMetrics;
use super::node::Node;
use super::node_events::*;
use super::shift::ShiftTransition;
use super::swrr::SmoothWrr;
use crate::config::ProxyConfig;
use crate::telemetry::{ComponentStatus, Telemetry};
use arc_swap::ArcSwap;
use smallvec::SmallVec;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The node chosen for one try.
pub struct Picked {
    pub node: Arc<Node>,
    /// Admitted as a half-open probe.
    pub probe: bool,
}

pub struct Pool {
    nodes: ArcSwap<Vec<Arc<Node>>>,
    swrr: Mutex<SmoothWrr>,
    /// The `[proxy]` section in force; a reload swaps it whole (see [`Pool::set_config`]).
    config: ArcSwap<ProxyConfig>,
    pub telemetry: Telemetry,
    pub metrics: GatewayMetrics,
    /// Woken whenever a node may have become available (queue waiters re-pick).
    pub available: Notify,
    last_health: Mutex<Option<(ComponentStatus, String)>>,
}

impl Pool {
    pub fn new(config: Arc<ProxyConfig>, telemetry: Telemetry, metrics: GatewayMetrics) -> Self {
        Pool {
            nodes: ArcSwap::from_pointee(Vec::new()),
            swrr: Mutex::new(SmoothWrr::default()),
            config: ArcSwap::new(config),
            telemetry,
            metrics,
            available: Notify::new(),
            last_health: Mutex::new(None),
        }
    }

    /// The `[proxy]` section in force. A guard, not a copy: loading it costs no reference
    /// count on the hot path; a request keeps the settings it started with.
    pub fn config(&self) -> arc_swap::Guard<Arc<ProxyConfig>> {
        self.config.load()
    }

    /// Puts a reloaded `[proxy]` section in force for every request that starts from now.
    pub fn set_config(&self, config: Arc<ProxyConfig>) {
        self.config.store(config);
    }

    pub fn nodes(&self) -> Arc<Vec<Arc<Node>>> {
        self.nodes.load_full()
    }

    pub fn get(&self, name: &str) -> Option<Arc<Node>> {
        self.nodes.load().iter().find(|n| n.name == name).cloned()
    }

    /// Replaces the node list (admin changes are serialized by the caller).
    pub fn replace(&self, nodes: Vec<Arc<Node>>) {
        let config = self.config();
        for n in nodes.iter() {
            let state = n.control().breaker.state();
            self.metrics.set_breaker(&n.name, state);
            let percent = n.control().shift.percent(&config.shift);
            self.metrics
                .shift_percent
                .with_label_values(&[&n.name])
                .set(i64::from(percent));
        }
        let old = self.nodes.swap(Arc::new(nodes));
        let current = self.nodes.load();
        let mut swrr = self.swrr.lock().unwrap_or_else(|p| p.into_inner());
        for gone in old
            .iter()
            .filter(|o| !current.iter().any(|n| n.name == o.name))
        {
            swrr.remove(&gone.name);
            self.metrics.forget_node(&gone.name);
        }
        drop(swrr);
        self.available.notify_waiters();
    }

    /// Effective SWRR weight: weight × shift percent (so 1 % steps stay integers).
    pub fn effective_weight(&self, node: &Node) -> u64 {
        let percent = node.control().shift.percent(&self.config().shift);
        u64::from(node.weight()) * u64::from(percent)
    }

    /// Chooses the node for the next try, skipping `tried`; `None` when no node can take it.
    ///
    /// One pass over the nodes, one lock of each: a node whose breaker admits a half-open
    /// probe is returned at once (probes go first, so recovery needs no idle wait); closed
    /// ones are collected on the stack for the weighted choice.
    pub fn pick<'a>(&self, tried: impl Fn(&str) -> bool + 'a, now: Instant) -> Option<Picked> {
        let nodes = self.nodes.load();
        let config = self.config();
        // (index in `nodes`, effective weight, priority) of each closed candidate
        let mut candidates: SmallVec<[(usize, u64, u32); 8]> = SmallVec::new();
        for (i, node) in nodes.iter().enumerate() {
            if !node.in_rotation() || tried(&node.name) {
                continue;
            }
            let mut control = node.control();
            let probing = match control.breaker.state() {
                BreakerState::Closed => {
                    let percent = control.shift.percent(&config.shift);
                    let w = u64::from(node.weight()) * u64::from(percent);
                    if w > 0 {
                        candidates.push((i, w, node.priority()));
                    }
                    false
                }
                BreakerState::HalfOpen => true,
                BreakerState::Open => control.breaker.cooldown_elapsed(now),
            };
            if !probing {
                continue;
            }
            let (admission, transition) = control.breaker.allow(now);
            drop(control);
            if let Some(t) = transition {
                self.on_breaker(node, t);
            }
            if admission == Admission::Probe {
                return Some(Picked {
                    node: node.clone(),
                    probe: true,
                });
            }
        }
        // best (lowest) priority among closed breakers, then smooth WRR within it
        let best = candidates.iter().map(|&(_, _, p)| p).min()?;
        candidates.retain(|&mut (_, _, p)| p == best);
        let named: SmallVec<[(&str, u64); 8]> = candidates
            .iter()
            .map(|&(i, w, _)| (nodes[i].name.as_str(), w))
            .collect();
        let winner = self
            .swrr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pick(&named)?;
        Some(Picked {
            node: nodes[candidates[winner].0].clone(),
            probe: false,
        })
    }

    /// How long until some open node's cooldown ends (for `Retry-After`).
    pub fn retry_after(&self, now: Instant) -> Duration {
        self.nodes
            .load()
            .iter()
            .filter(|n| n.enabled() && !n.draining())
            .filter_map(|n| n.control().breaker.open_until())
            .map(|t| t.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_secs(1))
    }

    /// Whether one more node may be ejected: at most `max_ejected_percent` of the enabled
    /// nodes, but always at least one (as Envoy does).
    fn may_eject(&self) -> bool {
        let nodes = self.nodes.load();
        let enabled = nodes.iter().filter(|n| n.enabled()).count();
        let ejected = nodes.iter().filter(|n| n.enabled() && n.ejected()).count();
        let cap = (enabled * self.config().breaker.max_ejected_percent as usize / 100).max(1);
        ejected < cap
    }

    /// Panic mode: an ejection was vetoed by the cap, so failing nodes stay in rotation.
    pub fn panic(&self) -> bool {
        self.nodes.load().iter().any(|n| n.capped())
    }

    /// Records one try's outcome on its node: breaker, shift, counters.
    pub fn record(&self, node: &Arc<Node>, success: bool, probe: bool, now: Instant) {
        node.requests_total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !success {
            node.failures_total
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else if node.capped() {
            node.set_capped(false);
        }
        let may_eject = success || self.may_eject();
        let config = self.config();
        let (breaker, shift) = {
            let mut c = node.control();
            let breaker = c.breaker.record(now, success, probe, may_eject);
            let shift = c.shift.record(&config.shift, success, now);
            (breaker, shift)
        };
        if let Some(t) = breaker {
            self.on_breaker(node, t);
        }
        if let Some(t) = shift {
            self.on_shift(node, t);
        }
    }

    /// Reports one failed upstream attempt as an `upstream.failed` event, within the
    /// node's event limit (see [`FailureEventLimit`]).
    pub fn upstream_failed(&self, node: &Node, failure: UpstreamFailed, now: Instant) {
        let admitted = node.failure_events.admit(now);
        self.suppressed(node, admitted.ended_suppressed);
        if admitted.emit {
            self.telemetry.events.emit(&failure);
        }
    }

    /// Reports the failures a node's event limit left out of a window that ended.
    fn suppressed(&self, node: &Node, count: u64) {
        if count > 0 {
            self.telemetry.events.emit(&UpstreamFailuresSuppressed {
                node: node.name.clone(),
                suppressed: count,
                window_ms: FAILURE_EVENT_WINDOW.as_millis() as u64,
            });
        }
    }

    /// Events, metrics and readiness for a breaker transition.
    pub fn on_breaker(&self, node: &Arc<Node>, t: Transition) {
        let events = &self.telemetry.events;
        let config = self.config();
        match t {
            Transition::Opened {
                reason,
                cooldown,
                ejections,
            } => {
                node.set_ejected(true);
                if config.prewarm.enabled {
                    // Leaving the open state goes through prewarm probes first.
                    node.set_ready(false);
                    node.set_next_prewarm(Instant::now() + cooldown);
                }
                self.metrics
                    .ejections
                    .with_label_values(&[&node.name])
                    .inc();
                self.metrics.set_breaker(&node.name, BreakerState::Open);
                events.emit(&BreakerOpened {
                    node: node.name.clone(),
                    reason,
                    cooldown_ms: cooldown.as_millis() as u64,
                    ejections,
                });
            }
            Transition::HalfOpened => {
                self.metrics.set_breaker(&node.name, BreakerState::HalfOpen);
                events.emit(&BreakerHalfOpen {
                    node: node.name.clone(),
                });
                self.available.notify_waiters();
            }
            Transition::Closed => {
                node.set_ejected(false);
                self.metrics.set_breaker(&node.name, BreakerState::Closed);
                events.emit(&BreakerClosed {
                    node: node.name.clone(),
                });
                let shift = node.control().shift.begin(&config.shift, Instant::now());
                if let Some(s) = shift {
                    self.on_shift(node, s);
                }
                self.available.notify_waiters();
            }
            Transition::EjectionCapped { reason } => {
                if !node.capped() {
                    node.set_capped(true);
                    events.emit(&EjectionCapped {
                        node: node.name.clone(),
                        reason,
                        max_ejected_percent: config.breaker.max_ejected_percent,
                    });
                }
            }
        }
    }

    /// Events, metrics and readiness for a shift transition.
    pub fn on_shift(&self, node: &Arc<Node>, t: ShiftTransition) {
        let percent = match &t {
            ShiftTransition::Started { percent } | ShiftTransition::Advanced { percent } => {
                *percent
            }
            ShiftTransition::Completed => 100,
            ShiftTransition::RolledBack { .. } => 0,
        };
        self.metrics
            .shift_percent
            .with_label_values(&[&node.name])
            .set(i64::from(percent));
        match t {
            ShiftTransition::RolledBack {
                percent,
                failure_rate,
                requests,
            } => {
                let config = self.config();
                if config.prewarm.enabled {
                    node.set_next_prewarm(Instant::now() + config.shift.stage_hold);
                }
                self.telemetry.events.emit(&ShiftRolledBack {
                    node: node.name.clone(),
                    percent,
                    failure_rate,
                    requests,
                });
            }
            _ => {
                self.telemetry.events.emit(&ShiftStage {
                    node: node.name.clone(),
                    percent,
                    effective_weight: node.weight() * percent / 100,
                });
                self.available.notify_waiters();
            }
        }
    }

    /// Periodic work: stage holds, re-entry after a rollback, gauges and health.
    pub fn tick(&self, now: Instant) {
        let nodes = self.nodes.load();
        let config = self.config();
        for node in nodes.iter() {
            self.suppressed(node, node.failure_events.flush(now));
            let (advance, reenter) = {
                let mut c = node.control();
                let advance = c.shift.tick(&config.shift, now);
                let reenter = c.shift.may_reenter(&config.shift, now);
                (advance, reenter)
            };
            if let Some(t) = advance {
                self.on_shift(node, t);
            }
            if reenter && node.ready() {
                if config.prewarm.enabled {
                    // Re-enter through prewarm; activation begins the stages again.
                    node.set_ready(false);
                } else {
                    let t = node.control().shift.begin(&config.shift, now);
                    if let Some(t) = t {
                        self.on_shift(node, t);
                    }
                }
            }
        }
        self.update_health(&nodes, now);
    }

    fn update_health(&self, nodes: &[Arc<Node>], now: Instant) {
        let enabled: Vec<&Arc<Node>> = nodes.iter().filter(|n| n.enabled()).collect();
        let available = enabled
            .iter()
            .filter(|n| {
                n.in_rotation() && {
                    let c = n.control();
                    c.breaker.would_allow(now) && !c.shift.is_rolled_back()
                }
            })
            .count();
        self.metrics.nodes_available.set(available as i64);
        let (status, reason) = if nodes.is_empty() {
            // Not in use rather than broken: keel may run without the gateway.
            (
                ComponentStatus::Disabled,
                "no upstream nodes configured; requests are answered 503".to_string(),
            )
        } else if available == 0 {
            (
                ComponentStatus::Down,
                format!("0/{} nodes available", enabled.len()),
            )
        } else if available < enabled.len() {
            (
                ComponentStatus::Degraded,
                format!("{available}/{} nodes available", enabled.len()),
            )
        } else {
            (
                ComponentStatus::Healthy,
                format!("{available}/{} nodes available", enabled.len()),
            )
        };
        let reason = if self.panic() {
            format!("{reason}; panic mode (ejection cap reached)")
        } else {
            reason
        };
        let mut last = self.last_health.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_ref() != Some(&(status, reason.clone())) {
            self.telemetry.health.set("proxy", status, reason.clone());
            *last = Some((status, reason));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeConfig;
    use crate::proxy::node::Source;

    fn pool(nodes: &[(&str, u32, u32)]) -> Pool {
        let mut config = ProxyConfig::default();
        config.breaker.consecutive_failures = 2;
        config.prewarm.enabled = false;
        let config = Arc::new(config);
        let telemetry = Telemetry::new();
        let metrics = GatewayMetrics::register(&telemetry.metrics);
        let pool = Pool::new(config.clone(), telemetry, metrics);
        let now = Instant::now();
        let list = nodes
            .iter()
            .map(|(name, weight, priority)| {
                let c = NodeConfig {
                    name: name.to_string(),
                    base_url: "http://127.0.0.1:1".into(),
                    weight: *weight,
                    priority: *priority,
                    api_key: None,
                    health_path: "/health".into(),
                    model_mapping: Default::default(),
                    enabled: true,
                    fallback_for: crate::config::default_fallback_for(),
                    supports_prefill: false,
                };
                Arc::new(Node::new(c, Source::Config, &config, true, now).unwrap())
            })
            .collect();
        pool.replace(list);
        pool
    }

    fn picks(pool: &Pool, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                pool.pick(|_| false, Instant::now())
                    .unwrap()
                    .node
                    .name
                    .clone()
            })
            .collect()
    }

    #[test]
    fn best_priority_wins_and_weights_share_within_it() {
        let p = pool(&[("a", 30, 1), ("b", 10, 1), ("backup", 100, 2)]);
        let got = picks(&p, 8);
        assert_eq!(got.iter().filter(|n| *n == "a").count(), 6);
        assert_eq!(got.iter().filter(|n| *n == "b").count(), 2);
        // the skip set moves on to the next priority
        let next = p.pick(|n| n != "backup", Instant::now()).unwrap();
        assert_eq!(next.node.name, "backup");
    }

    #[test]
    fn ejection_cap_keeps_the_last_nodes_in_rotation() {
        let p = pool(&[("a", 100, 1), ("b", 100, 1)]);
        let (a, b) = (p.get("a").unwrap(), p.get("b").unwrap());
        let now = Instant::now();
        for _ in 0..2 {
            p.record(&a, false, false, now);
        }
        assert_eq!(a.control().breaker.state(), BreakerState::Open);
        for _ in 0..2 {
            p.record(&b, false, false, now);
        }
        // 50 % of 2 nodes: only one may be ejected; b stays in rotation (panic).
        assert_eq!(b.control().breaker.state(), BreakerState::Closed);
        assert!(p.panic());
        assert_eq!(picks(&p, 3), vec!["b", "b", "b"]);
        p.record(&b, true, false, now);
        assert!(!p.panic(), "a success ends panic for the node");
    }

    #[test]
    fn a_half_open_node_gets_the_probe_first() {
        let p = pool(&[("a", 1, 1), ("b", 100, 1)]);
        let a = p.get("a").unwrap();
        let t = a.control().breaker.begin_half_open();
        assert!(t.is_some());
        let picked = p.pick(|_| false, Instant::now()).unwrap();
        assert_eq!((picked.node.name.as_str(), picked.probe), ("a", true));
    }
}
