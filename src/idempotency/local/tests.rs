use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

/// A caller's error type: one of the engine's refusals, or a failed run.
#[derive(Debug, PartialEq)]
enum TestError {
    Refused(Refused),
    Failed,
}

impl From<Refused> for TestError {
    fn from(r: Refused) -> Self {
        TestError::Refused(r)
    }
}

fn key(id: &str) -> Key {
    Key::new("default", "", "CreateLinkToken", id)
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn answer(s: &str) -> Finished<TestError> {
    Finished::Answered(Bytes::from(s.to_string()), Outcome::Fresh)
}

#[tokio::test]
async fn runs_once_replays_and_refuses_reuse() {
    let cache = IdempotencyCache::new(Duration::from_secs(60));
    let calls = Arc::new(AtomicU32::new(0));
    let run = |d: u8| {
        let calls = Arc::clone(&calls);
        cache.run(key("k"), [d; 32], later(), async move {
            calls.fetch_add(1, Ordering::SeqCst);
            answer("t")
        })
    };
    assert_eq!(run(1).await.unwrap(), (Bytes::from("t"), Outcome::Fresh));
    assert_eq!(run(1).await.unwrap(), (Bytes::from("t"), Outcome::Replayed));
    assert_eq!(run(2).await, Err(TestError::Refused(Refused::Reused)));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failure_is_forgotten_and_an_unknown_is_kept() {
    let cache = IdempotencyCache::new(Duration::from_secs(60));
    let failed = cache.run(key("f"), [1; 32], later(), async {
        Finished::Failed(TestError::Failed)
    });
    assert_eq!(failed.await, Err(TestError::Failed));
    let fixed = cache.run(key("f"), [2; 32], later(), async { answer("ok") });
    assert_eq!(fixed.await.unwrap(), (Bytes::from("ok"), Outcome::Fresh));
    let lost = cache.run(key("u"), [1; 32], later(), async {
        Finished::Unknown(TestError::Failed)
    });
    assert_eq!(lost.await, Err(TestError::Failed));
    let again = cache.run(key("u"), [1; 32], later(), async { answer("no") });
    assert_eq!(
        again.await,
        Err(TestError::Refused(Refused::OutcomeUnknown))
    );
}

#[tokio::test]
async fn a_run_outlives_its_caller_and_twins_get_its_answer() {
    let cache = IdempotencyCache::new(Duration::from_secs(60));
    let (go, gate) = oneshot::channel::<()>();
    let work = async move {
        let _ = gate.await;
        answer("late")
    };
    let past = Instant::now();
    let owner = cache.run(key("k"), [1; 32], past, work).await;
    assert_eq!(owner, Err(TestError::Refused(Refused::TimedOut)));
    let twin = cache.run(key("k"), [1; 32], later(), async { answer("second run") });
    let _ = go.send(());
    assert_eq!(
        twin.await.unwrap(),
        (Bytes::from("late"), Outcome::Replayed)
    );
}

#[tokio::test]
async fn memory_is_bounded_in_bytes() {
    let cache = IdempotencyCache::with_budget(Duration::from_secs(60), 64 * 1024);
    let big = "x".repeat(8 * 1024);
    for i in 0..100 {
        let r = cache.run(
            key(&i.to_string()),
            [0; 32],
            later(),
            std::future::ready(answer(&big)),
        );
        assert!(r.await.is_ok());
    }
    let size = cache.weighted_size();
    assert!(size <= 64 * 1024, "{size}");
}
