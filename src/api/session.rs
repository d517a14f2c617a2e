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
use super::error::{ApiError, ApiJson, ErrorBody};
use crate::config::DashboardConfig;
use crate::store::{Store, StoreError};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use cookie::{Cookie, SameSite};
use redb::{ReadableTable, TableDefinition};
use serde::Deserialize;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use utoipa::ToSchema;

/// Name of the session cookie.
pub(crate) const COOKIE: &str = "keel_session";
/// The session route: `POST` logs in with the admin token.
pub(crate) const LOGIN_PATH: &str = "/api/v1/session";
/// Header carrying the per-session CSRF token on cookie-authenticated writes.
pub(crate) const CSRF_HEADER: &str = "x-keel-csrf";

/// What a valid session cookie stands for.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    pub csrf: String,
    /// Wall-clock expiry (Unix seconds): sessions outlive a restart, `Instant`s do not.
    pub expires_unix: f64,
    created_unix: f64,
}

impl Session {
    fn live(&self) -> bool {
        self.expires_unix > crate::clock::unix_now()
    }
}

/// Sessions by cookie-value SHA-256 (redb key; JSON value).
const TABLE: TableDefinition<&[u8], &str> = TableDefinition::new("dashboard_sessions");

/// Sessions keyed by the SHA-256 of the cookie value: a map lookup then leaks nothing about
/// a valid cookie through timing, and neither memory nor the store holds a usable cookie.
/// With a store they are persisted, so a restart of keel does not log operators out (the
/// dashboard reconnects by itself); lookups are served from memory.
pub struct SessionStore {
    ttl: Duration,
    max: usize,
    secure: bool,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    store: Option<Store>,
}

impl SessionStore {
    /// Sessions in memory only (tests, embedders without a store).
    pub fn new(config: &DashboardConfig) -> Self {
        SessionStore {
            ttl: config.session_ttl,
            max: config.max_sessions.max(1),
            secure: config.secure_cookie,
            sessions: Mutex::new(HashMap::new()),
            store: None,
        }
    }

    /// Sessions persisted in the store; loads the live ones.
    pub fn persistent(config: &DashboardConfig, store: Store) -> Result<Self, StoreError> {
        let mut loaded = HashMap::new();
        {
            let txn = store.begin_write()?;
            {
                let mut table = txn.open_table(TABLE)?;
                let mut expired = Vec::new();
                for entry in table.iter()? {
                    let (k, v) = entry?;
                    let key: Option<[u8; 32]> = k.value().try_into().ok();
                    match (key, serde_json::from_str::<Session>(v.value())) {
                        (Some(key), Ok(s)) if s.live() => {
                            loaded.insert(key, s);
                        }
                        _ => expired.push(k.value().to_vec()),
                    }
                }
                for k in expired {
                    table.remove(k.as_slice())?;
                }
            }
            txn.commit()?;
        }
        let mut s = SessionStore::new(config);
        *s.sessions.get_mut().unwrap_or_else(|p| p.into_inner()) = loaded;
        s.store = Some(store);
        Ok(s)
    }

    /// A new session: (cookie value, session). Drops expired sessions, then the oldest if
    /// the store is full.
    pub async fn create(&self) -> Result<(String, Session), StoreError> {
        let id = random_token();
        let now = crate::clock::unix_now();
        let session = Session {
            csrf: random_token(),
            expires_unix: now + self.ttl.as_secs_f64(),
            created_unix: now,
        };
        let mut dropped = Vec::new();
        {
            let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|k, s| {
                s.live() || {
                    dropped.push(*k);
                    false
                }
            });
            while map.len() >= self.max {
                let oldest = map
                    .iter()
                    .min_by(|a, b| a.1.created_unix.total_cmp(&b.1.created_unix))
                    .map(|(k, _)| *k);
                let Some(k) = oldest else { break };
                map.remove(&k);
                dropped.push(k);
            }
            map.insert(digest(&id), session.clone());
        }
        if let Some(store) = &self.store {
            let key = digest(&id);
            let value = serde_json::to_string(&session)?;
            store
                .write(move |txn| {
                    let mut table = txn.open_table(TABLE)?;
                    for k in &dropped {
                        table.remove(k.as_slice())?;
                    }
                    table.insert(key.as_slice(), value.as_str())?;
                    Ok(())
                })
                .await?;
        }
        Ok((id, session))
    }

    /// The live session for a cookie value, if any.
    pub fn get(&self, cookie: &str) -> Option<Session> {
        let key = digest(cookie);
        let map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&key).filter(|s| s.live()).cloned()
    }

    pub async fn remove(&self, cookie: &str) -> Result<(), StoreError> {
        let key = digest(cookie);
        let known = {
            let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            map.remove(&key).is_some()
        };
        if let (true, Some(store)) = (known, &self.store) {
            store
                .write(move |txn| {
                    txn.open_table(TABLE)?.remove(key.as_slice())?;
                    Ok(())
                })
                .await?;
        }
        Ok(())
    }

    fn set_cookie(&self, value: &str, max_age: Duration) -> String {
        let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        Cookie::build((COOKIE, value))
            .http_only(true)
            .same_site(SameSite::Strict)
            .path("/")
            .max_age(time::Duration::seconds(max_age))
            .secure(self.secure)
            .to_string()
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

/// The session cookie's value in a request, if any (every `Cookie` header, RFC 6265
/// pairs; a malformed pair is skipped).
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .and_then(|c| c.value_raw())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"token": "<admin token>"})))]
pub(crate) struct Login {
    /// The admin token.
    token: String,
}

