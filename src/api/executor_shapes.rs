//! The code-block service's documents (`spec/code-executor.md`) as types. Field names are the
//! reference's (camelCase, `request_id` included as it had it); they are a contract with
//! existing clients, so the compiler holds them.

use crate::executor::tokens::TokenInfo;
use crate::executor::TokenUsage;
use serde::Serialize;
use serde_json::json;
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// `GET /flow`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ServiceInfo {
    pub service: &'static str,
    pub version: &'static str,
    pub engine: String,
    pub description: &'static str,
    /// Whole seconds since keel started.
    pub uptime: u64,
    pub endpoints: Endpoints,
    /// The libraries in the snapshot, in load order.
    #[schema(value_type = Vec<String>)]
    pub modules: [&'static str; crate::executor::snapshot::MODULES.len()],
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ExecutorEndpoints)]
pub(crate) struct Endpoints {
    pub execute: &'static str,
    pub health: &'static str,
    pub status: &'static str,
    pub limits: &'static str,
}

/// The pool's counters in `/flow/health`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ExecutorRuntime)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Runtime {
    pub pool_size: usize,
    pub max_concurrent: usize,
    pub current_executions: usize,
    pub total_executions: u64,
    pub success_rate: String,
}

/// V8 memory as the reference reported its Go runtime's: human figures (`"12.3 MB"`) beside
/// keel's exact byte counts.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ExecutorMemory)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Memory {
    pub alloc: String,
    pub array_buffers: String,
    pub array_buffer_bytes: u64,
    pub process_memory_limit_bytes: u64,
    pub total_alloc: String,
    pub sys: String,
    pub heap_used_bytes: u64,
    pub heap_total_bytes: u64,
    pub heap_limit_bytes: u64,
    pub isolates: usize,
    pub last_context_creation_ms: f64,
    pub last_context_with_libraries_ms: f64,
}

/// `GET /flow/health`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ExecutorHealth)]
pub(crate) struct Health {
    /// `healthy`, or `degraded` while the executor process restarts.
    pub status: &'static str,
    pub reason: Option<String>,
    pub timestamp: String,
    pub service: &'static str,
    pub version: &'static str,
    pub runtime: Runtime,
    pub memory: Memory,
    pub warmup: Warmup,
}

/// The snapshot warmup, as monitoring and probes read it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Warmup {
    pub status: String,
    pub modules: Vec<String>,
    pub total_modules: usize,
    pub success_count: usize,
    /// Rust's `Debug` form of the duration (`"812.3ms"`).
    pub elapsed: String,
    pub elapsed_ms: u64,
    pub timestamp: String,
    pub details: Vec<WarmupDetail>,
    pub snapshot_bytes: usize,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WarmupDetail {
    pub name: String,
    /// Always `ok`: only loaded modules are listed.
    pub status: &'static str,
    pub elapsed_ms: f64,
}

