//! The code-block executor: users' JavaScript on a pool of V8 isolates started from a
//! snapshot that already holds the reference service's seven libraries.
//!
//! - [`snapshot`]: the V8 heap image with the libraries evaluated (fail fast per module);
//! - [`pool`]: admission (max concurrent, bounded queue) and the isolate threads;
//! - [`worker`]: one isolate per OS thread, fresh context per call, event loop, natives;
//! - [`watchdog`]: terminates JavaScript that runs past its deadline;
//! - [`fetch`] and [`policy`]: the `fetch` global and its network policy.

pub mod error;
pub mod fetch;
pub mod metrics;
pub mod platform;
pub mod policy;
pub mod pool;
pub mod snapshot;
pub mod tokens;
mod watchdog;
mod worker;

pub use error::{ErrorKind, ExecError, StartError};
pub use pool::{ExecRequest, Executor, ExecutorStatus, HeapFigures};
pub use snapshot::WarmupReport;
pub use worker::ExecOutput;

#[cfg(test)]
mod tests;
