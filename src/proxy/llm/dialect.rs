//! Which LLM API a request speaks, and the request rewrites keel makes for each node.
//!
//! Only two request shapes get the LLM path: OpenAI chat completions
//! (`POST …/chat/completions`) and Anthropic messages (`POST …/messages`), each a JSON object
//! with a `messages` array. Everything else (model lists, embeddings, batches, token counting)
//! stays on the generic proxy path, where the gateway's plain retry rules are right.

use bytes::Bytes;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The wildcard key of `model_mapping`: this node serves any requested model as its own.
pub(crate) const ANY_MODEL: &str = "*";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    OpenAi,
    Anthropic,
}

impl Dialect {
    /// The dialect of an LLM route, from method and path (query ignored, any prefix allowed:
    /// `/v1/chat/completions`, `/openai/v1/chat/completions`). Sub-resources such as
    /// `/v1/messages/count_tokens` are not generations and return `None`.
    pub fn from_route(method: &http::Method, path: &str) -> Option<Dialect> {
        if method != http::Method::POST {
            return None;
        }
        let path = path.split('?').next().unwrap_or("").trim_end_matches('/');
        if path.ends_with("/chat/completions") {
            Some(Dialect::OpenAi)
        } else if path.ends_with("/messages") {
            Some(Dialect::Anthropic)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::OpenAi => "openai",
            Dialect::Anthropic => "anthropic",
        }
    }
}

impl Dialect {
    /// A complete error answer in this API's JSON shape. Both shapes carry
    /// `error.type` and `error.message`, so keel's usual `{"error":{...}}` readers work too.
    pub fn error_body(self, kind: &str, message: &str) -> bytes::Bytes {
        let v = match self {
            Dialect::OpenAi => {
                serde_json::json!({"error": {"message": message, "type": kind, "code": kind}})
            }
            Dialect::Anthropic => {
                serde_json::json!({"type": "error", "error": {"type": kind, "message": message}})
            }
        };
        bytes::Bytes::from(v.to_string())
    }
}

/// Why a body on an LLM route cannot take the LLM path; the request then goes through as
/// it is and the upstream answers it (keel does not second-guess the provider's 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum RequestError {
    #[error("request body is not a JSON object")]
    NotAnObject,
    #[error("request body has no `messages` array")]
    NoMessages,
}

/// A parsed generation request: the client's body plus what keel needs to know about it.
#[derive(Debug, Clone)]
pub(crate) struct LlmRequest {
    pub dialect: Dialect,
    /// The client's body as it came; nodes get it byte for byte unless a rewrite applies.
    raw: Bytes,
    /// `"stream": true`.
    pub stream: bool,
    /// The model the client asked for (`""` when absent).
    pub model: String,
    /// OpenAI: the client itself asked for `stream_options.include_usage`. When it did not,
    /// keel still asks (so usage can be counted) but strips the extra usage chunk again.
    pub client_wants_usage: bool,
}

/// The members of a request body keel looks at. Deserializing into it skips over
/// `messages` (often most of the bytes) without building a JSON tree of the prompt.
#[derive(serde::Deserialize)]
struct Probe {
    #[serde(default)]
    messages: Option<IsArray>,
    #[serde(default)]
    stream: Option<Value>,
    #[serde(default)]
    model: Option<Value>,
    #[serde(default)]
    stream_options: Option<Value>,
}

/// Whether a JSON value is an array; its contents are skipped, not kept.
struct IsArray(bool);

impl<'de> serde::Deserialize<'de> for IsArray {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess};
        struct Kind;
        impl<'de> serde::de::Visitor<'de> for Kind {
            type Value = IsArray;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IsArray, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IsArray(true))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IsArray, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(IsArray(false))
            }
            fn visit_bool<E>(self, _: bool) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_i64<E>(self, _: i64) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_u64<E>(self, _: u64) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_f64<E>(self, _: f64) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_str<E>(self, _: &str) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
            fn visit_unit<E>(self) -> Result<IsArray, E> {
                Ok(IsArray(false))
            }
        }
        d.deserialize_any(Kind)
    }
}

impl LlmRequest {
    pub(crate) fn parse(dialect: Dialect, body: &Bytes) -> Result<LlmRequest, RequestError> {
        // The probe reads a JSON object only (a struct would also accept an array), and
        // refuses duplicate members: those bodies take the full parse, whose "last one
        // wins" is what the node itself will see.
        let object = body.trim_ascii_start().first() == Some(&b'{');
        let probe = match serde_json::from_slice::<Probe>(body) {
            Ok(p) if object => p,
            _ => Self::probe_slowly(body)?,
        };
        if !probe.messages.is_some_and(|m| m.0) {
            return Err(RequestError::NoMessages);
        }
        let stream = probe.stream.and_then(|v| v.as_bool()).unwrap_or(false);
        let model = match probe.model {
            Some(Value::String(m)) => m,
            _ => String::new(),
        };
        let client_wants_usage = probe
            .stream_options
            .and_then(|o| o.get("include_usage").and_then(Value::as_bool))
            .unwrap_or(false);
        Ok(LlmRequest {
            dialect,
            raw: body.clone(),
            stream,
            model,
            client_wants_usage,
        })
    }

