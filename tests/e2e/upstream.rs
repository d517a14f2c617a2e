//! Scriptable fake upstream nodes for the gateway tests: small axum servers on ephemeral
//! loopback ports that fail N times with a status, answer JSON with token usage, stream SSE
//! events with gaps (recording when each was sent), drop a stream midway, and record every
//! request they receive (method, path, headers, body).

#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// What the upstream does with the next requests.
#[derive(Debug, Clone)]
pub struct Script {
    /// The next N API requests fail with `fail_status`.
    pub fail_next: u32,
    pub fail_status: u16,
    /// Every API request fails with this status (after `fail_next`).
    pub always_status: Option<u16>,
    /// Status of `GET /health`.
    pub health_status: u16,
    /// Answer delay before the header.
    pub delay: Duration,
    /// Stream these SSE events (`delay before it`, `event text`) instead of JSON.
    pub sse: Option<Vec<(Duration, String)>>,
    /// With `sse`: break the connection after this many events.
    pub drop_after: Option<usize>,
    /// JSON answer; default names the node and carries Anthropic-style usage.
    pub json: Option<serde_json::Value>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            fail_next: 0,
            fail_status: 503,
            always_status: None,
            health_status: 200,
            delay: Duration::ZERO,
            sse: None,
            drop_after: None,
            json: None,
        }
    }
}

#[derive(Default)]
struct Shared {
    script: Script,
    requests: Vec<Recorded>,
    health_checks: u32,
    /// When each SSE event was handed to the connection.
    sent_at: Vec<Instant>,
}

pub struct Upstream {
    pub name: String,
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Ctx {
    name: String,
    shared: Arc<Mutex<Shared>>,
}

impl Upstream {
    pub async fn start(name: &str) -> Upstream {
        Upstream::with(name, Script::default()).await
    }

    pub async fn with(name: &str, script: Script) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared {
            script,
            ..Shared::default()
        }));
        let ctx = Ctx {
            name: name.to_string(),
            shared: shared.clone(),
        };
        let app = axum::Router::new().fallback(handle).with_state(ctx);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream {
            name: name.to_string(),
            addr,
            shared,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.shared.lock().unwrap().script)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().unwrap().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.lock().unwrap().requests.len()
    }

    pub fn health_checks(&self) -> u32 {
        self.shared.lock().unwrap().health_checks
    }

    pub fn sent_at(&self) -> Vec<Instant> {
        self.shared.lock().unwrap().sent_at.clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(ctx): State<Ctx>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    if path == "/health" {
        let status = {
            let mut s = ctx.shared.lock().unwrap();
            s.health_checks += 1;
            s.script.health_status
        };
        return (StatusCode::from_u16(status).unwrap(), "ok").into_response();
    }
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or(path),
        headers: parts.headers.clone(),
        body: body.clone(),
    };
    let script = {
        let mut s = ctx.shared.lock().unwrap();
        s.requests.push(recorded);
        let script = s.script.clone();
        if s.script.fail_next > 0 {
            s.script.fail_next -= 1;
        }
        script
    };
    if script.fail_next > 0 {
        return error(script.fail_status);
    }
    if let Some(status) = script.always_status {
        return error(status);
    }
    tokio::time::sleep(script.delay).await;
    if let Some(events) = script.sse {
        return sse(ctx, events, script.drop_after);
    }
    let model = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("model").cloned())
        .unwrap_or(serde_json::Value::Null);
    let json = script.json.unwrap_or_else(|| {
        serde_json::json!({
            "node": ctx.name,
            "model": model,
            "usage": {"input_tokens": 10, "output_tokens": 20},
        })
    });
    ([("content-type", "application/json")], json.to_string()).into_response()
}

fn error(status: u16) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        r#"{"error":{"type":"scripted","message":"scripted failure"}}"#,
    )
        .into_response()
}

fn sse(ctx: Ctx, events: Vec<(Duration, String)>, drop_after: Option<usize>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        for (i, (gap, text)) in events.into_iter().enumerate() {
            // The gap also lets the previous event leave before a scripted drop.
            tokio::time::sleep(gap).await;
            if drop_after == Some(i) {
                let _ = tx
                    .send(Err(std::io::Error::other("scripted mid-stream drop")))
                    .await;
                return;
            }
            ctx.shared.lock().unwrap().sent_at.push(Instant::now());
            if tx.send(Ok(Bytes::from(text))).await.is_err() {
                return;
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap()
}
