//! AIP-155 idempotency: a call carrying a `request_id` runs at most once per window.
//!
//! A duplicate with the same request gets the first result (one Atlas call); one that
//! arrives while the first is in flight waits for it; a reused id with a different
//! request is refused (`REQUEST_ID_REUSED`). Only successes are remembered, so a failed
//! call can be retried with the same id. Memory is bounded: moka with a TTL (the window)
//! and a maximum entry count.
use std::{future::Future, sync::Arc, time::Duration};

use moka::future::Cache;
use tokio::sync::OnceCell;

/// Entries kept at most, per cache.
const MAX_ENTRIES: u64 = 10_000;

struct Entry<T> {
    fingerprint: Vec<u8>,
    result: OnceCell<T>,
}

/// Remembers successful results by request id.
pub struct IdempotencyCache<T> {
    cache: Cache<String, Arc<Entry<T>>>,
}

/// A `request_id` came back with a different request. Callers turn it into their own
/// error type (`E: From<RequestIdReused>`), so this module knows none of theirs.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestIdReused;

/// Whether a result was produced now or replayed from an earlier call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Fresh,
    Replayed,
}

impl<T: Clone + Send + Sync + 'static> IdempotencyCache<T> {
    pub fn new(window: Duration) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(window)
                .build(),
        }
    }

    /// Runs `call` once per `key`; `fingerprint` identifies the request itself.
    pub async fn run<F, Fut, E>(
        &self,
        key: String,
        fingerprint: Vec<u8>,
        call: F,
    ) -> Result<(T, Outcome), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<RequestIdReused>,
    {
        let entry = self
            .cache
            .get_with(key, async {
                Arc::new(Entry {
                    fingerprint: fingerprint.clone(),
                    result: OnceCell::new(),
                })
            })
            .await;
        if entry.fingerprint != fingerprint {
            return Err(RequestIdReused.into());
        }
        let mut outcome = Outcome::Replayed;
        let value = entry
            .result
            .get_or_try_init(|| {
                outcome = Outcome::Fresh;
                call()
            })
            .await?;
        Ok((value.clone(), outcome))
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

    #[tokio::test]
    async fn runs_once_replays_and_refuses_reuse() {
        let cache = IdempotencyCache::<u32>::new(Duration::from_secs(60));
        let calls = AtomicU32::new(0);
        let call = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, TestError>(7)
        };
        assert_eq!(
            cache.run("k".into(), b"a".to_vec(), call).await.unwrap(),
            (7, Outcome::Fresh)
        );
        assert_eq!(
            cache.run("k".into(), b"a".to_vec(), call).await.unwrap(),
            (7, Outcome::Replayed)
        );
        assert!(matches!(
            cache.run("k".into(), b"b".to_vec(), call).await,
            Err(TestError::Reused)
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failures_are_not_remembered() {
        let cache = IdempotencyCache::<u32>::new(Duration::from_secs(60));
        let r = cache
            .run("k".into(), vec![], || async { Err(TestError::Failed) })
            .await;
        assert!(r.is_err());
        let r = cache
            .run("k".into(), vec![], || async { Ok::<_, TestError>(1) })
            .await
            .unwrap();
        assert_eq!(r, (1, Outcome::Fresh));
    }
}
