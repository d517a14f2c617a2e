//! The client's side of a streamed answer, which may be produced by more than one node.
//!
//! [`ClientStream`] sees every upstream event (already parsed and inspected) and decides what
//! the client gets. For the first part that is the event as it came, except for the usage
//! chunk keel asked for on the client's behalf. When a stream breaks mid-answer and a
//! fallback node continues it from a prefill, the fallback's events are *spliced* in: its
//! preamble (OpenAI role chunk, Anthropic `message_start` and the reopened text block) is
//! dropped, ids, `model` and `created` are rewritten to the first part's, Anthropic block
//! indices are mapped onto the client's, and the usage the client is told is the sum of
//! all parts. The result reads as one answer from one message.
//!
//! A node that refuses the prefill (see [`super::classify::is_prefill_rejection`]) can still
//! finish the answer by *regenerating* it without one ([`ClientStream::begin_regeneration`]):
//! its text must then begin exactly with what the client already received; that prefix is
//! skipped and only the rest is spliced in. Should it say something else, the answer
//! [diverged](ClientStream::diverged) and cannot be completed. [`PrefillMemory`] keeps which
//! node and model refused, so the next continuation there regenerates at once.
//!
//! It also produces the two endings a broken upstream needs: a proper terminator when the
//! upstream finished its answer but not its stream, and an in-band error event in the API's
//! own format — with no `[DONE]` or `message_stop` after it — when the answer cannot be
//! completed, so an SDK raises instead of returning truncated text as if it were whole.

use super::dialect::{Dialect, LlmRequest};
use super::sse::SseEvent;
use super::stream_event::Inspected;
use super::token_usage::{StreamUsage, Usage};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The first part's identity, stamped onto continuation chunks (OpenAI).
#[derive(Debug, Default, Clone)]
struct Identity {
    id: Option<Value>,
    model: Option<Value>,
    created: Option<Value>,
    system_fingerprint: Option<Value>,
}

/// How an upstream body that ended without an error leaves the client's stream.
#[derive(Debug, PartialEq)]
pub(crate) enum Ending {
    /// The answer is complete; send these events (synthesized terminators, maybe none).
    Complete(Vec<SseEvent>),
    /// The upstream stopped mid-answer: continue elsewhere or end with an error event.
    Broken,
}

#[derive(Debug, Clone)]
pub(crate) struct ClientStream {
    dialect: Dialect,
    client_wants_usage: bool,
    identity: Identity,
    delivered: String,
    non_text: bool,
    /// 0 for the first node's answer, then one more per continuation.
    part: u32,
    /// Usage reported by the parts before the current one.
    base_usage: Usage,
    part_usage: StreamUsage,
    finished: bool,
    terminated: bool,
    usage_sent: bool,
    /// Whitespace cut off the end of the prefill; removed once from the continuation's start.
    skip_ws: String,
    /// Anthropic: the client's open text block, the next free index, and the current part's
    /// index mapping (upstream → client).
    open_block: Option<u64>,
    next_block: u64,
    block_map: HashMap<u64, u64>,
    /// A regenerated part: the delivered text it must repeat before anything new is sent.
    regen_prefix: Option<String>,
    /// The regenerated text said something other than what was delivered.
    diverged: bool,
}

impl ClientStream {
    pub(crate) fn new(request: &LlmRequest) -> Self {
        ClientStream {
            dialect: request.dialect,
            client_wants_usage: request.client_wants_usage,
            identity: Identity::default(),
            delivered: String::new(),
            non_text: false,
            part: 0,
            base_usage: Usage::default(),
            part_usage: StreamUsage::default(),
            finished: false,
            terminated: false,
            usage_sent: false,
            skip_ws: String::new(),
            open_block: None,
            next_block: 0,
            block_map: HashMap::new(),
            regen_prefix: None,
            diverged: false,
        }
    }

    /// The answer text the client has received so far.
    pub(crate) fn delivered(&self) -> &str {
        &self.delivered
    }

