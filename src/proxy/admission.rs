//! Admission of client connections to the proxy listener: the `[proxy] max_connections`
//! cap and, with `[proxy.tls]`, the TLS handshake — both ahead of Pingora's HTTP handling.
//!
//! Pingora calls [`ServerApp::process_new`] once per accepted connection, and for HTTP/1
//! that call returns only when the connection is done (its keep-alive loop runs inside).
//! Wrapping keel's [`GatewayService`] there makes the count exact at the cost of one atomic
//! add and subtract per connection, never per request. A connection past the cap is dropped
//! before a byte is read (closed at once, counted `limit`).
//!
//! The TLS handshake runs here, after the connection got its place: a handshake flood is
//! bounded by `max_connections` like any other, and a handshake has `header_read_timeout`
//! (counted `header_timeout`), the limit of the first request head it precedes. A failed
//! handshake (no client certificate under mTLS, one from another CA, plain HTTP on a TLS
//! port) is counted `tls_handshake`. The certificate comes from [`TlsTerminator`], which a
//! reload may replace while connections run.
//!
//! The two read timeouts live with the request loop ([`GatewayService`]'s
//! `process_new_http`): a new connection has `header_read_timeout` for its first request
//! head, a kept-alive one `idle_timeout` for its next.

use super::service::GatewayService;
use crate::limits::{CloseReason, ConnLimit};
use crate::tls::TlsTerminator;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::tls::SslStream;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Admission {
    app: Arc<GatewayService>,
    conns: Arc<ConnLimit>,
    /// `[proxy.tls]`: the handshake every connection passes first.
    tls: Option<Arc<TlsTerminator>>,
    /// Limit of the TLS handshake (`header_read_timeout`).
    handshake_timeout: Duration,
}

impl Admission {
    pub(crate) fn new(
        app: GatewayService,
        conns: Arc<ConnLimit>,
        tls: Option<Arc<TlsTerminator>>,
        handshake_timeout: Duration,
    ) -> Self {
        Admission {
            app: Arc::new(app),
            conns,
            tls,
            handshake_timeout,
        }
    }

    /// The TLS side of `stream`, or `None` (counted) when the handshake failed or took too
    /// long.
    async fn handshake(&self, tls: &TlsTerminator, stream: Stream) -> Option<Stream> {
        let ssl = match tls.session() {
            Ok(ssl) => ssl,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a TLS session");
                return None;
            }
        };
        // Pingora's listener hands out its TCP stream boxed; the TLS stream wraps the
        // concrete one (its digests, timing and peer address come from it).
        let tcp = stream.into_any().downcast::<L4Stream>().ok()?;
        let mut stream = SslStream::new(ssl, *tcp).ok()?;
        match pingora::time::timeout(self.handshake_timeout, stream.accept()).await {
            Ok(Ok(())) => Some(Box::new(stream)),
            Ok(Err(e)) => {
                self.conns.closed(CloseReason::TlsHandshake);
                tracing::debug!(error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                self.conns.closed(CloseReason::HeaderTimeout);
                None
            }
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
        let stream = match &self.tls {
            Some(tls) => self.handshake(tls, stream).await?,
            None => stream,
        };
        self.app.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.app.cleanup().await;
    }
}
