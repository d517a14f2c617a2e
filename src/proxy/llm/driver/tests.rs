//! The driver against scripted in-memory nodes: which node is tried when, and what the
//! client ends up with, for each fault of issue 7.
//!
//! On tokio's paused clock: a node that stays silent for `first_byte` or pauses for 2 s
//! costs no real time, and the gaps between attempts are exact.

use super::*;
use crate::proxy::llm::dialect::Dialect;
use crate::proxy::llm::sse::{SseItem, SseParser};
use crate::proxy::llm::token_usage::Usage;
use async_trait::async_trait;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

#[derive(Clone, Debug)]
struct Node {
    name: &'static str,
    fallback_for: Vec<ErrorClass>,
    prefill: bool,
    mapping: BTreeMap<String, String>,
}

impl LlmNode for Node {
    fn name(&self) -> &str {
        self.name
    }
    fn model_mapping(&self) -> &BTreeMap<String, String> {
        &self.mapping
    }
}

fn node(name: &'static str, classes: &[ErrorClass], prefill: bool) -> Node {
    Node {
        name,
        fallback_for: classes.to_vec(),
        prefill,
        mapping: BTreeMap::new(),
    }
}

fn standard() -> Vec<ErrorClass> {
    crate::config::default_fallback_for()
}

#[derive(Clone, Debug)]
enum Piece {
    Chunk(String),
    Pause(u64),
    Cut,
    Stall,
}

#[derive(Clone, Debug)]
enum Step {
    Status(u16, Vec<(&'static str, &'static str)>, String),
    Json(Value),
    Sse(Vec<Piece>),
    Silent,
    Refuse,
    Reset,
    /// Silent, then the connection closes before any header.
    CloseAfter(Duration),
}

struct Body(VecDeque<Piece>);

#[async_trait]
impl ResponseBody for Body {
    async fn next(&mut self) -> Result<Option<Bytes>, BodyBroken> {
        loop {
            match self.0.pop_front() {
                None => return Ok(None),
                Some(Piece::Chunk(c)) => return Ok(Some(Bytes::from(c))),
                Some(Piece::Pause(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
                Some(Piece::Cut) => {
                    let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
                    return Err(BodyBroken(Box::new(reset)));
                }
                Some(Piece::Stall) => std::future::pending::<()>().await,
            }
        }
    }
}

#[derive(Default)]
struct Fake {
    nodes: Vec<Node>,
    scripts: Mutex<HashMap<&'static str, VecDeque<Step>>>,
    attempts: Mutex<Vec<(String, Instant, Value)>>,
    reports: Mutex<Vec<(String, Report)>>,
    /// Node and model pairs remembered to refuse a prefill.
    no_prefill: Mutex<Vec<(String, String)>>,
}

impl Fake {
    fn new(nodes: Vec<Node>, scripts: Vec<(&'static str, Vec<Step>)>) -> Self {
        Fake {
            nodes,
            scripts: Mutex::new(
                scripts
                    .into_iter()
                    .map(|(n, s)| (n, s.into_iter().collect()))
                    .collect(),
            ),
            ..Fake::default()
        }
    }
    fn tried(&self) -> Vec<String> {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _, _)| n.clone())
            .collect()
    }
    fn bodies(&self) -> Vec<Value> {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, b)| b.clone())
            .collect()
    }
    fn gaps(&self) -> Vec<Duration> {
        let a = self.attempts.lock().unwrap();
        a.windows(2).map(|w| w[1].1 - w[0].1).collect()
    }
    fn reports(&self) -> Vec<(String, Report)> {
        self.reports.lock().unwrap().clone()
    }
}

