//! Executor errors: the startup failure (fail fast) and the per-call outcome that the HTTP
//! layer turns into the reference's `{"success":false,"error":{"type","message"}}` shape.

use std::time::Duration;

/// keel refuses to start when the executor cannot be made ready.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("executor warmup failed: module {module:?} failed to load: {error}")]
    Module { module: String, error: String },
    #[error("executor runtime script failed: {0}")]
    Runtime(String),
    #[error("V8 could not create the executor snapshot")]
    Snapshot,
    #[error("fetch client: {0}")]
    Fetch(#[from] reqwest::Error),
    #[error("executor thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// How a call failed. `kind` is the reference's `error.type`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExecError {
    pub kind: ErrorKind,
    pub message: String,
    /// Time spent on an isolate (zero when the call never reached one).
    pub execution_time: Duration,
}

/// The error types of the reference API plus keel's admission errors.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// A JavaScript exception: its `name` (SyntaxError, TypeError, RangeError, ...).
    Js(String),
    /// Execution time limit (promise chains and pending fetches included).
    Timeout,
    /// Heap limit hit; reported as a RangeError, the isolate is recycled.
    OutOfMemory,
    /// Bad request: missing field, bad Base64, code too long, input too large.
    Validation,
    /// The JSON result exceeds `max_result_size` or cannot be serialised.
    ResultTooLarge,
    /// `max_concurrent` calls are already admitted.
    Overloaded,
    /// Admitted but no isolate became free within `queue_timeout`.
    QueueTimeout,
    /// The executor is shutting down, or its process is restarting.
    Unavailable,
    /// The executor process passed its memory ceiling and was stopped with every block
    /// running in it.
    MemoryLimit,
    /// The executor process died (abort, V8 fatal error, a hang killed by the main
    /// process) while the block ran; it is restarted.
    Crashed,
}

impl ErrorKind {
    /// The `error.type` string.
    pub fn type_name(&self) -> &str {
        match self {
            ErrorKind::Js(name) => name,
            ErrorKind::Timeout => "TimeoutError",
            ErrorKind::OutOfMemory => "RangeError",
            ErrorKind::Validation => "ValidationError",
            ErrorKind::ResultTooLarge => "RangeError",
            ErrorKind::Overloaded => "ServiceUnavailable",
            ErrorKind::QueueTimeout => "ServiceUnavailable",
            ErrorKind::Unavailable => "ServiceUnavailable",
            ErrorKind::MemoryLimit => "MemoryLimitError",
            ErrorKind::Crashed => "ExecutorCrashed",
        }
    }

    /// The `outcome` label of `keel_executor_executions_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            ErrorKind::Js(_) => "error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::OutOfMemory => "oom",
            ErrorKind::Validation => "invalid",
            ErrorKind::ResultTooLarge => "error",
            ErrorKind::Overloaded | ErrorKind::QueueTimeout | ErrorKind::Unavailable => "rejected",
            ErrorKind::MemoryLimit => "oom",
            ErrorKind::Crashed => "crashed",
        }
    }
}

impl ExecError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            execution_time: Duration::ZERO,
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, message)
    }

    pub fn with_time(mut self, t: Duration) -> Self {
        self.execution_time = t;
        self
    }
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.type_name(), self.message)
    }
}

impl std::error::Error for ExecError {}
