//! Which LLM API a request speaks, and the request rewrites keel makes for each node.
//!
//! Only two request shapes get the LLM path: OpenAI chat completions
//! (`POST …/chat/completions`) and Anthropic messages (`POST …/messages`), each a JSON object
//! with a `messages` array. Everything else (model lists, embeddings, batches, token counting)
//! stays on the generic proxy path, where the gateway's plain retry rules are right.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The wildcard key of `model_mapping`: this node serves any requested model as its own.
pub const ANY_MODEL: &str = "*";

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
pub enum RequestError {
    #[error("request body is not a JSON object")]
    NotAnObject,
    #[error("request body has no `messages` array")]
    NoMessages,
}

/// A parsed generation request: the client's body plus what keel needs to know about it.
#[derive(Debug, Clone)]
pub struct LlmRequest {
    pub dialect: Dialect,
    body: Map<String, Value>,
    /// `"stream": true`.
    pub stream: bool,
    /// The model the client asked for (`""` when absent).
    pub model: String,
    /// OpenAI: the client itself asked for `stream_options.include_usage`. When it did not,
    /// keel still asks (so usage can be counted) but strips the extra usage chunk again.
    pub client_wants_usage: bool,
}

impl LlmRequest {
    pub fn parse(dialect: Dialect, body: &[u8]) -> Result<LlmRequest, RequestError> {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
            return Err(RequestError::NotAnObject);
        };
        if !body.get("messages").is_some_and(Value::is_array) {
            return Err(RequestError::NoMessages);
        }
        let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let client_wants_usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(LlmRequest {
            dialect,
            body,
            stream,
            model,
            client_wants_usage,
        })
    }

    /// The body for one node: `model` mapped for it, and for OpenAI streams
    /// `stream_options.include_usage = true` so the final chunk carries usage.
    pub fn body_for(&self, mapping: &BTreeMap<String, String>) -> bytes::Bytes {
        self.render(self.body.clone(), mapping)
    }

    /// The continuation body: the same request plus the text already delivered as a trailing
    /// assistant message (a prefill), which the node continues instead of starting over.
    ///
    /// Anthropic rejects a final assistant turn that ends in whitespace, so the prefill is
    /// trimmed at the end; the caller strips the same whitespace from the continuation's
    /// start (see [`super::continuation`]) so the client sees it once.
    pub fn continuation_body(
        &self,
        delivered: &str,
        mapping: &BTreeMap<String, String>,
    ) -> bytes::Bytes {
        let mut body = self.body.clone();
        let prefill = match self.dialect {
            Dialect::OpenAi => delivered,
            Dialect::Anthropic => delivered.trim_end(),
        };
        if let Some(Value::Array(messages)) = body.get_mut("messages") {
            extend_prefill(messages, prefill);
        }
        self.render(body, mapping)
    }

    fn render(
        &self,
        mut body: Map<String, Value>,
        mapping: &BTreeMap<String, String>,
    ) -> bytes::Bytes {
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
pub fn map_model<'m>(mapping: &'m BTreeMap<String, String>, requested: &str) -> Option<&'m str> {
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
            LlmRequest::parse(Dialect::OpenAi, b"[1]").unwrap_err(),
            RequestError::NotAnObject
        );
        assert_eq!(
            LlmRequest::parse(Dialect::OpenAi, b"{\"model\":\"m\"}").unwrap_err(),
            RequestError::NoMessages
        );
    }

    #[test]
    fn openai_stream_gets_include_usage_and_mapped_model() {
        let r = LlmRequest::parse(
            Dialect::OpenAi,
            br#"{"model":"gpt-x","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
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
            br#"{"model":"claude","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
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
            br#"{"model":"c","max_tokens":9,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"{"}]}"#,
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
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true},"stream":true}"#,
        )
        .unwrap();
        assert!(r.client_wants_usage);
        let b = json(&r.continuation_body("Hello ", &BTreeMap::new()));
        assert_eq!(b["messages"][1]["content"], "Hello ");
    }
}
