//! A scripted fake LLM provider: OpenAI `POST /v1/chat/completions` and Anthropic
//! `POST /v1/messages`, JSON and SSE, on an ephemeral loopback port.
//!
//! It speaks raw HTTP/1.1 over TCP (one request per connection, `connection: close`, unless
//! [`FakeLlm::keep_alive`] lets complete streams keep their connection) rather than through
//! a web framework, because several faults live below HTTP: a connection reset
//! before any header, a chunked stream cut without its last chunk, a socket kept open but
//! silent. Each API request takes the next [`Fault`] of the script (then [`Fault::None`]) and
//! is recorded with its arrival time and body. An assistant message at the end of the
//! request is honoured as a prefill: the answer continues after it.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The answer every fake provider gives unless told otherwise.
pub const ANSWER: &str = "The quick brown fox jumps over the lazy dog.";

/// What one API request gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// A normal answer.
    None,
    /// An error status in the API's format; `retry_after` as the `Retry-After` header.
    Status {
        status: u16,
        retry_after: Option<&'static str>,
    },
    /// The connection is reset before any response byte.
    Reset,
    /// No response header for this long, then a normal answer.
    NoHeaders(Duration),
    /// No response header for this long, then the connection is closed.
    SilentThenClose(Duration),
    /// Stream: header and preamble at once, the first content after this long.
    SlowFirstToken(Duration),
    /// Stream: the connection is reset after this many content deltas.
    CutAfter(usize),
    /// Stream: after this many content deltas the socket stays open and silent.
    StallAfter(usize),
    /// Stream: a malformed event after the first content delta.
    Malformed,
    /// Stream: complete answer and usage, but no `[DONE]` / `message_stop`.
    NoTerminator,
    /// 400 saying the prompt exceeds the context window, in the API's wording.
    ContextLength,
    /// 400 content-policy refusal.
    ContentPolicy,
    /// 400 refusing an assistant prefill, in the API's wording (see [`FakeLlm::refuse_prefill`]).
    PrefillRefused,
}

/// One API request as the provider saw it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: Instant,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Attempt {
    /// The trailing assistant prefill of this request, if any.
    pub fn prefill(&self) -> Option<String> {
        prefill_of(&self.body)
    }
}

struct State {
    script: VecDeque<Fault>,
    attempts: Vec<Attempt>,
    text: String,
    /// The model name this provider reports as its own.
    model: String,
    /// Pause between two content deltas.
    gap: Duration,
    health_checks: u32,
    /// Until then every API request gets 503 (an outage by the clock, not by the script).
    down_until: Option<Instant>,
    /// A request ending in an assistant prefill gets 400 `invalid_prefill` (a model that
    /// cannot continue a text).
    refuse_prefill: bool,
    /// A complete streamed answer leaves its connection open for the next request.
    keep_alive: bool,
    /// Connections that carried at least one API request.
    api_connections: u32,
}

pub struct FakeLlm {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeLlm {
    /// A provider that calls its model `model`.
    pub async fn start(model: &str) -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State {
            script: VecDeque::new(),
            attempts: Vec::new(),
            text: ANSWER.to_string(),
            model: model.to_string(),
            gap: Duration::from_millis(20),
            health_checks: 0,
            down_until: None,
            refuse_prefill: false,
            keep_alive: false,
            api_connections: 0,
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve_connection(sock, state).await;
                });
            }
        });
        FakeLlm { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// This provider as a `[[proxy.nodes]]` entry: `name`, `priority` and `extra` keys.
    pub fn node(&self, name: &str, priority: u32, extra: &str) -> String {
        format!(
            "\n[[proxy.nodes]]\nname = \"{name}\"\nbase_url = \"{}\"\npriority = {priority}\n{extra}\n",
            self.url()
        )
    }

    /// Faults for the next API requests, in order.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().script = faults.into_iter().collect();
    }

    pub fn set_text(&self, text: &str) {
        self.lock().text = text.to_string();
    }

    pub fn set_gap(&self, gap: Duration) {
        self.lock().gap = gap;
    }

    /// Requests with an assistant prefill get 400 `invalid_prefill` from now on.
    pub fn refuse_prefill(&self) {
        self.lock().refuse_prefill = true;
    }

    pub fn attempts(&self) -> Vec<Attempt> {
        self.lock().attempts.clone()
    }

    pub fn attempt_count(&self) -> usize {
        self.lock().attempts.len()
    }

    /// Answers every API request with 503 for `d` from now; returns when it ends.
    pub fn down_for(&self, d: Duration) -> Instant {
        let until = Instant::now() + d;
        self.lock().down_until = Some(until);
        until
    }

    /// Streams end with the chunked terminator and keep their connection (HTTP/1.1
    /// keep-alive, as real providers do); other answers still close it.
    pub fn keep_alive(&self) {
        self.lock().keep_alive = true;
    }

    /// Connections accepted that carried at least one API request.
    pub fn api_connections(&self) -> u32 {
        self.lock().api_connections
    }

    pub fn health_checks(&self) -> u32 {
        self.lock().health_checks
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Gaps between consecutive attempts seen by several providers together, in arrival order:
/// `(provider index, gap since the previous attempt)`.
pub fn timeline(providers: &[&FakeLlm]) -> Vec<(usize, Instant)> {
    let mut all: Vec<(usize, Instant)> = providers
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.attempts().into_iter().map(move |a| (i, a.at)))
        .collect();
    all.sort_by_key(|(_, at)| *at);
    all
}

