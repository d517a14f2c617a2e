//! What both routes share about one client request: its state ([`RequestCtx`]), the counts
//! it holds while it runs ([`guard`]), who is asking ([`identity`]), keel's own JSON answers
//! ([`answer`]), which headers never cross the proxy ([`hop_by_hop`]), and the checks every
//! request passes before a route takes it ([`admit`]).
//!
//! The dispatcher ([`super::service`]) runs the phases in order; the routes
//! ([`super::generic`], [`super::llm`]) use this module and never the dispatcher.

pub(crate) mod access;
pub(crate) mod answer;
pub(crate) mod guard;
pub(crate) mod hop_by_hop;
pub(crate) mod identity;
pub(crate) mod key_limits;

use super::Gateway;
use answer::respond_json;
use bytes::Bytes;
use guard::InFlight;
use identity::ClientKey;
use pingora::prelude::*;
use pingora::protocols::http::ServerSession as Session;
use std::sync::Arc;
use std::time::Instant;

/// The state of one client request while keel answers it.
pub struct RequestCtx {
    /// When the request head was read: `timeouts.total` and the request metric count
    /// from here.
    pub started: Instant,
    pub request_id: String,
    /// Counts the request as in flight until it is dropped (shutdown drains on it).
    _in_flight: InFlight,
    /// Status sent to the client (0 until a header went out).
    pub status: u16,
    /// A response header reached the client: no retry, no error answer any more.
    pub committed: bool,
    /// The response broke after it was committed (the client got it cut short).
    pub cut_short: bool,
    /// What the access line will say (`[log] access`).
    pub access: access::AccessNotes,
    /// The limits of the client key presented, until they are checked (once the model is
    /// known).
    pub key_limits: Option<Arc<key_limits::KeyLimits>>,
    /// The key's slot while the request runs (`max_concurrent`), and where its tokens go.
    pub key_permit: Option<key_limits::KeyPermit>,
}

impl RequestCtx {
    /// Starts a request: counts it as in flight (graceful shutdown waits for it).
    pub fn new(gw: &Arc<Gateway>, request_id: String) -> Self {
        RequestCtx {
            started: Instant::now(),
            request_id,
            _in_flight: InFlight::new(gw),
            status: 0,
            committed: false,
            cut_short: false,
            access: access::AccessNotes::default(),
            key_limits: None,
            key_permit: None,
        }
    }

    /// A response header with `status` is going to the client: the commitment point, and
    /// the request's time to first byte.
    pub fn commit(&mut self, status: u16) {
        self.status = status;
        self.committed = true;
        self.access
            .first_byte
            .get_or_insert_with(|| self.started.elapsed());
    }

    /// Body bytes of a node's answer are going to the client: the first ones are the
    /// request's time to first token.
    pub fn relaying(&mut self, len: usize) {
        if len > 0 && self.access.first_token.is_none() {
            self.access.first_token = Some(self.started.elapsed());
        }
    }
}

/// Phase 2, after the request head was read and before any route sees the request: the
/// client's key (401, or 429 for an address out of failed-key budget), a forwarding loop
/// (508 `loop_detected` when `Via` names this keel, see [`super::via`]), the path (400 for
/// one that could climb above a node's prefix) and the whole body (413 above
/// `retry.max_body`; a `100-continue` is answered first).
///
/// `Ok(Some(body))`: the request goes on to a route. `Ok(None)`: it was answered here (the
/// connection is then not kept alive). `Err`: the client's body could not be read.
pub(crate) async fn admit(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<Option<Bytes>> {
    let key = identity::client_key(session.req_header());
    match gw.check_client_key(key, || identity::client_ip(session)) {
        ClientKey::Accepted(None) => {}
        ClientKey::Accepted(Some(entry)) => {
            ctx.access.key_name = Some(entry.name);
            ctx.key_limits = entry.limits;
        }
        ClientKey::Throttled(wait) => {
            session.set_keepalive(None);
            let secs = wait.as_secs().max(1);
            let message = format!("too many wrong API keys from this address; retry in {secs} s");
            respond_json(session, ctx, 429, "rate_limited", &message, Some(secs)).await?;
            return Ok(None);
        }
        ClientKey::Refused => {
            session.set_keepalive(None);
            respond_json(
                session,
                ctx,
                401,
                "authentication_error",
                "invalid or missing API key (x-api-key or Authorization: Bearer)",
                None,
            )
            .await?;
            return Ok(None);
        }
    }
    if gw.via.seen_in(&session.req_header().headers) {
        // See `super::via`: forwarding it again would start a loop between keels.
        session.set_keepalive(None);
        let message = format!(
            "the request already passed through this keel ({}, named in its Via header); \
             it is not forwarded again",
            gw.via.id()
        );
        respond_json(session, ctx, 508, "loop_detected", &message, None).await?;
        return Ok(None);
    }
    if let Err(e) = super::path::check(session.req_header().uri.path()) {
        session.set_keepalive(None);
        respond_json(session, ctx, 400, "invalid_request", &e.to_string(), None).await?;
        return Ok(None);
    }
    let max_body = gw.config().retry.max_body;
    match read_body(session, max_body).await? {
        Some(body) => Ok(Some(body)),
        None => {
            session.set_keepalive(None);
            let message =
                format!("request body is larger than proxy.retry.max_body ({max_body} bytes)");
            respond_json(session, ctx, 413, "request_too_large", &message, None).await?;
            Ok(None)
        }
    }
}

/// Reads the whole request body; `None` when it exceeds `max`. Every route needs it whole:
/// a retry resends it, and the LLM route reads `model` and `stream` from it.
async fn read_body(session: &mut Session, max: usize) -> Result<Option<Bytes>> {
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Ok(None);
    }
    let expects_continue = session
        .req_header()
        .headers
        .get("expect")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue {
        session
            .write_continue_response()
            .await
            .map_err(|e| e.into_down())?;
    }
    let mut body = super::body::Collected::with_capacity(declared.unwrap_or(0));
    // A body that cannot be read (bad chunk framing, cut short, too slow) is the client's
    // fault: marked downstream, it is answered 400, never 502.
    while let Some(chunk) = session
        .read_request_body()
        .await
        .map_err(|e| e.into_down())?
    {
        if body.size() + chunk.len() > max {
            return Ok(None);
        }
        body.push(chunk);
    }
    Ok(Some(body.finish()))
}
