//! Load generator and fake LLM upstream for the gateway benchmark.
//!
//! - `serve PORT NAME`: a keep-alive HTTP/1 server answering every request with a small
//!   JSON body naming the node (like an LLM API answer with usage); a request with
//!   `"stream":true` gets an OpenAI-style SSE stream (first token at once, then one token
//!   per millisecond, `[DONE]`, then the chunked terminator). `GET /stats` tells how many
//!   connections carried a `POST` (the connections a client opened for API requests).
//! - `closed URL CONCURRENCY SECONDS`: closed loop, one keep-alive connection per worker,
//!   as fast as possible (maximum throughput at fixed concurrency).
//! - `open URL RATE SECONDS [TIMELINE.csv]`: open loop at a fixed rate; latency is measured
//!   from each request's scheduled time (no coordinated omission). Writes a per-second
//!   timeline (ok, errors, answers per node) when asked.
//! - `stream URL CONCURRENCY COUNT`: COUNT streamed chat completions, CONCURRENCY at a time,
//!   each worker on one keep-alive connection; measures the time to the first content token.
//!
//! An `https://` URL makes both client modes speak TLS (ALPN `http/1.1`, certificate not
//! verified: both proxies get the same client, and its cost is the client's): the closed
//! loop over one TLS connection per worker, the open loop over a pool of keep-alive TLS
//! connections that grows as needed (like the plain client's pool).
//!
//! Every mode prints one JSON line of results.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::server::conn::http1 as server_http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

const BODY: &str =
    r#"{"model":"bench","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
const STREAM_BODY: &str = r#"{"model":"bench","stream":true,"max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
/// Content tokens of a streamed answer, and the pause between two of them.
const STREAM_TOKENS: usize = 8;
const TOKEN_GAP: Duration = Duration::from_millis(1);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args.get(1).map(String::as_str) {
        Some("serve") => rt.block_on(serve(arg(&args, 2), args[3].clone())),
        Some("closed") => rt.block_on(closed(args[2].clone(), arg(&args, 3), arg(&args, 4))),
        Some("stream") => rt.block_on(stream(args[2].clone(), arg(&args, 3), arg(&args, 4))),
        Some("open") => rt.block_on(open(
            args[2].clone(),
            arg(&args, 3),
            arg(&args, 4),
            args.get(5).cloned(),
        )),
        _ => {
            eprintln!(
                "usage: loadgen serve PORT NAME | closed URL CONC SECS | open URL RATE SECS [CSV] | stream URL CONC COUNT"
            );
            std::process::exit(2);
        }
    }
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> T {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("argument {i} missing or invalid"))
}

/// A streamed answer body fed by a task through a channel (one frame per event).
struct SseBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

