//! The rotation locks: one `RotateServiceAccountSecret` per service account at a time,
//! in this gateway ([`RotationLocks`], an async mutex per account, taken first so one
//! replica's waiters do not all poll the store) and, with a shared store, across every
//! replica of the fleet.
//!
//! The lock is `SET NX PX` on one key per (org, client id), named by a keyed hash of
//! both (so neither shows in Redis), holding a random owner token. It is held for the
//! call's remaining budget (never above [`MAX_HOLD`]), so a replica that dies mid
//! rotation frees the account when its call would have ended anyway. A waiter polls
//! with short jittered pauses until it takes the lock or its deadline passes. The lock
//! is released when its [`RotationTurn`] is dropped, and only while it still holds this
//! turn's token (compare-and-delete), so an expired turn never frees a later one's lock.
//! A store that does not answer is [`StoreDown`]: the caller fails closed rather than
//! rotate under a weaker, in-process-only lock.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant},
};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use super::{jitter, ProfileStore, SharedStore, StoreDown};

/// Longest a rotation holds the fleet's lock (the longest a call may last).
pub const MAX_HOLD: Duration = Duration::from_secs(300);

/// Above this many remembered in-process locks, the unused ones are forgotten.
const ROTATION_LOCKS: usize = 1024;

/// One async mutex per (org, client id) in this gateway; those no rotation holds are
/// forgotten past 1024 accounts.
#[derive(Default)]
pub struct RotationLocks {
    locks: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
}

impl RotationLocks {
    /// Waits until no other rotation of this account runs in this gateway; the guard
    /// holds the turn.
    pub async fn turn(&self, org_id: &str, client_id: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            if locks.len() >= ROTATION_LOCKS {
                locks.retain(|_, lock| lock.strong_count() > 0);
            }
            let entry = locks.entry(format!("{org_id}/{client_id}")).or_default();
            entry.upgrade().unwrap_or_else(|| {
                let lock = Arc::new(AsyncMutex::new(()));
                *entry = Arc::downgrade(&lock);
                lock
            })
        };
        lock.lock_owned().await
    }
}

/// This replica's turn to rotate one account's secret; dropping it releases the lock.
pub struct RotationTurn {
    store: Arc<SharedStore>,
    key: String,
    token: Vec<u8>,
}

impl Drop for RotationTurn {
    fn drop(&mut self) {
        let (store, key, token) = (
            self.store.clone(),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.token),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                // A release the store misses expires with the hold.
                let _ = store.delete_if_equal(&key, &token).await;
            });
        }
    }
}

impl ProfileStore {
    /// Waits for the fleet's turn to rotate `client_id`'s secret in `org_id`: the turn,
    /// `Ok(None)` when `deadline` passes first, or [`StoreDown`] when the store does not
    /// answer.
    pub async fn rotation_turn(
        &self,
        org_id: &str,
        client_id: &str,
        deadline: Instant,
    ) -> Result<Option<RotationTurn>, StoreDown> {
        let key = self
            .sealer
            .hashed_key("sa-rotation", &[org_id.as_bytes(), client_id.as_bytes()]);
        let token = format!("{:032x}", fastrand::u128(..)).into_bytes();
        loop {
            let now = Instant::now();
            let Some(left) = deadline
                .checked_duration_since(now)
                .filter(|d| !d.is_zero())
            else {
                return Ok(None);
            };
            if self.store.set_nx(&key, &token, left.min(MAX_HOLD)).await? {
                return Ok(Some(RotationTurn {
                    store: self.store.clone(),
                    key,
                    token,
                }));
            }
            let pause = jitter().min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
        }
    }
}
