//! `TokenSource`: OAuth2 client-credentials tokens for one service-account profile.
//!
//! One token is cached (moka) and shared by every call. A cold cache is filled by a
//! single fetch however many callers wait (moka coalesces `try_get_with`). A token is
//! refreshed ahead of expiry by one background task while callers keep using the valid
//! one; if that refresh fails (Atlas limits the token endpoint to about 10 requests per
//! minute), it backs off and the still-valid token keeps serving. A failed fetch is
//! remembered (`cooldown`): until its cooldown passes callers without a valid token get
//! the same error and no token request is sent. The hot path reads the held token
//! (`held`: one uncontended read lock, no await) and an atomic. It never logs the secret
//! or the token, and no panic can leave the refresh flag set (a drop guard clears it).
//!
//! This file owns the source: the cache, the cold path, refresh ahead and 401 recovery.
//! The token type is in `token`, the token request in `fetch`. With a shared store the
//! token is the fleet's (`fleet`); without one, tokens this process minted are revoked
//! when it stops (`revoke`).
mod cooldown;
mod fetch;
mod fleet;
mod held;
mod revoke;
mod token;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use moka::{future::Cache, ops::compute::Op, Expiry};

use self::cooldown::{Cooldown, TokenError};
pub use self::token::AccessToken;
use crate::{
    atlas::error::AtlasError, secret::Secret, store::token::TokenSlot, telemetry::metrics as m,
};

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
    /// True once revocation at stop has begun; every fetch holds it read (`revoke`).
    stopping: tokio::sync::RwLock<bool>,
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
/// How soon a replica looks again for the token a peer is refreshing.
const PEER_REFRESH_RECHECK: Duration = Duration::from_secs(1);

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
            stopping: tokio::sync::RwLock::new(false),
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
                Err(TokenError::ShuttingDown) => {}
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
}

/// Clears a flag when dropped, so a task that panics or is cancelled cannot leave it set.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