#[async_trait]
impl Upstream for Fake {
    type Node = Node;
    async fn first(&self) -> Option<Node> {
        self.nodes.first().cloned()
    }
    fn fallback(
        &self,
        class: ErrorClass,
        tried: &(dyn Fn(&str) -> bool + Sync),
        need_prefill: bool,
    ) -> Option<Node> {
        self.nodes
            .iter()
            .find(|n| {
                !tried(n.name) && n.fallback_for.contains(&class) && (!need_prefill || n.prefill)
            })
            .cloned()
    }
    async fn send(&self, node: &Node, body: Bytes) -> Result<UpstreamResponse, AttemptError> {
        let body: Value = serde_json::from_slice(&body).unwrap();
        self.attempts
            .lock()
            .unwrap()
            .push((node.name.to_string(), Instant::now(), body));
        let step = self
            .scripts
            .lock()
            .unwrap()
            .get_mut(node.name)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Step::Status(599, vec![], "unscripted".into()));
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        let resp = |status, h, pieces: Vec<Piece>| UpstreamResponse {
            status,
            headers: h,
            body: Box::new(Body(pieces.into())),
        };
        match step {
            Step::Status(s, h, b) => {
                let mut hm = headers(&h);
                hm.insert("content-type", HeaderValue::from_static("application/json"));
                Ok(resp(s, hm, vec![Piece::Chunk(b)]))
            }
            Step::Json(v) => Ok(resp(
                200,
                headers(&[("content-type", "application/json")]),
                vec![Piece::Chunk(v.to_string())],
            )),
            Step::Sse(p) => Ok(resp(
                200,
                headers(&[("content-type", "text/event-stream")]),
                p,
            )),
            Step::Silent => std::future::pending().await,
            Step::Refuse => Err(AttemptError::Connect("refused".into())),
            Step::Reset => Err(AttemptError::Upstream("reset by peer".into())),
            Step::CloseAfter(d) => {
                tokio::time::sleep(d).await;
                Err(AttemptError::Upstream("connection closed".into()))
            }
        }
    }
    fn report(&self, node: &Node, report: Report) {
        self.reports
            .lock()
            .unwrap()
            .push((node.name.to_string(), report));
    }
    fn prefill_refused(&self, node: &Node, model: &str) -> bool {
        self.no_prefill
            .lock()
            .unwrap()
            .contains(&(node.name.to_string(), model.to_string()))
    }
    fn remember_prefill_refusal(&self, node: &Node, model: &str) {
        self.no_prefill
            .lock()
            .unwrap()
            .push((node.name.to_string(), model.to_string()));
    }
}

#[derive(Default)]
struct Client {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    ended: bool,
    writes: usize,
}

#[async_trait]
impl ClientSink for Client {
    async fn head(&mut self, status: u16, headers: HeaderMap) -> Result<(), ClientGone> {
        assert_eq!(self.status, 0, "a second response header");
        self.status = status;
        self.headers = headers;
        Ok(())
    }
    async fn body(&mut self, data: Bytes, end: bool) -> Result<(), ClientGone> {
        assert!(!self.ended, "write after end");
        self.body.extend_from_slice(&data);
        self.ended = end;
        self.writes += 1;
        Ok(())
    }
}

impl Client {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The answer text of a streamed OpenAI or Anthropic response.
    fn streamed_text(&self) -> String {
        let mut p = SseParser::new();
        let mut out = String::new();
        for item in p.feed(&self.body) {
            if let SseItem::Event(e) = item {
                if let Ok(v) = serde_json::from_str::<Value>(&e.data) {
                    if let Some(t) = v
                        .pointer("/choices/0/delta/content")
                        .and_then(Value::as_str)
                    {
                        out.push_str(t);
                    }
                    if let Some(t) = v.pointer("/delta/text").and_then(Value::as_str) {
                        out.push_str(t);
                    }
                }
            }
        }
        out
    }
}

fn settings() -> Settings {
    Settings {
        budget: BudgetConfig {
            max_attempts: 5,
            total: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(1),
            backoff_min: Duration::from_millis(1),
            backoff_max: Duration::from_millis(5),
        },
        first_byte: Duration::from_millis(300),
        stream_first_byte: Duration::from_millis(300),
        first_token: Duration::from_millis(300),
        stream_idle: Duration::from_millis(300),
        hedge: false,
    }
}

