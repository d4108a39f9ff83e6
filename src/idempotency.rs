//! AIP-155 idempotency: a call carrying a `request_id` runs at most once per window.
//!
//! A duplicate with the same request gets the first result (one Atlas call); one that
//! arrives while the first is in flight waits for it; a reused id with a different
//! request is refused (`REQUEST_ID_REUSED`). Only successes are remembered: a failed or
//! cancelled call leaves nothing behind, so the corrected retry with the same id runs.
//!
//! Records are keyed by a SHA-256 of (profile, caller identity, method, request_id), so
//! one caller can never replay another's result, and hold the SHA-256 of the request and
//! the encoded response: a [`Record`] is plain bytes that a shared store could hold too.
//! Memory is bounded in bytes (moka, weighed per record) and by the window (TTL). This
//! module never logs and never inspects the responses it keeps.
use std::{
    collections::HashMap,
    future::Future,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bytes::Bytes;
use moka::future::Cache;
use prost::Message;
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;

use crate::grpc::status::Failure;

/// Bytes of records kept at most, per cache (a CreateApiKey answer is about 300 bytes).
const MAX_BYTES: u64 = 32 * 1024 * 1024;
/// Bookkeeping per record beyond its response (key, digest, cache entry).
const RECORD_OVERHEAD: usize = 128;

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// Who is asking and for what: the record key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key(Digest);

impl Key {
    /// Hashes the scope of a `request_id`. `caller` is the identity the transport
    /// proved (the caller token's name, the client certificate), "" when there is none.
    pub fn new(profile: &str, caller: &str, method: &str, request_id: &str) -> Key {
        let mut h = Sha256::new();
        for part in [profile, caller, method, request_id] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        Key(h.finalize().into())
    }
}

/// The SHA-256 of a request message (its `request_id` already cleared).
pub fn request_digest(request: &impl Message) -> Digest {
    Sha256::digest(request.encode_to_vec()).into()
}

/// What is remembered of one successful call.
#[derive(Clone, Debug)]
pub struct Record {
    /// SHA-256 of the request, to tell a replay from a reuse.
    pub request_digest: Digest,
    /// The protobuf-encoded response.
    pub response: Bytes,
}

/// A call in flight: later duplicates wait on its result.
struct Pending<T> {
    digest: Digest,
    result: OnceCell<T>,
}

/// Remembers successful results by [`Key`].
pub struct IdempotencyCache<T> {
    records: Cache<Key, Arc<Record>>,
    pending: Mutex<HashMap<Key, Arc<Pending<T>>>>,
}

/// Whether a result was produced now or replayed from an earlier call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Produced by this call.
    Fresh,
    /// Replayed from an earlier call with the same `request_id`.
    Replayed,
}

impl<T: Message + Default + Clone + Send + Sync + 'static> IdempotencyCache<T> {
    /// A cache that remembers successes for `window`.
    pub fn new(window: Duration) -> Self {
        Self::with_budget(window, MAX_BYTES)
    }

    /// A cache holding at most `max_bytes` of records.
    pub fn with_budget(window: Duration, max_bytes: u64) -> Self {
        Self {
            records: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, r: &Arc<Record>| {
                    u32::try_from(r.response.len() + RECORD_OVERHEAD).unwrap_or(u32::MAX)
                })
                .time_to_live(window)
                .build(),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `call` once per `key`; `digest` identifies the request itself.
    pub async fn run<F, Fut>(
        &self,
        key: Key,
        digest: Digest,
        call: F,
    ) -> Result<(T, Outcome), Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        if let Some(record) = self.records.get(&key).await {
            return replay(&record, &digest);
        }
        let entry = {
            let mut pending = self.pending.lock().expect("not poisoned");
            let entry = pending.entry(key).or_insert_with(|| {
                Arc::new(Pending {
                    digest,
                    result: OnceCell::new(),
                })
            });
            Arc::clone(entry)
        };
        if entry.digest != digest {
            return Err(Failure::RequestIdReused);
        }
        let ran = AtomicBool::new(false);
        let _forget = Forget {
            pending: &self.pending,
            key,
            entry: &entry,
            ran: &ran,
        };
        let value = entry
            .result
            .get_or_try_init(|| {
                ran.store(true, Ordering::Relaxed);
                call()
            })
            .await?;
        if !ran.load(Ordering::Relaxed) {
            return Ok((value.clone(), Outcome::Replayed));
        }
        let record = Record {
            request_digest: digest,
            response: value.encode_to_vec().into(),
        };
        self.records.insert(key, Arc::new(record)).await;
        Ok((value.clone(), Outcome::Fresh))
    }

    /// Bytes currently held by records.
    #[cfg(test)]
    async fn weighted_size(&self) -> u64 {
        self.records.run_pending_tasks().await;
        self.records.weighted_size()
    }
}

