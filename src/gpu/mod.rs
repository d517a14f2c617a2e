//! GPUs: NVML sampling behind [`GpuSource`], GPU metrics, and the cross-checks against the
//! ledger's locks ("unlocked use", "idle lock").
//!
//! `[gpu] enabled`: `"auto"` uses NVML when the driver library loads and otherwise runs
//! without GPUs (health `gpu: disabled`, reason `NVML not available: <why>`, logged once);
//! `true` makes a missing driver a startup error; `false` never touches NVML.

mod crosscheck;
mod metrics;
mod source;

pub use crosscheck::{IDLE_LOCK, UNLOCKED_USE};
pub use source::{GpuError, GpuProcess, GpuSample, GpuSource, NvmlSource, ScriptedSource};

use crate::config::{GpuConfig, GpuMode};
use crate::ledger::key::gpu_lock_key;
use crate::ledger::{GpuIssue, Ledger};
use crate::telemetry::{ComponentStatus, Event, Level, Telemetry};
use crosscheck::IdleTracker;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum GpuStartError {
    #[error("[gpu] enabled = true, but {0}")]
    Required(GpuError),
}

/// What startup found: a source with its first sample, or the reason there is none.
pub enum Detected {
    Source {
        source: Box<dyn GpuSource>,
        first: Vec<GpuSample>,
    },
    Disabled {
        reason: String,
    },
}

impl Detected {
    /// `gpu_lock:{index}` for every GPU found.
    pub fn lock_keys(&self) -> Vec<String> {
        match self {
            Detected::Source { first, .. } => first.iter().map(|s| gpu_lock_key(s.index)).collect(),
            Detected::Disabled { .. } => Vec::new(),
        }
    }
}

/// Looks for GPUs as `[gpu] enabled` says (blocking: NVML loads a library).
pub fn detect(config: &GpuConfig) -> Result<Detected, GpuStartError> {
    if config.enabled == GpuMode::Off {
        return Ok(Detected::Disabled {
            reason: "disabled by [gpu] enabled = false".into(),
        });
    }
    let opened = NvmlSource::open().and_then(|s| {
        let first = s.sample()?;
        Ok((s, first))
    });
    match opened {
        Ok((source, first)) => Ok(Detected::Source {
            source: Box::new(source),
            first,
        }),
        Err(e) if config.enabled == GpuMode::On => Err(GpuStartError::Required(e)),
        Err(e) => Ok(Detected::Disabled {
            reason: e.to_string(),
        }),
    }
}

/// The GPU side of a running keel: sampling or disabled.
#[derive(Clone)]
pub enum Gpus {
    Enabled(GpuMonitor),
    Disabled { reason: String },
}

impl Gpus {
    /// Starts from what [`detect`] found; reports the component's health.
    pub fn start(
        detected: Detected,
        config: &GpuConfig,
        ledger: Ledger,
        telemetry: Telemetry,
    ) -> Gpus {
        match detected {
            Detected::Disabled { reason } => {
                tracing::info!(reason = %reason, "GPU sampling disabled");
                telemetry
                    .health
                    .set("gpu", ComponentStatus::Disabled, reason.clone());
                Gpus::Disabled { reason }
            }
            Detected::Source { source, first } => {
                let monitor = GpuMonitor::new(source, config, ledger, telemetry);
                monitor.apply(Ok(first), Instant::now());
                Gpus::Enabled(monitor)
            }
        }
    }

    /// `GET /api/v1/gpus`.
    pub fn report(&self) -> Value {
        match self {
            Gpus::Enabled(m) => m.report(),
            Gpus::Disabled { reason } => json!({
                "enabled": false,
                "reason": reason,
                "gpus": [],
                "warnings": [],
                "timestamp": crate::clock::unix_now(),
            }),
        }
    }
}

#[derive(Default)]
struct Latest {
    samples: Vec<GpuSample>,
    sampled_at: Option<f64>,
    error: Option<String>,
    issues: Vec<GpuIssue>,
}

/// Samples a [`GpuSource`] periodically and cross-checks it against the ledger.
#[derive(Clone)]
pub struct GpuMonitor {
    inner: Arc<MonitorInner>,
}