    /// A prefill can reproduce what was delivered: text only, the answer not yet finished.
    pub(crate) fn can_continue(&self) -> bool {
        !self.non_text && !self.finished && !self.terminated
    }

    /// Whether the client's stream ended with the API's own terminator.
    pub(crate) fn terminated(&self) -> bool {
        self.terminated
    }

    /// Usage reported by the current part so far (for that node's accounting).
    pub(crate) fn part_usage(&self) -> Option<Usage> {
        self.part_usage.get()
    }

    /// Usage of every part together — what the client is told.
    pub(crate) fn total_usage(&self) -> Usage {
        self.base_usage + self.part_usage.get().unwrap_or_default()
    }

    /// Starts the next part (a continuation); the current part's usage becomes the base.
    pub(crate) fn begin_continuation(&mut self) {
        self.base_usage = self.total_usage();
        self.part_usage = StreamUsage::default();
        self.part += 1;
        self.block_map.clear();
        let kept = match self.dialect {
            Dialect::OpenAi => self.delivered.len(),
            Dialect::Anthropic => self.delivered.trim_end().len(),
        };
        self.skip_ws = self.delivered[kept..].to_string();
    }

    /// Starts the next part as a regeneration: the node answers the original request anew,
    /// and its text is spliced in only after it repeated everything delivered so far.
    pub(crate) fn begin_regeneration(&mut self) {
        self.begin_continuation();
        self.skip_ws.clear();
        self.regen_prefix = Some(self.delivered.clone());
    }

    /// The regenerated text departed from the delivered one (or ended before repeating
    /// it): this part cannot be spliced in.
    pub(crate) fn diverged(&self) -> bool {
        self.diverged
    }

    /// Text of a continuation part → what is new to the client: the whitespace the prefill
    /// left out ([`strip_skip`]) or, when regenerating, the delivered prefix is removed.
    fn splice_text(&mut self, text: &str) -> String {
        let text = strip_skip(&mut self.skip_ws, text);
        let Some(prefix) = self.regen_prefix.as_mut() else {
            return text;
        };
        if prefix.is_empty() {
            return text;
        }
        if let Some(rest) = prefix.strip_prefix(text.as_str()) {
            *prefix = rest.to_string();
            return String::new();
        }
        match text.strip_prefix(prefix.as_str()) {
            Some(rest) => {
                let rest = rest.to_string();
                prefix.clear();
                rest
            }
            None => {
                self.diverged = true;
                String::new()
            }
        }
    }

    /// One upstream event of the current part (not an error, not malformed) → what the
    /// client gets, possibly nothing.
    pub(crate) fn push(&mut self, event: SseEvent, seen: &Inspected) -> Vec<SseEvent> {
        if let Some(j) = &seen.json {
            self.part_usage.observe(self.dialect, j);
        }
        self.finished |= seen.finished;
        let out = match self.dialect {
            Dialect::OpenAi => self.push_openai(event, seen),
            Dialect::Anthropic => self.push_anthropic(event, seen),
        };
        // A regenerated answer that finished before repeating the delivered text.
        if seen.finished && self.regen_prefix.as_ref().is_some_and(|p| !p.is_empty()) {
            self.diverged = true;
        }
        if self.diverged {
            return Vec::new();
        }
        if seen.terminal && !out.is_empty() {
            self.terminated = true;
        }
        out
    }

