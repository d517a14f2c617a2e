//! Duplicate suppression by `Idempotency-Key` (header name configurable) for non-streaming
//! generation requests: a provider bills every call, so a client retrying after a timeout
//! must not cause a second one.
//!
//! - Same key and same body while the first request is in flight: wait for it and share its
//!   response.
//! - Same key and same body after it completed, within `dedup.window`: the stored response
//!   is replayed with `Idempotent-Replayed: true`; no upstream call.
//! - Same key, different body: `422 idempotency_key_mismatch` (the IETF idempotency-key
//!   draft's answer for a reused key).
//!
//! Memory is bounded: at most `dedup.max_entries` keys, responses up to
//! [`MAX_STORED_BODY`] bytes are kept; answers with a 5xx status are shared with waiters
//! but not kept, so a later retry gets a fresh try. Keys are scoped by the caller (client
//! key and path), so two tenants cannot read each other's answers.

use super::driver::{ClientGone, ClientSink};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Largest response body kept for replay.
pub(crate) const MAX_STORED_BODY: usize = 1024 * 1024;
/// Longest idempotency key accepted (Stripe's limit).
pub(crate) const MAX_KEY_LEN: usize = 255;
/// The header set on replayed and shared responses.
pub(crate) const REPLAYED_HEADER: &str = "idempotent-replayed";

/// A complete response as it went to the first client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

type Slot = Option<Arc<StoredResponse>>;

#[derive(Debug)]
enum Entry {
    InFlight {
        hash: [u8; 32],
        rx: watch::Receiver<Slot>,
        generation: u64,
    },
    Done {
        hash: [u8; 32],
        response: Arc<StoredResponse>,
        at: Instant,
        generation: u64,
    },
}

impl Entry {
    fn generation(&self) -> u64 {
        match self {
            Entry::InFlight { generation, .. } | Entry::Done { generation, .. } => *generation,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, Entry>,
    /// Insertion order for expiry and eviction: (key, generation).
    order: VecDeque<(String, u64)>,
    next_generation: u64,
}

#[derive(Debug)]
pub(crate) struct Dedup {
    window: Duration,
    max_entries: usize,
    inner: Mutex<Inner>,
}

/// The outcome of presenting a key.
#[derive(Debug)]
pub(crate) enum Claim {
    /// First with this key: run the request, then [`Ticket::complete`].
    Leader(Ticket),
    /// The same request is in flight: [`Waiter::wait`] for its response.
    Follower(Waiter),
    /// The same request completed recently: send this again.
    Replay(Arc<StoredResponse>),
    /// The key was used with a different body.
    Mismatch,
}

/// The leader's duty to publish its response; dropping it unpublished frees the key.
#[derive(Debug)]
pub(crate) struct Ticket {
    dedup: Option<Arc<Dedup>>,
    key: String,
    generation: u64,
    hash: [u8; 32],
    tx: Option<watch::Sender<Slot>>,
}

#[derive(Debug)]
pub(crate) struct Waiter {
    rx: watch::Receiver<Slot>,
}

impl Waiter {
    /// The leader's response; `None` when the leader gave up without one (its client went
    /// away), in which case the caller claims the key again.
    pub(crate) async fn wait(mut self) -> Option<Arc<StoredResponse>> {
        self.rx
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|slot| slot.clone())
    }
}

/// Why an idempotency key is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum KeyError {
    #[error("idempotency key must be 1..={MAX_KEY_LEN} visible ASCII characters")]
    Invalid,
}

/// Checks a key as the client sent it.
pub(crate) fn validate_key(key: &str) -> Result<(), KeyError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if ok {
        Ok(())
    } else {
        Err(KeyError::Invalid)
    }
}