fn openai(stream: bool) -> LlmRequest {
    let body = json!({"model": "gpt-x", "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    LlmRequest::parse(Dialect::OpenAi, &Bytes::from(body.to_string())).unwrap()
}

fn anthropic(stream: bool) -> LlmRequest {
    let body = json!({"model": "claude-x", "max_tokens": 50, "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    LlmRequest::parse(Dialect::Anthropic, &Bytes::from(body.to_string())).unwrap()
}

async fn run(fake: &Fake, req: &LlmRequest) -> (Served, Client) {
    let mut client = Client::default();
    let served = serve(fake, &mut client, req, &settings(), Instant::now()).await;
    (served, client)
}

fn answer(model: &str, text: &str) -> Value {
    json!({"id": "x", "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
}

fn oa_chunk(id: &str, delta: Value, finish: Option<&str>) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": id, "object": "chat.completion.chunk", "created": 1, "model": format!("model-{id}"),
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    )
}

fn oa_stream(id: &str, words: &[&str], done: bool) -> Vec<Piece> {
    let mut p = vec![Piece::Chunk(oa_chunk(
        id,
        json!({"role": "assistant", "content": ""}),
        None,
    ))];
    for w in words {
        p.push(Piece::Chunk(oa_chunk(id, json!({"content": w}), None)));
    }
    p.push(Piece::Chunk(oa_chunk(id, json!({}), Some("stop"))));
    p.push(Piece::Chunk(format!(
        "data: {}\n\n",
        json!({"id": id, "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": words.len()}})
    )));
    if done {
        p.push(Piece::Chunk("data: [DONE]\n\n".into()));
    }
    p
}

fn statuses(fake: &Fake) -> Vec<String> {
    fake.reports()
        .into_iter()
        .map(|(n, r)| match r {
            Report::Answered { .. } => format!("{n}:ok"),
            Report::Failed { class, .. } => format!("{n}:{class}"),
            Report::Refused { status } => format!("{n}:{status}"),
            Report::Lost => format!("{n}:lost"),
            Report::MalformedEvent => format!("{n}:malformed"),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn status_503_fails_over_at_once_and_the_fallback_answers() {
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            ("a", vec![Step::Status(503, vec![], "{}".into())]),
            ("b", vec![Step::Json(answer("model-b", "hello"))]),
        ],
    );
    let (served, client) = run(&fake, &openai(false)).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(fake.tried(), ["a", "b"]);
    assert_eq!(client.json()["model"], "model-b");
    assert_eq!(statuses(&fake), ["a:unavailable", "b:ok"]);
    assert_eq!(
        client.headers["content-length"],
        client.body.len().to_string().as_str()
    );
}

#[tokio::test(start_paused = true)]
async fn transient_502_and_reset_retry_the_same_node_once() {
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            (
                "a",
                vec![Step::Status(502, vec![], "{}".into()), Step::Reset],
            ),
            ("b", vec![Step::Json(answer("model-b", "hello"))]),
        ],
    );
    let (served, _) = run(&fake, &openai(false)).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(fake.tried(), ["a", "a", "b"]);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_with_retry_after_waits_then_retries_the_same_node() {
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![(
            "a",
            vec![
                Step::Status(429, vec![("retry-after", "0.2")], "{}".into()),
                Step::Json(answer("model-a", "hi")),
            ],
        )],
    );
    let (served, _) = run(&fake, &openai(false)).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(fake.tried(), ["a", "a"]);
    assert!(
        fake.gaps()[0] >= Duration::from_millis(200),
        "{:?}",
        fake.gaps()
    );
}

#[tokio::test(start_paused = true)]
async fn persistent_rate_limit_everywhere_returns_the_providers_429() {
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            (
                "a",
                vec![
                    Step::Status(429, vec![("retry-after", "0")], "{\"first\":1}".into()),
                    Step::Status(429, vec![("retry-after", "0")], "{}".into()),
                ],
            ),
            ("b", vec![Step::Status(429, vec![], "{}".into())]),
        ],
    );
    let (served, client) = run(&fake, &openai(false)).await;
    assert_eq!(served, Served::Relayed { status: 429 });
    assert_eq!(fake.tried(), ["a", "a", "b"]);
    assert_eq!(client.json()["first"], 1);
}

