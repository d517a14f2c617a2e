//! Admission of client connections to the proxy listener: the `[proxy] max_connections`
//! cap, ahead of Pingora's HTTP handling.
//!
//! Pingora calls [`ServerApp::process_new`] once per accepted connection, and for HTTP/1
//! that call returns only when the connection is done (its keep-alive loop runs inside).
//! Wrapping keel's [`GatewayService`] there makes the count exact at the cost of one atomic
//! add and subtract per connection, never per request. A connection past the cap is dropped
//! before a byte is read (closed at once, counted `limit`).
//!
//! The two read timeouts live with the request loop ([`GatewayService`]'s
//! `process_new_http`): a new connection has `header_read_timeout` for its first request
//! head, a kept-alive one `idle_timeout` for its next.

use super::service::GatewayService;
use crate::limits::ConnLimit;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use std::sync::Arc;

pub struct Admission {
    app: Arc<GatewayService>,
    conns: Arc<ConnLimit>,
}

impl Admission {
    pub fn new(app: GatewayService, conns: Arc<ConnLimit>) -> Self {
        Admission {
            app: Arc::new(app),
            conns,
        }
    }
}

#[async_trait]
impl ServerApp for Admission {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // `None` drops the stream: the connection is closed.
        let _slot = self.conns.admit()?;
        self.app.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.app.cleanup().await;
    }
}
