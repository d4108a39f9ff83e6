//! `TokenSource`: OAuth2 client-credentials tokens for one service-account profile.
//!
//! One token is cached (moka) and shared by every call. A cold cache is filled by a
//! single fetch however many callers wait (moka coalesces `try_get_with`). A token is
//! refreshed ahead of expiry by one background task while callers keep using the valid
//! one; if that refresh fails (Atlas limits the token endpoint to about 10 requests per
//! minute), it backs off and the still-valid token keeps serving. A failed fetch is
//! remembered: until its cooldown passes (`Retry-After` or 60 s after a 429 or the token
//! cap, a short jittered pause otherwise) callers without a valid token get the same
//! error and no token request is sent. The hot path reads the held token (`held`: one
//! uncontended read lock, no await) and an atomic. It never logs the secret or the token, and no panic can leave the refresh
//! flag set (a drop guard clears it).
//!
//! With a shared store the token is the fleet's (`fleet`); without one, tokens this
//! process minted are revoked when it stops (`revoke`).
mod fleet;
mod held;
mod revoke;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::{Duration, Instant, SystemTime},
};

use moka::{future::Cache, ops::compute::Op, Expiry};
use reqwest::{
    header::{HeaderValue, AUTHORIZATION},
    RequestBuilder,
};

use crate::{
    atlas::{
        response::{describe_transport_error, read_capped},
        retry::parse_retry_after,
    },
    secret::Secret,
    store::token::TokenSlot,
    telemetry::metrics as m,
};

use super::{
    super::error::AtlasError,
    token_response::{parse_issued, parse_refusal, Issued, Refusal},
};

/// A cached access token.
pub struct AccessToken {
    /// The bearer token (redacted in Debug and logs).
    pub value: Secret,
    /// Atlas accepted this token at least once (answered anything but 401).
    proven: AtomicBool,
    expires_at: Instant,
    refresh_at: Instant,
    generation: u64,
    /// The sealed value in the shared store, when the token is the fleet's: what a 401
    /// compares before dropping it there.
    shared: OnceLock<Vec<u8>>,
    /// `Bearer <value>` as a sensitive header value, built once instead of per call
    /// (`None`: the value cannot be a header; the request then fails as it would have).
    bearer: Option<HeaderValue>,
}

/// Token-endpoint failures, shareable between coalesced waiters.
#[derive(Clone, Debug)]
enum TokenError {
    Rejected {
        status: u16,
        detail: String,
    },
    /// The service account holds Atlas's maximum of active tokens.
    LimitReached,
    Unavailable {
        detail: String,
    },
    RateLimited {
        retry_after: Option<Duration>,
    },
}

/// A token-endpoint failure remembered until `until`: no token request before then.
struct Cooldown {
    until: Instant,
    error: TokenError,
}

impl AccessToken {
    fn new(
        value: String,
        expires_at: Instant,
        refresh_at: Instant,
        generation: u64,
        shared: OnceLock<Vec<u8>>,
    ) -> Self {
        let bearer = HeaderValue::try_from(format!("Bearer {value}"))
            .ok()
            .map(|mut h| {
                h.set_sensitive(true);
                h
            });
        AccessToken {
            value: Secret::new(value),
            proven: AtomicBool::new(false),
            expires_at,
            refresh_at,
            generation,
            shared,
            bearer,
        }
    }

    /// Adds the token to `http` as `Authorization: Bearer`.
    pub fn authorize(&self, http: RequestBuilder) -> RequestBuilder {
        match &self.bearer {
            Some(h) => http.header(AUTHORIZATION, h.clone()),
            None => http.bearer_auth(self.value.expose()),
        }
    }

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
            TokenError::LimitReached => AtlasError::TokenLimitReached {
                retry_after: TOKEN_LIMIT_COOLDOWN,
            },
            TokenError::Unavailable { detail } => AtlasError::TokenEndpointUnavailable { detail },
            TokenError::RateLimited { retry_after } => {
                AtlasError::TokenEndpointRateLimited { retry_after }
            }
        }
    }
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
    revoke_url: String,
    client_id: String,
    client_secret: Secret,
    cache: Cache<(), Arc<AccessToken>>,
    /// The cache's current token, as every call reads it.
    held: held::Held,
    refreshing: AtomicBool,
    cooldown: Mutex<Option<Cooldown>>,
    refresh_not_before: Mutex<Option<Instant>>,
    last_forced_refresh: Mutex<Option<Instant>>,
    generation: AtomicU64,
    /// The profile's token entries in the shared store (fleet mode).
    slot: Option<TokenSlot>,
    /// Unexpired tokens minted here and not shared, revoked at a graceful stop.
    minted: Mutex<Vec<(Secret, Instant)>>,
}

