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

/// Bytes of records kept at most, per cache (a CreateApiKey answer is about 300 bytes).
const MAX_BYTES: u64 = 32 * 1024 * 1024;
/// Bookkeeping per record beyond its response (key, digest, cache entry).
const RECORD_OVERHEAD: usize = 128;

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// Who is asking and for what: the record key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key(Digest);

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

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
struct Pending {
    digest: Digest,
    result: OnceCell<Bytes>,
}

/// Remembers successful results (protobuf-encoded responses) by [`Key`].
pub struct IdempotencyCache {
    records: Cache<Key, Arc<Record>>,
    pending: Mutex<HashMap<Key, Arc<Pending>>>,
}

/// A `request_id` came back with a different request. Callers turn it into their own
/// error type (`E: From<RequestIdReused>`), so this module knows none of theirs.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestIdReused;

/// Whether a result was produced now or replayed from an earlier call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Produced by this call.
    Fresh,
    /// Replayed from an earlier call with the same `request_id`.
    Replayed,
}

impl IdempotencyCache {
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
    pub async fn run<F, Fut, E>(
        &self,
        key: Key,
        digest: Digest,
        call: F,
    ) -> Result<(Bytes, Outcome), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: From<RequestIdReused>,
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
            return Err(RequestIdReused.into());
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
            response: value.clone(),
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

fn replay<E: From<RequestIdReused>>(
    record: &Record,
    digest: &Digest,
) -> Result<(Bytes, Outcome), E> {
    if &record.request_digest != digest {
        return Err(RequestIdReused.into());
    }
    Ok((record.response.clone(), Outcome::Replayed))
}

/// Drops the in-flight entry when the call that ran it ends in any way (success: the
/// record replaces it; failure or cancellation: nothing is remembered).
struct Forget<'a> {
    pending: &'a Mutex<HashMap<Key, Arc<Pending>>>,
    key: Key,
    entry: &'a Arc<Pending>,
    ran: &'a AtomicBool,
}

impl Drop for Forget<'_> {
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

    /// A caller's error type: reuse, or a failed call.
    #[derive(Debug, PartialEq)]
    enum TestError {
        Reused,
        Failed,
    }

    impl From<RequestIdReused> for TestError {
        fn from(_: RequestIdReused) -> Self {
            TestError::Reused
        }
    }

    fn resp(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }

    fn key(id: &str) -> Key {
        Key::new("default", "", "CreateLinkToken", id)
    }

    #[tokio::test]
    async fn runs_once_replays_and_refuses_reuse() {
        let cache = IdempotencyCache::new(Duration::from_secs(60));
        let calls = AtomicU32::new(0);
        let call = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, TestError>(resp("t"))
        };
        let run = |d: u8| cache.run(key("k"), [d; 32], call);
        assert_eq!(run(1).await.unwrap(), (resp("t"), Outcome::Fresh));
        assert_eq!(run(1).await.unwrap(), (resp("t"), Outcome::Replayed));
        assert!(matches!(run(2).await, Err(TestError::Reused)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failures_are_not_remembered_even_with_another_request() {
        let cache = IdempotencyCache::new(Duration::from_secs(60));
        let r = cache
            .run(key("k"), [1; 32], || async { Err(TestError::Failed) })
            .await;
        assert!(r.is_err());
        let r = cache
            .run(key("k"), [2; 32], || async {
                Ok::<_, TestError>(resp("ok"))
            })
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
        let cache = IdempotencyCache::with_budget(Duration::from_secs(60), 64 * 1024);
        let big = "x".repeat(8 * 1024);
        for i in 0..100 {
            let r = cache
                .run(key(&i.to_string()), [0; 32], || async {
                    Ok::<_, TestError>(resp(&big))
                })
                .await;
            assert!(r.is_ok());
        }
        let size = cache.weighted_size().await;
        assert!(size <= 64 * 1024, "{size}");
    }
}
