//! Admin authentication: `Authorization: Bearer <admin_token>`, compared in constant time.

use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The configured admin token; clone it into routers that need [`require_admin`].
#[derive(Clone)]
pub struct AdminAuth {
    token: Arc<crate::config::Secret>,
}

impl AdminAuth {
    pub fn new(token: crate::config::Secret) -> Self {
        AdminAuth {
            token: Arc::new(token),
        }
    }

    /// Whether `candidate` is the admin token (constant time in the token's content).
    pub fn matches(&self, candidate: &str) -> bool {
        let expected = self.token.expose().as_bytes();
        !expected.is_empty() && bool::from(expected.ct_eq(candidate.as_bytes()))
    }

    /// Checks the request's bearer token.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match bearer_token(headers) {
            Some(t) if self.matches(t) => Ok(()),
            Some(_) => Err(ApiError::unauthorized("invalid admin token")),
            None => Err(ApiError::unauthorized(
                "missing admin token (Authorization: Bearer <token>)",
            )),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
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
pub async fn require_admin(
    State(auth): State<AdminAuth>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    auth.check(req.headers())?;
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
}
