//! Browser sessions for the dashboard.
//!
//! `EventSource` cannot send an `Authorization` header and a token must never sit in a URL,
//! so the login form posts the admin token once and gets an `HttpOnly; SameSite=Strict`
//! cookie that the browser sends by itself. Sessions live in memory (a restart logs everyone
//! out, which is fine for a single-box ops UI), expire, and are bounded in number.
//!
//! Cookies ride along on any request the browser makes, so state-changing requests that
//! authenticate by cookie must also carry the session's CSRF token in `X-Keel-CSRF` (which
//! only our own page can read, from the login answer) — see `auth::AdminAuth::authorize`.

use super::auth::AdminAuth;
use super::error::{ApiError, ApiJson};
use crate::config::DashboardConfig;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Name of the session cookie.
pub const COOKIE: &str = "keel_session";
/// Header carrying the per-session CSRF token on cookie-authenticated writes.
pub const CSRF_HEADER: &str = "x-keel-csrf";

/// What a valid session cookie stands for.
#[derive(Clone)]
pub struct Session {
    pub csrf: String,
    pub expires: Instant,
    /// RFC 3339 expiry, for the login answer.
    pub expires_at: String,
    created: Instant,
}

/// In-memory sessions keyed by the SHA-256 of the cookie value: a map lookup then leaks
/// nothing about a valid cookie through timing, and a memory dump holds no usable cookie.
pub struct SessionStore {
    ttl: Duration,
    max: usize,
    secure: bool,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
}

impl SessionStore {
    pub fn new(config: &DashboardConfig) -> Self {
        SessionStore {
            ttl: config.session_ttl,
            max: config.max_sessions.max(1),
            secure: config.secure_cookie,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// A new session: (cookie value, session). Drops expired sessions, then the oldest if
    /// the store is full.
    pub fn create(&self) -> (String, Session) {
        let id = random_token();
        let now = Instant::now();
        let session = Session {
            csrf: random_token(),
            expires: now + self.ttl,
            expires_at: crate::clock::unix_to_rfc3339(
                crate::clock::unix_now() + self.ttl.as_secs_f64(),
            ),
            created: now,
        };
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.expires > now);
        while map.len() >= self.max {
            let oldest = map.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| *k);
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert(digest(&id), session.clone());
        (id, session)
    }

    /// The live session for a cookie value, if any.
    pub fn get(&self, cookie: &str) -> Option<Session> {
        let key = digest(cookie);
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, cookie: &str) {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&digest(cookie));
    }

    fn set_cookie(&self, value: &str, max_age: Duration) -> String {
        format!(
            "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
            max_age.as_secs(),
            if self.secure { "; Secure" } else { "" }
        )
    }
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// 256 random bits, URL-safe base64 (cookie- and header-safe).
fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The session cookie's value in a request, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    token: String,
}

fn session_body(s: &Session) -> serde_json::Value {
    json!({"authenticated": true, "csrf_token": s.csrf, "expires_at": s.expires_at})
}

/// `POST /api/v1/session` `{"token": "<admin token>"}`: sets the session cookie and answers
/// the CSRF token the page must send on writes.
pub async fn login(
    State(auth): State<AdminAuth>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, ApiError> {
    if !auth.matches(&body.token) {
        tracing::warn!("dashboard login with a wrong admin token");
        return Err(ApiError::unauthorized("invalid admin token"));
    }
    let store = auth.sessions();
    let (id, session) = store.create();
    let cookie = store.set_cookie(&id, store.ttl);
    let mut resp = (StatusCode::OK, Json(session_body(&session))).into_response();
    let value = HeaderValue::from_str(&cookie)
        .map_err(|_| ApiError::internal("cannot build the session cookie"))?;
    resp.headers_mut().insert(header::SET_COOKIE, value);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET /api/v1/session`: whether the cookie is a live session, with its CSRF token (a page
/// reload loses the token from memory; another origin cannot read this answer).
pub async fn current(
    State(auth): State<AdminAuth>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = session_cookie(&headers)
        .and_then(|c| auth.sessions().get(c))
        .ok_or_else(|| ApiError::unauthorized("no session; log in"))?;
    let mut resp = Json(session_body(&session)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `DELETE /api/v1/session`: forgets the session and clears the cookie. Needs no CSRF
/// token: the worst a forged logout does is log the operator out.
pub async fn logout(State(auth): State<AdminAuth>, headers: HeaderMap) -> Response {
    let store = auth.sessions();
    if let Some(c) = session_cookie(&headers) {
        store.remove(c);
    }
    let mut resp = Json(json!({"authenticated": false})).into_response();
    if let Ok(v) = HeaderValue::from_str(&store.set_cookie("", Duration::ZERO)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_are_bounded() {
        let store = SessionStore::new(&DashboardConfig {
            max_sessions: 2,
            ..DashboardConfig::default()
        });
        let (a, _) = store.create();
        let (b, _) = store.create();
        let (c, sc) = store.create();
        assert!(store.get(&a).is_none(), "oldest dropped");
        assert!(store.get(&b).is_some());
        assert_eq!(store.get(&c).map(|s| s.csrf), Some(sc.csrf));
        store.remove(&b);
        assert!(store.get(&b).is_none());

        let short = SessionStore::new(&DashboardConfig {
            session_ttl: Duration::from_millis(1),
            ..DashboardConfig::default()
        });
        let (d, _) = short.create();
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.get(&d).is_none());
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; keel_session=xyz; b=2".parse().unwrap());
        assert_eq!(session_cookie(&h), Some("xyz"));
        h.insert(header::COOKIE, "keel_sessionx=1".parse().unwrap());
        assert_eq!(session_cookie(&h), None);
    }
}
