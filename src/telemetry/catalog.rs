//! Every metric name keel exports, in one list: a name is written once, here, and both the
//! domain that registers the metric and the readers (the dashboard feed, the alert rules,
//! the shipped Prometheus/Grafana files — which must not import the domains) use the
//! constant, so writer and reader cannot drift. A test below fails on a `"keel_…"` literal
//! anywhere else in `src/` outside tests.
//!
//! Domain modules own and register these metrics. [`REFERENCED`] lists the ones the readers
//! use — the list the ops-file test cross-checks against a live `/metrics` — each with the
//! component whose health gates it: a metric of a component reported `disabled` is not
//! expected in `/metrics`.

/// Upstream requests by node and status (`2xx`, `5xx`, or `error` when no answer came).
pub const UPSTREAM_REQUESTS_TOTAL: &str = "keel_upstream_requests_total";
/// Upstream latency histogram by node.
pub const UPSTREAM_REQUEST_DURATION_SECONDS: &str = "keel_upstream_request_duration_seconds";
/// Breaker state set by node: 1 for the current state (`closed`, `open`, `half_open`).
pub const BREAKER_STATE: &str = "keel_breaker_state";
/// Requests waiting for an upstream slot.
pub const QUEUE_DEPTH: &str = "keel_proxy_queue_depth";
/// Upstream nodes that can take traffic now (enabled, in rotation, breaker allowing).
pub const PROXY_NODES_AVAILABLE: &str = "keel_proxy_nodes_available";
/// LLM tokens by node and kind (`prompt`, `completion`).
pub const LLM_TOKENS_TOTAL: &str = "keel_llm_tokens_total";
/// Proxy requests by client key name and outcome (`admitted`, `requests_limited`,
/// `tokens_limited`, `concurrency_limited`, `model_denied`).
pub const CLIENT_KEY_REQUESTS_TOTAL: &str = "keel_client_key_requests_total";
/// LLM tokens by client key name and kind (`input`, `output`).
pub const CLIENT_KEY_TOKENS_TOTAL: &str = "keel_client_key_tokens_total";
/// 1 while a GPU lock is held.
pub const GPU_LOCK_HELD: &str = "keel_gpu_lock_held";
/// The fencing token of a lock's current (or last) holder.
pub const GPU_LOCK_FENCING_TOKEN: &str = "keel_gpu_lock_fencing_token";
/// Seconds since a task's last heartbeat.
pub const TASK_HEARTBEAT_AGE_SECONDS: &str = "keel_task_heartbeat_age_seconds";
/// Share of tracked tasks whose heartbeat failed (orphaned), 0..1.
pub const HEARTBEAT_FAILURE_RATIO: &str = "keel_task_heartbeat_failure_ratio";
/// GPU utilization 0..1 and memory in use, by GPU index.
pub const GPU_UTILIZATION_RATIO: &str = "keel_gpu_utilization_ratio";
pub const GPU_MEMORY_USED_BYTES: &str = "keel_gpu_memory_used_bytes";
/// Resident memory of keel (the process collector, always present on Linux).
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "keel_process_resident_memory_bytes";
/// User plus system CPU time of keel, at clock-tick resolution (not whole seconds).
pub const PROCESS_CPU_SECONDS_TOTAL: &str = "keel_process_cpu_seconds_total";
/// 1 while an alert has at least one firing instance (owned by `crate::alerts`).
pub const ALERT_FIRING: &str = "keel_alert_firing";

/// Code-block executions by outcome (`success`, `error`, `timeout`, `rejected`, ...).
pub const EXECUTOR_EXECUTIONS_TOTAL: &str = "keel_executor_executions_total";
/// Time a code block spent on an isolate (histogram).
pub const EXECUTOR_EXECUTION_DURATION_SECONDS: &str = "keel_executor_execution_duration_seconds";
/// Executions admitted and waiting for an isolate.
pub const EXECUTOR_QUEUE_DEPTH: &str = "keel_executor_queue_depth";
/// Isolates by state (`starting`, `idle`, `busy`).
pub const EXECUTOR_POOL_ISOLATES: &str = "keel_executor_pool_isolates";
/// V8 heap used, summed over the pool.
pub const EXECUTOR_HEAP_USED_BYTES: &str = "keel_executor_heap_used_bytes";
/// Isolates replaced from the snapshot, by reason (`timeout`, `heap`, `crash`).
pub const EXECUTOR_ISOLATE_RECYCLES_TOTAL: &str = "keel_executor_isolate_recycles_total";
/// Calls that ran in a context kept warm from their token's previous call
/// (`[executor] reuse_contexts`).
pub const EXECUTOR_CONTEXTS_REUSED_TOTAL: &str = "keel_executor_contexts_reused_total";
/// Restarts of the executor process, by reason (`crashed`, `memory_limit`, `hung`, ...).
pub const EXECUTOR_RESTARTS_TOTAL: &str = "keel_executor_restarts_total";
/// Resident memory of the executor process (user code runs there, not in keel's own).
pub const EXECUTOR_PROCESS_RESIDENT_MEMORY_BYTES: &str =
    "keel_executor_process_resident_memory_bytes";
