//! The generic route: every request that is not a generation request (model lists,
//! embeddings, token counting, bodies keel does not recognise). The request goes to a node
//! as the client sent it (hop-by-hop headers replaced, `model` mapped); the answer comes
//! back byte for byte.
//!
//! Per attempt: pick a node (or wait in the queue when none is available for the first
//! one), send header and body ([`super::conns::round_trip`]) under `retry.per_try_timeout`,
//! and read the response header. A connect error, a timeout or a status in
//! `retry.on_status` is an [`AttemptError`]: nothing reached the client yet, and the retry
//! policy ([`super::retry`]) says whether and when another node is tried. Any other status
//! is the **commitment point**: the header goes to the client, the body is relayed as it
//! arrives, and an upstream failure from then on ends the client's response instead of
//! retrying.

pub(crate) mod usage_meter;

use super::attempt::AttemptError;
use super::head::ClientHead;
use super::pool::Picked;
use super::request::access::Try;
use super::request::answer::respond_json;
use super::request::guard::NodeInFlight;
use super::request::{hop_by_hop, RequestCtx};
use super::retry::{Budget, BudgetConfig, Failure, Plan};
use super::Gateway;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::protocols::http::client::HttpSession as UpstreamSession;
use pingora::protocols::http::ServerSession as Session;
use pingora::upstreams::peer::HttpPeer;
use std::sync::Arc;
use std::time::Instant;
use tokio::time::Instant as TokioInstant;
use usage_meter::UsageMeter;

/// How one attempt ended.
enum Outcome {
    /// The response (or a client-facing part of it) was relayed.
    Relayed,
    /// Nothing reached the client; another node may be tried.
    Failed(AttemptError),
    /// The response broke after the commitment point (or the client went away).
    Aborted(Box<Error>),
}

/// Phase 3 on the generic route: runs once [`super::request::admit`] passed the request
/// and the LLM route did not take it. Answers completely: the relayed response, or keel's
/// JSON 503 (no node available) or 502 (every attempt failed). `Err` when the response
/// could not be completed (the dispatcher then answers or closes).
pub(crate) async fn serve(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
    body: Bytes,
) -> Result<()> {
    let cfg = gw.config();
    let started = TokioInstant::from_std(ctx.started);
    let deadline = started + cfg.timeouts.total;
    let client_head = ClientHead::of(session.req_header(), &gw.via);
    let mut budget = Budget::new(BudgetConfig::of(&cfg), started);
    // `(node, why)` in order, for the final answer.
    let mut failures: Vec<(String, AttemptError)> = Vec::new();
    loop {
        let picked = match gw.pool.pick(|n| budget.tried(n), Instant::now()) {
            Some(p) => p,
            None if budget.attempts() == 0 => match gw.wait_in_queue(deadline).await {
                Some(p) => p,
                None => {
                    let after = gw.pool.retry_after(Instant::now()).as_secs().max(1);
                    return respond_json(
                        session,
                        ctx,
                        503,
                        "no_available_nodes",
                        "no available nodes: every node is disabled, ejected or warming up",
                        Some(after),
                    )
                    .await;
                }
            },
            None => return all_failed(session, ctx, &failures).await,
        };
        let name = picked.node.name.as_str();
        budget.record_attempt(name, TokioInstant::now());
        let outcome = try_node(gw, session, ctx, &client_head, &picked, &body, deadline).await;
        let failure = match &outcome {
            Outcome::Relayed => None,
            Outcome::Aborted(_) => Some("aborted"),
            Outcome::Failed(error) => Some(error.label()),
        };
        ctx.access.tries.push(Try {
            node: name.to_string(),
            failure,
        });
        let error = match outcome {
            Outcome::Relayed => return Ok(()),
            Outcome::Aborted(e) => return Err(e),
            Outcome::Failed(error) => error,
        };
        tracing::warn!(
            node = %name,
            request_id = %ctx.request_id,
            attempt = budget.attempts(),
            error = %error,
            "upstream try failed; retrying on another node if one is left"
        );
        gw.pool
            .metrics
            .retries
            .with_label_values(&[name, error.label()])
            .inc();
        gw.pool.upstream_failed(
            &picked.node,
            crate::proxy::node_events::UpstreamFailed {
                node: name.to_string(),
                route: "generic",
                class: error.label(),
                reason: error.label(),
                status: error.answer_status(),
                request_id: ctx.request_id.clone(),
                error: error.public(),
            },
            Instant::now(),
        );
        let plan = budget.after_failure(
            name,
            &Failure::elsewhere(),
            TokioInstant::now(),
            &mut rand::rng(),
        );
        failures.push((name.to_string(), error));
        match plan {
            Plan::Same { at } | Plan::Fallback { at, .. } => tokio::time::sleep_until(at).await,
            Plan::GiveUp => return all_failed(session, ctx, &failures).await,
        }
    }
}