fn chunk_event(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// An OpenAI-style stream: role, tokens one per [`TOKEN_GAP`], finish, usage, `[DONE]`.
fn sse_answer(name: &str) -> SseBody {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let id = format!(
        r#""id":"chatcmpl-bench","object":"chat.completion.chunk","model":"bench","node":"{name}""#
    );
    tokio::spawn(async move {
        let role = format!(
            r#"{{{id},"choices":[{{"index":0,"delta":{{"role":"assistant","content":""}},"finish_reason":null}}]}}"#
        );
        let _ = tx.send(chunk_event(&role)).await;
        for i in 0..STREAM_TOKENS {
            if i > 0 {
                tokio::time::sleep(TOKEN_GAP).await;
            }
            let token = format!(
                r#"{{{id},"choices":[{{"index":0,"delta":{{"content":"tok{i} "}},"finish_reason":null}}]}}"#
            );
            let _ = tx.send(chunk_event(&token)).await;
        }
        let finish =
            format!(r#"{{{id},"choices":[{{"index":0,"delta":{{}},"finish_reason":"stop"}}]}}"#);
        let usage = format!(
            r#"{{{id},"choices":[],"usage":{{"prompt_tokens":10,"completion_tokens":{STREAM_TOKENS},"total_tokens":{}}}}}"#,
            10 + STREAM_TOKENS
        );
        for e in [finish, usage, "[DONE]".to_string()] {
            let _ = tx.send(chunk_event(&e)).await;
        }
        // Dropping the sender ends the body: the chunked terminator follows on its own.
    });
    SseBody(rx)
}

async fn serve(port: u16, name: String) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    let answer = Bytes::from(format!(
        r#"{{"id":"msg_bench","type":"message","node":"{name}","content":[{{"type":"text","text":"ok"}}],"usage":{{"input_tokens":10,"output_tokens":20}}}}"#
    ));
    let name: Arc<str> = name.into();
    // Connections that carried at least one POST (health checks and `/stats` do not count).
    let connections = Arc::new(AtomicU64::new(0));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (answer, name, connections) = (answer.clone(), name.clone(), connections.clone());
        let counted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let (answer, name, connections, counted) = (
                    answer.clone(),
                    name.clone(),
                    connections.clone(),
                    counted.clone(),
                );
                async move {
                    if req.method() == hyper::Method::POST && !counted.swap(true, Ordering::Relaxed)
                    {
                        connections.fetch_add(1, Ordering::Relaxed);
                    }
                    if req.method() == hyper::Method::GET && req.uri().path() == "/stats" {
                        let n = connections.load(Ordering::Relaxed);
                        let body = Full::new(Bytes::from(format!(r#"{{"connections":{n}}}"#)));
                        return Ok::<_, hyper::Error>(Response::new(body.boxed()));
                    }
                    let body = req
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let streamed = body.windows(13).any(|w| w == b"\"stream\":true");
                    let response = if streamed {
                        Response::builder()
                            .header("content-type", "text/event-stream")
                            .header("cache-control", "no-cache")
                            // nginx relays the stream as it comes (as providers ask of it).
                            .header("x-accel-buffering", "no")
                            .body(sse_answer(&name).boxed())
                    } else {
                        Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(answer).boxed())
                    };
                    Ok(response.expect("response"))
                }
            });
            let _ = server_http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// A request for `url`; `host` set means origin-form with a `Host` header (raw
/// connections), otherwise the pooled client derives both from the absolute URL.
fn request(url: &str, host: Option<&str>) -> Request<Full<Bytes>> {
    let mut b = match host {
        Some(h) => Request::post(
            url.parse::<hyper::Uri>()
                .ok()
                .and_then(|u| u.path_and_query().map(|p| p.to_string()))
                .unwrap_or_else(|| "/".into()),
        )
        .header("host", h),
        None => Request::post(url),
    };
    b = b.header("content-type", "application/json");
    b.header("x-api-key", "bench")
        .body(Full::new(Bytes::from_static(BODY.as_bytes())))
        .expect("request")
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One keep-alive HTTP/1 connection to `host:port`, over TLS when `tls`.
async fn connect(host: &str, port: u16, tls: bool) -> Option<Sender> {
    let stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
    let _ = stream.set_nodelay(true);
    if !tls {
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(conn);
        return Some(send);
    }
    let ssl = tls_connector()?.configure().ok()?.into_ssl(host).ok()?;
    let mut stream = tokio_openssl::SslStream::new(ssl, stream).ok()?;
    std::pin::Pin::new(&mut stream).connect().await.ok()?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(send)
}

/// The client TLS context, built once: building one reads the system's CA bundle, which
/// per connection would make the load generator the bottleneck.
fn tls_connector() -> Option<&'static openssl::ssl::SslConnector> {
    static CONNECTOR: std::sync::OnceLock<Option<openssl::ssl::SslConnector>> =
        std::sync::OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            let mut b =
                openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).ok()?;
            b.set_verify(openssl::ssl::SslVerifyMode::NONE);
            b.set_alpn_protos(b"\x08http/1.1").ok()?;
            Some(b.build())
        })
        .as_ref()
}

/// Keep-alive TLS connections for the open loop: a request takes an idle one or opens one,
/// and gives it back when its answer was read whole.
struct TlsPool {
    host: String,
    port: u16,
    authority: String,
    idle: Mutex<Vec<Sender>>,
}

impl TlsPool {
    async fn send(&self, url: &str) -> Result<(Sender, Response<hyper::body::Incoming>), String> {
        let idle = self.idle.lock().expect("lock").pop();
        let mut send = match idle {
            Some(s) => s,
            None => connect(&self.host, self.port, true)
                .await
                .ok_or("TLS connect failed")?,
        };
        let resp = send
            .send_request(request(url, Some(&self.authority)))
            .await
            .map_err(|e| e.to_string())?;
        Ok((send, resp))
    }

