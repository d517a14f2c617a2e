//! `[gpu]`: NVML sampling. `enabled = "auto"` uses the driver where one is installed.

use super::validate::Scope;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

/// `true`, `false` or `"auto"` (use NVML when the driver library loads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuMode {
    Auto,
    On,
    Off,
}

impl Serialize for GpuMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            GpuMode::Auto => s.serialize_str("auto"),
            GpuMode::On => s.serialize_bool(true),
            GpuMode::Off => s.serialize_bool(false),
        }
    }
}

impl<'de> Deserialize<'de> for GpuMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Bool(true)) => Ok(GpuMode::On),
            Ok(Raw::Bool(false)) => Ok(GpuMode::Off),
            Ok(Raw::Text(t)) if t == "auto" => Ok(GpuMode::Auto),
            _ => Err(serde::de::Error::custom("expected true, false or \"auto\"")),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpuConfig {
    pub enabled: GpuMode,
    /// How often NVML is sampled.
    #[serde(with = "humantime_serde")]
    pub sample_interval: Duration,
    /// A lock held this long on a GPU that stayed at 0 % utilization is an "idle lock".
    #[serde(with = "humantime_serde")]
    pub idle_lock_after: Duration,
}

impl Default for GpuConfig {
    fn default() -> Self {
        GpuConfig {
            enabled: GpuMode::Auto,
            sample_interval: Duration::from_secs(5),
            idle_lock_after: Duration::from_secs(600),
        }
    }
}

impl GpuConfig {
    pub(super) fn validate(&self, v: &mut Scope<'_>) {
        v.positive_duration("sample_interval", self.sample_interval);
        v.positive_duration("idle_lock_after", self.idle_lock_after);
    }
}
