//! keel's one integration test binary: every test starts the real `keel` binary on free
//! loopback ports (see `harness`) and talks to it over real sockets.

mod bad_input;
mod dashboard;
mod day2;
mod executor;
mod executor_isolation;
mod fake_llm;
mod foundation;
mod gateway;
mod harness;
mod ledger;
mod lifecycle;
mod limits;
mod llm;
mod node_compat;
mod openapi;
mod reload;
mod store_integrity;
mod upstream;
mod web_compat;