    fn push_openai(&mut self, event: SseEvent, seen: &Inspected) -> Vec<SseEvent> {
        let Some(Value::Object(mut chunk)) = seen.json.clone() else {
            return vec![event]; // [DONE]
        };
        let mut changed = false;
        if self.part == 0 && self.identity.id.is_none() {
            self.identity = Identity {
                id: chunk.get("id").cloned(),
                model: chunk.get("model").cloned(),
                created: chunk.get("created").cloned(),
                system_fingerprint: chunk.get("system_fingerprint").cloned(),
            };
        }
        if self.part > 0 {
            let id = self.identity.clone();
            for (key, value) in [
                ("id", id.id),
                ("model", id.model),
                ("created", id.created),
                ("system_fingerprint", id.system_fingerprint),
            ] {
                if let Some(v) = value {
                    chunk.insert(key.into(), v);
                }
            }
            changed = true;
            if let Some(Value::Array(choices)) = chunk.get_mut("choices") {
                for choice in choices.iter_mut() {
                    let Some(Value::Object(delta)) = choice.get_mut("delta") else {
                        continue;
                    };
                    delta.remove("role");
                    if let Some(Value::String(text)) = delta.get_mut("content") {
                        *text = self.splice_text(text);
                    }
                }
            }
        }
        if let Some(text) = text_of_openai(&chunk) {
            self.delivered.push_str(&text);
        }
        self.non_text |= seen.non_text;
        let has_usage = chunk.get("usage").is_some_and(|u| !u.is_null());
        if has_usage {
            if self.client_wants_usage {
                chunk.insert("usage".into(), self.total_usage().to_json(Dialect::OpenAi));
                self.usage_sent = true;
            } else {
                chunk.remove("usage");
            }
            changed = true;
        }
        let choices_empty = chunk
            .get("choices")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if has_usage && !self.client_wants_usage && choices_empty {
            return Vec::new(); // the usage chunk keel asked for on its own behalf
        }
        if self.part > 0 && !has_usage && is_empty_openai_chunk(&chunk) {
            return Vec::new(); // the continuation's role preamble
        }
        if !changed {
            return vec![event];
        }
        vec![SseEvent {
            data: Value::Object(chunk).to_string(),
            ..event
        }]
    }

    fn push_anthropic(&mut self, event: SseEvent, seen: &Inspected) -> Vec<SseEvent> {
        let Some(Value::Object(mut ev)) = seen.json.clone() else {
            return vec![event];
        };
        let kind = ev
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.non_text |= seen.non_text;
        let index = ev.get("index").and_then(Value::as_u64);
        match kind.as_str() {
            "message_start" if self.part > 0 => return Vec::new(),
            "content_block_start" => {
                let upstream = index.unwrap_or(0);
                let is_text = seen.text.is_some();
                if self.part > 0 && is_text && self.block_map.is_empty() {
                    if let Some(open) = self.open_block {
                        // The client's text block is still open: continue inside it.
                        self.block_map.insert(upstream, open);
                        return Vec::new();
                    }
                }
                let client = if self.part == 0 {
                    upstream
                } else {
                    self.next_block
                };
                self.block_map.insert(upstream, client);
                self.next_block = self.next_block.max(client + 1);
                self.open_block = Some(client);
                if let Some(t) = &seen.text {
                    self.delivered.push_str(t);
                }
                if self.part == 0 {
                    return vec![event];
                }
                ev.insert("index".into(), json!(client));
            }
            "content_block_delta" => {
                let client = self.client_index(index);
                if self.part == 0 {
                    if let Some(t) = &seen.text {
                        self.delivered.push_str(t);
                    }
                    return vec![event];
                }
                ev.insert("index".into(), json!(client));
                if let Some(Value::Object(delta)) = ev.get_mut("delta") {
                    if let Some(Value::String(text)) = delta.get_mut("text") {
                        let kept = self.splice_text(text);
                        if kept.is_empty() {
                            return Vec::new();
                        }
                        self.delivered.push_str(&kept);
                        *text = kept;
                    }
                }
            }
            "content_block_stop" => {
                let client = self.client_index(index);
                if self.open_block == Some(client) {
                    self.open_block = None;
                }
                if self.part == 0 {
                    return vec![event];
                }
                ev.insert("index".into(), json!(client));
            }
            "message_delta" if self.part > 0 => {
                let total = self.total_usage();
                let usage = ev.entry("usage").or_insert_with(|| json!({}));
                if let Value::Object(u) = usage {
                    u.insert("output_tokens".into(), json!(total.output));
                    u.insert("input_tokens".into(), json!(total.input));
                }
            }
            _ => return vec![event],
        }
        vec![SseEvent {
            data: Value::Object(ev).to_string(),
            ..event
        }]
    }

