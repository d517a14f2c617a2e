//! Keep-alive connections to the nodes: keel's own idle pool per node and the request write.
//!
//! Pingora's connector pool is built for a proxy that forgets connections between
//! requests: every connection handed back spawns a task that watches it while idle and
//! holds it under a lock, and taking it again signals that task, waits for the lock and
//! checks the socket's peer address (`getpeername`). On a keep-alive hot path that is a
//! task spawn, two wake-ups (often across threads) and a system call per request. keel
//! knows which node a connection belongs to, so each [`super::node::Node`] keeps its
//! idle connections itself, most recently used first, and a connection is tested only when
//! it is taken: a non-blocking read that must find nothing (a closed or chattering idle
//! connection is dropped). Fresh connections (TCP or TLS) still come from Pingora's
//! [`TransportConnector`].
//!
//! A socket belongs to the runtime that opened it: its readiness arrives through that
//! runtime's I/O driver. Each proxy thread runs its own runtime (see [`super::start`]), so
//! the pool has one slot per thread and a thread only reuses the connections it opened;
//! any other thread (the prewarm probes on the main runtime) uses slot 0.
//!
//! The request header and a small body leave in one write: Pingora's client flushes the
//! header on its own, which costs a second `send` and wakes the node up for half a
//! request.

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use parking_lot::Mutex;
use pingora::connectors::TransportConnector;
use pingora::protocols::http::client::HttpSession;
use pingora::protocols::http::v1::client::HttpSession as H1Session;
use pingora::protocols::Stream;
use pingora::upstreams::peer::{HttpPeer, Peer};
use std::cell::Cell;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::attempt::AttemptError;
use super::node::Node;
use crate::config::MAX_PROXY_THREADS;
use std::sync::Arc;

/// Idle time a connection may spend in a node's pool.
const POOL_IDLE: Duration = Duration::from_secs(60);
/// Idle connections kept per node; more are closed when handed back.
const MAX_IDLE: usize = 256;
/// Bodies up to this size are copied behind the header to leave in one write.
const COALESCE_MAX: usize = 64 * 1024;
/// Fresh connections tried on one node when pooled ones turn out to be closed.
const STALE_POOL_RETRIES: usize = 3;

/// Pool slots: one per proxy thread plus slot 0 for every other thread.
const SLOTS: usize = MAX_PROXY_THREADS + 1;

thread_local! {
    /// This thread's pool slot (0 unless [`bind_thread`] gave it one).
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// Makes the calling thread proxy thread `index` (0-based) for pool slots.
pub(crate) fn bind_thread(index: usize) {
    SLOT.with(|s| s.set((index + 1).min(SLOTS - 1)));
}

fn slot() -> usize {
    SLOT.with(Cell::get)
}

struct Idle {
    stream: Stream,
    /// `HttpPeer::reuse_hash` of the peer it was opened for (the address may change by DNS).
    peer: u64,
    since: Instant,
}

/// One node's idle keep-alive connections per thread slot, most recently used last.
pub struct IdleConns {
    slots: Box<[Mutex<Vec<Idle>>]>,
}

impl Default for IdleConns {
    fn default() -> Self {
        IdleConns {
            slots: (0..SLOTS).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }
}

impl IdleConns {
    /// A usable idle connection to `peer` opened by this thread, if one is left; stale ones
    /// are dropped on the way.
    fn take(&self, peer: u64, now: Instant) -> Option<Stream> {
        let slot = &self.slots[slot()];
        loop {
            let Idle {
                mut stream,
                peer: for_peer,
                since,
            } = slot.lock().pop()?;
            if for_peer == peer && now.duration_since(since) < POOL_IDLE && quiet(&mut stream) {
                return Some(stream);
            }
        }
    }

    fn put(&self, stream: Stream, peer: u64, now: Instant) {
        let mut idle = self.slots[slot()].lock();
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                stream,
                peer,
                since: now,
            });
        }
    }

    /// Closes connections idle for longer than `POOL_IDLE` (the supervisor calls this).
    pub fn expire(&self, now: Instant) {
        for slot in &self.slots {
            // Oldest first: stop at the first one still young.
            let mut idle = slot.lock();
            let young = idle
                .iter()
                .position(|c| now.duration_since(c.since) < POOL_IDLE)
                .unwrap_or(idle.len());
            idle.drain(..young);
        }
    }

    /// Idle connections held now, over all threads.
    pub fn idle(&self) -> usize {
        self.slots.iter().map(|s| s.lock().len()).sum()
    }
}

impl std::fmt::Debug for IdleConns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleConns")
            .field("idle", &self.idle())
            .finish()
    }
}

/// Whether an idle connection has nothing to say: a node that closed it (EOF), broke it or
/// sent bytes nobody asked for makes it unusable.
fn quiet(stream: &mut Stream) -> bool {
    let mut probe = [0u8; 1];
    // `unconstrained`: cooperative budgeting could make a ready read look pending.
    tokio::task::unconstrained(stream.read(&mut probe))
        .now_or_never()
        .is_none()
}

