//! Who is asking: the request id a request is known by in logs and answers, the key a
//! client presented and the verdict on it, and the client's address.

use super::super::head::{X_API_KEY, X_REQUEST_ID};
use super::super::Gateway;
use super::key_limits::{self, ClientKeyEntry, KeyLimits};
use pingora::http::RequestHeader;
use pingora::protocols::http::ServerSession as Session;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Longest `x-request-id` taken from a client.
const MAX_REQUEST_ID: usize = 128;

/// The client's `x-request-id` when it is short printable ASCII, else a new UUID.
pub(crate) fn request_id(req: &RequestHeader) -> String {
    req.headers
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID)
        .map(str::to_string)
        .unwrap_or_else(new_request_id)
}

/// A fresh UUIDv4 request id from the thread-local RNG (`Uuid::new_v4` without the
/// `fast-rng` feature makes one `getrandom` syscall per request).
pub(crate) fn new_request_id() -> String {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    // Encoded into a stack buffer: `to_string` goes through the formatting machinery.
    let mut buf = uuid::Uuid::encode_buffer();
    id.hyphenated().encode_lower(&mut buf).to_owned()
}

/// The client's IP address (`None` on a Unix socket).
pub(crate) fn client_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// The key a client presented: `x-api-key`, else `Authorization: Bearer`.
pub(crate) fn client_key(req: &RequestHeader) -> Option<&str> {
    let headers = &req.headers;
    if let Some(k) = headers.get(X_API_KEY).and_then(|v| v.to_str().ok()) {
        return Some(k.trim());
    }
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The key a client presented, as far as the request needs it: its name and its limits
/// (owned, so a reload that swaps the key list meanwhile changes nothing for the request).
pub struct AcceptedKey {
    pub name: Arc<str>,
    pub limits: Option<Arc<KeyLimits>>,
}

/// The verdict on a client's key.
pub enum ClientKey {
    /// No keys are configured (`None`), or the key is this one.
    Accepted(Option<AcceptedKey>),
    /// Missing or wrong: 401.
    Refused,
    /// The client's address spent its failed-key budget: 429 after this long, whatever the
    /// key (see `crate::limits::auth_failures`).
    Throttled(Duration),
}

impl Gateway {
    /// Judges the key a client presented (see [`ClientKey`]). `client` gives the client's
    /// address; it is asked only when keys are configured.
    pub fn check_client_key(
        &self,
        presented: Option<&str>,
        client: impl FnOnce() -> Option<IpAddr>,
    ) -> ClientKey {
        let keys = self.client_keys.load();
        if keys.is_empty() {
            return ClientKey::Accepted(None);
        }
        // A request without a key guesses nothing: it is refused but neither throttled nor
        // counted against its address.
        let ip = presented.and(client());
        if let Some(ip) = ip {
            if let Err(wait) = self.auth_failures.check(ip) {
                return ClientKey::Throttled(wait);
            }
        }
        if let Some(entry) = client_key_entry(&keys, presented) {
            return ClientKey::Accepted(Some(AcceptedKey {
                name: entry.name.clone(),
                limits: entry.limits.clone(),
            }));
        }
        if let Some(ip) = ip {
            self.auth_failures.failed(ip);
        }
        ClientKey::Refused
    }
}

/// The configured key `presented` is. Every key is compared, each in constant time, so
/// the time taken says nothing about which key (or how much of one) matched.
fn client_key_entry<'a>(
    keys: &'a [ClientKeyEntry],
    presented: Option<&str>,
) -> Option<&'a ClientKeyEntry> {
    let p = presented?.as_bytes();
    let digest = key_limits::digest(p);
    keys.iter().fold(None, |found, entry| {
        let hit = entry.matches(p, &digest);
        if hit && found.is_none() {
            Some(entry)
        } else {
            found
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_request_ids_are_distinct_v4_uuids() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        let u = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version_num(), 4);
        assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(a.len(), 36);
    }
}