#[tokio::test(start_paused = true)]
async fn silent_node_fails_over_at_once_without_a_second_try() {
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            ("a", vec![Step::Silent, Step::Silent]),
            ("b", vec![Step::Json(answer("model-b", "hi"))]),
        ],
    );
    let (served, _) = run(&fake, &openai(false)).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(fake.tried(), ["a", "b"]);
}

#[tokio::test(start_paused = true)]
async fn a_node_closing_after_a_silence_is_not_retried_but_a_quick_reset_is() {
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            (
                "a",
                vec![Step::CloseAfter(Duration::from_secs(2)), Step::Silent],
            ),
            ("b", vec![Step::Json(answer("model-b", "hi"))]),
        ],
    );
    let (served, _) = run(&fake, &openai(true)).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(fake.tried(), ["a", "b"]);
    assert_eq!(statuses(&fake), ["a:timeout", "b:ok"]);
}

#[tokio::test(start_paused = true)]
async fn a_header_wait_longer_than_total_still_leaves_the_fallback_its_turn() {
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            ("a", vec![Step::Silent]),
            ("b", vec![Step::Json(answer("model-b", "hi"))]),
        ],
    );
    // Non-streaming: the header wait (20 s) outlasts total (10 s).
    let settings = Settings {
        first_byte: Duration::from_secs(20),
        ..settings()
    };
    let mut client = Client::default();
    let t0 = Instant::now();
    let served = serve(&fake, &mut client, &openai(false), &settings, t0).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(fake.tried(), ["a", "b"]);
    assert_eq!(fake.gaps(), [Duration::from_secs(20)]);
}

#[tokio::test(start_paused = true)]
async fn streaming_requests_wait_stream_first_byte_for_the_header() {
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            ("a", vec![Step::Silent]),
            ("b", vec![Step::Sse(oa_stream("b", &["hi"], true))]),
        ],
    );
    let settings = Settings {
        first_byte: Duration::from_secs(20),
        stream_first_byte: Duration::from_secs(2),
        first_token: Duration::from_secs(5),
        ..settings()
    };
    let mut client = Client::default();
    let served = serve(&fake, &mut client, &openai(true), &settings, Instant::now()).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(fake.gaps(), [Duration::from_secs(2)]);
}

#[tokio::test(start_paused = true)]
async fn all_silent_is_a_bounded_504() {
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![("a", vec![Step::Silent]), ("b", vec![Step::Silent])],
    );
    let (served, client) = run(&fake, &anthropic(false)).await;
    assert_eq!(served, Served::Failed { status: 504 });
    assert_eq!(client.json()["type"], "error");
    assert_eq!(client.json()["error"]["type"], "upstream_timeout");
}

#[tokio::test(start_paused = true)]
async fn context_length_goes_only_to_a_node_that_takes_it_else_back_unchanged() {
    let too_long = r#"{"error":{"message":"maximum context length is 8192 tokens","code":"context_length_exceeded"}}"#;
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![("a", vec![Step::Status(400, vec![], too_long.into())])],
    );
    let (served, client) = run(&fake, &openai(false)).await;
    assert_eq!(served, Served::Relayed { status: 400 });
    assert_eq!(client.text(), too_long);
    assert_eq!(fake.tried(), ["a"]);

    let mut big = node("big", &ErrorClass::ALL, false);
    big.mapping = BTreeMap::from([("*".to_string(), "big-ctx".to_string())]);
    let fake = Fake::new(
        vec![
            node("a", &standard(), false),
            node("b", &standard(), false),
            big,
        ],
        vec![
            ("a", vec![Step::Status(400, vec![], too_long.into())]),
            ("big", vec![Step::Json(answer("big-ctx", "fits"))]),
        ],
    );
    let (served, client) = run(&fake, &openai(false)).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(fake.tried(), ["a", "big"]);
    assert_eq!(fake.bodies()[1]["model"], "big-ctx");
    assert_eq!(client.json()["model"], "big-ctx");
}

