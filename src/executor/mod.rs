//! The code-block executor: users' JavaScript on a pool of V8 isolates started from a
//! snapshot that already holds the library modules and the Node-compatible web globals — in
//! a process of its own, so that nothing user code does can stop the rest of keel.
//!
//! In keel's main process:
//! - [`front`]: validation, admission (max concurrent), counters, the API's view;
//! - [`supervisor`]: starts, watches (memory ceiling, liveness) and restarts the executor
//!   process; [`ipc`] is the wire between the two.
//!
//! In the executor process (`keel executor-child`, [`child`]):
//! - [`sandbox`]: Landlock and seccomp, applied before anything else runs;
//! - [`snapshot`]: the V8 heap image: a lean context (runtime only), one per library
//!   module, one per pair of the reference's seven and one with the common ones instantiated
//!   (fail fast per module); [`requires`] picks a call's context from the modules its code
//!   requires;
//! - [`pool`]: the isolate threads and their queue;
//! - [`worker`]: one isolate per OS thread taking calls; [`isolate`]: the isolate, its heap
//!   guard and context boot; [`event_loop`]: one call's run to completion; [`natives`]: the
//!   Rust functions behind `console`, `fetch`, timers, `crypto` and `require`;
//! - [`alloc`]: the per-isolate array-buffer budget;
//! - [`watchdog`]: terminates JavaScript that runs past its deadline;
//! - [`fetch`] and [`policy`]: the `fetch` global and its network policy.

pub(crate) mod alloc;
pub mod child;
pub(crate) mod error;
mod event_loop;
pub(crate) mod fetch;
pub(crate) mod front;
pub(crate) mod ipc;
mod isolate;
mod js_values;
pub(crate) mod metrics;
mod natives;
pub(crate) mod platform;
pub(crate) mod policy;
pub(crate) mod pool;
mod requires;
pub mod sandbox;
pub(crate) mod snapshot;
pub(crate) mod supervisor;
pub(crate) mod tokens;
mod warm;
mod watchdog;
mod worker;

pub use error::{ErrorKind, ExecError, StartError};
pub use front::{ExecRequest, Executor, ExecutorStatus, HeapFigures, TokenUsage};
pub use snapshot::WarmupReport;
pub use worker::ExecOutput;

#[cfg(test)]
mod tests;
