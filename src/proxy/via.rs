//! `Via` loop protection for cross-box failover: box A lists box B's keel as a priority-2
//! node and B lists A's; with both boxes' own nodes down, a request would bounce between
//! the two keels until a timeout. keel prevents that the standard way (RFC 9110 §7.6.3):
//!
//! - every request keel forwards gets a `Via` entry `<protocol> <id>` appended after the
//!   client's own (`1.1 keel-3f9c0a1b2d4e`), on both routes;
//! - a request whose `Via` already names this keel's id has been here before: it is answered
//!   508 `loop_detected` at once and never forwarded again.
//!
//! So a request crosses each keel at most once: A → B → A stops at A's second sight of it,
//! and B passes A's 508 back (not a status B retries on the generic route; on the LLM route
//! a 5xx B moves on from, and B's attempts are bounded by `retry.max_attempts`).
//!
//! The id (`[proxy] via_id`, a token) defaults to `keel-` and 12 hex digits generated on the
//! first start and kept in the store (`proxy_identity` table): stable across restarts (a
//! loop across a restart is still caught) and different for every data dir, even for two
//! keels on one host — which a hostname would not be. A data dir copied to another box
//! copies the id; set `via_id` on such boxes.

use crate::store::{Store, StoreError};
use bytes::Bytes;
use http::header::VIA;
use http::{HeaderMap, Version};
use redb::{ReadableTable, TableDefinition};

const IDENTITY: TableDefinition<&str, &str> = TableDefinition::new("proxy_identity");
const VIA_ID_KEY: &str = "via_id";

/// This keel's `Via` entry, in wire form, and the check for it.
pub struct Via {
    id: String,
    /// `via: 1.1 <id>\r\n` and `via: 1.0 <id>\r\n`: the line appended per request.
    line_11: Bytes,
    line_10: Bytes,
}

impl Via {
    pub fn new(id: &str) -> Via {
        let line = |proto: &str| Bytes::from(format!("via: {proto} {id}\r\n"));
        Via {
            id: id.to_string(),
            line_11: line("1.1"),
            line_10: line("1.0"),
        }
    }

    /// The `received-by` name keel writes and looks for.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The header line keel adds to a request it forwards, naming the protocol the client
    /// used (`received-protocol`; `HTTP/` is omitted as RFC 9110 allows).
    pub fn line(&self, client: Version) -> &[u8] {
        if client == Version::HTTP_10 {
            &self.line_10
        } else {
            &self.line_11
        }
    }

    /// Whether the request's `Via` (any of its lines) has an entry received by this keel.
    /// One hash lookup for the usual request, which has no `Via`.
    pub fn seen_in(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(VIA)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|entry| {
                // `received-protocol RWS received-by [ RWS comment ]`
                let mut words = entry.split_ascii_whitespace();
                words.next();
                words
                    .next()
                    .is_some_and(|by| by.eq_ignore_ascii_case(&self.id))
            })
    }
}

/// The id: `configured` (`[proxy] via_id`), else the one this data dir generated on its
/// first start (generated and stored now when there is none yet).
pub(crate) async fn resolve_id(
    configured: Option<&str>,
    store: &Store,
) -> Result<String, StoreError> {
    if let Some(id) = configured {
        return Ok(id.to_string());
    }
    let fresh = format!("keel-{:012x}", rand::random::<u64>() >> 16);
    store
        .write(move |txn| {
            let mut table = txn.open_table(IDENTITY)?;
            if let Some(stored) = table.get(VIA_ID_KEY)? {
                return Ok(stored.value().to_string());
            }
            table.insert(VIA_ID_KEY, fresh.as_str())?;
            Ok(fresh)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(VIA, HeaderValue::from_str(l).unwrap());
        }
        h
    }

    #[test]
    fn an_entry_received_by_this_keel_is_found_in_any_line_and_position() {
        let via = Via::new("keel-a");
        assert!(!via.seen_in(&HeaderMap::new()));
        assert!(via.seen_in(&headers(&["1.1 keel-a"])));
        assert!(via.seen_in(&headers(&["1.0 fred, 1.1 KEEL-A (keel)"])));
        assert!(via.seen_in(&headers(&[
            "HTTP/1.1 proxy.example",
            "1.1 keel-b, 1.1 keel-a"
        ])));
        // Another keel, a prefix, or the id only in a comment is not this keel.
        assert!(!via.seen_in(&headers(&["1.1 keel-b", "1.1 keel-ab", "1.1 x (keel-a)"])));
        assert!(!via.seen_in(&headers(&["keel-a"])));
    }

    #[test]
    fn the_line_names_the_clients_protocol() {
        let via = Via::new("keel-a");
        assert_eq!(via.line(Version::HTTP_11), b"via: 1.1 keel-a\r\n");
        assert_eq!(via.line(Version::HTTP_10), b"via: 1.0 keel-a\r\n");
    }

    #[tokio::test]
    async fn the_generated_id_is_kept_across_restarts_and_a_configured_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let store = Store::open(dir.path()).unwrap();
            resolve_id(None, &store).await.unwrap()
        };
        assert!(first.starts_with("keel-") && first.len() == 17, "{first}");
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(resolve_id(None, &store).await.unwrap(), first);
        assert_eq!(resolve_id(Some("box-7"), &store).await.unwrap(), "box-7");
        let other = tempfile::tempdir().unwrap();
        let other = Store::open(other.path()).unwrap();
        assert_ne!(resolve_id(None, &other).await.unwrap(), first);
    }
}
