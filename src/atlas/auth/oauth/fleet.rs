//! Fleet mode for [`TokenSource`]: the profile's token lives in the shared store, so a
//! fleet makes one token request per token lifetime, not one per replica.
//!
//! A replica without a local token reads the store; on a miss it takes the fetch lock,
//! reads again (a peer may have stored one meanwhile), fetches and stores it. Replicas
//! that do not get the lock poll the store with jitter until the token appears, bounded
//! by the caller's deadline (the caller drops this future when it passes). Refresh
//! ahead works the same way, so one replica refreshes and the others adopt its token.
//! A 429 or the token cap pauses token requests for the whole fleet. Whenever the store
//! fails, the replica fetches on its own, exactly as without a store.
use std::{
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use super::{
    cooldown::{pause_for, TokenError},
    AccessToken, TokenSource,
};
use crate::store::{
    jitter,
    token::{Lock, StoredToken, TokenSlot},
    unix_ms, StoreDown,
};

impl TokenSource {
    /// The fleet's token: stored by a peer, or fetched here under the lock.
    pub(super) async fn obtain_shared(
        &self,
        slot: &TokenSlot,
    ) -> Result<Arc<AccessToken>, TokenError> {
        loop {
            match slot.read().await {
                Ok(Some(t)) => return Ok(self.adopt(t)),
                Ok(None) => {}
                Err(StoreDown) => return self.fetch().await,
            }
            if let Ok(Some(wait)) = slot.paused_for().await {
                return Err(TokenError::RateLimited {
                    retry_after: Some(wait),
                });
            }
            match slot.lock().await {
                Ok(Some(lock)) => return self.fetch_locked(slot, lock, None).await,
                Ok(None) => tokio::time::sleep(jitter()).await,
                Err(StoreDown) => return self.fetch().await,
            }
        }
    }

    /// Refresh ahead with a store: adopts a newer token a peer stored, else fetches
    /// under the lock. `Ok(None)`: a peer holds the lock (it is refreshing).
    pub(super) async fn refresh_shared(
        &self,
        slot: &TokenSlot,
        current: &AccessToken,
    ) -> Result<Option<Arc<AccessToken>>, TokenError> {
        match slot.read().await {
            Ok(Some(t)) if is_newer(&t, current) => return Ok(Some(self.adopt(t))),
            Ok(_) => {}
            Err(StoreDown) => return self.fetch().await.map(Some),
        }
        match slot.lock().await {
            Ok(Some(lock)) => self.fetch_locked(slot, lock, Some(current)).await.map(Some),
            Ok(None) => Ok(None),
            Err(StoreDown) => self.fetch().await.map(Some),
        }
    }

    /// Holding the lock: reads again (a token other than `replacing` wins), else fetches
    /// and stores for the fleet; always releases the lock.
    async fn fetch_locked(
        &self,
        slot: &TokenSlot,
        lock: Lock,
        replacing: Option<&AccessToken>,
    ) -> Result<Arc<AccessToken>, TokenError> {
        let result = match slot.read().await {
            Ok(Some(t)) if replacing.is_none_or(|c| is_newer(&t, c)) => Ok(self.adopt(t)),
            _ => self.fetch_and_share(slot).await,
        };
        slot.unlock(lock).await;
        result
    }

    async fn fetch_and_share(&self, slot: &TokenSlot) -> Result<Arc<AccessToken>, TokenError> {
        let result = self.fetch().await;
        match &result {
            Ok(token) => {
                let (expires, refresh) = (unix_at(token.expires_at), unix_at(token.refresh_at));
                if let Ok(sealed) = slot.write(token.value.expose(), expires, refresh).await {
                    let _ = token.shared.set(sealed);
                    self.forget_minted(&token.value); // the fleet's now: never revoked here
                }
            }
            Err(e) => {
                if let Some(wait) = pause_for(e) {
                    let _ = slot.pause(wait).await;
                }
            }
        }
        result
    }

    /// A token a peer stored, with the same expiry and refresh times it has there.
    fn adopt(&self, t: StoredToken) -> Arc<AccessToken> {
        let now = Instant::now();
        let now_ms = unix_ms();
        let after = |ms: u64| now + Duration::from_millis(ms.saturating_sub(now_ms));
        Arc::new(AccessToken::new(
            t.value,
            after(t.expires_at_ms),
            after(t.refresh_at_ms),
            self.next_generation(),
            OnceLock::from(t.sealed),
        ))
    }
}

fn is_newer(stored: &StoredToken, current: &AccessToken) -> bool {
    current.shared.get() != Some(&stored.sealed)
}

/// An `Instant` as Unix milliseconds (what replicas agree on).
fn unix_at(at: Instant) -> u64 {
    unix_ms() + at.saturating_duration_since(Instant::now()).as_millis() as u64
}