    fn client_index(&self, upstream: Option<u64>) -> u64 {
        let upstream = upstream.unwrap_or(0);
        if self.part == 0 {
            return upstream;
        }
        self.block_map
            .get(&upstream)
            .copied()
            .or(self.open_block)
            .unwrap_or(upstream)
    }

    /// The upstream body ended without an error.
    pub(crate) fn end_of_upstream(&mut self) -> Ending {
        if self.terminated {
            return Ending::Complete(Vec::new());
        }
        if !self.finished {
            return Ending::Broken;
        }
        let mut out = Vec::new();
        match self.dialect {
            Dialect::OpenAi => {
                if self.client_wants_usage && !self.usage_sent {
                    if let Some(usage) = self.part_usage.get().map(|_| self.total_usage()) {
                        let mut chunk = json!({
                            "object": "chat.completion.chunk",
                            "choices": [],
                            "usage": usage.to_json(Dialect::OpenAi),
                        });
                        for (k, v) in [
                            ("id", &self.identity.id),
                            ("model", &self.identity.model),
                            ("created", &self.identity.created),
                        ] {
                            if let Some(v) = v {
                                chunk[k] = v.clone();
                            }
                        }
                        out.push(SseEvent::data(chunk.to_string()));
                    }
                }
                out.push(SseEvent::data("[DONE]"));
            }
            Dialect::Anthropic => {
                out.push(SseEvent::named(
                    "message_stop",
                    json!({"type": "message_stop"}).to_string(),
                ));
            }
        }
        self.terminated = true;
        Ending::Complete(out)
    }

    /// The in-band error that ends the client's stream when the answer cannot be completed.
    /// Deliberately followed by nothing: no `[DONE]`, no `message_stop`.
    pub(crate) fn error_event(&self, message: &str) -> SseEvent {
        error_event(self.dialect, "stream_broken", message)
    }
}

/// How long a node's refusal of a prefill for a model is remembered. A model's support for
/// prefills changes with a deployment, not from one request to the next; an hour keeps the
/// refused attempt (a wasted round trip before every regeneration) rare and still notices a
/// redeployed model the same day.
pub(crate) const PREFILL_REFUSAL_TTL: Duration = Duration::from_secs(3600);
/// Node and model pairs remembered at most; the oldest refusal is forgotten first.
pub(crate) const PREFILL_REFUSALS_MAX: usize = 1024;

/// Which node and model pairs refused an assistant prefill recently: bounded, with a TTL.
#[derive(Debug, Default)]
pub(crate) struct PrefillMemory {
    refused: Mutex<HashMap<(String, String), Instant>>,
}

impl PrefillMemory {
    /// Whether `node` refused a prefill for `model` within [`PREFILL_REFUSAL_TTL`] of `now`.
    pub(crate) fn refused(&self, node: &str, model: &str, now: Instant) -> bool {
        let map = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(node.to_string(), model.to_string()))
            .is_some_and(|at| now.saturating_duration_since(*at) < PREFILL_REFUSAL_TTL)
    }

    /// Remembers a refusal at `now`; expired entries go first, then the oldest when full.
    pub(crate) fn remember(&self, node: &str, model: &str, now: Instant) {
        let mut map = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, at| now.saturating_duration_since(*at) < PREFILL_REFUSAL_TTL);
        if map.len() >= PREFILL_REFUSALS_MAX {
            let oldest = map
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert((node.to_string(), model.to_string()), now);
    }
}

