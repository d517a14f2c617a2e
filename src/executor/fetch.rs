//! The HTTP side of the `fetch` global: one shared reqwest client whose DNS resolver enforces
//! the [`NetworkPolicy`], manual redirects (each hop re-checked), and size/time limits.
//!
//! Bodies are bytes end to end; answers in gzip, deflate or br are decompressed (reqwest
//! asks for them and decodes them, like Node's fetch), and the size limit applies to the
//! decompressed bytes, so a compression bomb stops at `max_response_size`.
//!
//! Runs on the Tokio runtime; isolate threads only send a request and later receive the
//! outcome through their event loop, so no V8 thread ever blocks on the network.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::policy::{NetworkPolicy, PolicyError};
use crate::config::FetchConfig;

/// A request as the JS side described it.
#[derive(Debug, Clone)]
pub(crate) struct FetchRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// Already capped by the execution's remaining time.
    pub timeout: Duration,
    /// `redirect: 'manual'`: hand 3xx responses back instead of following them.
    pub manual_redirect: bool,
}

/// A fully read response.
#[derive(Debug, Clone)]
pub(crate) struct FetchResponse {
    pub status: u16,
    pub status_text: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// The body as received (decompressed when the server sent gzip, deflate or br).
    pub body: Vec<u8>,
    pub redirected: bool,
}

/// Why a fetch failed; surfaces in JS as a rejected promise (`TypeError`, or `TimeoutError`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("fetch refused by network policy: {0}")]
    Policy(#[from] PolicyError),
    #[error("invalid URL {0:?}")]
    InvalidUrl(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("fetch timed out after {0:?}")]
    Timeout(Duration),
    #[error("response body larger than executor.fetch.max_response_size ({0} bytes)")]
    TooLarge(usize),
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    #[error("fetch failed: {0}")]
    Network(String),
}

impl FetchError {
    /// The JS error name the rejection carries.
    pub(crate) fn js_name(&self) -> &'static str {
        match self {
            FetchError::Timeout(_) => "TimeoutError",
            _ => "TypeError",
        }
    }
}

/// Resolver that drops every address the policy denies; if none is left the lookup fails
/// with the policy error, which [`Fetcher::fetch`] digs out of reqwest's error chain.
struct PolicyResolver {
    policy: Arc<NetworkPolicy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_err = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match policy.check_addr(&host, a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        first_err.get_or_insert(e);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> = match first_err {
                    Some(e) => Box::new(e),
                    None => format!("{host}: no addresses").into(),
                };
                return Err(err);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Shared by all isolates.
pub(crate) struct Fetcher {
    client: reqwest::Client,
    policy: Arc<NetworkPolicy>,
    max_response_size: usize,
    max_request_size: usize,
    max_redirects: usize,
    default_timeout: Duration,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("policy", &self.policy)
            .finish()
    }
}

impl Fetcher {
    pub(crate) fn new(cfg: &FetchConfig) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(NetworkPolicy::from_config(cfg));
        let client = reqwest::Client::builder()
            // Proxies from the environment would connect on our behalf to addresses we
            // never checked.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(PolicyResolver {
                policy: policy.clone(),
            }))
            .connect_timeout(cfg.timeout)
            .pool_max_idle_per_host(4)
            .user_agent(concat!("keel-executor/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            policy,
            max_response_size: cfg.max_response_size,
            max_request_size: cfg.max_request_size,
            max_redirects: cfg.max_redirects,
            default_timeout: cfg.timeout,
        })
    }

    /// The configured per-fetch time limit.
    pub(crate) fn default_timeout(&self) -> Duration {
        self.default_timeout
    }

    /// The largest request body sent (checked again before the request is built).
    pub(crate) fn max_request_size(&self) -> usize {
        self.max_request_size
    }

    /// Performs the request, following redirects by hand, within `req.timeout`.
    pub(crate) async fn fetch(&self, req: FetchRequest) -> Result<FetchResponse, FetchError> {
        let limit = req.timeout;
        match tokio::time::timeout(limit, self.fetch_inner(req)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(limit)),
        }
    }

    async fn fetch_inner(&self, req: FetchRequest) -> Result<FetchResponse, FetchError> {
        let mut url =
            url::Url::parse(&req.url).map_err(|_| FetchError::InvalidUrl(req.url.clone()))?;
        let mut method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| FetchError::InvalidRequest(format!("bad method {:?}", req.method)))?;
        if req
            .body
            .as_ref()
            .is_some_and(|b| b.len() > self.max_request_size)
        {
            return Err(FetchError::InvalidRequest(format!(
                "request body larger than executor.fetch.max_request_size ({} bytes)",
                self.max_request_size
            )));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &req.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| FetchError::InvalidRequest(format!("bad header name {k:?}")))?;
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| FetchError::InvalidRequest(format!("bad value for header {k}")))?;
            headers.append(name, value);
        }
        let mut body = req.body;
        let mut redirected = false;
        for _hop in 0..=self.max_redirects {
            self.policy.check_url(&url)?;
            let mut rb = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(b) = &body {
                rb = rb.body(b.clone());
            }
            let resp = rb.send().await.map_err(|e| classify(&e))?;
            let status = resp.status();
            if status.is_redirection() && !req.manual_redirect {
                if let Some(loc) = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                {
                    let next = url
                        .join(loc)
                        .map_err(|_| FetchError::InvalidUrl(loc.to_string()))?;
                    if next.origin() != url.origin() {
                        // Credentials are for the origin they were written for.
                        headers.remove(reqwest::header::AUTHORIZATION);
                        headers.remove(reqwest::header::COOKIE);
                    }
                    if status == reqwest::StatusCode::SEE_OTHER
                        || ((status == reqwest::StatusCode::MOVED_PERMANENTLY
                            || status == reqwest::StatusCode::FOUND)
                            && method == reqwest::Method::POST)
                    {
                        method = reqwest::Method::GET;
                        body = None;
                        headers.remove(reqwest::header::CONTENT_TYPE);
                        headers.remove(reqwest::header::CONTENT_LENGTH);
                    }
                    url = next;
                    redirected = true;
                    continue;
                }
            }
            return self.read(resp, redirected).await;
        }
        Err(FetchError::TooManyRedirects(self.max_redirects))
    }

    async fn read(
        &self,
        mut resp: reqwest::Response,
        redirected: bool,
    ) -> Result<FetchResponse, FetchError> {
        if resp
            .content_length()
            .is_some_and(|n| n as usize > self.max_response_size)
        {
            return Err(FetchError::TooLarge(self.max_response_size));
        }
        let status = resp.status();
        let url = resp.url().to_string();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&e))? {
            if buf.len() + chunk.len() > self.max_response_size {
                return Err(FetchError::TooLarge(self.max_response_size));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(FetchResponse {
            status: status.as_u16(),
            status_text: status.canonical_reason().unwrap_or("").to_string(),
            url,
            headers,
            body: buf,
            redirected,
        })
    }
}

/// Finds a policy refusal raised inside the resolver; otherwise a plain network error.
fn classify(e: &reqwest::Error) -> FetchError {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(p) = s.downcast_ref::<PolicyError>() {
            return FetchError::Policy(p.clone());
        }
        src = s.source();
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    FetchError::Network(msg)
}