#[derive(Clone, Copy, PartialEq)]
enum Api {
    OpenAi,
    Anthropic,
}

/// Serves requests on one connection until an answer closes it (or the peer does).
async fn serve_connection(mut sock: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut counted = false;
    loop {
        let mut reusable = false;
        serve(&mut sock, &state, &mut counted, &mut reusable).await?;
        if !reusable {
            return Ok(());
        }
    }
}

/// Serves one request; `reusable` is set when the connection may carry another one.
async fn serve(
    sock: &mut TcpStream,
    state: &Arc<Mutex<State>>,
    counted: &mut bool,
    reusable: &mut bool,
) -> std::io::Result<()> {
    let Some((method, path, headers, body)) = read_request(sock).await? else {
        return Ok(());
    };
    let api = match (method.as_str(), path.split('?').next().unwrap_or("")) {
        ("POST", p) if p.ends_with("/chat/completions") => Api::OpenAi,
        ("POST", p) if p.ends_with("/messages") => Api::Anthropic,
        _ => {
            state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .health_checks += 1;
            return respond(sock, 200, &[], "application/json", b"{\"ok\":true}").await;
        }
    };
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (fault, text, model, gap, keep_alive) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        if !*counted {
            *counted = true;
            s.api_connections += 1;
        }
        s.attempts.push(Attempt {
            at: Instant::now(),
            path: path.clone(),
            headers,
            body: request.clone(),
        });
        let fault = if s.refuse_prefill && prefill_of(&request).is_some() {
            Fault::PrefillRefused
        } else if s.down_until.is_some_and(|t| Instant::now() < t) {
            Fault::Status {
                status: 503,
                retry_after: None,
            }
        } else {
            s.script.pop_front().unwrap_or(Fault::None)
        };
        (fault, s.text.clone(), s.model.clone(), s.gap, s.keep_alive)
    };
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let answer = continuation_of(&text, prefill_of(&request).as_deref());
    let words = split_words(&answer);
    let input_tokens = input_tokens(&request);

    match fault {
        Fault::Reset => {
            sock.set_zero_linger()?;
            return Ok(());
        }
        Fault::Status {
            status,
            retry_after,
        } => {
            let (kind, message) = match status {
                429 => ("rate_limit_error", "Rate limit reached, slow down"),
                503 => ("overloaded_error", "The server is overloaded"),
                _ => ("api_error", "Internal server error"),
            };
            let body = error_body(api, kind, message, None);
            let extra: Vec<(&str, &str)> = retry_after
                .map(|v| vec![("retry-after", v)])
                .unwrap_or_default();
            return respond(sock, status, &extra, "application/json", &body).await;
        }
        Fault::ContextLength => {
            let message = match api {
                Api::OpenAi => "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
                Api::Anthropic => "prompt is too long: 9000 tokens > 8192 maximum",
            };
            let code = (api == Api::OpenAi).then_some("context_length_exceeded");
            let body = error_body(api, "invalid_request_error", message, code);
            return respond(sock, 400, &[], "application/json", &body).await;
        }
        Fault::ContentPolicy => {
            let body = error_body(
                api,
                "invalid_request_error",
                "Your request was rejected as a result of our safety system (content policy).",
                Some("content_policy_violation"),
            );
            return respond(sock, 400, &[], "application/json", &body).await;
        }
        Fault::PrefillRefused => {
            let message = match api {
                Api::OpenAi => "Conversation must end with a user message",
                Api::Anthropic => "This model does not support assistant message prefill. The conversation must end with a user message.",
            };
            let code = (api == Api::OpenAi).then_some("invalid_prefill");
            let body = error_body(api, "invalid_request_error", message, code);
            return respond(sock, 400, &[], "application/json", &body).await;
        }
        Fault::NoHeaders(d) => tokio::time::sleep(d).await,
        Fault::SilentThenClose(d) => {
            tokio::time::sleep(d).await;
            return Ok(());
        }
        _ => {}
    }

    if !stream {
        let body = match api {
            Api::OpenAi => json!({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": input_tokens, "completion_tokens": words.len(), "total_tokens": input_tokens + words.len() as u64},
            }),
            Api::Anthropic => json!({
                "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": answer}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": words.len()},
            }),
        };
        let bytes = body.to_string().into_bytes();
        if let Fault::CutAfter(_) = fault {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n";
            let head = format!("{head}content-length: {}\r\n\r\n", bytes.len());
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(&bytes[..bytes.len() / 2]).await?;
            sock.flush().await?;
            sock.set_zero_linger()?;
            return Ok(());
        }
        return respond(sock, 200, &[], "application/json", &bytes).await;
    }

    let close = if keep_alive {
        ""
    } else {
        "connection: close\r\n"
    };
    sock.write_all(
        format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n{close}transfer-encoding: chunked\r\n\r\n").as_bytes(),
    )
    .await?;
    let id = format!("fake-{}", model);
    for event in preamble(api, &id, &model, input_tokens) {
        chunk(sock, &event).await?;
    }
    if let Fault::SlowFirstToken(d) = fault {
        tokio::time::sleep(d).await;
    }
    for (i, word) in words.iter().enumerate() {
        if fault == Fault::CutAfter(i) {
            sock.set_zero_linger()?;
            return Ok(());
        }
        if fault == Fault::StallAfter(i) {
            // Silent but open until keel gives up and closes the connection.
            let mut buf = [0u8; 64];
            while sock.read(&mut buf).await? > 0 {}
            return Ok(());
        }
        chunk(sock, &delta(api, &id, &model, word)).await?;
        if i == 0 && fault == Fault::Malformed {
            let broken = match api {
                Api::OpenAi => "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"BROKEN\n\n".to_string(),
                Api::Anthropic => "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"BROKEN\n\n".to_string(),
            };
            chunk(sock, &broken).await?;
        }
        tokio::time::sleep(gap).await;
    }
    for event in ending(api, &id, &model, input_tokens, words.len() as u64) {
        chunk(sock, &event).await?;
    }
    if fault != Fault::NoTerminator {
        let done = match api {
            Api::OpenAi => "data: [DONE]\n\n".to_string(),
            Api::Anthropic => {
                "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_string()
            }
        };
        chunk(sock, &done).await?;
    }
    sock.write_all(b"0\r\n\r\n").await?;
    *reusable = keep_alive;
    sock.flush().await
}

