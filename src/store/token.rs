//! One profile's service-account token in the shared store: the sealed token, the lock
//! that lets one replica fetch for the fleet (`SET NX PX` + compare-and-delete), the
//! fleet-wide pause of the token endpoint after a 429, and the compare-and-set that a
//! 401 uses to drop exactly the token it saw. Who fetches when is decided by the token
//! source (`atlas::auth::oauth`); this file only speaks to the store.
//!
//! The pause is `<unix ms until> <MAC>` by the profile's derived key, and at most
//! [`MAX_PAUSE`]: a pause set by anyone without the profile's secret is ignored and
//! counted (`atlas_gateway_shared_store_rejected_total`), so it cannot stop token
//! fetches fleet-wide.
use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};

use super::{unix_ms, ProfileStore, StoreDown};
use crate::telemetry::metrics as m;

/// Longest token-endpoint pause honoured.
pub const MAX_PAUSE: Duration = Duration::from_secs(3600);

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

    /// Time left before any replica may ask the token endpoint again (at most
    /// [`MAX_PAUSE`]); a stored pause that does not verify is ignored and counted.
    pub async fn paused_for(&self) -> Result<Option<Duration>, StoreDown> {
        let Some(value) = self.shared.store.get(&self.pause_key).await? else {
            return Ok(None);
        };
        let verified = std::str::from_utf8(&value)
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(until, mac)| {
                let parts = pause_parts(&self.pause_key, until);
                self.shared.sealer.verify(&parts, mac)
            })
            .and_then(|(until, _)| until.parse::<u64>().ok());
        let Some(until) = verified else {
            m::shared_store_rejected("token_pause", "unverified");
            return Ok(None);
        };
        Ok(until
            .checked_sub(unix_ms())
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis(ms).min(MAX_PAUSE)))
    }

    /// Pauses token requests for every replica (after a 429 or the token cap), for at
    /// most [`MAX_PAUSE`].
    pub async fn pause(&self, wait: Duration) -> Result<(), StoreDown> {
        let wait = wait.min(MAX_PAUSE);
        let until = (unix_ms() + wait.as_millis() as u64).to_string();
        let mac = self
            .shared
            .sealer
            .sign(&pause_parts(&self.pause_key, &until));
        self.shared
            .store
            .set(&self.pause_key, format!("{until} {mac}").as_bytes(), wait)
            .await
    }
}

/// What the pause's MAC covers (its key, so a value copied under another profile's
/// key does not verify there).
fn pause_parts<'a>(key: &'a str, until: &'a str) -> [&'a [u8]; 3] {
    [b"token-pause", key.as_bytes(), until.as_bytes()]
}