/// An error event in `dialect`'s streaming format. The OpenAI SDKs raise `APIError` for a
/// chunk with an `error` member; the Anthropic SDKs raise for `event: error`.
pub(crate) fn error_event(dialect: Dialect, code: &str, message: &str) -> SseEvent {
    match dialect {
        Dialect::OpenAi => SseEvent::data(
            json!({"error": {"message": message, "type": "upstream_error", "code": code}})
                .to_string(),
        ),
        Dialect::Anthropic => SseEvent::named(
            "error",
            json!({"type": "error", "error": {"type": "api_error", "message": message}})
                .to_string(),
        ),
    }
}

fn text_of_openai(chunk: &serde_json::Map<String, Value>) -> Option<String> {
    chunk
        .get("choices")?
        .as_array()?
        .iter()
        .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)?
        .pointer("/delta/content")?
        .as_str()
        .map(str::to_string)
}

/// A chunk with nothing for the client: no content, no finish reason, no tool call.
fn is_empty_openai_chunk(chunk: &serde_json::Map<String, Value>) -> bool {
    chunk
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(|choices| {
            choices.iter().all(|c| {
                c.get("finish_reason").is_none_or(Value::is_null)
                    && c.get("delta").and_then(Value::as_object).is_none_or(|d| {
                        d.iter()
                            .all(|(k, v)| v.is_null() || (k == "content" && v.as_str() == Some("")))
                    })
            })
        })
}

