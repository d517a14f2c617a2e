//! Hop-by-hop headers: what describes one connection and never crosses the proxy, in either
//! direction — the client's request to a node ([`super::super::head`]) and a node's answer
//! to the client (both routes).
//!
//! RFC 9110 §7.6.1: a proxy removes `Connection` and every header that `Connection` names,
//! plus the ones that are hop-by-hop by definition (`Proxy-Connection`, `Keep-Alive`, `TE`,
//! `Transfer-Encoding`, `Upgrade`) even when they are not named. `Trailer` is here too:
//! keel does not forward trailers, so it must not announce them. keel frames each side
//! itself (`content-length` or chunked), so `transfer-encoding` is always its own.

use http::header::CONNECTION;
use http::{HeaderMap, HeaderName};

/// Whether `name` (lowercase, as a `HeaderName` spells it) is hop-by-hop whatever
/// `Connection` says: `connection`, `keep-alive`, `proxy-connection`, `te`, `trailer`,
/// `transfer-encoding`, `upgrade`.
pub(crate) fn is_hop_by_hop(name: &str) -> bool {
    // A `match` on the text compiles to a length switch and one comparison; a lookup in a
    // list compares every entry.
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Whether `name` is one the message's `Connection` header lists (`connection` holds its
/// values, comma-separated and case-insensitive).
pub(crate) fn named_by<'a>(
    connection: impl IntoIterator<Item = &'a http::HeaderValue>,
    name: &str,
) -> bool {
    connection
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case(name))
}

/// The hop-by-hop headers a message carries: the fixed ones ([`is_hop_by_hop`]) and those its
/// `Connection` names. Empty, without allocating, for the usual message that has none: one
/// pass over the names decides, instead of a hash lookup per name.
pub(crate) fn present(headers: &HeaderMap) -> Vec<HeaderName> {
    if !headers.keys().any(|n| is_hop_by_hop(n.as_str())) {
        return Vec::new();
    }
    let connection = headers.get_all(CONNECTION);
    headers
        .keys()
        .filter(|n| is_hop_by_hop(n.as_str()) || named_by(connection.iter(), n.as_str()))
        .cloned()
        .collect()
}

/// Removes the hop-by-hop headers from a message (see [`present`]).
pub(crate) fn strip(headers: &mut HeaderMap) {
    for name in present(headers) {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_fixed_list_and_every_header_connection_names_are_removed() {
        // RFC 9110 §7.6.1: `Connection: close, X-Trace` makes `x-trace` hop-by-hop too,
        // whatever its case, in any of several `Connection` lines.
        let mut h = map(&[
            ("connection", "close, X-Trace"),
            ("connection", " x-Other "),
            ("x-trace", "1"),
            ("x-other", "2"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("content-type", "application/json"),
            ("x-kept", "3"),
        ]);
        strip(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-kept"]);
        for name in [
            "connection",
            "keep-alive",
            "proxy-connection",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
        ] {
            assert!(is_hop_by_hop(name), "{name}");
        }
        assert!(!is_hop_by_hop("content-length") && !is_hop_by_hop("x-connection"));
    }

    #[test]
    fn a_message_without_hop_by_hop_headers_is_left_alone() {
        let mut h = map(&[
            ("content-type", "text/event-stream"),
            ("x-connection", "no"),
        ]);
        assert!(present(&h).is_empty());
        strip(&mut h);
        assert_eq!(h.len(), 2);
        // `Connection` naming nothing present removes only itself.
        let mut h = map(&[("connection", "keep-alive"), ("content-length", "2")]);
        strip(&mut h);
        assert_eq!(
            h.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["content-length"]
        );
    }

    #[test]
    fn connection_tokens_match_case_insensitively_and_ignore_spaces() {
        let v = [HeaderValue::from_static("Keep-Alive ,  X-Trace")];
        assert!(named_by(v.iter(), "x-trace"));
        assert!(named_by(v.iter(), "keep-alive"));
        assert!(!named_by(v.iter(), "x-tr"));
    }
}