/// Where one profile's tokens come from and go.
pub struct Endpoints<'a> {
    /// The profile's name (logs, metrics).
    pub profile: &'a str,
    /// The OAuth token endpoint.
    pub token_url: &'a str,
    /// The RFC 7009 revocation endpoint.
    pub revoke_url: &'a str,
}

/// How long a failed background refresh waits before the next try when Atlas gives no
/// `Retry-After` (the token endpoint allows ~10 requests per minute).
const REFRESH_BACKOFF: Duration = Duration::from_secs(10);
/// Least time between two refreshes forced by a 401 (Atlas allows ~10 token requests a
/// minute; at most 6 of them go to 401 recovery).
const FORCED_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// How long callers are answered from memory after a 429 without `Retry-After`: Atlas
/// counts token requests per minute.
const RATE_LIMIT_COOLDOWN: Duration = Duration::from_secs(60);
/// After the token cap (100 active tokens): asking again within a minute cannot help.
const TOKEN_LIMIT_COOLDOWN: Duration = Duration::from_secs(60);
/// After any other failure (5xx, unreachable, refused): a short pause, jittered up to
/// twice as long so a fleet that failed together does not ask again together.
const FAILURE_SPACING: Duration = Duration::from_secs(1);
/// How soon a replica looks again for the token a peer is refreshing.
const PEER_REFRESH_RECHECK: Duration = Duration::from_secs(1);
const TOKEN_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TOKEN_BODY: usize = 64 * 1024;

impl TokenSource {
    /// A token source for one profile; the first token is fetched on first use.
    pub fn new(
        http: reqwest::Client,
        endpoints: Endpoints<'_>,
        client_id: &str,
        client_secret: Secret,
        slot: Option<TokenSlot>,
    ) -> Arc<Self> {
        Arc::new(Self {
            http,
            profile: Arc::from(endpoints.profile),
            token_url: endpoints.token_url.to_string(),
            revoke_url: endpoints.revoke_url.to_string(),
            client_id: client_id.to_string(),
            client_secret,
            cache: Cache::builder()
                .max_capacity(1)
                .expire_after(EvictBeforeExpiry)
                .build(),
            held: held::Held::default(),
            refreshing: AtomicBool::new(false),
            cooldown: Mutex::new(None),
            refresh_not_before: Mutex::new(None),
            last_forced_refresh: Mutex::new(None),
            generation: AtomicU64::new(0),
            slot,
            minted: Mutex::new(Vec::new()),
        })
    }

    /// A valid token: the held one, or fetched once for all concurrent callers (waiting
    /// for it at most until `deadline`).
    pub async fn token(
        self: &Arc<Self>,
        deadline: Instant,
    ) -> Result<Arc<AccessToken>, AtlasError> {
        let now = Instant::now();
        if let Some(token) = self.held.get(now) {
            m::token_cache_hit(&self.profile);
            if now >= token.refresh_at {
                self.refresh_in_background(&token);
            }
            return Ok(token);
        }
        // Boxed: the fetch (a whole HTTP exchange) and its timer would otherwise make
        // every call's future larger, and every call pays for moving it.
        Box::pin(tokio::time::timeout_at(
            deadline.into(),
            self.fetch_shared(),
        ))
        .await
        .map_err(|_| AtlasError::Timeout)?
    }

