//! The request header keel sends to a node, built from the client's.
//!
//! What does not depend on the node (the client's headers minus hop-by-hop ones and the ones
//! keel sets) is put in wire form once per request, in [`ClientHead::of`]; each attempt then
//! only adds the request line and the node's own headers (`host`, its API key,
//! `x-request-id`, `content-length`) around those bytes. No header map is built or cloned
//! per attempt. keel's own `Via` entry ([`super::via`]) ends the common lines, after any
//! the client sent, as RFC 9110 §7.6.3 asks of a proxy.

use super::request::hop_by_hop;
use super::via::Via;
use bytes::{BufMut, BytesMut};
use http::HeaderName;
use pingora::http::RequestHeader;

/// Header names keel looks up on every request. Constants, because a `&str` key is parsed
/// into a header name again on each lookup.
pub(crate) const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Headers keel sets itself for every node, so the client's are not forwarded: `host` (the
/// node's), `content-length` (of the body as mapped), `accept-encoding` (identity, so usage
/// can be read), `x-request-id` (the request's), and `expect` (answered by keel).
fn set_by_keel(name: &str) -> bool {
    matches!(
        name,
        "host" | "expect" | "content-length" | "accept-encoding" | "x-request-id"
    )
}

/// The client's request header, reduced to what every node gets.
pub(crate) struct ClientHead {
    method: http::Method,
    /// Path and query as the client sent them.
    path: String,
    /// `name: value\r\n` lines forwarded to every node.
    common: BytesMut,
    /// The client's own credentials (`x-api-key`, `authorization`), forwarded only to a
    /// node without an `api_key` of its own.
    credentials: BytesMut,
    /// The client used `x-api-key`: a node's key goes upstream in the same header.
    used_x_api_key: bool,
    /// The client framed its body with `content-length` (kept even when 0).
    had_content_length: bool,
}

impl ClientHead {
    /// What every node gets of `client`: its headers minus the hop-by-hop ones (see
    /// [`hop_by_hop`], those its `Connection` names included) and the ones keel sets, plus
    /// keel's `Via` entry.
    pub(crate) fn of(client: &RequestHeader, via: &Via) -> ClientHead {
        let (mut head, has_connection) = ClientHead::collect(client, None);
        if has_connection {
            // Rare: `Connection` may name headers that are hop-by-hop for this client only.
            // A second pass that knows them, so the usual request pays nothing for the check.
            let connection = client.headers.get_all(http::header::CONNECTION);
            head = ClientHead::collect(client, Some(&connection)).0;
        }
        head.common.put_slice(via.line(client.version));
        head
    }

    /// One pass over the client's headers; also says whether it sent `Connection`.
    fn collect(
        client: &RequestHeader,
        connection: Option<&http::header::GetAll<'_, http::HeaderValue>>,
    ) -> (ClientHead, bool) {
        let mut common = BytesMut::with_capacity(512);
        let mut credentials = BytesMut::new();
        let mut used_x_api_key = false;
        let mut had_content_length = false;
        let mut has_connection = false;
        for (name, value) in client.headers.iter() {
            let n = name.as_str();
            had_content_length |= n == "content-length";
            if hop_by_hop::is_hop_by_hop(n) {
                has_connection |= n == "connection";
                continue;
            }
            if set_by_keel(n) || connection.is_some_and(|c| hop_by_hop::named_by(c.iter(), n)) {
                continue;
            }
            let is_x_api_key = n == "x-api-key";
            used_x_api_key |= is_x_api_key;
            let out = if is_x_api_key || n == "authorization" {
                &mut credentials
            } else {
                &mut common
            };
            line(out, n.as_bytes(), value.as_bytes());
        }
        let head = ClientHead {
            method: client.method.clone(),
            path: client
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
            common,
            credentials,
            used_x_api_key,
            had_content_length,
        };
        (head, has_connection)
    }

    /// The complete request header for `node`, ending with the blank line.
    pub(crate) fn for_node(
        &self,
        node: &super::node::Node,
        request_id: &str,
        body_len: usize,
    ) -> BytesMut {
        let path = node.target.path_for(&self.path);
        let mut wire = BytesMut::with_capacity(self.common.len() + self.credentials.len() + 256);
        wire.put_slice(self.method.as_str().as_bytes());
        wire.put_u8(b' ');
        wire.put_slice(path.as_bytes());
        wire.put_slice(b" HTTP/1.1\r\n");
        wire.put_slice(&self.common);
        match node.config.api_key.as_ref() {
            Some(key) if self.used_x_api_key => {
                line(&mut wire, b"x-api-key", key.expose().as_bytes())
            }
            Some(key) => {
                wire.put_slice(b"authorization: Bearer ");
                wire.put_slice(key.expose().as_bytes());
                wire.put_slice(b"\r\n");
            }
            None => wire.put_slice(&self.credentials),
        }
        line(&mut wire, b"host", node.target.authority.as_bytes());
        line(&mut wire, b"accept-encoding", b"identity");
        line(&mut wire, b"x-request-id", request_id.as_bytes());
        if body_len > 0 || self.had_content_length {
            line(
                &mut wire,
                b"content-length",
                body_len.to_string().as_bytes(),
            );
        }
        wire.put_slice(b"\r\n");
        wire
    }
}

