//! keel's one integration test binary: every test starts the real `keel` binary on free
//! loopback ports (see `harness`) and talks to it over real sockets.

mod dashboard;
mod executor;
mod fake_llm;
mod foundation;
mod gateway;
mod harness;
mod ledger;
mod lifecycle;
mod llm;
mod store_integrity;
mod upstream;
