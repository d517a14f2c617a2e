//! Token usage as each API reports it, for one upstream answer (JSON or stream) and summed
//! over the parts of a continued stream.
//!
//! The client is told the usage of the node(s) that actually produced its answer; metrics
//! count each node's own tokens. A stream cut before its usage arrived contributes what it
//! did report (Anthropic's `message_start` input count) — tokens a provider never reported
//! cannot be counted, and keel does not guess.

use super::dialect::Dialect;
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            input: self.input.saturating_add(o.input),
            output: self.output.saturating_add(o.output),
        }
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        *self = *self + o;
    }
}

impl Usage {
    /// Either API's usage object (`prompt_tokens/completion_tokens` or
    /// `input_tokens/output_tokens`); `None` when it has neither.
    pub fn from_object(u: &Value) -> Option<Usage> {
        let n = |k: &str| u.get(k).and_then(Value::as_u64);
        let input = n("input_tokens").or_else(|| n("prompt_tokens"));
        let output = n("output_tokens").or_else(|| n("completion_tokens"));
        (input.is_some() || output.is_some()).then(|| Usage {
            input: input.unwrap_or(0),
            output: output.unwrap_or(0),
        })
    }

    /// The usage of a complete JSON answer. Only the four counters are read; the rest (the
    /// generated text, other usage details) is skipped without building JSON values. Anything
    /// unusual — `usage` or a counter twice, a counter that is not an unsigned integer —
    /// takes the full parse, where the last duplicate counts and a bad counter is absent.
    pub fn from_response(body: &[u8]) -> Option<Usage> {
        #[derive(serde::Deserialize)]
        struct Counters {
            input_tokens: Option<u64>,
            prompt_tokens: Option<u64>,
            output_tokens: Option<u64>,
            completion_tokens: Option<u64>,
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            usage: Option<Counters>,
        }
        if body.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        match serde_json::from_slice::<Answer>(body) {
            Ok(a) => {
                let c = a.usage?;
                let input = c.input_tokens.or(c.prompt_tokens);
                let output = c.output_tokens.or(c.completion_tokens);
                (input.is_some() || output.is_some()).then(|| Usage {
                    input: input.unwrap_or(0),
                    output: output.unwrap_or(0),
                })
            }
            Err(_) => Usage::from_object(serde_json::from_slice::<Value>(body).ok()?.get("usage")?),
        }
    }

    /// The usage object in `dialect`'s spelling.
    pub fn to_json(self, dialect: Dialect) -> Value {
        match dialect {
            Dialect::OpenAi => serde_json::json!({
                "prompt_tokens": self.input,
                "completion_tokens": self.output,
                "total_tokens": self.input.saturating_add(self.output),
            }),
            Dialect::Anthropic => serde_json::json!({
                "input_tokens": self.input,
                "output_tokens": self.output,
            }),
        }
    }
}

/// Usage of one streamed part, updated event by event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StreamUsage {
    usage: Usage,
    seen: bool,
}

impl StreamUsage {
    /// Looks at one parsed event's JSON.
    ///
    /// Anthropic: `message_start` carries the input count (and a first output count),
    /// `message_delta` the *cumulative* output count (and, in newer API versions, input).
    /// OpenAI: the final chunk's `usage` (all other chunks have `"usage": null`).
    pub(crate) fn observe(&mut self, dialect: Dialect, event: &Value) {
        match dialect {
            Dialect::Anthropic => match event.get("type").and_then(Value::as_str) {
                Some("message_start") => {
                    if let Some(u) = event.pointer("/message/usage").and_then(Usage::from_object) {
                        self.usage = u;
                        self.seen = true;
                    }
                }
                Some("message_delta") => {
                    if let Some(u) = event.get("usage") {
                        if let Some(out) = u.get("output_tokens").and_then(Value::as_u64) {
                            self.usage.output = out;
                            self.seen = true;
                        }
                        if let Some(inp) = u.get("input_tokens").and_then(Value::as_u64) {
                            self.usage.input = inp;
                        }
                    }
                }
                _ => {}
            },
            Dialect::OpenAi => {
                if let Some(u) = event.get("usage").and_then(Usage::from_object) {
                    self.usage = u;
                    self.seen = true;
                }
            }
        }
    }

    /// What this part reported, if anything.
    pub(crate) fn get(&self) -> Option<Usage> {
        self.seen.then_some(self.usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_answers_of_both_apis() {
        let openai = br#"{"id":"x","choices":[{"message":{"content":"hi"}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46}}"#;
        assert_eq!(
            Usage::from_response(openai),
            Some(Usage {
                input: 12,
                output: 34
            })
        );
        let anthropic = br#"{"usage": {"input_tokens": 5, "output_tokens": 7}}"#;
        let five_seven = Some(Usage {
            input: 5,
            output: 7,
        });
        assert_eq!(Usage::from_response(anthropic), five_seven);
        assert_eq!(Usage::from_response(br#"{"usage": null}"#), None);
        assert_eq!(
            Usage::from_response(br#"[{"usage": {"input_tokens": 5}}]"#),
            None
        );
        assert_eq!(Usage::from_response(b"not json"), None);
        // Twice: the last one counts, as for any JSON reader.
        let twice =
            br#"{"usage": {"input_tokens": 1}, "usage": {"input_tokens": 5, "output_tokens": 7}}"#;
        assert_eq!(Usage::from_response(twice), five_seven);
        // Other usage details are skipped; a counter twice: the last one.
        let details = br#"{"usage": {"input_tokens": 5, "cache_read_input_tokens": 9,
            "server_tool_use": {"web_search_requests": 1}, "output_tokens": 2, "output_tokens": 7}}"#;
        assert_eq!(Usage::from_response(details), five_seven);
        // A counter that is not an unsigned integer counts as absent, the other one stays.
        let bad = br#"{"usage": {"input_tokens": "5", "output_tokens": 7}}"#;
        assert_eq!(
            Usage::from_response(bad),
            Some(Usage {
                input: 0,
                output: 7
            })
        );
        assert_eq!(
            Usage::from_response(br#"{"usage": {"input_tokens": -1}}"#),
            None
        );
    }

    #[test]
    fn anthropic_stream_events() {
        let mut s = StreamUsage::default();
        assert_eq!(s.get(), None);
        s.observe(
            Dialect::Anthropic,
            &json!({"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}),
        );
        s.observe(
            Dialect::Anthropic,
            &json!({"type":"content_block_delta","delta":{"text":"hi"}}),
        );
        assert_eq!(
            s.get(),
            Some(Usage {
                input: 25,
                output: 1
            })
        );
        s.observe(
            Dialect::Anthropic,
            &json!({"type":"message_delta","usage":{"output_tokens":15}}),
        );
        assert_eq!(
            s.get(),
            Some(Usage {
                input: 25,
                output: 15
            })
        );
    }

    #[test]
    fn openai_final_chunk_and_sum_of_parts() {
        let mut s = StreamUsage::default();
        s.observe(
            Dialect::OpenAi,
            &json!({"choices":[{"delta":{"content":"a"}}],"usage":null}),
        );
        assert_eq!(s.get(), None);
        s.observe(
            Dialect::OpenAi,
            &json!({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}),
        );
        let total = s.get().unwrap()
            + Usage {
                input: 10,
                output: 1,
            };
        assert_eq!(
            total,
            Usage {
                input: 13,
                output: 5
            }
        );
        assert_eq!(total.to_json(Dialect::OpenAi)["total_tokens"], 18);
        assert_eq!(total.to_json(Dialect::Anthropic)["output_tokens"], 5);
    }
}
