//! Alerts evaluated inside keel: the references' thresholds ([`rules`]) run every few
//! seconds over the dashboard feed's history ([`engine`]), so an operator without
//! Prometheus still sees them — in `/api/v1/alerts`, the dashboard, `keel_alert_firing` and
//! `alert.firing` / `alert.resolved` events. `ops/prometheus/keel-alerts.yml` carries the
//! same rules as PromQL for sites that run Prometheus.

pub(crate) mod engine;
pub mod rules;

pub use engine::{AlertEngine, Firing};
pub use rules::{Finding, Severity};
