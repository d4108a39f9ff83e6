//! `TokenSource`: OAuth2 client-credentials tokens for one service-account profile.
//!
//! One token is cached (moka) and shared by every call. A cold cache is filled by a
//! single fetch however many callers wait (moka coalesces `try_get_with`). A token is
//! refreshed ahead of expiry by one background task while callers keep using the valid
//! one; if that refresh fails (Atlas limits the token endpoint to about 10 requests per
//! minute), it backs off and the still-valid token keeps serving. The hot path takes no
//! lock: a cache read and an atomic. It never logs the secret or the token.
use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime},
};

use moka::{future::Cache, ops::compute::Op, Expiry};
use serde::Deserialize;

use crate::{
    atlas::{
        error::excerpt,
        response::{describe_transport_error, read_capped},
        retry::parse_retry_after,
    },
    secret::Secret,
    telemetry::metrics as m,
};

use super::super::error::AtlasError;

/// A cached access token.
pub struct AccessToken {
    pub value: Secret,
    /// Atlas accepted this token at least once (answered anything but 401).
    proven: AtomicBool,
    expires_at: Instant,
    refresh_at: Instant,
    generation: u64,
}

/// Token-endpoint failures, shareable between coalesced waiters.
#[derive(Clone, Debug)]
enum TokenError {
    Rejected { status: u16, detail: String },
    Unavailable { detail: String },
    RateLimited { retry_after: Option<Duration> },
}

impl AccessToken {
    /// Records that Atlas accepted the token (any answer but 401).
    pub fn mark_accepted(&self) {
        if !self.proven.load(Ordering::Relaxed) {
            self.proven.store(true, Ordering::Relaxed);
        }
    }
}

impl From<&TokenError> for AtlasError {
    fn from(e: &TokenError) -> Self {
        match e.clone() {
            TokenError::Rejected { status, detail } => {
                AtlasError::CredentialsRejected { status, detail }
            }
            TokenError::Unavailable { detail } => AtlasError::TokenEndpointUnavailable { detail },
            TokenError::RateLimited { retry_after } => {
                AtlasError::TokenEndpointRateLimited { retry_after }
            }
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

/// Evicts a token a little before it expires (clock skew between us and Atlas).
struct EvictBeforeExpiry;

impl Expiry<(), Arc<AccessToken>> for EvictBeforeExpiry {
    fn expire_after_create(&self, _: &(), v: &Arc<AccessToken>, now: Instant) -> Option<Duration> {
        Some(v.expires_at.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _: &(),
        v: &Arc<AccessToken>,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.expires_at.saturating_duration_since(now))
    }
}

/// Service-account token source for one profile.
pub struct TokenSource {
    http: reqwest::Client,
    /// Shared so the per-call metric label is a reference count, not a copy.
    profile: Arc<str>,
    token_url: String,
    client_id: String,
    client_secret: Secret,
    cache: Cache<(), Arc<AccessToken>>,
    refreshing: AtomicBool,
    refresh_not_before: Mutex<Option<Instant>>,
    last_forced_refresh: Mutex<Option<Instant>>,
    generation: AtomicU64,
}

/// How long a failed background refresh waits before the next try when Atlas gives no
/// `Retry-After` (the token endpoint allows ~10 requests per minute).
const REFRESH_BACKOFF: Duration = Duration::from_secs(10);
/// Least time between two refreshes forced by a 401 (Atlas allows ~10 token requests a
/// minute; at most 6 of them go to 401 recovery).
const FORCED_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
const TOKEN_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TOKEN_BODY: usize = 64 * 1024;

impl TokenSource {
    pub fn new(
        http: reqwest::Client,
        profile: &str,
        token_url: &str,
        client_id: &str,
        client_secret: Secret,
    ) -> Arc<Self> {
        Arc::new(Self {
            http,
            profile: Arc::from(profile),
            token_url: token_url.to_string(),
            client_id: client_id.to_string(),
            client_secret,
            cache: Cache::builder()
                .max_capacity(1)
                .expire_after(EvictBeforeExpiry)
                .build(),
            refreshing: AtomicBool::new(false),
            refresh_not_before: Mutex::new(None),
            last_forced_refresh: Mutex::new(None),
            generation: AtomicU64::new(0),
        })
    }

    /// A valid token: cached, or fetched once for all concurrent callers.
    pub async fn token(self: &Arc<Self>) -> Result<Arc<AccessToken>, AtlasError> {
        if let Some(token) = self.cache.get(&()).await {
            m::token_cache_hit(&self.profile);
            if Instant::now() >= token.refresh_at {
                self.refresh_in_background();
            }
            return Ok(token);
        }
        self.cache
            .try_get_with((), self.fetch())
            .await
            .map_err(|e| AtlasError::from(e.as_ref()))
    }

    /// Atlas answered 401 to `rejected`: drops it so the next call fetches a new one, and
    /// returns whether a retry may use a newer token. Many calls failing with the same
    /// token cause one new fetch, not many. A token Atlas once accepted (revoked or
    /// expired early since) is always replaced; one it never accepted is replaced at most
    /// once per [`FORCED_REFRESH_INTERVAL`], so a 401 that a new token cannot cure (a
    /// permissions errorCode) never turns into a token request per call.
    pub async fn invalidate(&self, rejected: &AccessToken) -> bool {
        let generation = rejected.generation;
        if self
            .cache
            .get(&())
            .await
            .is_none_or(|current| current.generation != generation)
        {
            return true; // already replaced or being refetched
        }
        {
            let mut last = self.last_forced_refresh.lock().expect("not poisoned");
            let proven = rejected.proven.load(Ordering::Relaxed);
            if !proven && last.is_some_and(|t| t.elapsed() < FORCED_REFRESH_INTERVAL) {
                return false;
            }
            *last = Some(Instant::now());
        }
        self.cache
            .entry(())
            .and_compute_with(|entry| async move {
                match entry {
                    Some(e) if e.value().generation == generation => Op::Remove,
                    _ => Op::Nop,
                }
            })
            .await;
        true
    }

    fn refresh_in_background(self: &Arc<Self>) {
        let now = Instant::now();
        if let Some(not_before) = *self.refresh_not_before.lock().expect("not poisoned") {
            if now < not_before {
                return;
            }
        }
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            match this.fetch().await {
                Ok(token) => this.cache.insert((), token).await,
                Err(e) => {
                    let wait = match &e {
                        TokenError::RateLimited { retry_after } => {
                            retry_after.unwrap_or(REFRESH_BACKOFF).max(REFRESH_BACKOFF)
                        }
                        _ => REFRESH_BACKOFF,
                    };
                    tracing::warn!(profile = %this.profile, error = ?e, retry_in_ms = wait.as_millis() as u64,
                        "token refresh failed; still serving the cached token");
                    *this.refresh_not_before.lock().expect("not poisoned") =
                        Some(Instant::now() + wait);
                }
            }
            this.refreshing.store(false, Ordering::Release);
        });
    }

    async fn fetch(&self) -> Result<Arc<AccessToken>, TokenError> {
        let started = Instant::now();
        let result = self.request_token().await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(TokenError::Rejected { .. }) => "rejected",
            Err(TokenError::RateLimited { .. }) => "rate_limited",
            Err(TokenError::Unavailable { .. }) => "unavailable",
        };
        m::token_fetch(&self.profile, outcome, started.elapsed());
        tracing::debug!(profile = %self.profile, outcome, elapsed_ms = started.elapsed().as_millis() as u64, "token fetch");
        result
    }

