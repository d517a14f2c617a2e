//! Failed authentication is rate limited per client address on every control route, in one
//! layer rather than in each of the many places that check a credential (admin bearer
//! token, dashboard login, worker token, executor access token).
//!
//! A request *presents a credential* when it carries `Authorization` or `accessToken`, or
//! is a dashboard login. Such a request from an address whose budget is spent gets 429 with
//! `Retry-After`, right credential or not (see [`crate::limits::auth_failures`] for why);
//! one that is answered 401 spends from the budget. Requests without a credential are never
//! refused or counted here: a browser whose session expired keeps polling without one, and
//! must still be able to log in.

use super::error::ApiError;
use super::session::LOGIN_PATH;
use crate::limits::AuthFailures;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// Header of the executor's access tokens (`/flow/codeblock`).
const ACCESS_TOKEN: &str = "accesstoken";

/// Middleware over the whole control router:
/// `.layer(middleware::from_fn_with_state(failures, throttle))`.
pub(crate) async fn throttle(
    State(failures): State<Arc<AuthFailures>>,
    req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let Some(ip) = peer.filter(|_| presents_credential(&req)) else {
        return next.run(req).await;
    };
    if let Err(wait) = failures.check(ip) {
        return too_many(wait.as_secs());
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::UNAUTHORIZED {
        failures.failed(ip);
    }
    resp
}

fn presents_credential(req: &Request) -> bool {
    let h = req.headers();
    h.contains_key(header::AUTHORIZATION)
        || h.contains_key(ACCESS_TOKEN)
        || (req.method() == Method::POST && req.uri().path() == LOGIN_PATH)
}

/// 429 in keel's error shape with the seconds until the next attempt is allowed.
fn too_many(retry_after: u64) -> Response {
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many failed authentications from this address; retry in {retry_after} s"),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}
