//! One profile's service-account token in the shared store: the sealed token, the lock
//! that lets one replica fetch for the fleet (`SET NX PX` + compare-and-delete), the
//! fleet-wide pause of the token endpoint after a 429, and the compare-and-set that a
//! 401 uses to drop exactly the token it saw. Who fetches when is decided by the token
//! source (`atlas::auth::oauth`); this file only speaks to the store.
use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};

use super::{unix_ms, ProfileStore, StoreDown};

/// Longer than one token request may take (its timeout is 10 s): a holder that died
/// frees the lock after this.
const LOCK_TTL: Duration = Duration::from_secs(15);

/// A token read from the store.
pub struct StoredToken {
    /// The access token.
    pub value: String,
    /// Unix milliseconds after which no replica uses it.
    pub expires_at_ms: u64,
    /// Unix milliseconds after which one replica refreshes it.
    pub refresh_at_ms: u64,
    /// The sealed value as stored: what a 401 compares before deleting.
    pub sealed: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Plain {
    token: String,
    expires_at_ms: u64,
    refresh_at_ms: u64,
}

/// A held fetch lock (released with compare-and-delete, so never someone else's).
pub struct Lock(Vec<u8>);

/// The token entries of one profile.
pub struct TokenSlot {
    shared: Arc<ProfileStore>,
    token_key: String,
    lock_key: String,
    pause_key: String,
}

impl TokenSlot {
    /// The token entries of the profile behind `shared`.
    pub fn new(shared: Arc<ProfileStore>) -> Self {
        let key = |kind| shared.sealer.key(kind);
        Self {
            token_key: key("token"),
            lock_key: key("token-lock"),
            pause_key: key("token-pause"),
            shared,
        }
    }

    /// The fleet's token, if one is stored and still opens with this profile's secret.
    pub async fn read(&self) -> Result<Option<StoredToken>, StoreDown> {
        let Some(sealed) = self.shared.store.get(&self.token_key).await? else {
            return Ok(None);
        };
        let plain = self
            .shared
            .sealer
            .open(&self.token_key, &sealed)
            .and_then(|p| serde_json::from_slice::<Plain>(&p).ok());
        Ok(plain
            .filter(|p| p.expires_at_ms > unix_ms())
            .map(|p| StoredToken {
                value: p.token,
                expires_at_ms: p.expires_at_ms,
                refresh_at_ms: p.refresh_at_ms,
                sealed,
            }))
    }

    /// Stores a freshly minted token until it expires; returns the sealed value.
    pub async fn write(
        &self,
        token: &str,
        expires_at_ms: u64,
        refresh_at_ms: u64,
    ) -> Result<Vec<u8>, StoreDown> {
        let plain = serde_json::to_vec(&Plain {
            token: token.to_string(),
            expires_at_ms,
            refresh_at_ms,
        })
        .expect("serializable");
        let sealed = self.shared.sealer.seal(&self.token_key, &plain);
        let ttl = Duration::from_millis(expires_at_ms.saturating_sub(unix_ms()));
        self.shared.store.set(&self.token_key, &sealed, ttl).await?;
        Ok(sealed)
    }

    /// Drops the stored token only if it is still `sealed` (what this replica saw
    /// refused): a storm of 401s on one token removes it once.
    pub async fn invalidate(&self, sealed: &[u8]) -> Result<bool, StoreDown> {
        self.shared
            .store
            .delete_if_equal(&self.token_key, sealed)
            .await
    }

    /// Takes the fetch lock; `None` when another replica holds it.
    pub async fn lock(&self) -> Result<Option<Lock>, StoreDown> {
        let nonce = uuid::Uuid::new_v4().as_bytes().to_vec();
        let taken = self
            .shared
            .store
            .set_nx(&self.lock_key, &nonce, LOCK_TTL)
            .await?;
        Ok(taken.then_some(Lock(nonce)))
    }

    /// Releases the lock if it is still ours (its TTL may have run out meanwhile).
    pub async fn unlock(&self, lock: Lock) {
        let _ = self
            .shared
            .store
            .delete_if_equal(&self.lock_key, &lock.0)
            .await;
    }

    /// Time left before any replica may ask the token endpoint again.
    pub async fn paused_for(&self) -> Result<Option<Duration>, StoreDown> {
        let until = self
            .shared
            .store
            .get(&self.pause_key)
            .await?
            .and_then(|v| String::from_utf8(v).ok()?.parse::<u64>().ok());
        Ok(until
            .and_then(|u| u.checked_sub(unix_ms()))
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis))
    }

    /// Pauses token requests for every replica (after a 429 or the token cap).
    pub async fn pause(&self, wait: Duration) -> Result<(), StoreDown> {
        let until = unix_ms() + wait.as_millis() as u64;
        self.shared
            .store
            .set(&self.pause_key, until.to_string().as_bytes(), wait)
            .await
    }
}