    async fn request_token(&self) -> Result<Arc<AccessToken>, TokenError> {
        let unavailable = |detail: String| TokenError::Unavailable { detail };
        let resp = self
            .http
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body("grant_type=client_credentials")
            .timeout(TOKEN_FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| unavailable(describe_transport_error(&e)))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = read_capped(resp, MAX_TOKEN_BODY)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        match status {
            200 => {
                let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
                    unavailable("the token endpoint answered 200 without an access_token".into())
                })?;
                Ok(Arc::new(self.new_token(parsed)))
            }
            400 | 401 | 403 => Err(TokenError::Rejected {
                status,
                detail: oauth_error(&body),
            }),
            429 => Err(TokenError::RateLimited { retry_after }),
            _ => Err(unavailable(format!(
                "token endpoint answered HTTP {status}"
            ))),
        }
    }

    fn new_token(&self, t: TokenResponse) -> AccessToken {
        let now = Instant::now();
        // Atlas tokens live one hour; assume that when expires_in is missing.
        let lifetime = Duration::from_secs(t.expires_in.unwrap_or(3600).max(1));
        // Stop using a token a little early (skew), refresh ahead by 10% (at most 60 s).
        let skew = (lifetime / 20).min(Duration::from_secs(5));
        let margin = (lifetime / 10).min(Duration::from_secs(60));
        AccessToken {
            value: Secret::new(t.access_token),
            proven: AtomicBool::new(false),
            expires_at: now + lifetime - skew,
            refresh_at: now + lifetime - skew - margin,
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }
}

/// The RFC 6749 `error` code (e.g. `invalid_client`) from a token-endpoint refusal.
fn oauth_error(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
    }
    match serde_json::from_slice::<OAuthError>(body) {
        Ok(e) => excerpt(e.error.as_bytes()),
        Err(_) => "the token endpoint refused the client credentials".into(),
    }
}