/// keel's 502 after every attempt failed, naming each node and why.
async fn all_failed(
    session: &mut Session,
    ctx: &mut RequestCtx,
    failures: &[(String, AttemptError)],
) -> Result<()> {
    let detail: Vec<String> = failures.iter().map(|(n, e)| format!("{n}: {e}")).collect();
    tracing::warn!(
        status = 502,
        attempts = %detail.join("; "),
        "upstream request failed on every node"
    );
    respond_json(
        session,
        ctx,
        502,
        "all_nodes_failed",
        &failure_summary(failures),
        None,
    )
    .await
}

/// `all nodes failed (a, b tried): a: connect failed; b: status 503` — node names and
/// failure kinds only; addresses and transport errors go to the log.
fn failure_summary(failures: &[(String, AttemptError)]) -> String {
    let nodes: Vec<&str> = failures.iter().map(|(n, _)| n.as_str()).collect();
    let causes: Vec<String> = failures
        .iter()
        .map(|(n, e)| format!("{n}: {}", e.public()))
        .collect();
    format!(
        "all nodes failed ({} tried): {}",
        nodes.join(", "),
        causes.join("; ")
    )
}

/// One attempt on one node: send, read the response header, decide, then relay.
async fn try_node(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
    client_head: &ClientHead,
    picked: &Picked,
    body: &Bytes,
    deadline: TokioInstant,
) -> Outcome {
    let cfg = gw.config();
    let node = &picked.node;
    let _in_flight = NodeInFlight::new(node);
    let started = Instant::now();
    let try_deadline = deadline.min(TokioInstant::now() + cfg.retry.per_try_timeout);
    let body = node_body(node, body);
    let head = client_head.for_node(node, &ctx.request_id, body.len());
    let sent = tokio::time::timeout_at(
        try_deadline,
        super::conns::round_trip(&gw.transport, node, &head, &body),
    )
    .await;
    let (mut upstream, peer) = match sent {
        Ok(Ok(pair)) => pair,
        Ok(Err(error)) => return failed(gw, picked, started, error),
        Err(_) => {
            let error = AttemptError::Timeout("timed out before the response header".into());
            return failed(gw, picked, started, error);
        }
    };
    let Some(header) = upstream.response_header().cloned() else {
        let error = AttemptError::Upstream("no response header".into());
        return failed(gw, picked, started, error);
    };
    let status = header.status.as_u16();
    gw.pool
        .metrics
        .observe_ttfb(node, started.elapsed().as_secs_f64());
    if cfg.retry.on_status.contains(&status) {
        // Not committed: the client has seen nothing. Drop this connection (its body is
        // unread) and let the loop try another node.
        return failed(gw, picked, started, AttemptError::status(status));
    }

    // Commitment point: from here on, no retry.
    let meter = UsageMeter::for_response(
        header
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        header
            .headers
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
    );
    let head_request = session.req_header().method == http::Method::HEAD;
    let downstream = downstream_header(&header, &ctx.request_id, head_request);
    let done_at_header = upstream.response_done() || head_request;
    ctx.commit(status);
    if let Err(e) = session.write_response_header(Box::new(downstream)).await {
        // The client went away before anything reached it; the node did its job.
        finish(gw, picked, started, status, true);
        return Outcome::Aborted(e);
    }
    if done_at_header {
        if let Err(e) = session.write_response_body(Bytes::new(), true).await {
            return Outcome::Aborted(e);
        }
        finish(gw, picked, started, status, true);
        super::conns::checkin(&node.conns, upstream, &peer).await;
        return Outcome::Relayed;
    }
    upstream.set_read_timeout(Some(cfg.timeouts.read));
    let attempt = Committed {
        gw,
        picked,
        started,
        status,
    };
    attempt
        .relay(session, ctx, upstream, peer, meter, deadline)
        .await
}

/// An attempt past the commitment point.
struct Committed<'a> {
    gw: &'a Gateway,
    picked: &'a Picked,
    started: Instant,
    status: u16,
}

impl Committed<'_> {
    /// Streams the response body to the client chunk by chunk as it arrives.
    async fn relay(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        mut upstream: UpstreamSession,
        peer: Arc<HttpPeer>,
        mut meter: UsageMeter,
        deadline: TokioInstant,
    ) -> Outcome {
        let (gw, picked) = (self.gw, self.picked);
        loop {
            let read = match tokio::time::timeout_at(deadline, upstream.read_response_body()).await
            {
                Ok(r) => r,
                Err(_) => Error::e_explain(
                    ReadTimedout,
                    format!(
                        "total request time ({:?}) exceeded mid-response",
                        gw.config().timeouts.total
                    ),
                ),
            };
            match read {
                Ok(Some(chunk)) => {
                    // Forward first; usage accounting only looks at what already went out.
                    ctx.relaying(chunk.len());
                    if let Err(e) = session.write_response_body(chunk.clone(), false).await {
                        self.finish(true);
                        return Outcome::Aborted(e);
                    }
                    meter.feed(&chunk);
                }
                Ok(None) => {
                    let client = session.write_response_body(Bytes::new(), true).await;
                    self.finish(true);
                    if let Some(usage) = meter.finish() {
                        gw.pool.metrics.count_tokens(&picked.node, usage);
                        ctx.access.add_usage(Some(usage));
                    }
                    super::conns::checkin(&picked.node.conns, upstream, &peer).await;
                    return match client {
                        Ok(()) => Outcome::Relayed,
                        Err(e) => Outcome::Aborted(e),
                    };
                }
                Err(e) => {
                    // The node broke mid-response: a node failure, and the client's response
                    // ends here (the connection closes without a clean end).
                    tracing::warn!(node = %picked.node.name, error = %e, "upstream failed mid-response");
                    self.finish(false);
                    return Outcome::Aborted(e.into_up());
                }
            }
        }
    }

    fn finish(&self, body_ok: bool) {
        finish(self.gw, self.picked, self.started, self.status, body_ok);
    }
}

