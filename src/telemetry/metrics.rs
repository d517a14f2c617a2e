//! The registry every metric lives in (names: [`super::catalog`]).
//!
//! Each domain module registers its own collectors into [`Metrics::registry`] using the
//! catalog's names, so `/metrics` is one exposition with one naming scheme.

use super::catalog;
use prometheus::core::{Collector, Metric};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::catalog::{
    BUILD_INFO, HTTP_REQUESTS_IN_FLIGHT, HTTP_REQUESTS_TOTAL, HTTP_REQUEST_DURATION_SECONDS,
};

/// Finishes building a collector from the catalog's names: construction fails only for a
/// malformed name or label set, which are constants here, and every collector is built
/// when keel starts — so the test suite meets any such mistake before a user could.
pub(crate) trait Built<T> {
    fn built(self) -> T;
}

impl<T> Built<T> for prometheus::Result<T> {
    #[allow(clippy::expect_used)]
    fn built(self) -> T {
        self.expect("metric names and labels are constants of telemetry::catalog")
    }
}

/// Latency buckets in seconds, from sub-millisecond control calls to slow LLM answers.
pub(crate) const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The control listener's requests as `/api/metrics`' `performance` shows them.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RequestSummary {
    pub requests_total: u64,
    pub errors_total: u64,
    pub error_rate: f64,
    pub requests_per_second: f64,
    pub avg_response_ms: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// The registry plus the metrics that the core (control listener, build) owns.
pub struct Metrics {
    pub registry: Registry,
    /// Control-listener requests by route template and status class.
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub http_in_flight: IntGaugeVec,
    /// Client connections keel closed, by listener and reason (see `crate::limits`).
    pub connections_closed: IntCounterVec,
    /// Client connections open, by listener.
    pub connections_open: IntGaugeVec,
    /// Refused credentials, by listener.
    pub auth_failures: IntCounterVec,
    /// Requests refused for an address's spent failed-authentication budget, by listener.
    pub auth_throttled: IntCounterVec,
    /// All control requests in one histogram (unregistered) for `/api/metrics` percentiles.
    all_requests: prometheus::Histogram,
    all_errors: prometheus::IntCounter,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let build = IntGaugeVec::new(
            Opts::new(BUILD_INFO, "keel build information; always 1"),
            &["version"],
        )
        .built();
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let http_requests = IntCounterVec::new(
            Opts::new(HTTP_REQUESTS_TOTAL, "Control-listener requests"),
            &["route", "method", "status"],
        )
        .built();
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                HTTP_REQUEST_DURATION_SECONDS,
                "Control-listener request duration",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )
        .built();
        let http_in_flight = IntGaugeVec::new(
            Opts::new(
                HTTP_REQUESTS_IN_FLIGHT,
                "Control-listener requests being served",
            ),
            &["listener"],
        )
        .built();
        let connections_closed = IntCounterVec::new(
            Opts::new(
                catalog::CONNECTIONS_CLOSED_TOTAL,
                "Client connections keel closed: header_timeout, idle_timeout or limit",
            ),
            &["listener", "reason"],
        )
        .built();
        let connections_open = IntGaugeVec::new(
            Opts::new(catalog::CONNECTIONS_OPEN, "Client connections open"),
            &["listener"],
        )
        .built();
        let auth_failures = IntCounterVec::new(
            Opts::new(catalog::AUTH_FAILURES_TOTAL, "Refused credentials"),
            &["listener"],
        )
        .built();
        let auth_throttled = IntCounterVec::new(
            Opts::new(
                catalog::AUTH_THROTTLED_TOTAL,
                "Requests answered 429 after their address's failed authentications",
            ),
            &["listener"],
        )
        .built();
        // Every series exists from the start at 0, so rates and alerts see the first event.
        for listener in crate::limits::Listener::ALL {
            let l = listener.label();
            for reason in crate::limits::CloseReason::ALL {
                connections_closed.with_label_values(&[l, reason.label()]);
            }
            connections_open.with_label_values(&[l]);
            auth_failures.with_label_values(&[l]);
            auth_throttled.with_label_values(&[l]);
        }
        let m = Metrics {
            registry,
            http_requests,
            http_duration,
            http_in_flight,
            connections_closed,
            connections_open,
            auth_failures,
            auth_throttled,
            all_requests: prometheus::Histogram::with_opts(
                HistogramOpts::new(catalog::ALL_REQUESTS_INTERNAL, "internal")
                    .buckets(LATENCY_BUCKETS.to_vec()),
            )
            .built(),
            all_errors: prometheus::IntCounter::new(catalog::ALL_ERRORS_INTERNAL, "internal")
                .built(),
        };
        m.register(build);
        m.register(m.http_requests.clone());
        m.register(m.http_duration.clone());
        m.register(m.http_in_flight.clone());
        m.register(m.connections_closed.clone());
        m.register(m.connections_open.clone());
        m.register(m.auth_failures.clone());
        m.register(m.auth_throttled.clone());
        #[cfg(target_os = "linux")]
        m.register(super::process::ProcessCollector::new(
            catalog::PROCESS_NAMESPACE,
        ));
        m
    }

    /// Registers a collector; a name clash is a programming error caught by the tests.
    pub fn register<C: Collector + 'static>(&self, c: C) {
        if let Err(e) = self.registry.register(Box::new(c)) {
            tracing::error!(error = %e, "metric registration failed");
        }
    }

    /// Records one served request for the `/api/metrics` summary.
    pub fn observe_request(&self, elapsed: std::time::Duration, server_error: bool) {
        self.all_requests.observe(elapsed.as_secs_f64());
        if server_error {
            self.all_errors.inc();
        }
    }

    /// Request statistics of the control listener: totals, error rate, latency percentiles.
    pub fn request_summary(&self, uptime: std::time::Duration) -> RequestSummary {
        let total = self.all_requests.get_sample_count();
        let errors = self.all_errors.get();
        let ms = |q: f64| histogram_quantile(&self.all_requests, q).map(|s| s * 1000.0);
        let per_request = |x: f64| if total > 0 { x / total as f64 } else { 0.0 };
        RequestSummary {
            requests_total: total,
            errors_total: errors,
            error_rate: per_request(errors as f64),
            requests_per_second: total as f64 / uptime.as_secs_f64().max(1.0),
            avg_response_ms: per_request(self.all_requests.get_sample_sum() * 1000.0),
            p50_ms: ms(0.5),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
        }
    }

    /// Requests being served on every listener (the reference's `active_sessions`).
    pub fn active_sessions(&self) -> i64 {
        ["control", "proxy"]
            .iter()
            .map(|l| self.http_in_flight.with_label_values(&[l]).get())
            .sum()
    }

    /// Prometheus text exposition of everything registered.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `2xx`, `4xx`...: bounded status label values.
