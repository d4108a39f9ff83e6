//! Atlas 429 cool-downs per (profile, org, operation): after Atlas answers 429 with
//! `Retry-After`, further calls for the same triple are answered at once until it
//! passes, without reaching Atlas.
//!
//! The check is a read of a local map (skipped entirely while it is empty), never a
//! store round trip. With a shared store, the replica that saw the 429 publishes it on
//! one channel and every replica's subscriber task copies it into its local view.
//! Entries are named by a keyed hash from the profile's sealer: a message names no org.
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use tokio_stream::StreamExt as _;

use super::{unix_ms, ProfileStore, SharedStore};

/// Longest cool-down honoured (a wild `Retry-After` must not silence an org for days).
const MAX_COOLDOWN: Duration = Duration::from_secs(3600);
/// Pause before resubscribing after the subscription broke.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// The local view of every cool-down this replica knows.
#[derive(Default)]
pub struct Cooldowns {
    active: AtomicBool,
    until: Mutex<HashMap<String, Instant>>,
}

impl Cooldowns {
    /// Cool-downs fed by the fleet's channel when `store` is set (a background task).
    pub fn new(store: Option<&Arc<SharedStore>>) -> Arc<Self> {
        let this = Arc::new(Self::default());
        if let Some(store) = store {
            tokio::spawn(subscribe(Arc::clone(store), Arc::downgrade(&this)));
        }
        this
    }

    /// The name of the (profile, org, operation) entry: hashed when the profile uses a
    /// store (the same on every replica), plain in process.
    pub fn key(shared: Option<&ProfileStore>, profile: &str, org: &str, op: &str) -> String {
        match shared {
            Some(s) => s
                .sealer
                .hashed_key("cooldown", &[org.as_bytes(), op.as_bytes()]),
            None => format!("{profile}\0{org}\0{op}"),
        }
    }

    /// Time left on the entry's cool-down; no lock is taken while none is active.
    pub fn remaining(&self, key: impl FnOnce() -> String) -> Option<Duration> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        let now = Instant::now();
        let mut map = self.until.lock().expect("not poisoned");
        map.retain(|_, until| *until > now);
        self.active.store(!map.is_empty(), Ordering::Release);
        map.get(&key()).map(|until| *until - now)
    }

    /// Starts a cool-down here, and on every replica when `shared` is set.
    pub async fn start(&self, shared: Option<&ProfileStore>, key: String, wait: Duration) {
        let wait = wait.min(MAX_COOLDOWN);
        self.insert(key.clone(), wait);
        if let Some(s) = shared {
            let message = format!("{key} {}", unix_ms() + wait.as_millis() as u64);
            let _ = s
                .store
                .publish(&channel(s.store.prefix()), message.as_bytes())
                .await;
        }
    }

    fn insert(&self, key: String, wait: Duration) {
        let until = Instant::now() + wait;
        let mut map = self.until.lock().expect("not poisoned");
        let entry = map.entry(key).or_insert(until);
        *entry = (*entry).max(until);
        self.active.store(true, Ordering::Release);
    }

    /// Applies one published message (`<key> <unix ms until>`).
    fn apply(&self, message: &str) {
        let Some((key, until)) = message.split_once(' ') else {
            return;
        };
        let Ok(until) = until.parse::<u64>() else {
            return;
        };
        if let Some(ms) = until.checked_sub(unix_ms()).filter(|ms| *ms > 0) {
            self.insert(key.to_string(), Duration::from_millis(ms).min(MAX_COOLDOWN));
        }
    }
}

fn channel(prefix: &str) -> String {
    format!("{prefix}:cooldowns")
}

/// Copies published cool-downs into `view` until it is dropped; resubscribes after
/// the store goes away and comes back.
async fn subscribe(store: Arc<SharedStore>, view: std::sync::Weak<Cooldowns>) {
    let channel = channel(store.prefix());
    while view.strong_count() > 0 {
        if let Ok(mut pubsub) = store.client().get_async_pubsub().await {
            if pubsub.subscribe(&channel).await.is_ok() {
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    let Some(view) = view.upgrade() else { return };
                    if let Ok(text) = msg.get_payload::<String>() {
                        view.apply(&text);
                    }
                }
            }
        }
        tokio::time::sleep(RESUBSCRIBE_AFTER).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooldowns_expire_and_keep_the_longest_wait() {
        let c = Cooldowns::default();
        assert_eq!(c.remaining(|| "k".into()), None);
        c.insert("k".into(), Duration::from_secs(30));
        c.insert("k".into(), Duration::from_secs(1));
        let left = c.remaining(|| "k".into()).unwrap();
        assert!(left > Duration::from_secs(20), "{left:?}");
        assert_eq!(c.remaining(|| "other".into()), None);
        c.apply(&format!("m {}", unix_ms() + 10_000));
        assert!(c.remaining(|| "m".into()).is_some());
        c.apply("garbage");
        c.apply(&format!("old {}", unix_ms().saturating_sub(1)));
        assert_eq!(c.remaining(|| "old".into()), None);
    }
}