    /// The probe from a full parse, for bodies the fast one does not take.
    fn probe_slowly(body: &[u8]) -> Result<Probe, RequestError> {
        let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(body) else {
            return Err(RequestError::NotAnObject);
        };
        Ok(Probe {
            messages: Some(IsArray(body.get("messages").is_some_and(Value::is_array))),
            stream: body.remove("stream"),
            model: body.remove("model"),
            stream_options: body.remove("stream_options"),
        })
    }

    /// The client's body as a JSON object (it parsed as one in [`LlmRequest::parse`]).
    fn object(&self) -> Map<String, Value> {
        match serde_json::from_slice(&self.raw) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    /// The body for one node: `model` mapped for it, and for OpenAI streams
    /// `stream_options.include_usage = true` so the final chunk carries usage. Without
    /// either rewrite it is the client's body unchanged.
    pub(crate) fn body_for(&self, mapping: &BTreeMap<String, String>) -> Bytes {
        let remap = map_model(mapping, &self.model).is_some_and(|to| to != self.model);
        let ask_usage = self.dialect == Dialect::OpenAi && self.stream && !self.client_wants_usage;
        if !remap && !ask_usage {
            return self.raw.clone();
        }
        self.render(self.object(), mapping)
    }

    /// The continuation body: the same request plus the text already delivered as a trailing
    /// assistant message (a prefill), which the node continues instead of starting over.
    ///
    /// Anthropic rejects a final assistant turn that ends in whitespace, so the prefill is
    /// trimmed at the end; the caller strips the same whitespace from the continuation's
    /// start (see [`super::continuation`]) so the client sees it once.
    pub(crate) fn continuation_body(
        &self,
        delivered: &str,
        mapping: &BTreeMap<String, String>,
    ) -> Bytes {
        let mut body = self.object();
        let prefill = match self.dialect {
            Dialect::OpenAi => delivered,
            Dialect::Anthropic => delivered.trim_end(),
        };
        if let Some(Value::Array(messages)) = body.get_mut("messages") {
            extend_prefill(messages, prefill);
        }
        self.render(body, mapping)
    }

    fn render(&self, mut body: Map<String, Value>, mapping: &BTreeMap<String, String>) -> Bytes {
        if let Some(to) = map_model(mapping, &self.model) {
            body.insert("model".into(), Value::String(to.to_string()));
        }
        if self.dialect == Dialect::OpenAi && self.stream {
            let options = body
                .entry("stream_options")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(o) = options {
                o.insert("include_usage".into(), Value::Bool(true));
            }
        }
        // Serializing a map of JSON values cannot fail.
        bytes::Bytes::from(serde_json::to_vec(&Value::Object(body)).unwrap_or_default())
    }
}

/// Appends `text` as the assistant's prefill: to the client's own trailing assistant
/// message when there is one (the delivered text continues it), else as a new message.
fn extend_prefill(messages: &mut Vec<Value>, text: &str) {
    if let Some(last) = messages
        .last_mut()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
    {
        match last.get_mut("content") {
            Some(Value::String(s)) => {
                s.push_str(text);
                return;
            }
            Some(Value::Array(blocks)) => {
                blocks.push(serde_json::json!({"type": "text", "text": text}));
                return;
            }
            _ => {}
        }
    }
    messages.push(serde_json::json!({"role": "assistant", "content": text}));
}

/// The node's name for a requested model: an exact entry, else the `"*"` wildcard, else
/// none (the request keeps its model).
pub(crate) fn map_model<'m>(
    mapping: &'m BTreeMap<String, String>,
    requested: &str,
) -> Option<&'m str> {
    mapping
        .get(requested)
        .or_else(|| mapping.get(ANY_MODEL))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn json(b: &[u8]) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn routes() {
        let post = Method::POST;
        assert_eq!(
            Dialect::from_route(&post, "/v1/chat/completions"),
            Some(Dialect::OpenAi)
        );
        assert_eq!(
            Dialect::from_route(&post, "/openai/v1/chat/completions/?x=1"),
            Some(Dialect::OpenAi)
        );
        assert_eq!(
            Dialect::from_route(&post, "/v1/messages"),
            Some(Dialect::Anthropic)
        );
        assert_eq!(
            Dialect::from_route(&post, "/v1/messages/count_tokens"),
            None
        );
        assert_eq!(Dialect::from_route(&Method::GET, "/v1/messages"), None);
        assert_eq!(Dialect::from_route(&post, "/v1/embeddings"), None);
    }

    #[test]
    fn parse_rejects_non_generation_bodies() {
        assert_eq!(
            LlmRequest::parse(Dialect::OpenAi, &Bytes::from_static(b"[1]")).unwrap_err(),
            RequestError::NotAnObject
        );
        assert_eq!(
            LlmRequest::parse(Dialect::OpenAi, &Bytes::from_static(b"{\"model\":\"m\"}"))
                .unwrap_err(),
            RequestError::NoMessages
        );
    }

    #[test]
    fn bodies_without_a_rewrite_go_out_byte_for_byte() {
        let raw = Bytes::from_static(
            br#" { "messages" : [{"role":"user","content":"hi"}], "model":"m", "z":1, "a":2 } "#,
        );
        let r = LlmRequest::parse(Dialect::Anthropic, &raw).unwrap();
        assert_eq!(r.body_for(&BTreeMap::new()), raw);
        // OpenAI streams that already ask for usage need no rewrite either.
        let raw = Bytes::from_static(
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#,
        );
        let r = LlmRequest::parse(Dialect::OpenAi, &raw).unwrap();
        assert_eq!(r.body_for(&BTreeMap::new()), raw);
    }

    #[test]
    fn the_probe_reads_like_a_full_parse() {
        let parse = |b: &'static [u8]| LlmRequest::parse(Dialect::OpenAi, &Bytes::from_static(b));
        // Duplicate members: the last one counts, as in a full parse.
        let r = parse(br#"{"model":"a","model":"b","stream":false,"stream":true,"messages":[]}"#)
            .unwrap();
        assert_eq!((r.model.as_str(), r.stream), ("b", true));
        assert_eq!(
            parse(br#"{"messages":[],"messages":{}}"#).unwrap_err(),
            RequestError::NoMessages
        );
        // Wrong types are ignored as before, not refused.
        let r = parse(br#"{"model":7,"stream":"yes","stream_options":3,"messages":[1,{"a":[]}]}"#)
            .unwrap();
        assert_eq!(
            (r.model.as_str(), r.stream, r.client_wants_usage),
            ("", false, false)
        );
        for not_messages in [
            &br#"{"messages":{"a":1}}"#[..],
            br#"{"messages":"x"}"#,
            br#"{"messages":null}"#,
        ] {
            assert_eq!(parse(not_messages).unwrap_err(), RequestError::NoMessages);
        }
        assert_eq!(
            parse(br#"[[], true]"#).unwrap_err(),
            RequestError::NotAnObject
        );
        assert_eq!(
            parse(br#"{"messages":[]"#).unwrap_err(),
            RequestError::NotAnObject
        );
    }

    #[test]
    fn openai_stream_gets_include_usage_and_mapped_model() {
        let r = LlmRequest::parse(
            Dialect::OpenAi,
            &Bytes::from_static(
                br#"{"model":"gpt-x","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
            ),
        )
        .unwrap();
        assert!(r.stream && !r.client_wants_usage);
        let mapping = BTreeMap::from([("*".to_string(), "local-llama".to_string())]);
        let b = json(&r.body_for(&mapping));
        assert_eq!(b["model"], "local-llama");
        assert_eq!(b["stream_options"]["include_usage"], true);
        let exact = BTreeMap::from([
            ("*".to_string(), "any".to_string()),
            ("gpt-x".to_string(), "gpt-x-2025".to_string()),
        ]);
        assert_eq!(json(&r.body_for(&exact))["model"], "gpt-x-2025");
        assert_eq!(json(&r.body_for(&BTreeMap::new()))["model"], "gpt-x");
    }

    #[test]
    fn anthropic_body_is_left_alone_but_continuation_prefills_trimmed_text() {
        let r = LlmRequest::parse(
            Dialect::Anthropic,
            &Bytes::from_static(br#"{"model":"claude","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#),
        )
        .unwrap();
        assert!(json(&r.body_for(&BTreeMap::new()))
            .get("stream_options")
            .is_none());
        let b = json(&r.continuation_body("Hello, wor ", &BTreeMap::new()));
        let msgs = b["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[1]["role"], "assistant");
        assert_eq!(msgs[1]["content"], "Hello, wor");
    }

    #[test]
    fn a_client_prefill_is_extended_not_duplicated() {
        let r = LlmRequest::parse(
            Dialect::Anthropic,
            &Bytes::from_static(br#"{"model":"c","max_tokens":9,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"{"}]}"#),
        )
        .unwrap();
        let b = json(&r.continuation_body("\"a\": 1", &BTreeMap::new()));
        assert_eq!(b["messages"].as_array().unwrap().len(), 2);
        assert_eq!(b["messages"][1]["content"], "{\"a\": 1");
    }

    #[test]
    fn openai_continuation_keeps_the_exact_prefix() {
        let r = LlmRequest::parse(
            Dialect::OpenAi,
            &Bytes::from_static(br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true},"stream":true}"#),
        )
        .unwrap();
        assert!(r.client_wants_usage);
        let b = json(&r.continuation_body("Hello ", &BTreeMap::new()));
        assert_eq!(b["messages"][1]["content"], "Hello ");
    }
}
