//! keel's own answers on the proxy listener, in its JSON shape
//! `{"error":{"type","message"}}`, and what a request that failed before any answer gets.

use super::RequestCtx;
use bytes::Bytes;
use futures::FutureExt;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::protocols::http::ServerSession as Session;
use std::future::Future;
use std::panic::AssertUnwindSafe;

/// A complete JSON error answer in keel's shape, `{"error":{"type","message","code"}}` (the code
/// repeats the type unless [`respond_error`] names one), with
/// `retry-after` when given. Commits the request (see [`RequestCtx::committed`]).
pub(crate) async fn respond_json(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
    kind: &str,
    message: &str,
    retry_after: Option<u64>,
) -> Result<()> {
    respond_error(session, ctx, status, kind, Some(kind), message, retry_after).await
}

/// [`respond_json`] with an OpenAI-style `code` beside `type` when given
/// (`{"error":{"type","message","code"}}`), for answers clients branch on, such as a client
/// key's rate limit.
pub(crate) async fn respond_error(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
    kind: &str,
    code: Option<&str>,
    message: &str,
    retry_after: Option<u64>,
) -> Result<()> {
    let mut error = serde_json::json!({"type": kind, "message": message});
    if let Some(code) = code {
        error["code"] = code.into();
    }
    let body = Bytes::from(serde_json::json!({ "error": error }).to_string());
    let mut resp = ResponseHeader::build_no_case(status, Some(5))?;
    resp.insert_header("content-type", "application/json")?;
    resp.insert_header("content-length", body.len().to_string())?;
    resp.insert_header("x-request-id", ctx.request_id.as_str())?;
    if let Some(secs) = retry_after {
        resp.insert_header("retry-after", secs.to_string())?;
    }
    ctx.commit(status);
    session.write_response_header(Box::new(resp)).await?;
    session.write_response_body(body, true).await
}

/// The error type of a request whose handling panicked (see [`catching_panics`]).
const HANDLER_PANIC: ErrorType = ErrorType::new("HandlerPanic");

/// Runs keel's handling of one request with panics caught at this boundary, so that a bug
/// costs one request instead of the connection task: the panic is logged with its message
/// and becomes a `HANDLER_PANIC` error, which [`error_answer`] turns into a 500 JSON when
/// nothing reached the client yet. Guards the future held (the node in-flight counts) are
/// dropped by the unwind; the request's own in-flight guard lives in its `RequestCtx`,
/// outside the future, and is dropped when the request ends.
///
/// `AssertUnwindSafe`: after a panic the session is only used to write that one answer
/// and is then closed (an error is never followed by keep-alive), and the state shared
/// across requests is atomics and poison-tolerant locks.
pub(crate) async fn catching_panics(
    request_id: &str,
    serve: impl Future<Output = Result<()>>,
) -> Result<()> {
    match AssertUnwindSafe(serve).catch_unwind().await {
        Ok(served) => served,
        Err(payload) => {
            let panic = crate::telemetry::logging::panic_message(&*payload);
            tracing::error!(request_id, %panic, "a proxy request handler panicked");
            Error::e_explain(
                HANDLER_PANIC,
                "internal error: the request failed unexpectedly (see keel's log)",
            )
        }
    }
}

/// Status and error type of the JSON answer to a request that failed before anything was
/// sent: a caught panic is keel's fault (500), a client that sent something unreadable
/// (a malformed chunked body, a body cut short) gets a 400, anything else happened on the
/// way to the nodes (502).
pub(crate) fn error_answer(e: &Error) -> (u16, &'static str) {
    if e.etype() == &HANDLER_PANIC {
        return (500, "internal");
    }
    match e.esource() {
        ErrorSource::Downstream => (400, "invalid_request"),
        _ => (502, "upstream_error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_panic_in_request_handling_becomes_a_500_error_and_releases_its_guards() {
        let gauge = Arc::new(AtomicUsize::new(0));
        /// Stands for the guards a handler holds (node in-flight counts, permits).
        struct Guard(Arc<AtomicUsize>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let held = gauge.clone();
        let failed = catching_panics("rid", async move {
            held.fetch_add(1, Ordering::SeqCst);
            let _guard = Guard(held);
            tokio::task::yield_now().await;
            if true {
                panic!("handler bug");
            }
            Ok(())
        })
        .await
        .expect_err("a panic is an error");
        assert_eq!(failed.etype(), &HANDLER_PANIC);
        assert_eq!(error_answer(&failed), (500, "internal"));
        assert!(
            !failed.to_string().contains("handler bug"),
            "the client is not told the panic's text: {failed}"
        );
        assert_eq!(gauge.load(Ordering::SeqCst), 0, "the guard was dropped");

        // Without a panic the outcome passes through untouched.
        assert!(catching_panics("rid", async { Ok(()) }).await.is_ok());
        let e = catching_panics("rid", async { Error::e_explain(ReadError, "x") })
            .await
            .expect_err("an error stays an error");
        assert_eq!(e.etype(), &ReadError);
    }

    #[test]
    fn client_body_errors_are_400_upstream_errors_502() {
        let client = Error::explain(ReadError, "bad chunk size").into_down();
        assert_eq!(error_answer(&client), (400, "invalid_request"));
        let upstream = Error::explain(ConnectRefused, "node down").into_up();
        assert_eq!(error_answer(&upstream), (502, "upstream_error"));
        let unset = Error::explain(ReadError, "no source");
        assert_eq!(error_answer(&unset), (502, "upstream_error"));
    }
}