impl Dedup {
    pub(crate) fn new(window: Duration, max_entries: usize) -> Arc<Self> {
        Arc::new(Dedup {
            window,
            max_entries: max_entries.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Keys currently held (in flight or stored).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Presents `key` (already scoped by the caller) with the request body.
    pub(crate) fn claim(self: &Arc<Self>, key: &str, body: &[u8], now: Instant) -> Claim {
        let hash: [u8; 32] = Sha256::digest(body).into();
        let mut inner = self.lock();
        self.expire(&mut inner, now);
        match inner.map.get(key) {
            Some(Entry::InFlight { hash: h, rx, .. }) => {
                return if *h == hash {
                    Claim::Follower(Waiter { rx: rx.clone() })
                } else {
                    Claim::Mismatch
                };
            }
            Some(Entry::Done {
                hash: h, response, ..
            }) => {
                return if *h == hash {
                    Claim::Replay(response.clone())
                } else {
                    Claim::Mismatch
                };
            }
            None => {}
        }
        if inner.map.len() >= self.max_entries && !Self::evict_one_done(&mut inner) {
            // Full of requests in flight: serve this one without deduplication rather than
            // refuse it or grow without bound.
            return Claim::Leader(Ticket {
                dedup: None,
                key: String::new(),
                generation: 0,
                hash,
                tx: None,
            });
        }
        let generation = inner.next_generation;
        inner.next_generation += 1;
        let (tx, rx) = watch::channel(None);
        inner.map.insert(
            key.to_string(),
            Entry::InFlight {
                hash,
                rx,
                generation,
            },
        );
        inner.order.push_back((key.to_string(), generation));
        Claim::Leader(Ticket {
            dedup: Some(self.clone()),
            key: key.to_string(),
            generation,
            hash,
            tx: Some(tx),
        })
    }

    /// Drops stored responses older than the window (oldest first).
    fn expire(&self, inner: &mut Inner, now: Instant) {
        while let Some((key, generation)) = inner.order.front().cloned() {
            match inner.map.get(&key) {
                Some(e) if e.generation() != generation => {
                    inner.order.pop_front();
                }
                None => {
                    inner.order.pop_front();
                }
                Some(Entry::Done { at, .. }) if now.duration_since(*at) >= self.window => {
                    inner.map.remove(&key);
                    inner.order.pop_front();
                }
                // The oldest live entry is fresh or in flight; newer ones are fresher.
                Some(_) => break,
            }
        }
    }

    /// Evicts the oldest stored response; false when every entry is in flight.
    fn evict_one_done(inner: &mut Inner) -> bool {
        let position = inner.order.iter().position(|(key, generation)| {
            matches!(inner.map.get(key), Some(e @ Entry::Done { .. }) if e.generation() == *generation)
        });
        let Some(i) = position else { return false };
        if let Some((key, _)) = inner.order.remove(i) {
            inner.map.remove(&key);
        }
        true
    }
}

impl Ticket {
    /// Publishes the response to waiters and keeps it for replay when it is worth keeping.
    pub(crate) fn complete(mut self, response: StoredResponse, now: Instant) {
        let keep = response.status < 500 && response.body.len() <= MAX_STORED_BODY;
        let response = Arc::new(response);
        if let Some(dedup) = self.dedup.take() {
            let mut inner = dedup.lock();
            let ours = inner
                .map
                .get(&self.key)
                .is_some_and(|e| e.generation() == self.generation);
            if ours {
                if keep {
                    inner.map.insert(
                        self.key.clone(),
                        Entry::Done {
                            hash: self.hash,
                            response: response.clone(),
                            at: now,
                            generation: self.generation,
                        },
                    );
                } else {
                    inner.map.remove(&self.key);
                }
            }
        }
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Some(response));
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(dedup) = self.dedup.take() {
            let mut inner = dedup.lock();
            if inner
                .map
                .get(&self.key)
                .is_some_and(|e| e.generation() == self.generation)
            {
                inner.map.remove(&self.key);
            }
        }
        // Dropping the sender wakes waiters with "no response".
    }
}

/// A [`ClientSink`] that also records what it forwards, so the leader's answer can be
/// published to waiters and kept for replay. Bodies beyond [`MAX_STORED_BODY`] are
/// forwarded but not recorded (the status then says 5xx-or-oversized: not kept).
pub(crate) struct Capture<'a, C: ClientSink> {
    inner: &'a mut C,
    status: u16,
    headers: Vec<(String, String)>,
    body: bytes::BytesMut,
    overflow: bool,
}

impl<'a, C: ClientSink> Capture<'a, C> {
    pub(crate) fn new(inner: &'a mut C) -> Self {
        Capture {
            inner,
            status: 0,
            headers: Vec::new(),
            body: bytes::BytesMut::new(),
            overflow: false,
        }
    }

    /// The recorded response; `None` when nothing complete was recorded.
    pub(crate) fn into_response(self) -> Option<StoredResponse> {
        (self.status != 0 && !self.overflow).then(|| StoredResponse {
            status: self.status,
            headers: self.headers,
            body: self.body.freeze(),
        })
    }
}

#[async_trait::async_trait]
impl<C: ClientSink> ClientSink for Capture<'_, C> {
    async fn head(&mut self, status: u16, headers: http::HeaderMap) -> Result<(), ClientGone> {
        self.status = status;
        self.headers = headers
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
            .collect();
        self.inner.head(status, headers).await
    }

    async fn body(&mut self, data: Bytes, end: bool) -> Result<(), ClientGone> {
        if self.body.len() + data.len() > MAX_STORED_BODY {
            self.overflow = true;
        } else {
            self.body.extend_from_slice(&data);
        }
        self.inner.body(data, end).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> StoredResponse {
        StoredResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(body.to_string()),
        }
    }

