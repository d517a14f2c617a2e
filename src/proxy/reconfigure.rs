//! The gateway's part of a live reload (`crate::reload`): a new `[proxy]` section put in
//! force without dropping a connection or a request.
//!
//! - Settings read per request (retry, breaker, prewarm, shift, queue, timeouts, client
//!   timeouts) are one `arc-swap` snapshot ([`super::pool::Pool::set_config`]): a request
//!   keeps the snapshot it started with, the next one gets the new one.
//! - Client keys are swapped whole; a key whose name and limits stay keeps its buckets
//!   and in-flight count ([`ClientKeyEntry::all`]).
//! - Nodes are compared by name. A node whose target, key and mapping stay is the same
//!   object afterwards (weight, priority and enabled change in place, like an admin
//!   `PATCH`), so its breaker, shift and counters are untouched. A node whose fixed settings
//!   change gets a successor ([`Node::successor`]); a node no longer named is drained. Both
//!   leave the list at once, and the requests in flight on them finish, since each holds
//!   its node.
//! - Nodes added through the admin API (kept in the store) stay unless the file now names
//!   the same node; a file entry that is new or changed since the last load wins over the
//!   store's record for that name (the record is dropped, so a restart gives the same set).
//!   File entries that did not change keep whatever the admin API made of them.

use super::node::{Node, Source};
use super::node_events::{NodeAdded, NodeRemoved, NodeUpdated};
use super::persist;
use super::request::key_limits::ClientKeyEntry;
use super::{Gateway, GatewayError};
use crate::config::{NodeConfig, ProxyConfig};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Poll interval while a node that left the set finishes its requests.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// What a reload does to one node.
enum Plan {
    Add(Arc<Node>),
    /// Same object; weight, priority and enabled as given.
    Keep(Arc<Node>, NodeConfig),
    /// The successor and the names of the settings that changed.
    Replace(Arc<Node>, Arc<Node>, Vec<&'static str>),
}

impl Gateway {
    /// Puts `new` in force. Everything that can fail — reading client key files, parsing
    /// node URLs, reading the store — happens before anything changes, so an `Err` leaves
    /// the gateway as it was. Returns one line per change made to a node.
    pub async fn apply(self: &Arc<Self>, new: &ProxyConfig) -> Result<Vec<String>, GatewayError> {
        let now = Instant::now();
        // Serialized with admin changes: both read-modify-write the node list and store.
        let _admin = self.admin.lock().await;
        let old = arc_swap::Guard::into_inner(self.config());
        let keys = ClientKeyEntry::all(&new.client_keys, &self.client_keys.load(), now)?;

        let overridden: Vec<&str> = new
            .nodes
            .iter()
            .filter(|n| !old.nodes.contains(n))
            .map(|n| n.name.as_str())
            .collect();
        let (dropped, records): (Vec<_>, Vec<_>) = persist::load(&self.store)
            .await?
            .into_iter()
            .partition(|(name, _)| overridden.contains(&name.as_str()));
        let current = self.pool.nodes();
        let mut plans = Vec::new();
        for (config, source) in persist::merge(&new.nodes, records) {
            let node_error = |source| GatewayError::Node {
                name: config.name.clone(),
                source,
            };
            let plan = match current.iter().find(|n| n.name == config.name) {
                None => Plan::Add(Arc::new(
                    Node::new(config.clone(), source, new, false, now).map_err(node_error)?,
                )),
                Some(node) => {
                    let changed = fixed_changes(&node.config, &config, node.source, source);
                    if changed.is_empty() {
                        Plan::Keep(node.clone(), config)
                    } else {
                        let next = node
                            .successor(config.clone(), source, new, now)
                            .map_err(node_error)?;
                        Plan::Replace(node.clone(), Arc::new(next), changed)
                    }
                }
            };
            plans.push(plan);
        }
        for (name, _) in &dropped {
            persist::forget(&self.store, name).await?;
        }

        // From here on nothing fails.
        self.pool.set_config(Arc::new(new.clone()));
        self.client_keys.store(Arc::new(keys));
        let events = &self.pool.telemetry.events;
        let mut report = Vec::new();
        let mut next = Vec::with_capacity(plans.len());
        for plan in plans {
            match plan {
                Plan::Add(node) => {
                    events.emit(&NodeAdded {
                        node: node.name.clone(),
                        base_url: node.config.base_url.clone(),
                        weight: node.weight(),
                    });
                    report.push(format!("node {} added", node.name));
                    next.push(node);
                }
                Plan::Keep(node, config) => {
                    node.reconfigure(new, now);
                    let changes = set_runtime(&node, &config);
                    if !changes.is_empty() {
                        let changes = changes.join(", ");
                        report.push(format!("node {}: {changes}", node.name));
                        events.emit(&NodeUpdated {
                            node: node.name.clone(),
                            changes,
                        });
                    }
                    next.push(node);
                }
                Plan::Replace(old, node, changed) => {
                    old.set_draining();
                    let changes = format!("{} changed", changed.join(", "));
                    report.push(format!("node {}: {changes}", node.name));
                    events.emit(&NodeUpdated {
                        node: node.name.clone(),
                        changes,
                    });
                    next.push(node);
                }
            }
        }
        for gone in current
            .iter()
            .filter(|n| !next.iter().any(|k| k.name == n.name))
        {
            gone.set_draining();
            report.push(format!("node {} removed", gone.name));
            let (gw, node) = (Arc::downgrade(self), gone.clone());
            let deadline = now + new.timeouts.total;
            tokio::spawn(async move {
                while node.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
                    tokio::time::sleep(DRAIN_POLL).await;
                }
                if let Some(gw) = gw.upgrade() {
                    gw.pool.telemetry.events.emit(&NodeRemoved {
                        node: node.name.clone(),
                        drained: node.in_flight.load(Ordering::Acquire) == 0,
                    });
                }
            });
        }
        self.pool.replace(next);
        Ok(report)
    }
}

/// The settings that cannot change on a live node, by name, that differ (the source too:
/// a runtime node the file now names becomes a file node).
fn fixed_changes(
    old: &NodeConfig,
    new: &NodeConfig,
    old_source: Source,
    new_source: Source,
) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut differs = |name, yes: bool| {
        if yes {
            changed.push(name);
        }
    };
    differs("base_url", old.base_url != new.base_url);
    differs("api_key", old.api_key != new.api_key);
    differs("health_path", old.health_path != new.health_path);
    differs("model_mapping", old.model_mapping != new.model_mapping);
    differs("fallback_for", old.fallback_for != new.fallback_for);
    differs(
        "supports_prefill",
        old.supports_prefill != new.supports_prefill,
    );
    differs("source", old_source != new_source);
    changed
}

/// Weight, priority and enabled of a kept node, as the admin API's `PATCH` sets them
/// (enabling prewarms first). Returns what changed.
fn set_runtime(node: &Node, config: &NodeConfig) -> Vec<String> {
    let mut changes = Vec::new();
    if config.weight != node.weight() {
        changes.push(format!("weight {} -> {}", node.weight(), config.weight));
        node.set_weight(config.weight);
    }
    if config.priority != node.priority() {
        changes.push(format!(
            "priority {} -> {}",
            node.priority(),
            config.priority
        ));
        node.set_priority(config.priority);
    }
    if config.enabled != node.enabled() {
        changes.push(format!("enabled {} -> {}", node.enabled(), config.enabled));
        if config.enabled {
            node.set_ready(false);
            node.set_next_prewarm(Instant::now());
        }
        node.set_enabled(config.enabled);
    }
    changes
}