#[tokio::test(start_paused = true)]
async fn content_policy_is_returned_as_is_and_never_retried() {
    let policy =
        r#"{"error":{"message":"flagged by content policy","code":"content_policy_violation"}}"#;
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![("a", vec![Step::Status(400, vec![], policy.into())])],
    );
    let (served, client) = run(&fake, &openai(true)).await;
    assert_eq!(served, Served::Relayed { status: 400 });
    assert_eq!(client.text(), policy);
    assert_eq!(fake.tried(), ["a"]);
    assert_eq!(statuses(&fake), ["a:400"]);
}

#[tokio::test(start_paused = true)]
async fn a_fallbacks_400_never_replaces_the_real_error() {
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            ("a", vec![Step::Status(503, vec![], "{}".into())]),
            (
                "b",
                vec![Step::Status(400, vec![], "{\"fallback\":1}".into())],
            ),
        ],
    );
    let (served, client) = run(&fake, &openai(false)).await;
    assert_eq!(served, Served::Failed { status: 502 });
    let message = client.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("a: status 503"), "{message}");
    assert!(message.contains("b: fallback refused"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn slow_first_token_fails_over_before_the_client_sees_a_header() {
    let mut slow = vec![Piece::Chunk(oa_chunk(
        "a",
        json!({"role":"assistant","content":""}),
        None,
    ))];
    slow.push(Piece::Pause(2000));
    slow.extend(oa_stream("a", &["late"], true));
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            ("a", vec![Step::Sse(slow)]),
            (
                "b",
                vec![Step::Sse(oa_stream("b", &["Hello", " there"], true))],
            ),
        ],
    );
    let (served, client) = run(&fake, &openai(true)).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(fake.tried(), ["a", "b"]);
    assert_eq!(client.streamed_text(), "Hello there");
    assert!(!client.text().contains("model-a"), "{}", client.text());
    assert!(client.text().ends_with("data: [DONE]\n\n"));
    // keel asked for usage on the client's behalf and hid the usage chunk again.
    assert_eq!(fake.bodies()[1]["stream_options"]["include_usage"], true);
    assert!(!client.text().contains("\"usage\":{"), "{}", client.text());
}

#[tokio::test(start_paused = true)]
async fn cut_stream_is_continued_on_a_prefill_node_under_the_same_id() {
    let mut cut = oa_stream("a", &["Hello", ", wor"], true);
    cut.truncate(3);
    cut.push(Piece::Cut);
    let fake = Fake::new(
        vec![
            node("a", &standard(), true),
            node("b", &standard(), false),
            node("c", &standard(), true),
        ],
        vec![
            ("a", vec![Step::Sse(cut)]),
            ("c", vec![Step::Sse(oa_stream("c", &["ld!"], false))]),
        ],
    );
    let req = LlmRequest::parse(
        Dialect::OpenAi,
        &Bytes::from_static(br#"{"model":"gpt-x","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#),
    )
    .unwrap();
    let (served, client) = run(&fake, &req).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(fake.tried(), ["a", "c"]);
    assert_eq!(client.streamed_text(), "Hello, world!");
    let prefill = &fake.bodies()[1]["messages"][1];
    assert_eq!(prefill["role"], "assistant");
    assert_eq!(prefill["content"], "Hello, wor");
    let text = client.text();
    assert!(
        !text.contains("model-c") && !text.contains("\"id\":\"c\""),
        "{text}"
    );
    // c ended without [DONE]: keel terminated the stream.
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(text.contains("\"completion_tokens\":1"), "{text}");
    assert_eq!(statuses(&fake), ["a:stream_broken", "c:ok"]);
}

#[tokio::test(start_paused = true)]
async fn stalled_stream_without_a_prefill_node_ends_with_an_in_band_error() {
    let mut stall = vec![
        Piece::Chunk("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_a\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n".into()),
        Piece::Chunk("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".into()),
        Piece::Chunk("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Half an\"}}\n\n".into()),
    ];
    stall.push(Piece::Stall);
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![("a", vec![Step::Sse(stall)])],
    );
    let (served, client) = run(&fake, &anthropic(true)).await;
    assert_eq!(served, Served::StreamError);
    assert_eq!(fake.tried(), ["a"]);
    let text = client.text();
    assert!(text.contains("event: error"), "{text}");
    assert!(
        text.contains("node a broke off") && text.contains("stalled"),
        "{text}"
    );
    assert!(!text.contains("message_stop"), "{text}");
    assert!(client.ended);
}

