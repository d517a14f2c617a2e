//! Where GPU samples come from: NVML (the driver, loaded at run time) or a scripted source
//! for tests. Both sit behind [`GpuSource`] so the sampling and cross-checking code does
//! not care which.

use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::Nvml;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("NVML not available: {0}")]
    Unavailable(String),
    #[error("NVML query failed for GPU {index}: {message}")]
    Query { index: u32, message: String },
}

/// A compute process on a GPU.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GpuProcess {
    pub pid: u32,
    pub used_memory_bytes: Option<u64>,
}

/// One GPU at one moment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GpuSample {
    pub index: u32,
    pub uuid: String,
    pub name: String,
    /// 0..=100 percent of the last sample period with a kernel running.
    pub utilization_percent: u32,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    pub temperature_celsius: Option<u32>,
    pub power_watts: Option<f64>,
    pub compute_processes: Vec<GpuProcess>,
}

/// A source of GPU samples. `sample` blocks (NVML calls are synchronous): call it off the
/// async runtime.
pub trait GpuSource: Send + Sync {
    /// Every GPU now, ordered by index.
    fn sample(&self) -> Result<Vec<GpuSample>, GpuError>;
    /// One line for logs and health ("NVML 550.54.15, 2 GPUs").
    fn describe(&self) -> String;
}

/// The NVIDIA driver through `nvml-wrapper` (which dlopens `libnvidia-ml.so.1`).
pub(crate) struct NvmlSource {
    nvml: Nvml,
}

impl NvmlSource {
    /// Loads the driver library; the error says why not (no driver, no device...).
    pub(crate) fn open() -> Result<NvmlSource, GpuError> {
        Nvml::init()
            .map(|nvml| NvmlSource { nvml })
            .map_err(|e| GpuError::Unavailable(e.to_string()))
    }
}

impl GpuSource for NvmlSource {
    fn sample(&self) -> Result<Vec<GpuSample>, GpuError> {
        let count = self
            .nvml
            .device_count()
            .map_err(|e| GpuError::Unavailable(e.to_string()))?;
        let mut out = Vec::with_capacity(count as usize);
        for index in 0..count {
            let q = |e: nvml_wrapper::error::NvmlError| GpuError::Query {
                index,
                message: e.to_string(),
            };
            let d = self.nvml.device_by_index(index).map_err(q)?;
            let memory = d.memory_info().map_err(q)?;
            let processes = d
                .running_compute_processes()
                .map(|ps| {
                    ps.into_iter()
                        .map(|p| GpuProcess {
                            pid: p.pid,
                            used_memory_bytes: match p.used_gpu_memory {
                                UsedGpuMemory::Used(b) => Some(b),
                                UsedGpuMemory::Unavailable => None,
                            },
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(GpuSample {
                index,
                uuid: d.uuid().map_err(q)?,
                name: d.name().unwrap_or_default(),
                utilization_percent: d.utilization_rates().map(|u| u.gpu).unwrap_or(0),
                memory_used_bytes: memory.used,
                memory_total_bytes: memory.total,
                temperature_celsius: d.temperature(TemperatureSensor::Gpu).ok(),
                power_watts: d.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
                compute_processes: processes,
            });
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        let driver = self.nvml.sys_driver_version().unwrap_or_default();
        let count = self.nvml.device_count().unwrap_or(0);
        format!("NVML driver {driver}, {count} GPU(s)")
    }
}

/// The GPU data path in tests, without a driver.
#[cfg(test)]
pub(crate) mod scripted {
    use super::{GpuError, GpuSample, GpuSource};
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Replays scripted samples (the last one repeats): the GPU data path in tests.
    pub(crate) struct ScriptedSource {
        frames: Mutex<VecDeque<Vec<GpuSample>>>,
        last: Mutex<Vec<GpuSample>>,
    }

    impl ScriptedSource {
        pub(crate) fn new(frames: Vec<Vec<GpuSample>>) -> Self {
            ScriptedSource {
                frames: Mutex::new(frames.into()),
                last: Mutex::new(Vec::new()),
            }
        }
    }

    impl GpuSource for ScriptedSource {
        fn sample(&self) -> Result<Vec<GpuSample>, GpuError> {
            let next = self
                .frames
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(frame) = next {
                *last = frame;
            }
            Ok(last.clone())
        }

        fn describe(&self) -> String {
            "scripted GPU source".into()
        }
    }
}
