//! The control listener's accept loop: one hyper HTTP/1 connection per client, with the
//! bounds `axum::serve` does not have.
//!
//! - **Connection cap**: past `[control] max_connections` a new connection is closed at once
//!   (counted `limit`).
//! - **Header timeout**: a new connection must send its first complete request head within
//!   `header_read_timeout` (keel's timer, stopped by the first request; counted
//!   `header_timeout`).
//! - **Idle timeout**: a kept-alive connection must send its next complete head within
//!   `idle_timeout` — hyper's `header_read_timeout`, which hyper starts when a connection
//!   goes idle after a response (counted `idle_timeout`).
//!
//! - **TLS** (`[control.tls]`): the handshake runs in the connection's task, inside the
//!   header timeout of the first request it precedes (a failure is counted
//!   `tls_handshake`), from the [`TlsTerminator`] a reload may replace.
//!
//! Everything else is what `axum::serve` does: `ConnectInfo<SocketAddr>` for the handlers,
//! and graceful shutdown (stop accepting, let each connection finish its request, close idle
//! ones, wait for all), here through hyper-util's [`GracefulShutdown`].

use crate::limits::{CloseReason, ConnLimit, ConnSlot};
use crate::tls::TlsTerminator;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tower::ServiceExt as _;

/// How long the accept loop pauses after an accept error other than a connection's own
/// (e.g. out of file descriptors), instead of spinning on it.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The bounds of the control listener (`[control]`).
pub(crate) struct ServeLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub conns: Arc<ConnLimit>,
    /// `[control.tls]`: the handshake every connection passes first.
    pub tls: Option<Arc<TlsTerminator>>,
}

/// Serves `app` on `listener` until `stop` turns true, then drains: in-flight requests
/// finish, idle connections close, and this returns when every connection is gone.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .keep_alive(true);
    let limits = Arc::new(limits);
    let mut stopped = std::pin::pin!(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "control listener cannot accept; pausing");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut stopped => break,
        };
        // Refused before a byte is read: dropping the stream closes it.
        let Some(slot) = limits.conns.admit() else {
            continue;
        };
        tokio::spawn(connection(
            stream,
            peer,
            app.clone(),
            builder.clone(),
            graceful.watcher(),
            limits.clone(),
            slot,
        ));
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serves one connection until the client closes it, a timeout closes it, or shutdown;
/// with TLS, after its handshake. The first request head (the handshake included) must
/// arrive within `header_read_timeout`.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    builder: http1::Builder,
    watcher: Watcher,
    limits: Arc<ServeLimits>,
    _slot: ConnSlot,
) {
    let head_deadline = Instant::now() + limits.header_read_timeout;
    let Some(tls) = limits.tls.clone() else {
        return http(stream, peer, app, builder, watcher, &limits, head_deadline).await;
    };
    let ssl = match tls.session() {
        Ok(ssl) => ssl,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start a TLS session");
            return;
        }
    };
    let Ok(mut stream) = tokio_openssl::SslStream::new(ssl, stream) else {
        return;
    };
    match tokio::time::timeout_at(head_deadline, std::pin::Pin::new(&mut stream).accept()).await {
        Ok(Ok(())) => http(stream, peer, app, builder, watcher, &limits, head_deadline).await,
        Ok(Err(e)) => {
            limits.conns.closed(CloseReason::TlsHandshake);
            tracing::debug!(peer = %peer, error = %e, "control TLS handshake failed");
        }
        Err(_) => limits.conns.closed(CloseReason::HeaderTimeout),
    }
}

/// The HTTP/1 exchanges of one connection (plain or TLS).
async fn http<S>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    builder: http1::Builder,
    watcher: Watcher,
    limits: &ServeLimits,
    head_deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let first_request = Arc::new(Notify::new());
    let service = {
        let first_request = first_request.clone();
        app.map_request(move |mut req: hyper::Request<Incoming>| {
            first_request.notify_one();
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        })
    };
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    let mut conn = std::pin::pin!(watcher.watch(conn));
    let head_deadline = tokio::time::sleep_until(head_deadline);
    let result = tokio::select! {
        biased;
        result = conn.as_mut() => result,
        () = first_request.notified() => conn.await,
        () = head_deadline => {
            // Dropping the connection closes the socket.
            limits.conns.closed(CloseReason::HeaderTimeout);
            return;
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            limits.conns.closed(CloseReason::IdleTimeout);
        } else {
            tracing::debug!(peer = %peer, error = %e, "control connection ended with an error");
        }
    }
}

/// Errors of one connection (it was reset before it was accepted): not the listener's.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
