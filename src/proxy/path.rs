//! The client's request path, checked before it is appended to a node's base-URL prefix.
//!
//! keel forwards the path as the client sent it, after the node's prefix
//! (`http://gpu-1:8000/openai` + `/v1/chat/completions`). A `..` segment would let a client
//! reach paths above that prefix once the node, or a server in front of it, resolves dot
//! segments — and servers differ in what they resolve: some decode `%2e%2e` first (or decode
//! twice), some take `\` or an encoded `%2f` for a slash, some drop `;params` from a
//! segment (`..;`). keel therefore refuses such a path with a 400 instead of rewriting it:
//! a rewrite would have to guess which of those readings the node uses, and any path a
//! legitimate client sends to an LLM API has no `..` in it.
//!
//! The rules, applied to the path only (never the query):
//! - it starts with `/` (origin form), so it can only add segments below the prefix;
//! - no segment is `..` in any reading above: percent-decoded once or repeatedly, split at
//!   `/` or `\`, with anything from `;` on ignored.
//!
//! A single `.` cannot climb and is left alone.

/// Most rounds of percent-decoding looked through. Each round that changes the path
/// shortens it, and no real client encodes a path more than twice; a path still changing
/// after this many rounds is refused.
const MAX_DECODE_ROUNDS: usize = 4;

/// Why a path is refused (the text is the 400's message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PathError {
    #[error("request path must start with '/'")]
    NotOriginForm,
    #[error("request path must not contain '..' segments (plain or percent-encoded)")]
    DotDot,
    #[error("request path is percent-encoded too many times")]
    TooDeeplyEncoded,
}

/// Checks a client path (without the query) before it goes upstream under a prefix.
pub(crate) fn check(path: &str) -> Result<(), PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotOriginForm);
    }
    let mut current = path.as_bytes().to_vec();
    for _ in 0..=MAX_DECODE_ROUNDS {
        if has_dot_dot(&current) {
            return Err(PathError::DotDot);
        }
        match percent_decode(&current) {
            Some(next) => current = next,
            None => return Ok(()),
        }
    }
    Err(PathError::TooDeeplyEncoded)
}

/// Whether a segment, split at `/` or `\` and cut at `;`, is `..`.
fn has_dot_dot(path: &[u8]) -> bool {
    path.split(|b| *b == b'/' || *b == b'\\').any(|segment| {
        let name = segment.split(|b| *b == b';').next().unwrap_or_default();
        name == b".."
    })
}

/// One round of percent-decoding; `None` when there is nothing to decode (a `%` not
/// followed by two hex digits stays as it is).
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut changed = false;
    let mut i = 0;
    while i < input.len() {
        let escaped = match (input.get(i), input.get(i + 1), input.get(i + 2)) {
            (Some(b'%'), Some(&hi), Some(&lo)) => hex(hi).zip(hex(lo)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                out.push(byte);
                changed = true;
                i += 3;
            }
            None => {
                out.push(input[i]);
                i += 1;
            }
        }
    }
    changed.then_some(out)
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ordinary_api_paths_pass() {
        for p in [
            "/",
            "/v1/chat/completions",
            "/v1/messages",
            "/v1/models/llama-3.1-8b",
            "/v1/files/a%20b",
            "/./v1/models",
            "/v1/..well-known",
            "/v1/a..b/...",
            "/100%",
            "/%zz",
        ] {
            assert_eq!(check(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn dot_dot_segments_are_refused_in_every_spelling() {
        for p in [
            "/..",
            "/../admin",
            "/v1/../../etc/passwd",
            "/v1/..",
            "/v1/%2e%2e/admin",
            "/v1/%2E%2E/admin",
            "/v1/%2e./admin",
            "/v1/.%2E/admin",
            "/v1/..%2fadmin",
            "/v1/..%2Fadmin",
            "/v1/..\\admin",
            "/v1/..%5cadmin",
            "/v1/..;/admin",
            "/v1/..;jsessionid=1/admin",
            "/v1/%252e%252e/admin",
            "/v1/%25252e%25252e/admin",
        ] {
            assert_eq!(check(p), Err(PathError::DotDot), "{p}");
        }
    }

    #[test]
    fn paths_not_in_origin_form_are_refused() {
        for p in ["", "*", "v1/models", "../x", "%2f.."] {
            assert_eq!(check(p), Err(PathError::NotOriginForm), "{p:?}");
        }
    }

    #[test]
    fn a_path_encoded_past_the_bound_is_refused() {
        // "%2e" encoded five more times: never a real client.
        let mut p = "%2e".to_string();
        for _ in 0..5 {
            p = p.replace('%', "%25");
        }
        assert_eq!(check(&format!("/v1/{p}")), Err(PathError::TooDeeplyEncoded));
    }

    /// Resolves dot segments the way RFC 3986 (5.2.4) does, on a path fully decoded and
    /// with `\` taken as `/`: the most generous reading a node could apply.
    fn resolved_segments(path: &str) -> Vec<String> {
        let mut bytes = path.as_bytes().to_vec();
        while let Some(next) = percent_decode(&bytes) {
            bytes = next;
        }
        let text = String::from_utf8_lossy(&bytes).replace('\\', "/");
        let mut out: Vec<String> = Vec::new();
        for segment in text.split('/').skip(1) {
            let name = segment.split(';').next().unwrap_or_default();
            match name {
                ".." => {
                    if out.pop().is_none() {
                        out.push("<above the prefix>".into());
                        return out;
                    }
                }
                "." => {}
                _ => out.push(segment.to_string()),
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Hostile paths (dots, slashes, backslashes, escapes of them, semicolons) never
        /// panic, and a path that passes never resolves above the prefix.
        #[test]
        fn no_accepted_path_climbs_above_the_prefix(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("/"), Just("."), Just(".."), Just("%2e"), Just("%2E"), Just("%2f"),
                    Just("%5c"), Just("\\"), Just(";"), Just("%25"), Just("%"), Just("a"),
                    Just("v1"), Just("%zz"), Just("%2"),
                ],
                0..24,
            ),
            lead in prop_oneof![Just(""), Just("/")],
        ) {
            let path = format!("{lead}{}", parts.concat());
            if check(&path).is_ok() {
                prop_assert!(path.starts_with('/'));
                let resolved = resolved_segments(&path);
                prop_assert!(
                    !resolved.iter().any(|s| s == "<above the prefix>"),
                    "{path} resolves to {resolved:?}"
                );
            }
        }

        /// Arbitrary strings, including non-ASCII and control characters: no panic.
        #[test]
        fn any_string_is_classified_without_panic(path in any::<String>()) {
            let _ = check(&path);
        }
    }
}