/// Array-buffer backing stores held by the pool's isolates.
pub const EXECUTOR_ARRAY_BUFFER_BYTES: &str = "keel_executor_array_buffer_bytes";

/// Client connections keel closed, by listener (`proxy`, `control`) and reason
/// (`header_timeout`, `idle_timeout`, `limit`, `tls_handshake`).
pub const CONNECTIONS_CLOSED_TOTAL: &str = "keel_connections_closed_total";
/// Client connections open now, by listener.
pub const CONNECTIONS_OPEN: &str = "keel_connections_open";
/// Credentials refused, by listener (admin/worker/access tokens, logins, client keys).
pub const AUTH_FAILURES_TOTAL: &str = "keel_auth_failures_total";
/// Requests answered 429 because their address spent its failed-authentication budget.
pub const AUTH_THROTTLED_TOTAL: &str = "keel_auth_throttled_total";

// ── core (the control listener, the process) ───────────────────────────────────────────
/// Build information; always 1, labelled by version.
pub const BUILD_INFO: &str = "keel_build_info";
/// Control-listener requests by route template, method and status class.
pub const HTTP_REQUESTS_TOTAL: &str = "keel_http_requests_total";
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "keel_http_request_duration_seconds";
pub const HTTP_REQUESTS_IN_FLIGHT: &str = "keel_http_requests_in_flight";
/// Operator events emitted, by kind and level.
pub const EVENTS_TOTAL: &str = "keel_events_total";
/// Configuration reloads (SIGHUP, `keel reload`) by result: `ok` or `invalid` (refused,
/// nothing changed).
pub const CONFIG_RELOADS_TOTAL: &str = "keel_config_reloads_total";
/// 1 unless the last configuration reload was refused (1 before any reload).
pub const CONFIG_LAST_RELOAD_SUCCESSFUL: &str = "keel_config_last_reload_successful";
/// The prefix of the process collector's families (`keel_process_*`).
pub const PROCESS_NAMESPACE: &str = "keel";
/// All control requests in one histogram, and the 5xx among them: never registered, they
/// only feed `/api/metrics`' percentiles.
pub const ALL_REQUESTS_INTERNAL: &str = "keel_all_requests";
pub const ALL_ERRORS_INTERNAL: &str = "keel_all_errors";

// ── proxy ────────────────────────────────────────────────────────────────────────────
/// Upstream time to the first response byte, by node.
pub const UPSTREAM_TTFB_SECONDS: &str = "keel_upstream_time_to_first_byte_seconds";
/// Streamed LLM attempts from their start to the first content event, by node.
pub const UPSTREAM_TTFT_SECONDS: &str = "keel_upstream_time_to_first_token_seconds";
pub const UPSTREAM_RETRIES_TOTAL: &str = "keel_upstream_retries_total";
pub const BREAKER_EJECTIONS_TOTAL: &str = "keel_breaker_ejections_total";
/// Client requests on the proxy listener.
pub const PROXY_REQUESTS_TOTAL: &str = "keel_proxy_requests_total";
pub const PROXY_REQUEST_DURATION_SECONDS: &str = "keel_proxy_request_duration_seconds";
pub const QUEUE_WAIT_SECONDS: &str = "keel_proxy_queue_wait_seconds";
pub const PREWARM_DURATION_SECONDS: &str = "keel_prewarm_probe_duration_seconds";
pub const SHIFT_STAGE_PERCENT: &str = "keel_shift_stage_percent";
pub const NODES_AVAILABLE: &str = "keel_proxy_nodes_available";
/// LLM route: attempts by node and outcome, requests by outcome, malformed stream events,
/// idempotency-key deduplication.
pub const LLM_ATTEMPTS_TOTAL: &str = "keel_llm_attempts_total";
pub const LLM_REQUESTS_TOTAL: &str = "keel_llm_requests_total";
pub const LLM_MALFORMED_EVENTS_TOTAL: &str = "keel_llm_malformed_events_total";
pub const LLM_DEDUP_TOTAL: &str = "keel_llm_dedup_total";