/// Removes from the start of `text` the part of `skip` it repeats, consuming `skip`; once
/// anything else arrives the skip is over.
fn strip_skip(skip: &mut String, text: &str) -> String {
    if skip.is_empty() {
        return text.to_string();
    }
    let common = skip
        .chars()
        .zip(text.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum::<usize>();
    let rest = text[common..].to_string();
    if rest.is_empty() {
        skip.drain(..common);
    } else {
        skip.clear();
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::super::stream_event::inspect;
    use super::*;

    fn request(dialect: Dialect, wants_usage: bool) -> LlmRequest {
        let body = match (dialect, wants_usage) {
            (Dialect::OpenAi, true) => {
                r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#
            }
            _ => r#"{"model":"m","stream":true,"messages":[]}"#,
        };
        LlmRequest::parse(dialect, &bytes::Bytes::from_static(body.as_bytes())).unwrap()
    }

    fn feed(s: &mut ClientStream, events: &[SseEvent]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for e in events {
            let seen = inspect(s.dialect, e);
            out.extend(s.push(e.clone(), &seen));
        }
        out
    }

    fn oa_chunk(id: &str, model: &str, delta: Value, finish: Option<&str>) -> SseEvent {
        SseEvent::data(
            json!({"id": id, "object": "chat.completion.chunk", "created": 1, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": null})
            .to_string(),
        )
    }

    fn oa_usage(id: &str, model: &str, i: u64, o: u64) -> SseEvent {
        SseEvent::data(
            json!({"id": id, "object": "chat.completion.chunk", "created": 1, "model": model,
                   "choices": [], "usage": {"prompt_tokens": i, "completion_tokens": o}})
            .to_string(),
        )
    }

    fn json_of(e: &SseEvent) -> Value {
        serde_json::from_str(&e.data).unwrap_or(Value::Null)
    }

    #[test]
    fn openai_continuation_is_spliced_under_the_first_identity_with_summed_usage() {
        let mut s = ClientStream::new(&request(Dialect::OpenAi, true));
        let first = feed(
            &mut s,
            &[
                oa_chunk(
                    "c-1",
                    "gpt-a",
                    json!({"role":"assistant","content":""}),
                    None,
                ),
                oa_chunk("c-1", "gpt-a", json!({"content":"Hello, "}), None),
            ],
        );
        assert_eq!(first.len(), 2);
        assert_eq!(s.end_of_upstream(), Ending::Broken);
        assert!(s.can_continue());
        assert_eq!(s.delivered(), "Hello, ");
        s.begin_continuation();
        let second = feed(
            &mut s,
            &[
                oa_chunk(
                    "c-9",
                    "llama",
                    json!({"role":"assistant","content":""}),
                    None,
                ),
                oa_chunk("c-9", "llama", json!({"content":"world"}), None),
                oa_chunk("c-9", "llama", json!({}), Some("stop")),
                oa_usage("c-9", "llama", 20, 3),
                SseEvent::data("[DONE]"),
            ],
        );
        assert_eq!(second.len(), 4, "{second:?}");
        for e in &second[..3] {
            let j = json_of(e);
            assert_eq!(j["id"], "c-1");
            assert_eq!(j["model"], "gpt-a");
        }
        assert_eq!(
            json_of(&second[0])["choices"][0]["delta"]["content"],
            "world"
        );
        assert_eq!(json_of(&second[2])["usage"]["completion_tokens"], 3);
        assert_eq!(second[3].data, "[DONE]");
        assert!(s.terminated());
        assert_eq!(s.delivered(), "Hello, world");
    }

    #[test]
    fn openai_usage_chunk_is_hidden_when_keel_asked_for_it() {
        let mut s = ClientStream::new(&request(Dialect::OpenAi, false));
        let out = feed(
            &mut s,
            &[
                oa_chunk("c", "m", json!({"content":"x"}), Some("stop")),
                oa_usage("c", "m", 2, 1),
            ],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(
            s.total_usage(),
            Usage {
                input: 2,
                output: 1
            }
        );
        // No [DONE] from upstream: keel terminates the stream itself.
        assert_eq!(
            s.end_of_upstream(),
            Ending::Complete(vec![SseEvent::data("[DONE]")])
        );
    }

    #[test]
    fn openai_missing_done_with_requested_usage_gets_a_usage_chunk_first() {
        let mut s = ClientStream::new(&request(Dialect::OpenAi, true));
        feed(
            &mut s,
            &[oa_chunk("c", "m", json!({"content":"x"}), Some("stop"))],
        );
        // A server that sent neither the usage chunk nor [DONE]: nothing to report.
        let Ending::Complete(end) = s.end_of_upstream() else {
            panic!("complete")
        };
        assert_eq!(end, vec![SseEvent::data("[DONE]")]);
    }

    fn an(kind: &str, data: Value) -> SseEvent {
        SseEvent::named(kind, data.to_string())
    }

    #[test]
    fn anthropic_continuation_reuses_the_open_block_and_sums_usage() {
        let mut s = ClientStream::new(&request(Dialect::Anthropic, false));
        let first = feed(
            &mut s,
            &[
                an(
                    "message_start",
                    json!({"type":"message_start","message":{"id":"msg_1","model":"claude-a","usage":{"input_tokens":10,"output_tokens":1}}}),
                ),
                an(
                    "content_block_start",
                    json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
                ),
                an(
                    "content_block_delta",
                    json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello, "}}),
                ),
            ],
        );
        assert_eq!(first.len(), 3);
        assert_eq!(s.end_of_upstream(), Ending::Broken);
        s.begin_continuation();
        let second = feed(
            &mut s,
            &[
                an(
                    "message_start",
                    json!({"type":"message_start","message":{"id":"msg_9","model":"other","usage":{"input_tokens":14,"output_tokens":1}}}),
                ),
                an(
                    "content_block_start",
                    json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
                ),
                an(
                    "content_block_delta",
                    json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" world"}}),
                ),
                an(
                    "content_block_stop",
                    json!({"type":"content_block_stop","index":0}),
                ),
                an(
                    "message_delta",
                    json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}),
                ),
            ],
        );
        let kinds: Vec<_> = second.iter().map(|e| e.event.clone().unwrap()).collect();
        assert_eq!(
            kinds,
            ["content_block_delta", "content_block_stop", "message_delta"]
        );
        // "Hello, " was prefilled as "Hello," and the continuation's leading space is not
        // delivered twice.
        assert_eq!(json_of(&second[0])["delta"]["text"], "world");
        assert_eq!(s.delivered(), "Hello, world");
        let usage = &json_of(&second[2])["usage"];
        assert_eq!(usage["input_tokens"], 24);
        assert_eq!(usage["output_tokens"], 3);
        // The fallback forgot message_stop: keel adds it.
        assert_eq!(
            s.end_of_upstream(),
            Ending::Complete(vec![SseEvent::named(
                "message_stop",
                "{\"type\":\"message_stop\"}"
            )])
        );
    }

    #[test]
    fn tool_use_blocks_continuation() {
        let mut s = ClientStream::new(&request(Dialect::Anthropic, false));
        feed(
            &mut s,
            &[an(
                "content_block_start",
                json!({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}),
            )],
        );
        assert!(!s.can_continue());
        let e = s.error_event("node a: stream cut");
        assert_eq!(e.event.as_deref(), Some("error"));
        assert_eq!(json_of(&e)["error"]["message"], "node a: stream cut");
    }

    #[test]
    fn anthropic_regeneration_skips_the_delivered_prefix_across_deltas() {
        let delta = |t: &str| {
            an(
                "content_block_delta",
                json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":t}}),
            )
        };
        let start = [
            an(
                "message_start",
                json!({"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":10,"output_tokens":1}}}),
            ),
            an(
                "content_block_start",
                json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
            ),
        ];
        let mut s = ClientStream::new(&request(Dialect::Anthropic, false));
        feed(&mut s, &start);
        feed(&mut s, &[delta("Hello, "), delta("wor")]);
        assert_eq!(s.end_of_upstream(), Ending::Broken);
        let mut regen = s.clone();
        regen.begin_regeneration();
        // "Hel" + "lo, w" are the delivered text again; "orld" brings "ld" that is new.
        let out = feed(&mut regen, &start);
        assert!(out.is_empty(), "{out:?}");
        assert!(feed(&mut regen, &[delta("Hel"), delta("lo, w")]).is_empty());
        let out = feed(&mut regen, &[delta("orld")]);
        assert_eq!(json_of(&out[0])["delta"]["text"], "ld");
        assert!(!regen.diverged());
        assert_eq!(regen.delivered(), "Hello, world");

        let mut other = s.clone();
        other.begin_regeneration();
        feed(&mut other, &start);
        assert!(feed(&mut other, &[delta("Hi there")]).is_empty());
        assert!(other.diverged());

        // Finished before repeating everything delivered: diverged too.
        let mut short = s;
        short.begin_regeneration();
        feed(&mut short, &start);
        feed(&mut short, &[delta("Hello")]);
        feed(
            &mut short,
            &[an(
                "message_delta",
                json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}),
            )],
        );
        assert!(short.diverged());
    }

    #[test]
    fn prefill_refusals_are_remembered_per_node_and_model_for_a_while() {
        let memory = PrefillMemory::default();
        let t0 = Instant::now();
        memory.remember("b", "m1", t0);
        assert!(memory.refused("b", "m1", t0 + Duration::from_secs(60)));
        assert!(!memory.refused("b", "m2", t0));
        assert!(!memory.refused("c", "m1", t0));
        assert!(!memory.refused("b", "m1", t0 + PREFILL_REFUSAL_TTL));
        // Bounded: the oldest pair goes first.
        for i in 0..PREFILL_REFUSALS_MAX {
            memory.remember(
                "n",
                &format!("model-{i}"),
                t0 + Duration::from_millis(i as u64 + 1),
            );
        }
        assert!(!memory.refused("b", "m1", t0 + Duration::from_secs(1)));
        assert!(memory.refused("n", "model-5", t0 + Duration::from_secs(1)));
    }

    #[test]
    fn skip_handles_split_whitespace() {
        let mut skip = " \n".to_string();
        assert_eq!(strip_skip(&mut skip, " "), "");
        assert_eq!(strip_skip(&mut skip, "\nok"), "ok");
        assert_eq!(strip_skip(&mut skip, " again"), " again");
    }
}
