//! Component health for `/health/detailed` and readiness: each module reports its own status
//! (healthy, degraded, down, disabled) with a reason an operator can act on.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::RwLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ComponentStatus {
    Healthy,
    Degraded,
    Down,
    Disabled,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ComponentHealth {
    pub status: ComponentStatus,
    pub reason: String,
}

/// The components keel always reports, in display order.
pub(crate) const COMPONENTS: [&str; 5] = ["store", "proxy", "ledger", "gpu", "executor"];

pub struct HealthRegistry {
    components: RwLock<BTreeMap<String, ComponentHealth>>,
}

impl Default for HealthRegistry {
    fn default() -> Self {
        let components = COMPONENTS
            .iter()
            .map(|c| {
                (
                    c.to_string(),
                    ComponentHealth {
                        status: ComponentStatus::Down,
                        reason: "not started".into(),
                    },
                )
            })
            .collect();
        HealthRegistry {
            components: RwLock::new(components),
        }
    }
}

impl HealthRegistry {
    pub fn set(&self, component: &str, status: ComponentStatus, reason: impl Into<String>) {
        let mut map = self.components.write().unwrap_or_else(|p| p.into_inner());
        map.insert(
            component.to_string(),
            ComponentHealth {
                status,
                reason: reason.into(),
            },
        );
    }

    pub fn components(&self) -> BTreeMap<String, ComponentHealth> {
        self.components
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The worst status among enabled components: down > degraded > healthy.
    pub fn overall(&self) -> ComponentStatus {
        let snap = self.components();
        let statuses = snap.values().map(|c| c.status);
        let mut overall = ComponentStatus::Healthy;
        for s in statuses {
            match s {
                ComponentStatus::Down => return ComponentStatus::Down,
                ComponentStatus::Degraded => overall = ComponentStatus::Degraded,
                _ => {}
            }
        }
        overall
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overall_is_the_worst_enabled_status() {
        let h = HealthRegistry::default();
        for c in COMPONENTS {
            h.set(c, ComponentStatus::Healthy, "ok");
        }
        h.set("gpu", ComponentStatus::Disabled, "NVML not available");
        assert_eq!(h.overall(), ComponentStatus::Healthy);
        h.set("ledger", ComponentStatus::Degraded, "orphaned tasks");
        assert_eq!(h.overall(), ComponentStatus::Degraded);
        h.set("store", ComponentStatus::Down, "io");
        assert_eq!(h.overall(), ComponentStatus::Down);
    }
}