    /// The cold path of [`Self::token`]: no cached token.
    async fn fetch_shared(self: &Arc<Self>) -> Result<Arc<AccessToken>, AtlasError> {
        if let Some(remembered) = self.cooling_down() {
            return Err(AtlasError::from(&remembered));
        }
        let token = self
            .cache
            .try_get_with((), self.obtain())
            .await
            .map_err(|e| AtlasError::from(e.as_ref()))?;
        self.held.publish(&token);
        Ok(token)
    }

    /// Atlas answered 401 to `rejected`: drops it so the next call fetches a new one, and
    /// returns whether a retry may use a newer token. Many calls failing with the same
    /// token cause one new fetch, not many. A token Atlas once accepted (revoked or
    /// expired early since) is always replaced; one it never accepted is replaced at most
    /// once per `FORCED_REFRESH_INTERVAL`, so a 401 that a new token cannot cure (a
    /// permissions errorCode) never turns into a token request per call.
    pub async fn invalidate(&self, rejected: &AccessToken) -> bool {
        let generation = rejected.generation;
        if self
            .cache
            .get(&())
            .await
            .is_none_or(|current| current.generation != generation)
        {
            self.held.reject(generation);
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
        self.held.reject(generation);
        self.cache
            .entry(())
            .and_compute_with(|entry| async move {
                match entry {
                    Some(e) if e.value().generation == generation => Op::Remove,
                    _ => Op::Nop,
                }
            })
            .await;
        if let (Some(slot), Some(sealed)) = (&self.slot, rejected.shared.get()) {
            // Compare-and-delete: a storm of 401s on one token drops it once, fleet-wide.
            let _ = slot.invalidate(sealed).await;
        }
        true
    }

    /// A token for a cold cache: the fleet's with a store, else a fetch of our own.
    async fn obtain(&self) -> Result<Arc<AccessToken>, TokenError> {
        match &self.slot {
            Some(slot) => self.obtain_shared(slot).await,
            None => self.fetch().await,
        }
    }

    /// A refreshed token; `None` when a peer is refreshing the fleet's (look again soon).
    async fn refresh(&self, current: &AccessToken) -> Result<Option<Arc<AccessToken>>, TokenError> {
        match &self.slot {
            Some(slot) => self.refresh_shared(slot, current).await,
            None => self.fetch().await.map(Some),
        }
    }

    fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn refresh_in_background(self: &Arc<Self>, current: &Arc<AccessToken>) {
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
        let old = Arc::clone(current);
        tokio::spawn(async move {
            let _clear = ClearOnDrop(&this.refreshing);
            match this.refresh(&old).await {
                Ok(Some(token)) => {
                    this.cache.insert((), Arc::clone(&token)).await;
                    this.held.publish(&token);
                    this.retire(old);
                }
                Ok(None) => {
                    *this.refresh_not_before.lock().expect("not poisoned") =
                        Some(Instant::now() + PEER_REFRESH_RECHECK);
                }
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
        });
    }

    /// The remembered failure, while its cooldown lasts (a 429's remaining wait).
    fn cooling_down(&self) -> Option<TokenError> {
        let cooldown = self.cooldown.lock().expect("not poisoned");
        let c = cooldown.as_ref()?;
        let left = c.until.checked_duration_since(Instant::now())?;
        Some(match &c.error {
            TokenError::RateLimited { .. } => TokenError::RateLimited {
                retry_after: Some(left),
            },
            other => other.clone(),
        })
    }

    /// Remembers a failed fetch so the next callers do not ask again at once.
    fn remember(&self, error: &TokenError) {
        let wait =
            pause_for(error).unwrap_or_else(|| FAILURE_SPACING.mul_f64(1.0 + fastrand::f64()));
        *self.cooldown.lock().expect("not poisoned") = Some(Cooldown {
            until: Instant::now() + wait,
            error: error.clone(),
        });
    }

    async fn fetch(&self) -> Result<Arc<AccessToken>, TokenError> {
        let started = Instant::now();
        let result = self.request_token().await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(TokenError::Rejected { .. }) => "rejected",
            Err(TokenError::LimitReached) => "token_limit",
            Err(TokenError::RateLimited { .. }) => "rate_limited",
            Err(TokenError::Unavailable { .. }) => "unavailable",
        };
        m::token_fetch(&self.profile, outcome, started.elapsed());
        tracing::debug!(profile = %self.profile, outcome, elapsed_ms = started.elapsed().as_millis() as u64, "token fetch");
        match &result {
            Ok(token) => self.remember_minted(token),
            Err(e) => self.remember(e),
        }
        result
    }

    async fn request_token(&self) -> Result<Arc<AccessToken>, TokenError> {
        let unavailable = |detail: String| TokenError::Unavailable { detail };
        let resp = self
            .client_post(&self.token_url, "grant_type=client_credentials".into())
            .header(reqwest::header::ACCEPT, "application/json")
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
                let issued = parse_issued(&body).map_err(|e| unavailable(e.into()))?;
                self.new_token(issued).map(Arc::new)
            }
            400 | 401 | 403 => Err(match parse_refusal(status, &body) {
                Refusal::TokenLimitReached => TokenError::LimitReached,
                Refusal::Credentials { error } => TokenError::Rejected {
                    status,
                    detail: error,
                },
            }),
            429 => Err(TokenError::RateLimited { retry_after }),
            _ => Err(unavailable(format!(
                "token endpoint answered HTTP {status}"
            ))),
        }
    }

    /// A form POST to the OAuth service (token, revoke) with HTTP Basic client auth.
    fn client_post(&self, url: &str, body: String) -> reqwest::RequestBuilder {
        self.http
            .post(url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
    }

    /// The cached form of a token; `lifetime` is already clamped, and the arithmetic is
    /// checked anyway (an `Instant` near the end of its range must not panic).
    fn new_token(&self, t: Issued) -> Result<AccessToken, TokenError> {
        let lifetime = t.lifetime;
        // Stop using a token a little early (skew); refresh ahead by half the remaining
        // lifetime, at most 60 s (one hour tokens: refreshed a minute before).
        let skew = (lifetime / 20).min(Duration::from_secs(5));
        let margin = ((lifetime - skew) / 2).min(Duration::from_secs(60));
        let now = Instant::now();
        let at = |d: Duration| {
            now.checked_add(d).ok_or_else(|| TokenError::Unavailable {
                detail: "the token endpoint answered an unusable expires_in".into(),
            })
        };
        Ok(AccessToken::new(
            t.access_token,
            at(lifetime - skew)?,
            at(lifetime - skew - margin)?,
            self.next_generation(),
            OnceLock::new(),
        ))
    }
}