fn line(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NodeConfig, ProxyConfig};
    use crate::proxy::node::{Node, Source};

    fn node(base_url: &str, api_key: Option<&str>) -> Node {
        let config: NodeConfig = serde_json::from_value(serde_json::json!({
            "name": "n", "base_url": base_url, "api_key": api_key,
        }))
        .unwrap();
        let now = std::time::Instant::now();
        Node::new(config, Source::Config, &ProxyConfig::default(), true, now).unwrap()
    }

    fn client(headers: &[(&str, &str)]) -> RequestHeader {
        let mut h = RequestHeader::build("POST", b"/v1/messages?beta=1", None).unwrap();
        for (k, v) in headers {
            h.append_header(k.to_string(), *v).unwrap();
        }
        h
    }

    fn via() -> Via {
        Via::new("keel-t")
    }

    /// The request line and the header lines, in order, without the closing blank line.
    fn lines(wire: &[u8]) -> Vec<String> {
        let text = std::str::from_utf8(wire).unwrap();
        let head = text
            .strip_suffix("\r\n\r\n")
            .expect("ends with a blank line");
        head.split("\r\n").map(str::to_string).collect()
    }

    #[test]
    fn hop_by_hop_and_keel_owned_headers_are_replaced_the_rest_forwarded() {
        let c = client(&[
            ("Host", "keel.local"),
            ("Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Content-Length", "2"),
            ("Accept-Encoding", "gzip"),
            ("X-Request-Id", "from-client"),
            ("Anthropic-Version", "2023-06-01"),
            ("X-Api-Key", "client-key"),
        ]);
        let wire = ClientHead::of(&c, &via()).for_node(
            &node("http://10.0.0.1:8000/prefix", None),
            "rid",
            7,
        );
        assert_eq!(
            lines(&wire),
            [
                "POST /prefix/v1/messages?beta=1 HTTP/1.1",
                "anthropic-version: 2023-06-01",
                "via: 1.1 keel-t",
                "x-api-key: client-key",
                "host: 10.0.0.1:8000",
                "accept-encoding: identity",
                "x-request-id: rid",
                "content-length: 7",
            ]
        );
    }

    #[test]
    fn a_node_key_replaces_the_client_key_in_the_clients_style() {
        let by_x_api_key = client(&[("x-api-key", "client-key"), ("authorization", "Bearer c")]);
        let keyed = node("https://api.example.com", Some("node-key"));
        let wire = lines(&ClientHead::of(&by_x_api_key, &via()).for_node(&keyed, "r", 0));
        assert!(
            wire.contains(&"x-api-key: node-key".to_string()),
            "{wire:?}"
        );
        assert!(!wire
            .iter()
            .any(|l| l.contains("client-key") || l.starts_with("authorization")));

        let by_bearer = client(&[("Authorization", "Bearer client-key")]);
        let wire = lines(&ClientHead::of(&by_bearer, &via()).for_node(&keyed, "r", 0));
        assert!(
            wire.contains(&"authorization: Bearer node-key".to_string()),
            "{wire:?}"
        );
        assert!(!wire.iter().any(|l| l.contains("client-key")));
        // No body and no content-length from the client: none upstream either.
        assert!(!wire.iter().any(|l| l.starts_with("content-length")));
    }

    #[test]
    fn an_empty_body_keeps_an_explicit_zero_length() {
        let c = client(&[("content-length", "0")]);
        let wire = lines(&ClientHead::of(&c, &via()).for_node(&node("http://h:1", None), "r", 0));
        assert!(wire.contains(&"content-length: 0".to_string()), "{wire:?}");
    }

    #[test]
    fn keels_via_entry_follows_the_clients_own() {
        // RFC 9110 §7.6.3: a proxy appends its entry; earlier ones stay in their order.
        let c = client(&[("Via", "1.1 edge-lb"), ("X-Kept", "1")]);
        let wire = lines(&ClientHead::of(&c, &via()).for_node(&node("http://h:1", None), "r", 0));
        let at = |l: &str| wire.iter().position(|w| w == l).unwrap_or(usize::MAX);
        assert!(at("via: 1.1 edge-lb") < at("via: 1.1 keel-t"), "{wire:?}");
        assert!(at("via: 1.1 keel-t") < wire.len(), "{wire:?}");
    }

    #[test]
    fn headers_the_clients_connection_names_are_not_forwarded() {
        // RFC 9110 §7.6.1: `Connection: X-Hop` makes x-hop hop-by-hop, in any case.
        let c = client(&[
            ("X-Hop", "1"),
            ("Connection", "keep-alive, x-HOP"),
            ("Keep-Alive", "timeout=5"),
            ("X-Kept", "2"),
        ]);
        let wire = lines(&ClientHead::of(&c, &via()).for_node(&node("http://h:1", None), "r", 0));
        assert!(wire.contains(&"x-kept: 2".to_string()), "{wire:?}");
        assert!(
            !wire.iter().any(|l| l.starts_with("x-hop")
                || l.starts_with("keep-alive")
                || l.starts_with("connection")),
            "{wire:?}"
        );
    }
}
