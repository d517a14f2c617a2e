//! `[ledger]`: GPU locks, heartbeats, monitor and timeout manager.

use super::validate::Scope;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// Lock keys that always exist, also without a GPU driver.
    pub locks: Vec<String>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            locks: vec!["gpu_lock:0".into()],
        }
    }
}

impl LedgerConfig {
    pub(super) fn validate(&self, _v: &mut Scope<'_>) {}
}
