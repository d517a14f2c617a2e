//! Everything keel reports about itself: the Prometheus registry and metric names, the typed
//! event bus, component health, process statistics and logging setup.

pub mod catalog;
pub(crate) mod dashboard_feed;
pub(crate) mod event_bus;
pub(crate) mod health;
pub mod logging;
pub(crate) mod metrics;
pub(crate) mod process;
pub(crate) mod sample;
pub(crate) mod sections;

use std::sync::Arc;

pub use event_bus::{Event, EventBus, EventRecord, Level};
pub use health::{ComponentHealth, ComponentStatus, HealthRegistry};
pub use metrics::Metrics;
pub use process::ProcessStats;
pub use sections::Sections;

/// The reporting handles one keel process shares between its modules; cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    pub metrics: Arc<Metrics>,
    pub events: Arc<EventBus>,
    pub health: Arc<HealthRegistry>,
    pub process: Arc<ProcessStats>,
    /// Named JSON summaries that domains contribute to `/api/metrics` and the overview.
    pub sections: Arc<Sections>,
}

impl Telemetry {
    pub fn new() -> Self {
        let metrics = Arc::new(Metrics::new());
        let events = Arc::new(EventBus::new(event_bus::DEFAULT_BUFFER, &metrics.registry));
        Telemetry {
            metrics,
            events,
            health: Arc::new(HealthRegistry::default()),
            process: Arc::new(ProcessStats::default()),
            sections: Arc::new(Sections::default()),
        }
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}
