//! The generic route's token meter: usage read from answers while they pass through, never
//! holding a byte back — each chunk is forwarded first and then fed here. (The LLM route
//! reads usage from the answers it parses anyway: [`crate::proxy::llm::token_usage`].)
//!
//! - JSON answers (OpenAI `usage.prompt_tokens/completion_tokens`, Anthropic
//!   `usage.input_tokens/output_tokens`): the body is copied into a bounded buffer and parsed
//!   at the end; bodies above [`MAX_JSON_BODY`] are not counted.
//! - Server-sent events: complete `data:` lines are scanned as they arrive. Anthropic sends
//!   `message_start` (`message.usage.input_tokens`) and `message_delta` (`usage.output_tokens`,
//!   cumulative); OpenAI sends a final chunk with `usage` when the client asked for it.

use crate::proxy::llm::token_usage::Usage;
use serde_json::Value;

/// Largest JSON answer buffered for usage parsing.
pub(crate) const MAX_JSON_BODY: usize = 4 * 1024 * 1024;
/// Longest SSE line kept while waiting for its end.
const MAX_SSE_LINE: usize = 1024 * 1024;

#[derive(Debug)]
enum Mode {
    Json(Vec<u8>),
    Sse {
        line: Vec<u8>,
        usage: Usage,
    },
    /// Not an answer we can read (compressed, other type, too large).
    Ignore,
}

#[derive(Debug)]
pub(crate) struct UsageMeter {
    mode: Mode,
}

impl UsageMeter {
    /// Chooses how to read a response from its headers.
    pub(crate) fn for_response(content_type: Option<&str>, content_encoding: Option<&str>) -> Self {
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        let encoded = content_encoding.is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
        let mode = if encoded {
            Mode::Ignore
        } else if ct.starts_with("text/event-stream") {
            Mode::Sse {
                line: Vec::new(),
                usage: Usage::default(),
            }
        } else if ct.starts_with("application/json") {
            Mode::Json(Vec::new())
        } else {
            Mode::Ignore
        };
        UsageMeter { mode }
    }

    /// Feeds one forwarded chunk.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        match &mut self.mode {
            Mode::Json(buf) => {
                if buf.len() + chunk.len() > MAX_JSON_BODY {
                    self.mode = Mode::Ignore;
                } else {
                    buf.extend_from_slice(chunk);
                }
            }
            Mode::Sse { line, usage } => {
                for part in chunk.split_inclusive(|b| *b == b'\n') {
                    if line.len() + part.len() <= MAX_SSE_LINE {
                        line.extend_from_slice(part);
                    }
                    if part.ends_with(b"\n") {
                        sse_line(line, usage);
                        line.clear();
                    }
                }
            }
            Mode::Ignore => {}
        }
    }

    /// The usage found, once the answer is complete.
    pub(crate) fn finish(mut self) -> Option<Usage> {
        match &mut self.mode {
            Mode::Json(buf) => Usage::from_response(buf),
            Mode::Sse { line, usage } => {
                if !line.is_empty() {
                    sse_line(line, usage);
                }
                (*usage != Usage::default()).then_some(*usage)
            }
            Mode::Ignore => None,
        }
    }
}

fn sse_line(line: &[u8], usage: &mut Usage) {
    let Some(data) = line.strip_prefix(b"data:") else {
        return;
    };
    // Cheap filter: most events are deltas without usage.
    if !data.windows(7).any(|w| w == b"\"usage\"") {
        return;
    }
    let Ok(v) = serde_json::from_slice::<Value>(trim(data)) else {
        return;
    };
    match v.get("type").and_then(Value::as_str) {
        Some("message_start") => {
            if let Some(u) = v.pointer("/message/usage").and_then(Usage::from_object) {
                usage.input = u.input;
                usage.output = usage.output.max(u.output);
            }
        }
        // Anthropic's message_delta carries the cumulative output count.
        Some("message_delta") => {
            if let Some(u) = v.get("usage").and_then(Usage::from_object) {
                usage.output = u.output;
                if u.input > 0 {
                    usage.input = u.input;
                }
            }
        }
        _ => {
            if let Some(u) = v.get("usage").and_then(Usage::from_object) {
                *usage = u;
            }
        }
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &b[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(ct: &str) -> UsageMeter {
        UsageMeter::for_response(Some(ct), None)
    }

    #[test]
    fn openai_and_anthropic_json() {
        let mut m = meter("application/json");
        m.feed(br#"{"id":"x","usage":{"prompt_tokens":12,"#);
        m.feed(br#""completion_tokens":34,"total_tokens":46}}"#);
        assert_eq!(
            m.finish(),
            Some(Usage {
                input: 12,
                output: 34
            })
        );
        let mut m = meter("application/json; charset=utf-8");
        m.feed(br#"{"type":"message","usage":{"input_tokens":5,"output_tokens":7}}"#);
        assert_eq!(
            m.finish(),
            Some(Usage {
                input: 5,
                output: 7
            })
        );
    }

    #[test]
    fn anthropic_stream_split_across_chunks() {
        let mut m = meter("text/event-stream");
        let stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"hi\"}}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n";
        for chunk in stream.as_bytes().chunks(7) {
            m.feed(chunk);
        }
        assert_eq!(
            m.finish(),
            Some(Usage {
                input: 25,
                output: 15
            })
        );
    }

    #[test]
    fn openai_stream_final_usage_chunk() {
        let mut m = meter("text/event-stream");
        m.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\n");
        m.feed(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n");
        assert_eq!(
            m.finish(),
            Some(Usage {
                input: 3,
                output: 4
            })
        );
    }

    #[test]
    fn compressed_or_other_bodies_are_ignored() {
        let mut m = UsageMeter::for_response(Some("application/json"), Some("gzip"));
        m.feed(b"{\"usage\":{\"input_tokens\":1}}");
        assert_eq!(m.finish(), None);
        let mut m = meter("text/plain");
        m.feed(b"{\"usage\":{\"input_tokens\":1}}");
        assert_eq!(m.finish(), None);
    }
}