// ── ledger ───────────────────────────────────────────────────────────────────────────
/// Acquires queued for a lock.
pub const GPU_LOCK_WAITERS: &str = "keel_gpu_lock_waiters";
/// Acquire attempts by result (`acquired`, `timeout`, `conflict`).
pub const GPU_LOCK_ACQUISITIONS_TOTAL: &str = "keel_gpu_lock_acquisitions_total";
pub const GPU_LOCK_WAIT_SECONDS: &str = "keel_gpu_lock_wait_seconds";
/// Expired leases and orphaned heartbeats, by kind.
pub const LEDGER_TIMEOUTS_TOTAL: &str = "keel_ledger_timeouts_total";
/// Journal commits: duration (fsync included) and changes per commit.
pub const LEDGER_JOURNAL_COMMIT_SECONDS: &str = "keel_ledger_journal_commit_seconds";
pub const LEDGER_JOURNAL_COMMIT_OPS: &str = "keel_ledger_journal_commit_ops";

// ── GPUs ─────────────────────────────────────────────────────────────────────────────
pub const GPU_MEMORY_TOTAL_BYTES: &str = "keel_gpu_memory_total_bytes";
pub const GPU_TEMPERATURE_CELSIUS: &str = "keel_gpu_temperature_celsius";
pub const GPU_POWER_WATTS: &str = "keel_gpu_power_watts";
pub const GPU_COMPUTE_PROCESSES: &str = "keel_gpu_compute_processes";
/// 1 while a cross-check warning (`kind` = unlocked_use | idle_lock) holds for the GPU.
pub const GPU_LOCK_WARNING: &str = "keel_gpu_lock_warning";
pub const GPU_LOCK_WARNINGS_TOTAL: &str = "keel_gpu_lock_warnings_total";

/// Every name above with the component whose health gates its presence (`core` = always).
pub const REFERENCED: &[(&str, &str)] = &[
    (UPSTREAM_REQUESTS_TOTAL, "proxy"),
    (UPSTREAM_REQUEST_DURATION_SECONDS, "proxy"),
    (UPSTREAM_TTFT_SECONDS, "proxy"),
    (BREAKER_STATE, "proxy"),
    (QUEUE_DEPTH, "proxy"),
    (PROXY_NODES_AVAILABLE, "proxy"),
    (LLM_TOKENS_TOTAL, "proxy"),
    (GPU_LOCK_HELD, "ledger"),
    (GPU_LOCK_FENCING_TOKEN, "ledger"),
    (TASK_HEARTBEAT_AGE_SECONDS, "ledger"),
    (HEARTBEAT_FAILURE_RATIO, "ledger"),
    (GPU_UTILIZATION_RATIO, "gpu"),
    (GPU_MEMORY_USED_BYTES, "gpu"),
    (PROCESS_RESIDENT_MEMORY_BYTES, "core"),
    (ALERT_FIRING, "core"),
    (CONNECTIONS_CLOSED_TOTAL, "core"),
    (CONNECTIONS_OPEN, "core"),
    (AUTH_FAILURES_TOTAL, "core"),
    (AUTH_THROTTLED_TOTAL, "core"),
    (EXECUTOR_EXECUTIONS_TOTAL, "executor"),
    (EXECUTOR_EXECUTION_DURATION_SECONDS, "executor"),
    (EXECUTOR_QUEUE_DEPTH, "executor"),
    (EXECUTOR_POOL_ISOLATES, "executor"),
    (EXECUTOR_HEAP_USED_BYTES, "executor"),
    (EXECUTOR_RESTARTS_TOTAL, "executor"),
];

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Names that start with `keel_` but are not metrics.
    const NOT_METRICS: [&str; 1] = ["\"keel_session\""];

    /// Every `"keel_…"` literal outside this file, outside test code (a file's
    /// `#[cfg(test)]` tail, `tests.rs`, `*_tests.rs`).
    fn stray_names(dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stray_names(&path, out);
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.ends_with(".rs")
                || name == "catalog.rs"
                || name == "tests.rs"
                || name.ends_with("_tests.rs")
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for (i, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("#[cfg(test)]") {
                    break;
                }
                if line.contains("\"keel_") && !NOT_METRICS.iter().any(|n| line.contains(n)) {
                    out.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                }
            }
        }
    }

    #[test]
    fn metric_names_are_written_only_in_the_catalog() {
        let mut stray = Vec::new();
        stray_names(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut stray,
        );
        assert!(
            stray.is_empty(),
            "metric names belong in telemetry/catalog.rs:\n{}",
            stray.join("\n")
        );
    }
}