fn preamble(api: Api, id: &str, model: &str, input: u64) -> Vec<String> {
    match api {
        Api::OpenAi => vec![sse(
            None,
            json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                   "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
        )],
        Api::Anthropic => vec![
            sse(
                Some("message_start"),
                json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "model": model,
                       "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": input, "output_tokens": 1}}}),
            ),
            sse(
                Some("content_block_start"),
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            sse(Some("ping"), json!({"type": "ping"})),
        ],
    }
}

fn delta(api: Api, id: &str, model: &str, text: &str) -> String {
    match api {
        Api::OpenAi => sse(
            None,
            json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                   "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]}),
        ),
        Api::Anthropic => sse(
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        ),
    }
}

fn ending(api: Api, id: &str, model: &str, input: u64, output: u64) -> Vec<String> {
    match api {
        Api::OpenAi => {
            let mut out = vec![sse(
                None,
                json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            )];
            // Real OpenAI sends the usage chunk only when asked for it.
            out.push(sse(
                None,
                json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                       "choices": [], "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}}),
            ));
            out
        }
        Api::Anthropic => vec![
            sse(
                Some("content_block_stop"),
                json!({"type": "content_block_stop", "index": 0}),
            ),
            sse(
                Some("message_delta"),
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": output}}),
            ),
        ],
    }
}

fn sse(event: Option<&str>, data: Value) -> String {
    match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

fn error_body(api: Api, kind: &str, message: &str, code: Option<&str>) -> Vec<u8> {
    let v = match api {
        Api::OpenAi => {
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        }
        Api::Anthropic => json!({"type": "error", "error": {"type": kind, "message": message}}),
    };
    v.to_string().into_bytes()
}

/// The prompt token count this provider reports for a request (a stand-in: the size of the
/// request), so tests can compute what a client should be told.
pub fn input_tokens(request: &Value) -> u64 {
    request.to_string().len() as u64 / 16 + 1
}

/// The trailing assistant message's text (string or text blocks).
fn prefill_of(request: &Value) -> Option<String> {
    let last = request.get("messages")?.as_array()?.last()?;
    if last.get("role")?.as_str()? != "assistant" {
        return None;
    }
    match last.get("content")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => Some(
            blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

/// What is left of `text` after a prefill that is a prefix of it (else all of it).
fn continuation_of(text: &str, prefill: Option<&str>) -> String {
    match prefill {
        Some(p) if text.starts_with(p) => text[p.len()..].to_string(),
        _ => text.to_string(),
    }
}

/// Words with their leading space, so that joining the deltas gives the text back.
fn split_words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c == ' ' && !current.trim().is_empty() {
            out.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

async fn chunk(sock: &mut TcpStream, data: &str) -> std::io::Result<()> {
    sock.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())
        .await?;
    sock.flush().await
}

async fn respond(
    sock: &mut TcpStream,
    status: u16,
    extra: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body).await?;
    sock.flush().await?;
    sock.shutdown().await
}

type Request = (String, String, Vec<(String, String)>, Vec<u8>);

/// Reads one request (head and `content-length` body); `None` if the peer closed first.
async fn read_request(sock: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Ok(Some((method, path, headers, body)))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn words_rejoin_and_prefill_continues() {
        let w = split_words(ANSWER);
        assert_eq!(w.concat(), ANSWER);
        assert_eq!(w[1], " quick");
        assert_eq!(
            continuation_of(ANSWER, Some("The quick brown")),
            " fox jumps over the lazy dog."
        );
        assert_eq!(continuation_of(ANSWER, Some("nope")), ANSWER);
    }
}
