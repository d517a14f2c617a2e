//! keel's own RSS and CPU for `/api/metrics`, the dashboard and alerts, and the executor
//! process's RSS for its supervisor — read through `procfs`, the reader behind the
//! Prometheus process collector (`keel_process_*`), so both report the same figures from
//! one `/proc` parser instead of a hand-written second one.
//!
//! CPU percent needs two samples; a background task calls [`ProcessStats::sample`] once a
//! second and readers get the last computed value without touching `/proc`.

use super::metrics::Built;
use procfs::process::{Process, Stat};
use procfs::WithCurrentSystemInfo;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

#[derive(Default)]
pub struct ProcessStats {
    rss_bytes: AtomicU64,
    /// CPU percent × 100, as an integer for lock-free reads.
    cpu_centi_percent: AtomicU64,
    last: Mutex<Option<(Instant, f64)>>,
}

impl ProcessStats {
    /// Reads `/proc/self` and updates RSS and CPU percent since the previous sample.
    pub fn sample(&self) {
        let Some(stat) = stat_of("self") else {
            return;
        };
        self.rss_bytes.store(rss_of(&stat), Ordering::Relaxed);
        let cpu_seconds = cpu_seconds(&stat);
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((then, then_cpu)) = *last {
            let wall = now.duration_since(then).as_secs_f64();
            if wall > 0.0 {
                let pct = ((cpu_seconds - then_cpu) / wall * 100.0).max(0.0);
                self.cpu_centi_percent
                    .store((pct * 100.0) as u64, Ordering::Relaxed);
            }
        }
        *last = Some((now, cpu_seconds));
    }

    pub fn rss_bytes(&self) -> u64 {
        self.rss_bytes.load(Ordering::Relaxed)
    }

    pub fn cpu_percent(&self) -> f64 {
        self.cpu_centi_percent.load(Ordering::Relaxed) as f64 / 100.0
    }
}

fn stat_of(pid: &str) -> Option<Stat> {
    let process = match pid {
        "self" => Process::myself(),
        pid => Process::new(pid.parse().ok()?),
    };
    process.and_then(|p| p.stat()).ok()
}

fn rss_of(stat: &Stat) -> u64 {
    stat.rss_bytes().get()
}

/// Resident memory of a process (`"self"` or a pid).
pub(crate) fn rss_bytes_of(pid: &str) -> Option<u64> {
    stat_of(pid).map(|s| rss_of(&s))
}

/// User plus system CPU time of a process so far.
fn cpu_seconds(stat: &Stat) -> f64 {
    (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64
}

/// User plus system CPU time of a process (`"self"` or a pid) so far, at clock-tick
/// resolution.
pub(crate) fn cpu_seconds_of(pid: &str) -> Option<f64> {
    stat_of(pid).map(|s| cpu_seconds(&s))
}

/// The `keel_process_*` families: Prometheus' process collector, with its CPU counter
/// replaced by the exact figure. The stock collector divides clock ticks by `CLK_TCK` in
/// integers, so its `..._process_cpu_seconds_total` moves in whole seconds and a `rate()`
/// over a short window reads 0 or a whole core; keel exports `(utime + stime) / CLK_TCK`
/// as a float, the same reading `/api/metrics`' `cpu_percent` is computed from.
#[cfg(target_os = "linux")]
pub(crate) struct ProcessCollector {
    pid: u32,
    stock: prometheus::process_collector::ProcessCollector,
    cpu: prometheus::Counter,
    /// Collections may run side by side; the counter only moves under this lock, so two of
    /// them never add the same CPU time twice.
    cpu_update: Mutex<()>,
}

#[cfg(target_os = "linux")]
impl ProcessCollector {
    /// The collector of this process, its families prefixed `{namespace}_`.
    pub(crate) fn new(namespace: &str) -> Self {
        let pid = std::process::id();
        let cpu = prometheus::Counter::with_opts(
            prometheus::Opts::new(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
            )
            .namespace(namespace),
        )
        .built();
        ProcessCollector {
            pid,
            stock: prometheus::process_collector::ProcessCollector::new(pid as i32, namespace),
            cpu,
            cpu_update: Mutex::new(()),
        }
    }
}

#[cfg(target_os = "linux")]
impl Collector for ProcessCollector {
    /// The stock collector's descriptions: the CPU counter keeps its name, help and type.
    fn desc(&self) -> Vec<&Desc> {
        self.stock.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let cpu_name = self.cpu.desc()[0].fq_name.clone();
        let mut families: Vec<MetricFamily> = self
            .stock
            .collect()
            .into_iter()
            .filter(|f| f.name() != cpu_name)
            .collect();
        if let Some(now) = cpu_seconds_of(&self.pid.to_string()) {
            let _guard = self.cpu_update.lock().unwrap_or_else(|p| p.into_inner());
            let ahead = now - self.cpu.get();
            if ahead > 0.0 {
                self.cpu.inc_by(ahead);
            }
            families.splice(0..0, self.cpu.collect());
        }
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_rss_and_cpu() {
        let p = ProcessStats::default();
        p.sample();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        p.sample();
        assert!(p.rss_bytes() > 0);
        assert!(p.cpu_percent() >= 0.0);
        let pid = std::process::id().to_string();
        assert!(rss_bytes_of(&pid).is_some_and(|b| b > 0));
        assert_eq!(rss_bytes_of("not-a-pid"), None);
    }
}