#[tokio::test(start_paused = true)]
async fn malformed_events_are_dropped_and_missing_message_stop_is_added() {
    let events = vec![
        Piece::Chunk("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n".into()),
        Piece::Chunk("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}\n\n".into()),
        Piece::Chunk("event: content_block_delta\ndata: {\"type\":\"content_blo\n\n".into()),
        Piece::Chunk("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n".into()),
    ];
    let fake = Fake::new(
        vec![node("a", &standard(), false)],
        vec![("a", vec![Step::Sse(events)])],
    );
    let (served, client) = run(&fake, &anthropic(true)).await;
    assert_eq!(served, Served::Complete { status: 200 });
    let text = client.text();
    assert!(!text.contains("content_blo\n"), "{text}");
    assert!(
        text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "{text}"
    );
    assert_eq!(statuses(&fake), ["a:malformed", "a:ok"]);
    assert_eq!(
        fake.reports()[1].1,
        Report::Answered {
            status: 200,
            usage: Some(Usage {
                input: 5,
                output: 2
            })
        }
    );
}

#[tokio::test(start_paused = true)]
async fn in_band_error_before_content_fails_over_invisibly() {
    let overloaded = vec![
        Piece::Chunk("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":5}}}\n\n".into()),
        Piece::Chunk("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n".into()),
    ];
    let ok = vec![
        Piece::Chunk("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"fine\"}}\n\n".into()),
        Piece::Chunk("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1}}\n\n".into()),
        Piece::Chunk("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".into()),
    ];
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            ("a", vec![Step::Sse(overloaded)]),
            ("b", vec![Step::Sse(ok)]),
        ],
    );
    let (served, client) = run(&fake, &anthropic(true)).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(client.streamed_text(), "fine");
    assert!(!client.text().contains("overloaded"), "{}", client.text());
}

#[tokio::test(start_paused = true)]
async fn refused_connections_and_no_nodes() {
    let fake = Fake::new(
        vec![node("a", &standard(), false)],
        vec![("a", vec![Step::Refuse])],
    );
    let (served, client) = run(&fake, &openai(false)).await;
    assert_eq!(served, Served::Failed { status: 502 });
    assert_eq!(fake.tried(), ["a"]);
    assert_eq!(client.json()["error"]["type"], "all_nodes_failed");

    let fake = Fake::new(vec![], vec![]);
    let (served, client) = run(&fake, &openai(false)).await;
    assert_eq!(served, Served::Failed { status: 503 });
    assert_eq!(client.headers["retry-after"], "1");
}

/// An OpenAI stream whose first content comes after `ms`, its header and role chunk at once.
fn slow_stream(id: &str, ms: u64, words: &[&str]) -> Vec<Piece> {
    let mut p = oa_stream(id, words, true);
    p.insert(1, Piece::Pause(ms));
    p
}