/// One HTTP round trip of an attempt: sends a request to `node` — `head` is its complete
/// header in wire form (see [`super::head`]) — over an idle connection when there is one,
/// else a new one, and reads the final (non-1xx) response header. A pooled connection the node has closed meanwhile
/// is replaced by a fresh one without counting as a failure.
///
/// The caller reads the body from the returned session and hands it back with [`checkin`].
/// Pingora's session never saw the request, so for `HEAD` it would expect the body the
/// answer's `content-length` announces: callers read no body after a `HEAD` (and the
/// connection is then not reused).
pub(crate) async fn round_trip(
    transport: &TransportConnector,
    node: &Node,
    head: &[u8],
    body: &Bytes,
) -> Result<(HttpSession, Arc<HttpPeer>), AttemptError> {
    let peer = node.peer().await?;
    for _ in 0..STALE_POOL_RETRIES {
        let (stream, reused) = checkout(transport, &node.conns, &peer)
            .await
            .map_err(|e| AttemptError::Connect(e.to_string()))?;
        match send_and_read_header(stream, head, body).await {
            Ok(session) => return Ok((session, peer)),
            Err(_) if reused => continue,
            Err(e) => return Err(AttemptError::Upstream(e.to_string())),
        }
    }
    Err(AttemptError::Upstream(
        "pooled connections kept failing".into(),
    ))
}

/// Sends header and body and reads the final (non-1xx) response header.
async fn send_and_read_header(
    stream: Stream,
    head: &[u8],
    body: &Bytes,
) -> pingora::Result<HttpSession> {
    let mut session = send_request(stream, head, body).await?;
    loop {
        session.read_response_header().await?;
        let informational = session
            .response_header()
            .is_some_and(|h| h.status.is_informational());
        if !informational {
            return Ok(session);
        }
    }
}

/// A connection to `peer`: an idle one from `conns` when there is one (`true`), else new.
async fn checkout(
    transport: &TransportConnector,
    conns: &IdleConns,
    peer: &HttpPeer,
) -> pingora::Result<(Stream, bool)> {
    if let Some(stream) = conns.take(peer.reuse_hash(), Instant::now()) {
        return Ok((stream, true));
    }
    Ok((transport.new_stream(peer).await?, false))
}

/// Hands a session whose response was read to the end back to the node's pool, unless the
/// node asked to close it (or it is not HTTP/1).
pub(crate) async fn checkin(conns: &IdleConns, session: HttpSession, peer: &HttpPeer) {
    let HttpSession::H1(mut h1) = session else {
        return;
    };
    h1.respect_keepalive();
    if let Some(stream) = h1.reuse().await {
        conns.put(stream, peer.reuse_hash(), Instant::now());
    }
}

/// Writes a request (`head` in wire form) with `body` on `stream` and returns the client
/// session to read the answer with. A body up to [`COALESCE_MAX`] bytes follows the header
/// in the same write.
async fn send_request(
    mut stream: Stream,
    head: &[u8],
    body: &Bytes,
) -> pingora::Result<HttpSession> {
    let written = async {
        if body.len() <= COALESCE_MAX {
            let mut wire = BytesMut::with_capacity(head.len() + body.len());
            wire.extend_from_slice(head);
            wire.extend_from_slice(body);
            stream.write_all(&wire).await?;
        } else {
            stream.write_all(head).await?;
            stream.write_all(body).await?;
        }
        stream.flush().await
    };
    written.await.map_err(|e| {
        pingora::Error::because(pingora::ErrorType::WriteError, "while writing request", e)
    })?;
    Ok(HttpSession::H1(H1Session::new(stream)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::protocols::l4::stream::Stream as L4Stream;
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (Stream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (Box::new(L4Stream::from(client.unwrap())), server.unwrap().0)
    }

    #[tokio::test]
    async fn idle_connections_are_reused_newest_first_and_only_for_their_peer() {
        let conns = IdleConns::default();
        let now = Instant::now();
        let (a, _sa) = pair().await;
        let (b, _sb) = pair().await;
        let b_id = b.id();
        conns.put(a, 1, now);
        conns.put(b, 1, now);
        assert_eq!(conns.take(1, now).map(|s| s.id()), Some(b_id));
        // Another peer (the node's address changed): the connection is dropped, not lent.
        assert!(conns.take(2, now).is_none());
        assert_eq!(conns.idle(), 0);
        let (c, _sc) = pair().await;
        let c_id = c.id();
        conns.put(c, 1, now);
        assert_eq!(conns.take(1, now).map(|s| s.id()), Some(c_id));
    }

    #[tokio::test]
    async fn closed_chattering_and_expired_connections_are_not_lent() {
        let conns = IdleConns::default();
        let now = Instant::now();
        let (closed, server) = pair().await;
        drop(server);
        let (chatty, mut server2) = pair().await;
        server2.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        // Let both events reach the client sockets.
        tokio::time::sleep(Duration::from_millis(50)).await;
        conns.put(closed, 1, now);
        conns.put(chatty, 1, now);
        assert!(conns.take(1, now).is_none());

        let (old, _s) = pair().await;
        conns.put(old, 1, now);
        assert!(conns.take(1, now + POOL_IDLE).is_none());
        let (old, _s) = pair().await;
        conns.put(old, 1, now);
        conns.expire(now + POOL_IDLE);
        assert_eq!(conns.idle(), 0);
    }
}
