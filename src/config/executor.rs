//! `[executor]`: the V8 code-block executor.

use super::validate::Scope;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutorConfig {
    pub enabled: bool,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig { enabled: true }
    }
}

impl ExecutorConfig {
    pub(super) fn validate(&self, _v: &mut Scope<'_>) {}
}