    fn give_back(&self, send: Sender) {
        self.idle.lock().expect("lock").push(send);
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn node_of(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.split("\"node\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or("?")
        .to_string()
}

async fn closed(url: String, concurrency: usize, seconds: u64) {
    let uri: hyper::Uri = url.parse().expect("url");
    let host = uri.host().expect("host").to_string();
    let tls = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let authority = format!("{host}:{port}");
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (url, host, authority) = (url.clone(), host.clone(), authority.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            'outer: while Instant::now() < end {
                let Some(mut send) = connect(&host, port, tls).await else {
                    errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                while Instant::now() < end {
                    let t = Instant::now();
                    match send.send_request(request(&url, Some(&authority))).await {
                        Ok(resp) => {
                            let ok = resp.status().is_success();
                            let _ = resp.into_body().collect().await;
                            if ok {
                                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                            } else {
                                errors += 1;
                            }
                        }
                        Err(_) => {
                            errors += 1;
                            continue 'outer;
                        }
                    }
                }
            }
            (lat, errors)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("worker");
        all.extend(l);
        errors += e;
    }
    let secs = seconds as f64;
    let _ = started;
    all.sort_by(f64::total_cmp);
    println!(
        r#"{{"mode":"closed","concurrency":{concurrency},"requests":{},"errors":{errors},"rps":{:.0},"p50_ms":{:.3},"p99_ms":{:.3}}}"#,
        all.len(),
        all.len() as f64 / secs,
        percentile(&all, 0.5),
        percentile(&all, 0.99)
    );
}

/// One streamed request on `send`: (time to the first content token, whole stream) in ms,
/// or why it failed.
async fn one_stream(
    send: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    url: &str,
    authority: &str,
) -> Result<(f64, f64), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let req = Request::post(uri.path())
        .header("host", authority)
        .header("content-type", "application/json")
        .header("authorization", "Bearer bench")
        .body(Full::new(Bytes::from_static(STREAM_BODY.as_bytes())))
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("status {}", resp.status()));
    }
    let mut body = resp.into_body();
    let mut ttft = None;
    let mut seen = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        seen.extend_from_slice(data);
        if ttft.is_none() && seen.windows(14).any(|w| w == b"\"content\":\"tok") {
            ttft = Some(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let done = seen.windows(6).any(|w| w == b"[DONE]");
    match (ttft, done) {
        (Some(ttft), true) => Ok((ttft, t.elapsed().as_secs_f64() * 1000.0)),
        _ => Err("stream without content or [DONE]".into()),
    }
}

async fn stream(url: String, concurrency: usize, count: u64) {
    let uri: hyper::Uri = url.parse().expect("url");
    let host = uri.host().expect("host").to_string();
    let port = uri.port_u16().unwrap_or(80);
    let authority = format!("{host}:{port}");
    let left = Arc::new(AtomicU64::new(count));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (url, host, authority, left) =
            (url.clone(), host.clone(), authority.clone(), left.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ttfts, mut totals, mut errors, mut first_error) =
                (Vec::new(), Vec::new(), 0u64, String::new());
            'outer: loop {
                let Ok(tcp) = tokio::net::TcpStream::connect((host.as_str(), port)).await else {
                    errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let Ok((mut send, conn)) =
                    hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await
                else {
                    errors += 1;
                    continue;
                };
                tokio::spawn(conn);
                loop {
                    if left
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_err()
                    {
                        break 'outer;
                    }
                    match one_stream(&mut send, &url, &authority).await {
                        Ok((ttft, total)) => {
                            ttfts.push(ttft);
                            totals.push(total);
                        }
                        Err(e) => {
                            errors += 1;
                            if first_error.is_empty() {
                                first_error = e;
                            }
                            continue 'outer;
                        }
                    }
                }
            }
            (ttfts, totals, errors, first_error)
        }));
    }
    let (mut ttft, mut total, mut errors, mut first_error) =
        (Vec::new(), Vec::new(), 0, String::new());
    for t in tasks {
        let (a, b, e, f) = t.await.expect("worker");
        ttft.extend(a);
        total.extend(b);
        errors += e;
        if first_error.is_empty() {
            first_error = f;
        }
    }
    ttft.sort_by(f64::total_cmp);
    total.sort_by(f64::total_cmp);
    println!(
        r#"{{"mode":"stream","concurrency":{concurrency},"streams":{},"errors":{errors},"ttft_p50_ms":{:.3},"ttft_p99_ms":{:.3},"stream_p50_ms":{:.3},"first_error":"{}"}}"#,
        ttft.len(),
        percentile(&ttft, 0.5),
        percentile(&ttft, 0.99),
        percentile(&total, 0.5),
        first_error
            .replace('"', "'")
            .chars()
            .take(200)
            .collect::<String>()
    );
}