/// The answer of a login and of `GET /api/v1/session`; a logout answers only
/// `authenticated: false`.
#[derive(Serialize, ToSchema)]
#[schema(examples(json!({"authenticated": true, "csrf_token": "dGhpcyBpcyBub3QgYSByZWFsIHRva2Vu",
    "expires_at": "2025-10-06T04:30:00Z"})))]
pub(crate) struct SessionBody {
    authenticated: bool,
    /// Send it as `X-Keel-CSRF` on requests that change state.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
}

fn session_body(s: &Session) -> SessionBody {
    SessionBody {
        authenticated: true,
        csrf_token: Some(s.csrf.clone()),
        expires_at: Some(crate::clock::unix_to_rfc3339(s.expires_unix)),
    }
}

/// Log in
///
/// Exchanges the admin token for an `HttpOnly; SameSite=Strict` session cookie
/// (`keel_session`), and answers the CSRF token the page must send on writes.
#[utoipa::path(post, path = "/api/v1/session", tag = "dashboard",
    request_body = Login,
    responses(
        (status = 200, description = "Logged in; `Set-Cookie` carries the session.", body = SessionBody),
        (status = 400, description = "Bad JSON or an unknown field.", body = ErrorBody),
        (status = 401, description = "Wrong admin token.", body = ErrorBody),
    ))]
pub(crate) async fn login(
    State(auth): State<AdminAuth>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, ApiError> {
    if !auth.matches(&body.token) {
        tracing::warn!("dashboard login with a wrong admin token");
        return Err(ApiError::unauthorized("invalid admin token"));
    }
    let store = auth.sessions();
    let (id, session) = store.create().await?;
    let cookie = store.set_cookie(&id, store.ttl);
    let mut resp = (StatusCode::OK, Json(session_body(&session))).into_response();
    let value = HeaderValue::from_str(&cookie)
        .map_err(|_| ApiError::internal("cannot build the session cookie"))?;
    resp.headers_mut().insert(header::SET_COOKIE, value);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Current session
///
/// Whether the cookie is a live session, with its CSRF token (a page reload loses the token
/// from memory; another origin cannot read this answer).
#[utoipa::path(get, path = "/api/v1/session", tag = "dashboard",
    security(("session" = [])),
    responses(
        (status = 200, description = "A live session.", body = SessionBody),
        (status = 401, description = "No live session.", body = ErrorBody),
    ))]
pub(crate) async fn current(
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

/// Log out
///
/// Forgets the session and clears the cookie. Needs no CSRF token: the worst a forged
/// logout does is log the operator out.
#[utoipa::path(delete, path = "/api/v1/session", tag = "dashboard",
    security((), ("session" = [])),
    responses(
        (status = 200, description = "Logged out.", body = SessionBody,
            example = json!({"authenticated": false})),
    ))]
pub(crate) async fn logout(
    State(auth): State<AdminAuth>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let store = auth.sessions();
    if let Some(c) = session_cookie(&headers) {
        store.remove(c).await?;
    }
    let mut resp = Json(SessionBody {
        authenticated: false,
        csrf_token: None,
        expires_at: None,
    })
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&store.set_cookie("", Duration::ZERO)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_expire_are_bounded_and_survive_a_restart() {
        let store = SessionStore::new(&DashboardConfig {
            max_sessions: 2,
            ..DashboardConfig::default()
        });
        let (a, _) = store.create().await.unwrap();
        let (b, _) = store.create().await.unwrap();
        let (c, sc) = store.create().await.unwrap();
        assert!(store.get(&a).is_none(), "oldest dropped");
        assert!(store.get(&b).is_some());
        assert_eq!(store.get(&c).map(|s| s.csrf), Some(sc.csrf));
        store.remove(&b).await.unwrap();
        assert!(store.get(&b).is_none());

        let short = SessionStore::new(&DashboardConfig {
            session_ttl: Duration::from_millis(1),
            ..DashboardConfig::default()
        });
        let (d, _) = short.create().await.unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.get(&d).is_none());

        let dir = tempfile::tempdir().unwrap();
        let cfg = DashboardConfig::default();
        let (kept, gone) = {
            let db = Store::open(dir.path()).unwrap();
            let persisted = SessionStore::persistent(&cfg, db).unwrap();
            let (kept, _) = persisted.create().await.unwrap();
            let (gone, _) = persisted.create().await.unwrap();
            persisted.remove(&gone).await.unwrap();
            (kept, gone)
        };
        let reopened = SessionStore::persistent(&cfg, Store::open(dir.path()).unwrap()).unwrap();
        assert!(reopened.get(&kept).is_some());
        assert!(reopened.get(&gone).is_none());
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; keel_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(session_cookie(&h), Some("xyz"));
        h.insert(header::COOKIE, "keel_sessionx=1".parse().unwrap());
        assert_eq!(session_cookie(&h), None);
    }
}
