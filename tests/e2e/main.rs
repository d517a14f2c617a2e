//! keel's one integration test binary: every test starts the real `keel` binary on free
//! loopback ports (see `harness`) and talks to it over real sockets.

// Test code: a failed unwrap is a failed test (the library warns on both, see Cargo.toml),
// and `pub` marks what the test modules share inside this crate.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod bad_input;
mod dashboard;
mod day2;
mod executor;
mod executor_isolation;
mod executor_reuse;
mod fake_llm;
mod foundation;
mod gateway;
mod harness;
mod ledger;
mod lifecycle;
mod limits;
mod llm;
mod llm_hedge;
mod llm_stream;
mod node_compat;
mod openapi;
mod reload;
mod store_integrity;
mod tls;
mod upstream;
mod via;
mod web_compat;