struct MonitorInner {
    source: Box<dyn GpuSource>,
    ledger: Ledger,
    telemetry: Telemetry,
    metrics: metrics::GpuMetrics,
    sample_interval: Duration,
    idle_lock_after: Duration,
    latest: RwLock<Latest>,
    idle: Mutex<IdleTracker>,
    /// (gpu, kind) warnings currently raised, to emit events on transitions only.
    raised: Mutex<BTreeSet<(u32, &'static str)>>,
}

/// A cross-check warning raised (emitted once per transition into the warning).
#[derive(Debug, Clone, Serialize)]
pub struct GpuLockWarning {
    pub gpu: u32,
    pub lock_key: String,
    pub kind: &'static str,
    pub detail: String,
}

impl Event for GpuLockWarning {
    fn kind(&self) -> &'static str {
        if self.kind == UNLOCKED_USE {
            "gpu.unlocked_use"
        } else {
            "gpu.idle_lock"
        }
    }
    fn component(&self) -> &'static str {
        "gpu"
    }
    fn message(&self) -> String {
        self.detail.clone()
    }
    fn level(&self) -> Level {
        Level::Warn
    }
}

impl GpuMonitor {
    pub fn new(
        source: Box<dyn GpuSource>,
        config: &GpuConfig,
        ledger: Ledger,
        telemetry: Telemetry,
    ) -> Self {
        GpuMonitor {
            inner: Arc::new(MonitorInner {
                source,
                ledger,
                metrics: metrics::GpuMetrics::register(&telemetry.metrics),
                telemetry,
                sample_interval: config.sample_interval,
                idle_lock_after: config.idle_lock_after,
                latest: RwLock::new(Latest::default()),
                idle: Mutex::new(IdleTracker::default()),
                raised: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    /// Samples every `sample_interval` (NVML on the blocking pool).
    pub fn spawn(&self) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.inner.sample_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let inner = me.inner.clone();
                let sampled = tokio::task::spawn_blocking(move || inner.source.sample()).await;
                match sampled {
                    Ok(result) => me.apply(result, Instant::now()),
                    Err(e) => tracing::error!(error = %e, "GPU sampling task failed"),
                }
            }
        })
    }