fn replay<T: Message + Default>(record: &Record, digest: &Digest) -> Result<(T, Outcome), Failure> {
    if &record.request_digest != digest {
        return Err(Failure::RequestIdReused);
    }
    // The bytes were encoded from a T by this process (or a peer running this code).
    let value = T::decode(record.response.clone()).map_err(|_| Failure::RequestIdReused)?;
    Ok((value, Outcome::Replayed))
}

/// Drops the in-flight entry when the call that ran it ends in any way (success: the
/// record replaces it; failure or cancellation: nothing is remembered).
struct Forget<'a, T> {
    pending: &'a Mutex<HashMap<Key, Arc<Pending<T>>>>,
    key: Key,
    entry: &'a Arc<Pending<T>>,
    ran: &'a AtomicBool,
}

impl<T> Drop for Forget<'_, T> {
    fn drop(&mut self) {
        if !self.ran.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        if pending
            .get(&self.key)
            .is_some_and(|e| Arc::ptr_eq(e, self.entry))
        {
            pending.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    type Resp = crate::pb::CreateLinkTokenResponse;

    fn resp(s: &str) -> Resp {
        Resp {
            link_token: s.into(),
        }
    }

    fn key(id: &str) -> Key {
        Key::new("default", "", "CreateLinkToken", id)
    }

    #[tokio::test]
    async fn runs_once_replays_and_refuses_reuse() {
        let cache = IdempotencyCache::<Resp>::new(Duration::from_secs(60));
        let calls = AtomicU32::new(0);
        let call = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(resp("t"))
        };
        let run = |d: u8| cache.run(key("k"), [d; 32], call);
        assert_eq!(run(1).await.unwrap(), (resp("t"), Outcome::Fresh));
        assert_eq!(run(1).await.unwrap(), (resp("t"), Outcome::Replayed));
        assert!(matches!(run(2).await, Err(Failure::RequestIdReused)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failures_are_not_remembered_even_with_another_request() {
        let cache = IdempotencyCache::<Resp>::new(Duration::from_secs(60));
        let r = cache
            .run(key("k"), [1; 32], || async { Err(Failure::Overloaded) })
            .await;
        assert!(r.is_err());
        let r = cache
            .run(key("k"), [2; 32], || async { Ok(resp("ok")) })
            .await
            .unwrap();
        assert_eq!(r, (resp("ok"), Outcome::Fresh));
    }

    #[test]
    fn keys_separate_profiles_callers_methods_and_ids() {
        let k = Key::new("p", "alice", "M", "id");
        for other in [
            Key::new("q", "alice", "M", "id"),
            Key::new("p", "bob", "M", "id"),
            Key::new("p", "alice", "N", "id"),
            Key::new("p", "alice", "M", "id2"),
            Key::new("pa", "lice", "M", "id"),
        ] {
            assert_ne!(k, other);
        }
    }

    #[tokio::test]
    async fn memory_is_bounded_in_bytes() {
        let cache = IdempotencyCache::<Resp>::with_budget(Duration::from_secs(60), 64 * 1024);
        let big = "x".repeat(8 * 1024);
        for i in 0..100 {
            let r = cache
                .run(key(&i.to_string()), [0; 32], || async { Ok(resp(&big)) })
                .await;
            assert!(r.is_ok());
        }
        let size = cache.weighted_size().await;
        assert!(size <= 64 * 1024, "{size}");
    }
}