    fn leader(c: Claim) -> Ticket {
        match c {
            Claim::Leader(t) => t,
            other => panic!("expected leader, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn in_flight_is_shared_then_replayed_then_expires() {
        let d = Dedup::new(Duration::from_secs(600), 100);
        let t0 = Instant::now();
        let ticket = leader(d.claim("k", b"body", t0));
        let Claim::Follower(w) = d.claim("k", b"body", t0) else {
            panic!("follower")
        };
        assert!(matches!(d.claim("k", b"other", t0), Claim::Mismatch));
        let waiting = tokio::spawn(w.wait());
        ticket.complete(response(200, "answer"), t0);
        assert_eq!(waiting.await.unwrap().unwrap().body, "answer");
        let Claim::Replay(r) = d.claim("k", b"body", t0 + Duration::from_secs(599)) else {
            panic!("replay")
        };
        assert_eq!(r.status, 200);
        assert!(matches!(
            d.claim("k", b"other", t0 + Duration::from_secs(1)),
            Claim::Mismatch
        ));
        assert!(matches!(
            d.claim("k", b"body", t0 + Duration::from_secs(600)),
            Claim::Leader(_)
        ));
    }

    #[tokio::test]
    async fn abandoned_leader_frees_the_key_and_wakes_waiters_empty() {
        let d = Dedup::new(Duration::from_secs(600), 100);
        let t0 = Instant::now();
        let ticket = leader(d.claim("k", b"b", t0));
        let Claim::Follower(w) = d.claim("k", b"b", t0) else {
            panic!("follower")
        };
        drop(ticket);
        assert_eq!(w.wait().await, None);
        assert!(d.is_empty());
        assert!(matches!(d.claim("k", b"b", t0), Claim::Leader(_)));
    }

    #[tokio::test]
    async fn server_errors_are_shared_but_not_kept() {
        let d = Dedup::new(Duration::from_secs(600), 100);
        let t0 = Instant::now();
        leader(d.claim("k", b"b", t0)).complete(response(502, "{}"), t0);
        assert!(matches!(d.claim("k", b"b", t0), Claim::Leader(_)));
    }

    #[test]
    fn memory_is_bounded_by_evicting_the_oldest_stored_answer() {
        let d = Dedup::new(Duration::from_secs(600), 2);
        let t0 = Instant::now();
        leader(d.claim("a", b"1", t0)).complete(response(200, "a"), t0);
        leader(d.claim("b", b"1", t0)).complete(response(200, "b"), t0);
        leader(d.claim("c", b"1", t0)).complete(response(200, "c"), t0);
        assert_eq!(d.len(), 2);
        assert!(matches!(d.claim("a", b"1", t0), Claim::Leader(_)));
        // Both slots in flight: a third key is served untracked.
        let d = Dedup::new(Duration::from_secs(600), 2);
        let _x = leader(d.claim("x", b"1", t0));
        let _y = leader(d.claim("y", b"1", t0));
        let z = leader(d.claim("z", b"1", t0));
        assert!(z.dedup.is_none());
        assert_eq!(d.len(), 2);
    }

    #[derive(Default)]
    struct Sink(Vec<u8>);

    #[async_trait::async_trait]
    impl ClientSink for Sink {
        async fn head(&mut self, _: u16, _: http::HeaderMap) -> Result<(), ClientGone> {
            Ok(())
        }
        async fn body(&mut self, data: Bytes, _: bool) -> Result<(), ClientGone> {
            self.0.extend_from_slice(&data);
            Ok(())
        }
    }

    #[tokio::test]
    async fn capture_forwards_and_records() {
        let mut sink = Sink::default();
        let mut c = Capture::new(&mut sink);
        let mut h = http::HeaderMap::new();
        h.insert("content-type", "application/json".parse().unwrap());
        c.head(200, h).await.unwrap();
        c.body(Bytes::from_static(b"{}"), true).await.unwrap();
        let r = c.into_response().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.headers,
            vec![("content-type".to_string(), "application/json".to_string())]
        );
        assert_eq!(r.body, "{}");
        assert_eq!(sink.0, b"{}");
    }

    #[test]
    fn keys_are_validated() {
        assert!(validate_key("abc-123").is_ok());
        assert_eq!(validate_key(""), Err(KeyError::Invalid));
        assert_eq!(validate_key("a\nb"), Err(KeyError::Invalid));
        assert_eq!(validate_key(&"x".repeat(256)), Err(KeyError::Invalid));
    }
}
