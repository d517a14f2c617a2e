//! What one streamed event means, in either API: content (and whether it is plain text that
//! a prefill can continue), the end of the answer, the end of the stream, an in-band error,
//! or something keel cannot parse.

use super::dialect::Dialect;
use super::sse::SseEvent;
use serde_json::Value;

/// The parts of an event that drive failover; an event may be several at once (an OpenAI
/// chunk can carry text, `finish_reason` and `usage` together).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Inspected {
    /// The parsed `data` (absent for `[DONE]` and malformed events).
    pub json: Option<Value>,
    /// Text of the answer delivered by this event.
    pub text: Option<String>,
    /// Content a text prefill cannot reproduce (tool calls, thinking, a second choice):
    /// once delivered, a broken stream can no longer be continued on another node.
    pub non_text: bool,
    /// The answer is complete (`finish_reason`, `message_delta` with `stop_reason`).
    pub finished: bool,
    /// The stream's own terminator (`[DONE]`, `message_stop`).
    pub terminal: bool,
    /// The provider reported an error inside the stream.
    pub error: bool,
    /// Not JSON (and not `[DONE]`): dropped, logged and counted.
    pub malformed: bool,
}

impl Inspected {
    /// Content (of any kind) — the event that releases held response headers.
    pub(crate) fn is_content(&self) -> bool {
        self.text.as_deref().is_some_and(|t| !t.is_empty()) || self.non_text
    }
}

pub(crate) fn inspect(dialect: Dialect, event: &SseEvent) -> Inspected {
    let data = event.data.trim();
    if dialect == Dialect::OpenAi && data == "[DONE]" {
        return Inspected {
            terminal: true,
            ..Inspected::default()
        };
    }
    let Ok(json) = serde_json::from_str::<Value>(data) else {
        return Inspected {
            malformed: true,
            ..Inspected::default()
        };
    };
    if !json.is_object() {
        return Inspected {
            malformed: true,
            ..Inspected::default()
        };
    }
    let mut out = match dialect {
        Dialect::OpenAi => inspect_openai(&json),
        Dialect::Anthropic => inspect_anthropic(event.event.as_deref(), &json),
    };
    out.json = Some(json);
    out
}

fn inspect_openai(json: &Value) -> Inspected {
    let mut out = Inspected::default();
    if json.get("error").is_some_and(|e| !e.is_null()) {
        out.error = true;
        return out;
    }
    for choice in json
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
        let delta = choice.get("delta");
        let content = delta.and_then(|d| d.get("content")).and_then(Value::as_str);
        // Anything besides role and text — tool calls, reasoning, refusals, audio — is
        // content too (it must not be held back as if nothing had arrived), but no text
        // prefill can reproduce it.
        let other = delta.and_then(Value::as_object).is_some_and(|d| {
            d.iter()
                .any(|(k, v)| k != "role" && k != "content" && !is_empty_value(v))
        });
        if index != 0 {
            out.non_text |= content.is_some_and(|c| !c.is_empty()) || other;
        } else {
            out.non_text |= other;
            if let Some(c) = content {
                out.text.get_or_insert_with(String::new).push_str(c);
            }
        }
        if choice
            .get("finish_reason")
            .is_some_and(|f| !f.is_null() && index == 0)
        {
            out.finished = true;
        }
    }
    out
}

/// `null`, `""`, `[]` and `{}`: a field present but saying nothing.
fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn inspect_anthropic(name: Option<&str>, json: &Value) -> Inspected {
    let mut out = Inspected::default();
    let kind = json.get("type").and_then(Value::as_str).or(name);
    match kind {
        Some("content_block_start") => {
            let block = json.get("content_block");
            match block.and_then(|b| b.get("type")).and_then(Value::as_str) {
                Some("text") => {
                    out.text = block
                        .and_then(|b| b.get("text"))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                }
                _ => out.non_text = true,
            }
        }
        Some("content_block_delta") => {
            let delta = json.get("delta");
            match delta.and_then(|d| d.get("type")).and_then(Value::as_str) {
                Some("text_delta") => {
                    out.text = delta
                        .and_then(|d| d.get("text"))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                }
                _ => out.non_text = true,
            }
        }
        Some("message_delta") => {
            out.finished = json
                .pointer("/delta/stop_reason")
                .is_some_and(|r| !r.is_null());
        }
        Some("message_stop") => out.terminal = true,
        Some("error") => out.error = true,
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oa(data: &str) -> Inspected {
        inspect(Dialect::OpenAi, &SseEvent::data(data))
    }
    fn an(data: &str) -> Inspected {
        inspect(Dialect::Anthropic, &SseEvent::data(data))
    }

    #[test]
    fn openai_chunks() {
        let role = oa(r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#);
        assert!(!role.is_content());
        let text = oa(r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#);
        assert_eq!(text.text.as_deref(), Some("Hi"));
        assert!(text.is_content() && !text.finished);
        assert!(oa(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#).finished);
        assert!(oa("[DONE]").terminal);
        assert!(oa(r#"{"error":{"message":"boom"}}"#).error);
        assert!(oa("{not json").malformed);
        let tool = oa(r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0}]}}]}"#);
        assert!(tool.non_text && tool.is_content());
        assert!(oa(r#"{"choices":[{"index":1,"delta":{"content":"x"}}]}"#).non_text);
        let reasoning = oa(r#"{"choices":[{"index":0,"delta":{"reasoning_content":"hmm"}}]}"#);
        assert!(reasoning.is_content() && reasoning.non_text);
        let nulls = oa(
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":null,"refusal":null,"audio":{}}}]}"#,
        );
        assert!(!nulls.is_content());
    }

    #[test]
    fn anthropic_events() {
        assert!(!an(r#"{"type":"message_start","message":{}}"#).is_content());
        assert!(!an(
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
        )
        .is_content());
        assert!(
            an(r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use"}}"#)
                .non_text
        );
        let d = an(
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        );
        assert_eq!(d.text.as_deref(), Some("Hi"));
        assert!(an(r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"h"}}"#).non_text);
        assert!(an(r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"}}"#).finished);
        assert!(an(r#"{"type":"message_stop"}"#).terminal);
        assert!(an(r#"{"type":"error","error":{"type":"overloaded_error"}}"#).error);
        assert!(an("[DONE]").malformed);
        let named = inspect(
            Dialect::Anthropic,
            &SseEvent::named("ping", r#"{"type":"ping"}"#),
        );
        assert!(!named.is_content() && !named.malformed);
    }
}