/// `GET /flow/status`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ExecutorStatus)]
pub(crate) struct Status {
    /// Always `running`.
    pub status: &'static str,
    pub timestamp: String,
    pub uptime: u64,
    pub memory: Memory,
    pub executor: PoolStatus,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PoolStatus {
    pub current_executions: usize,
    pub max_concurrent: usize,
    pub queue_length: usize,
    pub total: u64,
    pub successful: u64,
    pub failed: u64,
    pub success_rate: String,
    pub pool_size: usize,
    pub isolates_idle: usize,
    pub isolates_busy: usize,
    pub isolates_starting: usize,
    pub isolates_recycled: u64,
    /// Calls that ran in a context kept warm from their token's previous call
    /// (`[executor] reuse_contexts`).
    pub contexts_reused: u64,
    pub process_restarts: u64,
    pub process_pid: Option<u32>,
    pub sandbox: Option<String>,
}

/// `GET /flow/limits`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ExecutorLimits)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Limits {
    /// Milliseconds.
    pub execution_timeout: u64,
    pub max_code_length: usize,
    pub max_input_size: usize,
    pub max_concurrent: usize,
    pub max_result_size: usize,
    pub heap_limit_mb: usize,
    pub array_buffer_limit_mb: usize,
    pub memory_limit_mb: usize,
    /// The reference's environment variable behind each limit.
    pub env: LimitVariables,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LimitVariables {
    pub execution_timeout: &'static str,
    pub max_code_length: &'static str,
    pub max_input_size: &'static str,
    pub max_concurrent: &'static str,
    pub max_result_size: &'static str,
}

/// `POST /flow/codeblock`'s body. The handler reads it by hand, so that every problem
/// answers the reference's `ValidationError` envelope rather than a generic 400; this type
/// only describes it.
pub(crate) struct CodeblockRequest;

impl PartialSchema for CodeblockRequest {
    fn schema() -> RefOr<Schema> {
        let required = |field: &str| ObjectBuilder::new().required(field);
        let fields = ObjectBuilder::new()
            .property(
                "input",
                ObjectBuilder::new()
                    .schema_type(SchemaType::AnyValue)
                    .description(Some("Any JSON; the code sees it as `input`.")),
            )
            .required("input")
            .property(
                "codebase64",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "The JavaScript, Base64 (standard or URL-safe, padding optional, \
                         whitespace ignored).",
                    )),
            )
            .property(
                "codeBase64",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("The other spelling clients send; `codebase64` wins.")),
            )
            .property(
                "timeout",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
                    .minimum(Some(0))
                    .description(Some(
                        "Milliseconds for this call, capped by `[executor] execution_timeout`.",
                    )),
            );
        AllOfBuilder::new()
            .description(Some(
                "A code block and its input. The code is a function body: it ends with \
                 `return <value>` and may return a Promise, which is awaited. Libraries come \
                 through `require` (crypto-js, axios, date-fns, lodash, qs, pinyin, uuid) and \
                 `fetch` is a global; there is no file system, process or environment.",
            ))
            .item(fields)
            .item(
                AnyOfBuilder::new()
                    .item(required("codebase64"))
                    .item(required("codeBase64")),
            )
            .examples([json!({
                "input": {"a": 20, "b": 30},
                // `return {result: input.a + input.b, name: 'sum'}`
                "codebase64": "cmV0dXJuIHtyZXN1bHQ6IGlucHV0LmEgKyBpbnB1dC5iLCBuYW1lOiAnc3VtJ30=",
                "timeout": 5000
            })])
            .into()
    }
}

impl ToSchema for CodeblockRequest {}

/// `POST /flow/codeblock`'s answer for every outcome: `result` on success, `error` else.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Codeblock {
    pub success: bool,
    /// What the code returned (success only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// What went wrong (failure only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<CodeblockError>,
    pub timing: Timing,
    /// `2025-10-05 16:30:00` (UTC).
    pub timestamp: String,
    pub request_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CodeblockError {
    /// `ValidationError`, `TimeoutError`, a JavaScript error's name, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

/// Milliseconds on an isolate, and in keel overall.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Timing {
    pub execution_time: u64,
    pub total_time: u64,
}

/// `GET /flow/admin/tokens`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenList {
    pub tokens: Vec<TokenInfo>,
}

/// `GET /flow/stats/modules`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ModuleStats {
    pub success: bool,
    pub data: ModuleStatsData,
    pub timestamp: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModuleStatsData {
    pub total_requires: u64,
    /// Most required first.
    pub modules: Vec<ModuleRequires>,
}

/// One bundled module's executions that required it, and its share of all of them.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ModuleRequires {
    #[schema(value_type = String)]
    pub name: &'static str,
    pub requires: u64,
    pub share: String,
}

/// `GET /flow/stats/modules/{name}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ModuleStat {
    pub success: bool,
    pub data: ModuleStatData,
    pub timestamp: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModuleStatData {
    #[serde(flatten)]
    pub module: ModuleRequires,
    pub total_requires: u64,
}

/// `GET /flow/stats/users`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserStats {
    pub success: bool,
    pub data: UserStatsData,
    pub timestamp: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserStatsData {
    /// Most active first.
    pub users: Vec<UserUsage>,
}

/// One access token's calls, by token name.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserUsage {
    pub token: String,
    #[serde(flatten)]
    pub usage: TokenUsage,
    pub success_rate: String,
}

/// The 404 of `GET /flow/stats/modules/{name}`, in the service's own error shape.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NotFound {
    pub success: bool,
    pub error: CodeblockError,
}
