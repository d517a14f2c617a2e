//! The metric names that the dashboard snapshot, the alert rules and the shipped
//! Prometheus/Grafana files read — the one list the ops-file test cross-checks against a
//! live `/metrics`.
//!
//! Domain modules own and register these metrics; this list only names them so that the
//! readers (which must not import the domains) agree with the writers. Each entry says which
//! component's health gates it: a metric of a component reported `disabled` is not expected
//! in `/metrics`.

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
/// Restarts of the executor process, by reason (`crashed`, `memory_limit`, `hung`, ...).
pub const EXECUTOR_RESTARTS_TOTAL: &str = "keel_executor_restarts_total";
/// Resident memory of the executor process (user code runs there, not in keel's own).
pub const EXECUTOR_PROCESS_RESIDENT_MEMORY_BYTES: &str =
    "keel_executor_process_resident_memory_bytes";
/// Array-buffer backing stores held by the pool's isolates.
pub const EXECUTOR_ARRAY_BUFFER_BYTES: &str = "keel_executor_array_buffer_bytes";

/// Client connections keel closed, by listener (`proxy`, `control`) and reason
/// (`header_timeout`, `idle_timeout`, `limit`).
pub const CONNECTIONS_CLOSED_TOTAL: &str = "keel_connections_closed_total";
/// Client connections open now, by listener.
pub const CONNECTIONS_OPEN: &str = "keel_connections_open";
/// Credentials refused, by listener (admin/worker/access tokens, logins, client keys).
pub const AUTH_FAILURES_TOTAL: &str = "keel_auth_failures_total";
/// Requests answered 429 because their address spent its failed-authentication budget.
pub const AUTH_THROTTLED_TOTAL: &str = "keel_auth_throttled_total";

/// Every name above with the component whose health gates its presence (`core` = always).
pub const REFERENCED: &[(&str, &str)] = &[
    (UPSTREAM_REQUESTS_TOTAL, "proxy"),
    (UPSTREAM_REQUEST_DURATION_SECONDS, "proxy"),
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