fn hedging() -> Settings {
    Settings {
        hedge: true,
        ..settings()
    }
}

async fn run_with(fake: &Fake, req: &LlmRequest, settings: &Settings) -> (Served, Client) {
    let mut client = Client::default();
    let served = serve(fake, &mut client, req, settings, Instant::now()).await;
    (served, client)
}

#[tokio::test(start_paused = true)]
async fn slow_first_token_is_hedged_and_the_faster_fallback_is_delivered() {
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            ("a", vec![Step::Sse(slow_stream("a", 2000, &["late"]))]),
            (
                "b",
                vec![Step::Sse(slow_stream("b", 50, &["Hello", " there"]))],
            ),
        ],
    );
    let start = Instant::now();
    let (served, client) = run_with(&fake, &openai(true), &hedging()).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(fake.tried(), ["a", "b"]);
    // The hedge starts at first_token, beside the primary (which is still running).
    assert_eq!(fake.gaps(), [Duration::from_millis(300)]);
    assert_eq!(client.streamed_text(), "Hello there");
    assert!(!client.text().contains("model-a"), "{}", client.text());
    assert_eq!(client.status, 200);
    // The answer comes from the hedge, long before the primary's first token.
    assert!(Instant::now() - start < Duration::from_millis(2000));
    // The primary counts as a timed-out attempt, the hedge as the answer.
    assert_eq!(statuses(&fake), ["a:timeout", "b:ok"]);
}

#[tokio::test(start_paused = true)]
async fn a_primary_that_beats_its_hedge_is_delivered_and_the_hedge_is_lost() {
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            ("a", vec![Step::Sse(slow_stream("a", 400, &["first"]))]),
            ("b", vec![Step::Sse(slow_stream("b", 250, &["second"]))]),
        ],
    );
    let (served, client) = run_with(&fake, &openai(true), &hedging()).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(fake.tried(), ["a", "b"]);
    assert_eq!(client.streamed_text(), "first");
    assert!(!client.text().contains("model-b"), "{}", client.text());
    // The hedge is an attempt, but neither a failure of b nor a completion.
    assert_eq!(statuses(&fake), ["b:lost", "a:ok"]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_hedge_leaves_the_primary_to_finish() {
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            (
                "a",
                vec![Step::Sse(slow_stream("a", 450, &["slow", " but sure"]))],
            ),
            ("b", vec![Step::Status(503, vec![], "{}".into())]),
        ],
    );
    let (served, client) = run_with(&fake, &openai(true), &hedging()).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(client.streamed_text(), "slow but sure");
    assert_eq!(statuses(&fake), ["b:unavailable", "a:ok"]);
}

#[tokio::test(start_paused = true)]
async fn a_508_from_a_keel_further_on_is_a_loop_not_a_node_failure_on_either_path() {
    // The fallback answers in turn (after a 503 on the primary)...
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            ("a", vec![Step::Status(503, vec![], "{}".into())]),
            ("b", vec![Step::Status(508, vec![], "{}".into())]),
        ],
    );
    let (_, client) = run(&fake, &openai(false)).await;
    assert_ne!(client.status, 508, "the loop never becomes the answer");
    assert_eq!(statuses(&fake)[..2], ["a:unavailable", "b:508"]);
    // ...or as a hedge beside a slow primary.
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            (
                "a",
                vec![Step::Sse(slow_stream("a", 450, &["slow", " but sure"]))],
            ),
            ("b", vec![Step::Status(508, vec![], "{}".into())]),
        ],
    );
    let (served, client) = run_with(&fake, &openai(true), &hedging()).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(client.streamed_text(), "slow but sure");
    assert_eq!(statuses(&fake), ["b:508", "a:ok"]);
}