    /// Records a sample: metrics, cross-checks (health, events, ledger issues).
    fn apply(&self, result: Result<Vec<GpuSample>, GpuError>, now: Instant) {
        let inner = &self.inner;
        let samples = match result {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "GPU sampling failed");
                inner
                    .telemetry
                    .health
                    .set("gpu", ComponentStatus::Degraded, e.to_string());
                inner
                    .latest
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .error = Some(e.to_string());
                return;
            }
        };
        let m = &inner.metrics;
        for s in &samples {
            let gpu = s.index.to_string();
            let l = [gpu.as_str()];
            m.utilization
                .with_label_values(&l)
                .set(f64::from(s.utilization_percent) / 100.0);
            m.memory_used
                .with_label_values(&l)
                .set(s.memory_used_bytes as f64);
            m.memory_total
                .with_label_values(&l)
                .set(s.memory_total_bytes as f64);
            if let Some(t) = s.temperature_celsius {
                m.temperature.with_label_values(&l).set(f64::from(t));
            }
            if let Some(p) = s.power_watts {
                m.power.with_label_values(&l).set(p);
            }
            m.processes
                .with_label_values(&l)
                .set(i64::try_from(s.compute_processes.len()).unwrap_or(i64::MAX));
        }
        let issues = {
            let mut idle = inner.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.observe(&samples, now);
            let locks = inner.ledger.lock_holdings();
            crosscheck::cross_check(&samples, &locks, &idle, inner.idle_lock_after, now)
        };
        self.raise(&samples, &issues);
        inner.ledger.set_gpu_issues(issues.clone());
        let (status, reason) = if issues.is_empty() {
            (
                ComponentStatus::Healthy,
                format!(
                    "{}; {} GPU(s) sampled",
                    inner.source.describe(),
                    samples.len()
                ),
            )
        } else {
            (
                ComponentStatus::Degraded,
                issues
                    .iter()
                    .map(|i| i.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        };
        inner.telemetry.health.set("gpu", status, reason);
        *inner.latest.write().unwrap_or_else(|p| p.into_inner()) = Latest {
            samples,
            sampled_at: Some(crate::clock::unix_now()),
            error: None,
            issues,
        };
    }

    /// Warning gauges, plus an event and a counter for each warning newly raised.
    fn raise(&self, samples: &[GpuSample], issues: &[GpuIssue]) {
        let m = &self.inner.metrics;
        let now: BTreeSet<(u32, &'static str)> = issues.iter().map(|i| (i.gpu, i.kind)).collect();
        for s in samples {
            for kind in [UNLOCKED_USE, IDLE_LOCK] {
                let on = now.contains(&(s.index, kind));
                m.warning
                    .with_label_values(&[s.index.to_string().as_str(), kind])
                    .set(i64::from(on));
            }
        }
        let mut raised = self.inner.raised.lock().unwrap_or_else(|p| p.into_inner());
        for issue in issues {
            if !raised.contains(&(issue.gpu, issue.kind)) {
                m.warnings_total.with_label_values(&[issue.kind]).inc();
                self.inner.telemetry.events.emit(&GpuLockWarning {
                    gpu: issue.gpu,
                    lock_key: issue.lock_key.clone(),
                    kind: issue.kind,
                    detail: issue.message.clone(),
                });
            }
        }
        *raised = now;
    }

    /// Current cross-check findings.
    #[cfg(test)]
    pub fn issues(&self) -> Vec<GpuIssue> {
        self.inner
            .latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .issues
            .clone()
    }

    /// Each GPU with its lock and holder, and the warnings.
    pub fn report(&self) -> Value {
        let locks = self.inner.ledger.locks();
        let latest = self.inner.latest.read().unwrap_or_else(|p| p.into_inner());
        let gpus: Vec<Value> = latest
            .samples
            .iter()
            .map(|s| {
                let key = gpu_lock_key(s.index);
                let lock = locks.iter().find(|l| l.lock_key == key);
                let warnings: Vec<&GpuIssue> =
                    latest.issues.iter().filter(|i| i.gpu == s.index).collect();
                json!({
                    "index": s.index,
                    "uuid": s.uuid,
                    "name": s.name,
                    "utilization_percent": s.utilization_percent,
                    "utilization_ratio": f64::from(s.utilization_percent) / 100.0,
                    "memory_used_bytes": s.memory_used_bytes,
                    "memory_total_bytes": s.memory_total_bytes,
                    "temperature_celsius": s.temperature_celsius,
                    "power_watts": s.power_watts,
                    "compute_processes": s.compute_processes,
                    "lock_key": key,
                    "lock": lock.map(|l| json!({
                        "is_locked": l.is_locked,
                        "holder": l.lock_holder,
                        "fencing_token": l.fencing_token,
                        "lock_age": l.lock_age,
                        "expires_at": l.expires_at,
                    })),
                    "warnings": warnings,
                })
            })
            .collect();
        json!({
            "enabled": true,
            "source": self.inner.source.describe(),
            "sampled_at": latest.sampled_at,
            "error": latest.error,
            "gpus": gpus,
            "warnings": latest.issues,
            "timestamp": crate::clock::unix_now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LedgerConfig;
    use crate::ledger::AcquireRequest;

    fn gpu(index: u32, util: u32, pids: &[u32]) -> GpuSample {
        GpuSample {
            index,
            uuid: format!("GPU-{index}"),
            name: "Scripted H100".into(),
            utilization_percent: util,
            memory_used_bytes: 1 << 30,
            memory_total_bytes: 80 << 30,
            temperature_celsius: Some(55),
            power_watts: Some(312.5),
            compute_processes: pids
                .iter()
                .map(|&pid| GpuProcess {
                    pid,
                    used_memory_bytes: Some(1 << 29),
                })
                .collect(),
        }
    }

    async fn setup(
        frames: Vec<Vec<GpuSample>>,
    ) -> (tempfile::TempDir, Ledger, GpuMonitor, Telemetry) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let telemetry = Telemetry::new();
        let source = ScriptedSource::new(frames);
        let first = source.sample().unwrap();
        let detected = Detected::Source {
            source: Box::new(source),
            first,
        };
        let ledger = Ledger::open(
            &LedgerConfig::default(),
            &detected.lock_keys(),
            store,
            telemetry.clone(),
        )
        .await
        .unwrap();
        let config = GpuConfig {
            idle_lock_after: Duration::from_nanos(1),
            ..GpuConfig::default()
        };
        let Gpus::Enabled(monitor) =
            Gpus::start(detected, &config, ledger.clone(), telemetry.clone())
        else {
            panic!("scripted source must enable sampling");
        };
        (dir, ledger, monitor, telemetry)
    }

    #[tokio::test]
    async fn scripted_samples_feed_metrics_report_and_lock_keys() {
        let (_dir, ledger, monitor, telemetry) =
            setup(vec![vec![gpu(0, 40, &[]), gpu(1, 75, &[])]]).await;
        assert_eq!(ledger.lock_keys(), vec!["gpu_lock:0", "gpu_lock:1"]);
        let text = telemetry.metrics.render();
        for needle in [
            "keel_gpu_utilization_ratio{gpu=\"1\"} 0.75",
            "keel_gpu_memory_used_bytes{gpu=\"0\"} 1073741824",
            "keel_gpu_memory_total_bytes{gpu=\"0\"} 85899345920",
            "keel_gpu_temperature_celsius{gpu=\"0\"} 55",
            "keel_gpu_power_watts{gpu=\"0\"} 312.5",
        ] {
            assert!(text.contains(needle), "{needle}\n{text}");
        }
        let report = monitor.report();
        assert_eq!(report["enabled"], true);
        assert_eq!(report["gpus"][1]["uuid"], "GPU-1");
        assert_eq!(report["gpus"][1]["lock_key"], "gpu_lock:1");
        assert_eq!(report["gpus"][1]["lock"]["is_locked"], false);
        assert_eq!(
            telemetry.health.components()["gpu"].status,
            ComponentStatus::Healthy
        );
    }

    #[tokio::test]
    async fn unlocked_use_and_idle_lock_are_warned_in_health_metrics_and_events() {
        // Frame 1 (startup): GPU 0 runs pid 4242 with its lock free -> unlocked use.
        let (_dir, ledger, monitor, telemetry) = setup(vec![vec![gpu(0, 90, &[4242])]]).await;
        let issues = monitor.issues();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].kind, UNLOCKED_USE);
        assert!(issues[0].message.contains("4242"), "{}", issues[0].message);
        let lock = serde_json::to_value(ledger.lock_status("gpu_lock:0").unwrap()).unwrap();
        assert_eq!(lock["health"]["status"], "warning");
        assert_eq!(
            telemetry.health.components()["gpu"].status,
            ComponentStatus::Degraded
        );
        let text = telemetry.metrics.render();
        assert!(
            text.contains("keel_gpu_lock_warning{gpu=\"0\",kind=\"unlocked_use\"} 1"),
            "{text}"
        );
        assert!(text.contains("keel_gpu_lock_warnings_total{kind=\"unlocked_use\"} 1"));
        assert_eq!(
            telemetry
                .events
                .recent(10)
                .iter()
                .filter(|e| e.kind == "gpu.unlocked_use")
                .count(),
            1
        );

        // Someone takes the lock; the GPU goes idle: no unlocked use, and once idle for
        // longer than idle_lock_after while held -> idle lock.
        let held = ledger
            .acquire(AcquireRequest {
                lock_key: "gpu_lock:0".into(),
                holder: "whisper".into(),
                task_id: None,
                ttl_seconds: Some(600.0),
                wait_seconds: None,
            })
            .await
            .unwrap();
        assert!(matches!(held, crate::ledger::Acquired::Held(_)));
        let idle = vec![gpu(0, 0, &[])];
        let t0 = Instant::now();
        monitor.apply(Ok(idle.clone()), t0);
        assert!(
            monitor.issues().is_empty(),
            "idle for 0 s is not an idle lock yet"
        );
        monitor.apply(Ok(idle), t0 + Duration::from_secs(1));
        let issues = monitor.issues();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].kind, IDLE_LOCK);
        assert!(issues[0].message.contains("whisper"));
        let text = telemetry.metrics.render();
        assert!(text.contains("keel_gpu_lock_warning{gpu=\"0\",kind=\"unlocked_use\"} 0"));
        assert!(text.contains("keel_gpu_lock_warning{gpu=\"0\",kind=\"idle_lock\"} 1"));
        assert_eq!(monitor.report()["gpus"][0]["lock"]["holder"], "whisper");

        // Busy again: the warning clears and health recovers.
        monitor.apply(Ok(vec![gpu(0, 100, &[77])]), t0 + Duration::from_secs(2));
        assert!(monitor.issues().is_empty());
        assert_eq!(
            telemetry.health.components()["gpu"].status,
            ComponentStatus::Healthy
        );
        assert_eq!(
            serde_json::to_value(ledger.lock_status("gpu_lock:0").unwrap()).unwrap()["health"]
                ["status"],
            "healthy"
        );
    }

    #[test]
    fn disabled_report_names_the_reason() {
        let g = Gpus::Disabled {
            reason: "NVML not available: no driver".into(),
        };
        let r = g.report();
        assert_eq!(r["enabled"], false);
        assert_eq!(r["reason"], "NVML not available: no driver");
    }
}