#[derive(Default, Clone)]
struct Second {
    ok: u64,
    errors: u64,
    nodes: BTreeMap<String, u64>,
}

async fn open(url: String, rate: u64, seconds: u64, timeline: Option<String>) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build_http();
    let uri: hyper::Uri = url.parse().expect("url");
    let pool = (uri.scheme_str() == Some("https")).then(|| {
        let host = uri.host().expect("host").to_string();
        let port = uri.port_u16().unwrap_or(443);
        Arc::new(TlsPool {
            authority: format!("{host}:{port}"),
            host,
            port,
            idle: Mutex::new(Vec::new()),
        })
    });
    let start = Instant::now();
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let lat = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let secs = Arc::new(Mutex::new(vec![Second::default(); seconds as usize + 1]));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut handles = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let (client, url, pool) = (client.clone(), url.clone(), pool.clone());
        let (lat, secs, errors) = (lat.clone(), secs.clone(), errors.clone());
        handles.push(tokio::spawn(async move {
            let sec = (scheduled - start).as_secs() as usize;
            let result = tokio::time::timeout(Duration::from_secs(10), async {
                let (sender, resp) = match &pool {
                    Some(p) => {
                        let (s, r) = p.send(&url).await?;
                        (Some(s), r)
                    }
                    None => (
                        None,
                        client
                            .request(request(&url, None))
                            .await
                            .map_err(|e| e.to_string())?,
                    ),
                };
                let status = resp.status();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                if let (Some(p), Some(s)) = (&pool, sender) {
                    p.give_back(s);
                }
                if status.is_success() {
                    Ok(node_of(&body))
                } else {
                    Err(format!(
                        "status {status}: {}",
                        String::from_utf8_lossy(&body)
                    ))
                }
            })
            .await
            .unwrap_or_else(|_| Err("client timeout".into()));
            let ms = scheduled.elapsed().as_secs_f64() * 1000.0;
            let mut s = secs.lock().expect("lock");
            match result {
                Ok(node) => {
                    lat.lock().expect("lock").push(ms);
                    s[sec].ok += 1;
                    *s[sec].nodes.entry(node).or_default() += 1;
                }
                Err(e) => {
                    s[sec].errors += 1;
                    errors.lock().expect("lock").push(e);
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let mut all = lat.lock().expect("lock").clone();
    all.sort_by(f64::total_cmp);
    let errs = errors.lock().expect("lock").clone();
    let ok = all.len() as u64;
    if let Some(path) = timeline {
        let mut out = String::from("second,ok,errors,nodes\n");
        for (i, s) in secs.lock().expect("lock").iter().enumerate() {
            let nodes: Vec<String> = s.nodes.iter().map(|(n, c)| format!("{n}={c}")).collect();
            out.push_str(&format!("{i},{},{},{}\n", s.ok, s.errors, nodes.join(" ")));
        }
        std::fs::write(path, out).expect("timeline");
    }
    let first_error = errs.first().cloned().unwrap_or_default().replace('"', "'");
    println!(
        r#"{{"mode":"open","rate":{rate},"seconds":{seconds},"requests":{total},"ok":{ok},"errors":{},"success_pct":{:.3},"p50_ms":{:.3},"p99_ms":{:.3},"max_ms":{:.3},"first_error":"{}"}}"#,
        errs.len(),
        ok as f64 * 100.0 / total as f64,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(0.0),
        first_error.chars().take(200).collect::<String>()
    );
}
