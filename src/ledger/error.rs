//! The ledger's errors. Each variant is one thing a caller can act on differently (the HTTP
//! layer maps them to a status in `api::locks`); the messages are the API's `message`s.

use super::fencing::FenceError;
use crate::config::LockKeyError;
use crate::store::StoreError;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The key is not `<kind>:<id>`.
    #[error(transparent)]
    InvalidKey(#[from] LockKeyError),
    /// Well-formed, but not a lock this keel manages.
    #[error("unknown lock {0:?}: not in [ledger] locks and no GPU with that index")]
    UnknownLock(String),
    /// A field of the request is out of its bounds.
    #[error(transparent)]
    InvalidRequest(#[from] RequestError),
    /// `heartbeat::TRACKED_TASK_LIMIT` tasks are tracked; the caller may retry
    /// after a cleanup.
    #[error(
        "{limit} tasks are tracked already; stop finished tasks or run \
         POST /api/v1/monitoring/heartbeat/cleanup"
    )]
    TooManyTasks { limit: usize },
    /// The durable write failed; the operation was not acknowledged.
    #[error("ledger store write failed: {0}")]
    Store(#[source] JournalError),
    #[error("cannot open the ledger: {0}")]
    Open(#[from] StoreError),
    #[error(transparent)]
    Fence(#[from] FenceError),
}

/// A request field out of its bounds (answered 400 `invalid_request`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// Holder names, task ids and the like: 1..=256 characters, no control characters.
    #[error("{field} must be 1..256 printable characters")]
    Name { field: &'static str },
    /// A heartbeat's free-text field (`status`, `task_name`).
    #[error("{field} must be 1..256 characters")]
    Text { field: &'static str },
    #[error("ttl_seconds must be > 0 and <= {max} (max_ttl), got {got}")]
    Ttl { got: f64, max: f64 },
    #[error("wait_seconds must be within 0..={max} (max_wait), got {got}")]
    Wait { got: f64, max: f64 },
    #[error("progress must be within 0..1, got {0}")]
    Progress(f64),
    /// A heartbeat's `gpu_lock` that is not a lock key.
    #[error(transparent)]
    GpuLock(#[from] LockKeyError),
}

/// Why the journal could not acknowledge a submission. Cloned to every acknowledgement of
/// one commit, so the causes are shared.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    #[error("{0}")]
    Store(#[source] Arc<StoreError>),
    /// The fencing high-water mark could not be raised ahead of the commit.
    #[error("{0}")]
    Fence(#[source] Arc<FenceError>),
    #[error("cannot start the journal thread")]
    NotStarted,
    /// Submitted after shutdown closed the journal.
    #[error("the ledger journal is closed")]
    Closed,
    /// The writer thread went away without answering.
    #[error("the ledger journal stopped")]
    Stopped,
}