#[tokio::test(start_paused = true)]
async fn without_hedging_the_slow_primary_is_abandoned_before_the_fallback_starts() {
    let fake = Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), false)],
        vec![
            ("a", vec![Step::Sse(slow_stream("a", 2000, &["late"]))]),
            ("b", vec![Step::Sse(slow_stream("b", 100, &["sequential"]))]),
        ],
    );
    let (served, client) = run_with(&fake, &openai(true), &settings()).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(client.streamed_text(), "sequential");
    // a is given up at first_token, reported, and only then is b asked.
    assert_eq!(fake.gaps(), [Duration::from_millis(300)]);
    assert_eq!(statuses(&fake), ["a:timeout", "b:ok"]);
}

/// A stream cut on `a` after "Hello, wor"; `b` supports prefills (as configured).
fn cut_then(b: Vec<Step>) -> Fake {
    let mut cut = oa_stream("a", &["Hello", ", wor"], true);
    cut.truncate(3);
    cut.push(Piece::Cut);
    Fake::new(
        vec![node("a", &standard(), false), node("b", &standard(), true)],
        vec![("a", vec![Step::Sse(cut)]), ("b", b)],
    )
}

const PREFILL_REFUSED: &str = r#"{"error":{"message":"Conversation must end with a user message","type":"invalid_request_error","code":"invalid_prefill"}}"#;

#[tokio::test(start_paused = true)]
async fn a_refused_prefill_regenerates_and_splices_the_rest_of_a_matching_answer() {
    let fake = cut_then(vec![
        Step::Status(400, vec![], PREFILL_REFUSED.into()),
        Step::Sse(oa_stream("b", &["Hello", ", wor", "ld", "!"], true)),
    ]);
    let req = LlmRequest::parse(
        Dialect::OpenAi,
        &Bytes::from_static(br#"{"model":"gpt-x","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#),
    )
    .unwrap();
    let (served, client) = run(&fake, &req).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(fake.tried(), ["a", "b", "b"]);
    assert_eq!(client.streamed_text(), "Hello, world!");
    let bodies = fake.bodies();
    assert_eq!(bodies[1]["messages"][1]["content"], "Hello, wor");
    assert_eq!(bodies[2]["messages"].as_array().map(Vec::len), Some(1));
    let text = client.text();
    assert!(!text.contains("\"id\":\"b\""), "{text}");
    assert!(!text.contains("400"), "{text}");
    // b's usage (a reported none before its cut).
    assert!(text.contains("\"completion_tokens\":4"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(statuses(&fake), ["a:stream_broken", "b:400", "b:ok"]);

    // Remembered: the next continuation on b for this model regenerates at once.
    let fake2 = cut_then(vec![Step::Sse(oa_stream("b", &["Hello, world!"], true))]);
    *fake2.no_prefill.lock().unwrap() = fake.no_prefill.lock().unwrap().clone();
    assert_eq!(
        *fake2.no_prefill.lock().unwrap(),
        [("b".to_string(), "gpt-x".to_string())]
    );
    let (served, client) = run(&fake2, &openai(true)).await;
    assert_eq!(served, Served::Complete { status: 200 });
    assert_eq!(fake2.tried(), ["a", "b"]);
    assert_eq!(
        fake2.bodies()[1]["messages"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(client.streamed_text(), "Hello, world!");
}

#[tokio::test(start_paused = true)]
async fn a_diverging_regeneration_ends_with_the_primarys_cut_never_the_400() {
    let fake = cut_then(vec![
        Step::Status(400, vec![], PREFILL_REFUSED.into()),
        Step::Sse(oa_stream("b", &["Hi", " there"], true)),
    ]);
    let (served, client) = run(&fake, &openai(true)).await;
    assert_eq!(served, Served::StreamError);
    let text = client.text();
    assert_eq!(client.streamed_text(), "Hello, wor");
    assert!(text.contains("the answer from node a broke off"), "{text}");
    assert!(
        !text.contains("400") && !text.contains("invalid_prefill"),
        "{text}"
    );
    assert!(!text.contains("[DONE]"), "{text}");
    assert_eq!(statuses(&fake), ["a:stream_broken", "b:400", "b:lost"]);
}
