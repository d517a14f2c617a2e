//! Node administration behind `/admin/api/nodes`: list, add (prewarm, then shift in),
//! change weight/priority/enabled, remove (drain first). Every change is persisted before it
//! takes effect, so a restart keeps it.

use super::breaker::BreakerState;
use super::node::{Node, Source};
use super::node_events::{NodeAdded, NodeRemoved, NodeUpdated};
use super::persist::{self, StoredNode};
use super::Gateway;
use crate::config::{ConfigError, NodeConfig, Validator, MAX_WEIGHT};
use crate::store::StoreError;
use crate::telemetry::metrics::histogram_quantile;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no node named {0:?}")]
    NotFound(String),
    #[error("a node named {0:?} already exists")]
    Exists(String),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<ConfigError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `PATCH /admin/api/nodes/{name}`: the settings that may change at runtime.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodePatch {
    pub weight: Option<u32>,
    pub priority: Option<u32>,
    pub enabled: Option<bool>,
}

/// Poll interval while a removed node drains.
const DRAIN_POLL: Duration = Duration::from_millis(20);

impl Gateway {
    /// Every node with config, breaker, shift, effective weight and statistics.
    pub fn node_views(&self) -> Value {
        let now = Instant::now();
        let nodes: Vec<Value> = self
            .pool
            .nodes()
            .iter()
            .map(|n| self.node_view(n, now))
            .collect();
        json!({
            "nodes": nodes,
            "panic": self.pool.panic(),
            "available": self.pool.metrics.nodes_available.get(),
        })
    }

    fn node_view(&self, n: &Node, now: Instant) -> Value {
        let config = self.config();
        let shift_cfg = &config.shift;
        let (state, window, consecutive, streak, open_for, percent, shift_phase) = {
            let c = n.control();
            let b = &c.breaker;
            let phase = match c.shift.phase() {
                super::shift::ShiftPhase::Full => "full".to_string(),
                super::shift::ShiftPhase::Stage { index, .. } => format!("stage_{}", index + 1),
                super::shift::ShiftPhase::RolledBack { .. } => "rolled_back".to_string(),
            };
            (
                b.state(),
                b.window(now),
                b.consecutive_failures(),
                b.streak(),
                b.open_until().map(|t| t.saturating_duration_since(now)),
                c.shift.percent(shift_cfg),
                phase,
            )
        };
        let duration = self
            .pool
            .metrics
            .upstream_duration
            .with_label_values(&[&n.name]);
        let ms = |q: f64| histogram_quantile(&duration, q).map(|s| s * 1000.0);
        let requests = n.requests_total.load(Ordering::Relaxed);
        let failures = n.failures_total.load(Ordering::Relaxed);
        let effective = if n.in_rotation() && state == BreakerState::Closed {
            n.weight() * percent / 100
        } else {
            0
        };
        json!({
            "name": n.name,
            "base_url": n.config.base_url,
            "weight": n.weight(),
            "priority": n.priority(),
            "enabled": n.enabled(),
            "health_path": n.config.health_path,
            "model_mapping": n.config.model_mapping,
            "fallback_for": n.config.fallback_for,
            "supports_prefill": n.config.supports_prefill,
            "api_key": n.config.api_key.as_ref().map(|_| "***"),
            "source": super::source_name(n.source),
            "state": n.state_name(state),
            "status": state.reference_name(),
            "ready": n.ready(),
            "breaker": {
                "state": state.as_str(),
                "window_requests": window.requests,
                "window_failures": window.failures,
                "failure_rate": window.failure_rate(),
                "consecutive_failures": consecutive,
                "ejections_in_a_row": streak,
                "open_remaining_ms": open_for.map(|d| d.as_millis() as u64),
                "ejection_capped": n.capped(),
            },
            "shift": { "phase": shift_phase, "percent": percent },
            "effective_weight": effective,
            "in_flight": n.in_flight.load(Ordering::Relaxed),
            "requests_total": requests,
            "failures_total": failures,
            "failure_rate": window.failure_rate(),
            "latency_ms": { "p50": ms(0.5), "p99": ms(0.99) },
            "tokens": {
                "input": n.tokens_input.load(Ordering::Relaxed),
                "output": n.tokens_output.load(Ordering::Relaxed),
            },
        })
    }

