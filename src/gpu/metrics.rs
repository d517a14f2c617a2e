//! GPU metrics, labelled by GPU index (bounded by the hardware).

use crate::telemetry::catalog::{
    GPU_COMPUTE_PROCESSES, GPU_LOCK_WARNING, GPU_LOCK_WARNINGS_TOTAL, GPU_MEMORY_TOTAL_BYTES,
    GPU_MEMORY_USED_BYTES, GPU_POWER_WATTS, GPU_TEMPERATURE_CELSIUS, GPU_UTILIZATION_RATIO,
};
use crate::telemetry::Metrics;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts};

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