pub(crate) fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Approximate quantile from a histogram's cumulative buckets (linear within a bucket), as
/// Prometheus' `histogram_quantile` does; `None` with no observations.
pub(crate) fn histogram_quantile(h: &prometheus::Histogram, q: f64) -> Option<f64> {
    let metric = h.metric();
    let hist = metric.get_histogram();
    let total = hist.get_sample_count();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut prev_bound = 0.0;
    let mut prev_count = 0u64;
    for b in hist.get_bucket() {
        let count = b.cumulative_count();
        if count as f64 >= rank {
            let in_bucket = (count - prev_count) as f64;
            let frac = if in_bucket > 0.0 {
                (rank - prev_count as f64) / in_bucket
            } else {
                0.0
            };
            return Some(prev_bound + (b.upper_bound() - prev_bound) * frac);
        }
        prev_bound = b.upper_bound();
        prev_count = count;
    }
    Some(prev_bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_build_info_and_process_metrics() {
        let text = Metrics::new().render();
        assert!(text.contains("keel_build_info{version=\""), "{text}");
        assert!(
            text.contains("keel_process_resident_memory_bytes"),
            "{text}"
        );
    }

    /// `keel_process_cpu_seconds_total` is the exact tick count over `CLK_TCK`, not whole
    /// seconds: read between two direct readings it lies between them, and when they agree on
    /// a fractional value it is that value.
    #[cfg(target_os = "linux")]
    #[test]
    fn process_cpu_seconds_have_clock_tick_resolution() {
        let metrics = Metrics::new();
        let exported = || {
            let text = metrics.render();
            let line = text
                .lines()
                .find(|l| l.starts_with(catalog::PROCESS_CPU_SECONDS_TOTAL))
                .unwrap_or_else(|| panic!("no CPU counter in {text}"));
            let value = line.rsplit(' ').next().expect("a value");
            value.parse::<f64>().expect("a number")
        };
        let direct = || super::super::process::cpu_seconds_of("self").expect("/proc/self");
        for _ in 0..500 {
            let mut x = 0u64;
            for i in 0..200_000u64 {
                x = x.wrapping_add(i * i);
            }
            std::hint::black_box(x);
            let before = direct();
            let seen = exported();
            let after = direct();
            assert!(
                before <= seen && seen <= after,
                "{before} <= {seen} <= {after}"
            );
            if before == after && before.fract() != 0.0 {
                assert_eq!(seen, before);
                return;
            }
        }
        panic!("no fractional CPU reading in 500 tries");
    }

    #[test]
    fn quantile_interpolates_within_buckets() {
        let h = prometheus::Histogram::with_opts(
            HistogramOpts::new("t", "t").buckets(vec![1.0, 2.0, 4.0]),
        )
        .unwrap();
        assert_eq!(histogram_quantile(&h, 0.5), None);
        for _ in 0..10 {
            h.observe(1.5);
        }
        let p50 = histogram_quantile(&h, 0.5).unwrap();
        assert!((1.0..=2.0).contains(&p50), "{p50}");
    }
}
