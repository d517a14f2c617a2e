//! GPU metrics, labelled by GPU index (bounded by the hardware).

use crate::telemetry::Metrics;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts};

pub const GPU_UTILIZATION_RATIO: &str = "keel_gpu_utilization_ratio";
pub const GPU_MEMORY_USED_BYTES: &str = "keel_gpu_memory_used_bytes";
pub const GPU_MEMORY_TOTAL_BYTES: &str = "keel_gpu_memory_total_bytes";
pub const GPU_TEMPERATURE_CELSIUS: &str = "keel_gpu_temperature_celsius";
pub const GPU_POWER_WATTS: &str = "keel_gpu_power_watts";
pub const GPU_COMPUTE_PROCESSES: &str = "keel_gpu_compute_processes";
/// 1 while a cross-check warning (`kind` = unlocked_use | idle_lock) holds for the GPU.
pub const GPU_LOCK_WARNING: &str = "keel_gpu_lock_warning";
pub const GPU_LOCK_WARNINGS_TOTAL: &str = "keel_gpu_lock_warnings_total";

pub struct GpuMetrics {
    pub utilization: GaugeVec,
    pub memory_used: GaugeVec,
    pub memory_total: GaugeVec,
    pub temperature: GaugeVec,
    pub power: GaugeVec,
    pub processes: IntGaugeVec,
    pub warning: IntGaugeVec,
    pub warnings_total: IntCounterVec,
}

fn gauge(name: &str, help: &str) -> GaugeVec {
    GaugeVec::new(Opts::new(name, help), &["gpu"]).expect("valid metric")
}

impl GpuMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let m = GpuMetrics {
            utilization: gauge(GPU_UTILIZATION_RATIO, "GPU utilization, 0..1"),
            memory_used: gauge(GPU_MEMORY_USED_BYTES, "GPU memory in use"),
            memory_total: gauge(GPU_MEMORY_TOTAL_BYTES, "GPU memory installed"),
            temperature: gauge(GPU_TEMPERATURE_CELSIUS, "GPU temperature"),
            power: gauge(GPU_POWER_WATTS, "GPU power draw"),
            processes: IntGaugeVec::new(
                Opts::new(GPU_COMPUTE_PROCESSES, "Compute processes on the GPU"),
                &["gpu"],
            )
            .expect("valid metric"),
            warning: IntGaugeVec::new(
                Opts::new(GPU_LOCK_WARNING, "1 while a GPU/lock cross-check warns"),
                &["gpu", "kind"],
            )
            .expect("valid metric"),
            warnings_total: IntCounterVec::new(
                Opts::new(
                    GPU_LOCK_WARNINGS_TOTAL,
                    "GPU/lock cross-check warnings raised",
                ),
                &["kind"],
            )
            .expect("valid metric"),
        };
        metrics.register(m.utilization.clone());
        metrics.register(m.memory_used.clone());
        metrics.register(m.memory_total.clone());
        metrics.register(m.temperature.clone());
        metrics.register(m.power.clone());
        metrics.register(m.processes.clone());
        metrics.register(m.warning.clone());
        metrics.register(m.warnings_total.clone());
        m
    }
}