/// Records a failed attempt against its node (metrics, breaker, shift).
fn failed(gw: &Gateway, picked: &Picked, started: Instant, error: AttemptError) -> Outcome {
    let m = &gw.pool.metrics;
    m.count_upstream(&picked.node, error.status_class());
    m.observe_upstream_duration(&picked.node, started.elapsed().as_secs_f64());
    gw.pool
        .record(&picked.node, false, picked.probe, Instant::now());
    Outcome::Failed(error)
}

/// Records a committed attempt: a 5xx answer or a broken body counts against the node.
fn finish(gw: &Gateway, picked: &Picked, started: Instant, status: u16, body_ok: bool) {
    let m = &gw.pool.metrics;
    let class = if body_ok {
        crate::telemetry::metrics::status_class(status)
    } else {
        "error"
    };
    m.count_upstream(&picked.node, class);
    m.observe_upstream_duration(&picked.node, started.elapsed().as_secs_f64());
    let success = body_ok && status < 500;
    gw.pool
        .record(&picked.node, success, picked.probe, Instant::now());
}

/// The body for this node: `model` rewritten by its `model_mapping` when it applies.
fn node_body(node: &super::node::Node, body: &Bytes) -> Bytes {
    let mapping = &node.config.model_mapping;
    if mapping.is_empty() || body.first() != Some(&b'{') {
        return body.clone();
    }
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.clone();
    };
    let Some(to) = doc
        .get("model")
        .and_then(|m| m.as_str())
        .and_then(|m| super::llm::dialect::map_model(mapping, m))
        .map(str::to_string)
    else {
        return body.clone();
    };
    doc["model"] = serde_json::Value::String(to);
    serde_json::to_vec(&doc)
        .map(Bytes::from)
        .unwrap_or_else(|_| body.clone())
}

/// The client's response header: the upstream's status and headers minus hop-by-hop ones,
/// chunked unless the upstream gave a length (or there is no body), and the request id.
fn downstream_header(
    upstream: &ResponseHeader,
    request_id: &str,
    head_request: bool,
) -> ResponseHeader {
    let mut resp = upstream.clone();
    for name in hop_by_hop::present(&upstream.headers) {
        resp.remove_header(&name);
    }
    resp.set_version(http::Version::HTTP_11);
    let status = resp.status.as_u16();
    let bodiless = head_request || matches!(status, 204 | 304);
    if !bodiless && resp.headers.get("content-length").is_none() {
        let _ = resp.insert_header("transfer-encoding", "chunked");
    }
    let _ = resp.insert_header("x-request-id", request_id);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_502_names_every_node_tried_and_why() {
        let failures = [
            ("a".to_string(), AttemptError::Connect("refused".into())),
            ("b".to_string(), AttemptError::status(502)),
            (
                "c".to_string(),
                AttemptError::Timeout("timed out before the response header".into()),
            ),
        ];
        assert_eq!(
            failure_summary(&failures),
            "all nodes failed (a, b, c tried): a: connect failed; b: status 502; \
             c: timed out before the response header"
        );
    }

    #[test]
    fn the_clients_header_drops_hop_by_hop_ones_and_is_framed_by_keel() {
        let mut up = ResponseHeader::build(200, None).unwrap();
        up.insert_header("connection", "keep-alive, x-node-trace")
            .unwrap();
        up.insert_header("x-node-trace", "1").unwrap();
        up.insert_header("keep-alive", "timeout=5").unwrap();
        up.insert_header("transfer-encoding", "chunked").unwrap();
        up.insert_header("content-type", "text/plain").unwrap();
        let down = downstream_header(&up, "rid", false);
        let mut names: Vec<&str> = down.headers.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "transfer-encoding", "x-request-id"]);
        assert_eq!(down.headers["transfer-encoding"], "chunked");
        // A length from the node stays; a HEAD answer gets no framing of its own.
        let mut up = ResponseHeader::build(200, None).unwrap();
        up.insert_header("content-length", "2").unwrap();
        let down = downstream_header(&up, "rid", false);
        assert!(down.headers.get("transfer-encoding").is_none());
        let down = downstream_header(&ResponseHeader::build(200, None).unwrap(), "rid", true);
        assert!(down.headers.get("transfer-encoding").is_none());
    }
}
