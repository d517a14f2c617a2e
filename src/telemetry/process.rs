//! Process RSS and CPU for `/api/metrics` and alerts, read from `/proc/self` (Linux).
//!
//! CPU percent needs two samples; a background task calls [`ProcessStats::sample`] once a
//! second and readers get the last computed value without touching `/proc`.

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
        if let Some(rss) = read_rss_bytes() {
            self.rss_bytes.store(rss, Ordering::Relaxed);
        }
        if let Some(cpu_seconds) = read_cpu_seconds() {
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
    }

    pub fn rss_bytes(&self) -> u64 {
        self.rss_bytes.load(Ordering::Relaxed)
    }

    pub fn cpu_percent(&self) -> f64 {
        self.cpu_centi_percent.load(Ordering::Relaxed) as f64 / 100.0
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as f64
    } else {
        100.0
    }
}

fn read_rss_bytes() -> Option<u64> {
    rss_bytes_of("self")
}

/// Resident memory of a process (`"self"` or a pid), from `/proc/<pid>/statm`.
pub fn rss_bytes_of(pid: &str) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn read_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may contain spaces; fields after ')' are fixed.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
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
    }
}
