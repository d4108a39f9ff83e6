//! Atlas 429 cool-downs per (profile, org, operation): after Atlas answers 429 with
//! `Retry-After`, further calls for the same triple are answered at once until it
//! passes, without reaching Atlas.
//!
//! The check is a read of a local map (skipped entirely while it is empty), never a
//! store round trip. With a shared store, the replica that saw the 429 publishes it on
//! one channel and every replica's subscriber task copies it into its local view.
//! Entries are named by a keyed hash from the profile's sealer: a message names no org.
//!
//! Anyone who can reach Redis can publish on that channel, so a message carries a MAC
//! by the profile's derived key; one that does not verify is ignored and counted
//! (`atlas_gateway_shared_store_rejected_total`). At most [`MAX_HELD`] cool-downs are
//! held, each at most [`MAX_COOLDOWN`]: the map a call reads stays small.
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
use crate::telemetry::metrics as m;

/// Longest cool-down honoured (a wild `Retry-After` must not silence an org for days).
pub const MAX_COOLDOWN: Duration = Duration::from_secs(3600);
/// Most cool-downs held at once; past it, new ones are dropped (and counted).
pub const MAX_HELD: usize = 1024;
/// Pause before resubscribing after the subscription broke.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// The local view of every cool-down this replica knows.
#[derive(Default)]
pub struct Cooldowns {
    active: AtomicBool,
    until: Mutex<HashMap<String, Instant>>,
    /// The profiles whose messages this replica accepts, by their keys' tag.
    senders: HashMap<String, Arc<ProfileStore>>,
}

impl Cooldowns {
    /// Cool-downs fed by the fleet's channel when `store` is set (a background task);
    /// a message is accepted only from one of `profiles`.
    pub fn new(
        store: Option<&Arc<SharedStore>>,
        profiles: impl IntoIterator<Item = Arc<ProfileStore>>,
    ) -> Arc<Self> {
        let senders = profiles
            .into_iter()
            .map(|p| (p.sealer.tag().to_string(), p))
            .collect();
        let this = Arc::new(Self {
            senders,
            ..Self::default()
        });
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
            let until = (unix_ms() + wait.as_millis() as u64).to_string();
            let mac = s.sealer.sign(&message_parts(&key, &until));
            let message = format!("{key} {until} {mac}");
            let _ = s
                .store
                .publish(&channel(s.store.prefix()), message.as_bytes())
                .await;
        }
    }

    /// Holds `key` for `wait` (at most [`MAX_COOLDOWN`]), unless [`MAX_HELD`] others are
    /// held: then it is dropped and counted.
    fn insert(&self, key: String, wait: Duration) {
        let now = Instant::now();
        let until = now + wait.min(MAX_COOLDOWN);
        let mut map = self.until.lock().expect("not poisoned");
        if map.len() >= MAX_HELD && !map.contains_key(&key) {
            map.retain(|_, until| *until > now);
            if map.len() >= MAX_HELD {
                m::shared_store_rejected("cooldown", "full");
                return;
            }
        }
        let entry = map.entry(key).or_insert(until);
        *entry = (*entry).max(until);
        self.active.store(true, Ordering::Release);
    }

    /// Applies one published message (`<key> <unix ms until> <mac>`) if it verifies
    /// with the profile its key names; otherwise ignores and counts it.
    fn apply(&self, message: &str) {
        let verified = message
            .split_once(' ')
            .and_then(|(key, rest)| Some((key, rest.split_once(' ')?)))
            .filter(|(key, (until, mac))| {
                let tag = &key[..key.find('}').map_or(0, |end| end + 1)];
                self.senders
                    .get(tag)
                    .is_some_and(|p| p.sealer.verify(&message_parts(key, until), mac))
            });
        let Some((key, (until, _))) = verified else {
            m::shared_store_rejected("cooldown", "unverified");
            return;
        };
        let ms = until
            .parse::<u64>()
            .ok()
            .and_then(|until| until.checked_sub(unix_ms()))
            .filter(|ms| *ms > 0);
        if let Some(ms) = ms {
            self.insert(key.to_string(), Duration::from_millis(ms));
        }
    }
}

/// What a cool-down message's MAC covers.
fn message_parts<'a>(key: &'a str, until: &'a str) -> [&'a [u8]; 3] {
    [b"cooldown", key.as_bytes(), until.as_bytes()]
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

    use crate::store::seal::Sealer;

    fn profile(secret: &str) -> Arc<ProfileStore> {
        let config = super::super::StoreConfig {
            url: crate::secret::Secret::new("redis://127.0.0.1:1"),
            prefix: "atlas-gw".into(),
        };
        Arc::new(ProfileStore {
            store: SharedStore::new(&config).unwrap(),
            sealer: Sealer::new("atlas-gw", "oauth\0https://x/token\0id", secret),
        })
    }

    /// A message as `start` publishes it, `ms` from now, signed by `p`.
    fn message(p: &ProfileStore, key: &str, ms: u64) -> String {
        let until = (unix_ms() + ms).to_string();
        format!(
            "{key} {until} {}",
            p.sealer.sign(&message_parts(key, &until))
        )
    }

    #[test]
    fn cooldowns_expire_and_keep_the_longest_wait() {
        let c = Cooldowns::default();
        assert_eq!(c.remaining(|| "k".into()), None);
        c.insert("k".into(), Duration::from_secs(30));
        c.insert("k".into(), Duration::from_secs(1));
        let left = c.remaining(|| "k".into()).unwrap();
        assert!(left > Duration::from_secs(20), "{left:?}");
        assert_eq!(c.remaining(|| "other".into()), None);
        c.insert("long".into(), Duration::from_secs(86_400));
        assert!(c.remaining(|| "long".into()).unwrap() <= MAX_COOLDOWN);
    }

    #[tokio::test]
    async fn only_messages_signed_by_a_known_profile_apply_and_at_most_1024_are_held() {
        let (ours, stranger) = (profile("s3cret"), profile("guessed"));
        let c = Cooldowns::new(None, [Arc::clone(&ours)]);
        let key = |n: usize| ours.sealer.hashed_key("cooldown", &[&n.to_be_bytes()]);
        c.apply(&message(&ours, &key(0), 10_000));
        assert!(c.remaining(|| key(0)).is_some());
        for forged in [
            format!("{} {}", key(1), unix_ms() + 10_000),
            format!("{} {} AAAA", key(1), unix_ms() + 10_000),
            message(&stranger, &key(1), 10_000),
            message(&ours, &key(1), 10_000).replace(&key(1), &key(2)),
            "garbage".into(),
        ] {
            c.apply(&forged);
        }
        assert_eq!(c.remaining(|| key(1)), None);
        assert_eq!(c.remaining(|| key(2)), None);
        c.apply(&message(&ours, &key(3), 10 * 3_600_000));
        assert!(c.remaining(|| key(3)).unwrap() <= MAX_COOLDOWN);
        for n in 4..MAX_HELD + 100 {
            c.apply(&message(&ours, &key(n), 10_000));
        }
        assert_eq!(c.until.lock().unwrap().len(), MAX_HELD);
        assert!(c.remaining(|| key(MAX_HELD + 50)).is_none());
    }
}