    /// Adds a node: validated like the config file, persisted, then prewarmed by the
    /// supervisor before it takes traffic.
    pub async fn add_node(self: &Arc<Self>, config: NodeConfig) -> Result<Value, AdminError> {
        let mut v = Validator::default();
        config.validate(&mut v.at(""));
        let errors = v.into_errors();
        if !errors.is_empty() {
            return Err(AdminError::Invalid(errors));
        }
        let _guard = self.admin.lock().await;
        if self.pool.get(&config.name).is_some() {
            return Err(AdminError::Exists(config.name));
        }
        let now = Instant::now();
        let node = Node::new(config.clone(), Source::Runtime, &self.config(), false, now).map_err(
            |e| {
                AdminError::Invalid(vec![ConfigError {
                    path: "base_url".into(),
                    message: e.to_string(),
                }])
            },
        )?;
        persist::save(&self.store, &config.name, &StoredNode::upsert(&config)).await?;
        let node = Arc::new(node);
        let mut nodes = (*self.pool.nodes()).clone();
        nodes.push(node.clone());
        self.pool.replace(nodes);
        self.pool.telemetry.events.emit(&NodeAdded {
            node: config.name.clone(),
            base_url: config.base_url.clone(),
            weight: config.weight,
        });
        Ok(self.node_view(&node, now))
    }

    /// Changes weight, priority or enabled; enabling a node prewarms it first.
    pub async fn update_node(
        self: &Arc<Self>,
        name: &str,
        patch: NodePatch,
    ) -> Result<Value, AdminError> {
        let mut errors = Vec::new();
        if let Some(w) = patch.weight.filter(|w| *w > MAX_WEIGHT) {
            errors.push(ConfigError {
                path: "weight".into(),
                message: format!("{w} is out of range (0..={MAX_WEIGHT})"),
            });
        }
        if patch.weight.is_none() && patch.priority.is_none() && patch.enabled.is_none() {
            errors.push(ConfigError {
                path: String::new(),
                message: "nothing to change: give weight, priority or enabled".into(),
            });
        }
        if !errors.is_empty() {
            return Err(AdminError::Invalid(errors));
        }
        let _guard = self.admin.lock().await;
        let node = self
            .pool
            .get(name)
            .ok_or_else(|| AdminError::NotFound(name.to_string()))?;
        let mut next = node.config.clone();
        next.weight = patch.weight.unwrap_or(node.weight());
        next.priority = patch.priority.unwrap_or(node.priority());
        next.enabled = patch.enabled.unwrap_or(node.enabled());
        persist::save(&self.store, name, &StoredNode::upsert(&next)).await?;

        let mut changes = Vec::new();
        if next.weight != node.weight() {
            changes.push(format!("weight {} -> {}", node.weight(), next.weight));
            node.set_weight(next.weight);
        }
        if next.priority != node.priority() {
            changes.push(format!("priority {} -> {}", node.priority(), next.priority));
            node.set_priority(next.priority);
        }
        if next.enabled != node.enabled() {
            changes.push(format!("enabled {} -> {}", node.enabled(), next.enabled));
            if next.enabled {
                // Re-enabled: probes first (the supervisor starts them).
                node.set_ready(false);
                node.set_next_prewarm(Instant::now());
            }
            node.set_enabled(next.enabled);
        }
        if !changes.is_empty() {
            self.pool.telemetry.events.emit(&NodeUpdated {
                node: name.to_string(),
                changes: changes.join(", "),
            });
            self.pool.available.notify_waiters();
        }
        Ok(self.node_view(&node, Instant::now()))
    }

    /// Removes a node: it takes no new requests, its in-flight requests finish (up to the
    /// total request timeout), then it leaves the pool.
    pub async fn remove_node(self: &Arc<Self>, name: &str) -> Result<Value, AdminError> {
        let _guard = self.admin.lock().await;
        let node = self
            .pool
            .get(name)
            .ok_or_else(|| AdminError::NotFound(name.to_string()))?;
        match node.source {
            Source::Config => persist::save(&self.store, name, &StoredNode::removed()).await?,
            Source::Runtime => persist::forget(&self.store, name).await?,
        }
        node.set_draining();
        let deadline = Instant::now() + self.config().timeouts.total;
        while node.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::time::sleep(DRAIN_POLL).await;
        }
        let drained = node.in_flight.load(Ordering::Acquire) == 0;
        let nodes: Vec<Arc<Node>> = self
            .pool
            .nodes()
            .iter()
            .filter(|n| n.name != name)
            .cloned()
            .collect();
        self.pool.replace(nodes);
        self.pool.telemetry.events.emit(&NodeRemoved {
            node: name.to_string(),
            drained,
        });
        Ok(json!({"removed": name, "drained": drained}))
    }
}
