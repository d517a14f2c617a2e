//! Runtime node changes in the store (`proxy_nodes` table), so a restart keeps them.
//!
//! Key: node name. Value: versioned JSON, either the node's full settings (`upsert`) or a
//! tombstone (`removed`) that hides a node of the config file. At startup the file's nodes
//! come first and these records are applied over them. The upstream API key is stored as
//! given (the store lives in keel's private state directory); it never leaves through the
//! admin API, which shows `"***"`.

use crate::config::{default_fallback_for, ErrorClass, NodeConfig, Secret};
use crate::store::{Store, StoreError};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("proxy_nodes");
/// Layout version of the JSON values.
const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(crate) enum StoredNode {
    Upsert { v: u32, node: PlainNode },
    Removed { v: u32 },
}

/// [`NodeConfig`] with the API key in clear, for the store only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlainNode {
    pub name: String,
    pub base_url: String,
    pub weight: u32,
    pub priority: u32,
    pub api_key: Option<String>,
    pub health_path: String,
    pub model_mapping: BTreeMap<String, String>,
    pub enabled: bool,
    /// Absent in records written before LLM failover existed.
    #[serde(default = "default_fallback_for")]
    pub fallback_for: Vec<ErrorClass>,
    #[serde(default)]
    pub supports_prefill: bool,
}

impl From<&NodeConfig> for PlainNode {
    fn from(c: &NodeConfig) -> Self {
        PlainNode {
            name: c.name.clone(),
            base_url: c.base_url.clone(),
            weight: c.weight,
            priority: c.priority,
            api_key: c.api_key.as_ref().map(|k| k.expose().to_string()),
            health_path: c.health_path.clone(),
            model_mapping: c.model_mapping.clone(),
            enabled: c.enabled,
            fallback_for: c.fallback_for.clone(),
            supports_prefill: c.supports_prefill,
        }
    }
}

impl From<PlainNode> for NodeConfig {
    fn from(p: PlainNode) -> Self {
        NodeConfig {
            name: p.name,
            base_url: p.base_url,
            weight: p.weight,
            priority: p.priority,
            api_key: p.api_key.map(Secret::new),
            health_path: p.health_path,
            model_mapping: p.model_mapping,
            enabled: p.enabled,
            fallback_for: p.fallback_for,
            supports_prefill: p.supports_prefill,
        }
    }
}

impl StoredNode {
    pub(crate) fn upsert(node: &NodeConfig) -> Self {
        StoredNode::Upsert {
            v: VERSION,
            node: node.into(),
        }
    }

    pub(crate) fn removed() -> Self {
        StoredNode::Removed { v: VERSION }
    }
}

/// Every record, by node name.
pub(crate) async fn load(store: &Store) -> Result<Vec<(String, StoredNode)>, StoreError> {
    store
        .read(|txn| {
            let table = match txn.open_table(NODES) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (k, v) = entry?;
                match serde_json::from_slice::<StoredNode>(v.value()) {
                    Ok(record) => out.push((k.value().to_string(), record)),
                    Err(e) => tracing::error!(
                        node = k.value(),
                        error = %e,
                        "ignoring an unreadable stored node record"
                    ),
                }
            }
            Ok(out)
        })
        .await
}

/// Writes one record durably.
pub(crate) async fn save(store: &Store, name: &str, record: &StoredNode) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(record)?;
    let name = name.to_string();
    store
        .write(move |txn| {
            let mut table = txn.open_table(NODES)?;
            table.insert(name.as_str(), bytes.as_slice())?;
            Ok(())
        })
        .await
}

/// Drops a record (a runtime node deleted again: nothing to remember).
pub(crate) async fn forget(store: &Store, name: &str) -> Result<(), StoreError> {
    let name = name.to_string();
    store
        .write(move |txn| {
            let mut table = txn.open_table(NODES)?;
            table.remove(name.as_str())?;
            Ok(())
        })
        .await
}

/// The file's nodes with the stored records applied, each with whether it is a runtime node.
pub(crate) fn merge(
    file: &[NodeConfig],
    records: Vec<(String, StoredNode)>,
) -> Vec<(NodeConfig, super::node::Source)> {
    use super::node::Source;
    let mut nodes: Vec<(NodeConfig, Source)> =
        file.iter().map(|n| (n.clone(), Source::Config)).collect();
    for (name, record) in records {
        let at = nodes.iter().position(|(n, _)| n.name == name);
        match (record, at) {
            (StoredNode::Upsert { node, .. }, Some(i)) => {
                nodes[i] = (node.into(), nodes[i].1);
            }
            (StoredNode::Upsert { node, .. }, None) => nodes.push((node.into(), Source::Runtime)),
            (StoredNode::Removed { .. }, Some(i)) => {
                nodes.remove(i);
            }
            (StoredNode::Removed { .. }, None) => {}
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::node::Source;

    fn node(name: &str, weight: u32) -> NodeConfig {
        NodeConfig {
            name: name.into(),
            base_url: "http://127.0.0.1:1".into(),
            weight,
            priority: 1,
            api_key: Some(Secret::new("k")),
            health_path: "/health".into(),
            model_mapping: BTreeMap::new(),
            enabled: true,
            fallback_for: default_fallback_for(),
            supports_prefill: false,
        }
    }

    #[tokio::test]
    async fn records_round_trip_and_apply_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(load(&store).await.unwrap().is_empty());
        save(&store, "a", &StoredNode::upsert(&node("a", 7)))
            .await
            .unwrap();
        save(&store, "b", &StoredNode::removed()).await.unwrap();
        save(&store, "c", &StoredNode::upsert(&node("c", 1)))
            .await
            .unwrap();
        let records = load(&store).await.unwrap();
        let merged = merge(&[node("a", 100), node("b", 100)], records);
        let summary: Vec<(String, u32, Source)> = merged
            .iter()
            .map(|(n, s)| (n.name.clone(), n.weight, *s))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a".into(), 7, Source::Config),
                ("c".into(), 1, Source::Runtime)
            ]
        );
        assert_eq!(merged[0].0.api_key.as_ref().unwrap().expose(), "k");
        forget(&store, "c").await.unwrap();
        assert_eq!(load(&store).await.unwrap().len(), 2);
    }
}