/// Clears a flag when dropped, so a task that panics or is cancelled cannot leave it set.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// How long the token endpoint is left alone after `error`, when Atlas says so: a 429
/// until its Retry-After (else a minute), the token cap for its own cool-down. The same
/// rule for one process and for a fleet (`fleet.rs`).
fn pause_for(error: &TokenError) -> Option<Duration> {
    match error {
        TokenError::RateLimited { retry_after } => Some(retry_after.unwrap_or(RATE_LIMIT_COOLDOWN)),
        TokenError::LimitReached => Some(TOKEN_LIMIT_COOLDOWN),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(value: &str) -> AccessToken {
        let now = Instant::now();
        AccessToken::new(value.into(), now, now, 1, OnceLock::new())
    }

    #[test]
    fn the_bearer_header_carries_the_token_and_is_marked_sensitive() {
        let http = reqwest::Client::new();
        let sent = token("eyJhbGciOi.abc-_")
            .authorize(http.get("http://127.0.0.1:9/"))
            .build()
            .unwrap();
        let header = sent.headers().get(AUTHORIZATION).unwrap();
        assert_eq!(header, "Bearer eyJhbGciOi.abc-_");
        assert!(
            header.is_sensitive(),
            "kept out of Debug output, as bearer_auth does"
        );
        // A value that cannot be a header fails the request, as `bearer_auth` made it.
        let bad = token("a\nb").authorize(http.get("http://127.0.0.1:9/"));
        assert!(bad.build().is_err());
    }
}
