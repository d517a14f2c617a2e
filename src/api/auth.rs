//! Admin authentication: `Authorization: Bearer <admin_token>` for scripts, or a dashboard
//! session cookie for browsers (see `session`), both compared in constant time.
//!
//! A cookie is sent by the browser on its own, so a cookie-authenticated request that
//! changes state (anything but GET/HEAD/OPTIONS) must also prove it comes from our page:
//! the session's CSRF token in `X-Keel-CSRF`, and an `Origin` (when the browser sends one)
//! naming this very host. Bearer requests need neither: a browser never adds that header
//! by itself.

use super::error::ApiError;
use super::session::{session_cookie, SessionStore, CSRF_HEADER};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The configured admin token and the browser sessions it was exchanged for; clone it into
/// routers that need [`require_admin`].
#[derive(Clone)]
pub struct AdminAuth {
    token: Arc<crate::config::Secret>,
    sessions: Arc<SessionStore>,
}

impl AdminAuth {
    /// Token auth with default session limits (`[dashboard]` defaults).
    pub fn new(token: crate::config::Secret) -> Self {
        Self::with_sessions(
            token,
            SessionStore::new(&crate::config::DashboardConfig::default()),
        )
    }

    pub fn with_sessions(token: crate::config::Secret, sessions: SessionStore) -> Self {
        AdminAuth {
            token: Arc::new(token),
            sessions: Arc::new(sessions),
        }
    }

    pub fn sessions(&self) -> &SessionStore {
        &self.sessions
    }

    /// Whether `candidate` is the admin token (constant time in the token's content).
    pub fn matches(&self, candidate: &str) -> bool {
        let expected = self.token.expose().as_bytes();
        !expected.is_empty() && bool::from(expected.ct_eq(candidate.as_bytes()))
    }

    /// Checks a request as if it changed state (the strictest rule).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        self.authorize(&Method::POST, headers)
    }

    /// A bearer token decides alone when present (a wrong one is never rescued by a
    /// cookie); otherwise a live session cookie, plus the CSRF rules for writes.
    pub fn authorize(&self, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
        if let Some(t) = bearer_token(headers) {
            return if self.matches(t) {
                Ok(())
            } else {
                Err(ApiError::unauthorized("invalid admin token"))
            };
        }
        let Some(session) = session_cookie(headers).and_then(|c| self.sessions.get(c)) else {
            return Err(ApiError::unauthorized(
                "missing admin token (Authorization: Bearer <token>) or dashboard session",
            ));
        };
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let csrf_ok = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| bool::from(v.as_bytes().ct_eq(session.csrf.as_bytes())));
        if !csrf_ok {
            return Err(forbidden(
                "cookie-authenticated writes need the session's X-Keel-CSRF header",
            ));
        }
        if !same_origin(headers) {
            return Err(forbidden("cross-origin request refused"));
        }
        Ok(())
    }
}

fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "csrf", message)
}

/// No `Origin` (non-browser clients, some same-origin requests) passes; one that is sent
/// must be `http(s)://<Host>`.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

/// The token of an `Authorization: Bearer <token>` header, if any.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Middleware for admin-only route groups:
/// `.route_layer(middleware::from_fn_with_state(auth, require_admin))`.
pub(crate) async fn require_admin(
    State(auth): State<AdminAuth>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    auth.authorize(req.method(), req.headers())?;
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing_and_matching() {
        let auth = AdminAuth::new(crate::config::Secret::new("s3cret"));
        let mut h = HeaderMap::new();
        assert!(auth.check(&h).is_err());
        h.insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(auth.check(&h).is_ok());
        h.insert("authorization", "bearer s3cre".parse().unwrap());
        assert!(auth.check(&h).is_err());
        h.insert("authorization", "Basic s3cret".parse().unwrap());
        assert!(auth.check(&h).is_err());
    }

    #[tokio::test]
    async fn session_cookie_reads_freely_but_writes_need_csrf_and_same_origin() {
        let auth = AdminAuth::new(crate::config::Secret::new("s3cret"));
        let (cookie, session) = auth.sessions().create().await.unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("keel_session={cookie}").parse().unwrap(),
        );
        h.insert(header::HOST, "127.0.0.1:8081".parse().unwrap());
        assert!(auth.authorize(&Method::GET, &h).is_ok());
        let err = auth.authorize(&Method::POST, &h).unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        h.insert(CSRF_HEADER, "wrong".parse().unwrap());
        assert!(auth.authorize(&Method::DELETE, &h).is_err());
        h.insert(CSRF_HEADER, session.csrf.parse().unwrap());
        assert!(auth.authorize(&Method::PATCH, &h).is_ok());
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(auth.authorize(&Method::POST, &h).is_err());
        h.insert(header::ORIGIN, "http://127.0.0.1:8081".parse().unwrap());
        assert!(auth.authorize(&Method::POST, &h).is_ok());
        // A wrong bearer token is not rescued by a valid cookie.
        h.insert("authorization", "Bearer nope".parse().unwrap());
        assert!(auth.authorize(&Method::GET, &h).is_err());
        // An unknown cookie is no session.
        let mut other = HeaderMap::new();
        other.insert(header::COOKIE, "keel_session=forged".parse().unwrap());
        assert!(auth.authorize(&Method::GET, &other).is_err());
    }
}
