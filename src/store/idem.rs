//! Idempotency records (AIP-155 `request_id`) in the shared store, so a retry that lands
//! on another replica, or comes after the first replica was killed, gets the first
//! result with one Atlas create.
//!
//! A record is claimed with `SET NX` (sealed: the request's fingerprint and the claim's
//! own deadline), replaced by the sealed result on success, and deleted (only if still
//! ours) on failure so the call can be retried. A duplicate that finds a live claim waits
//! for it, bounded by its own deadline. A claim whose deadline (plus a grace) passed
//! without a result belongs to a replica that died mid-call: the create may or may not
//! have reached Atlas, so the request is answered "outcome unknown" for the rest of the
//! window and never silently run a second time. Key names are keyed hashes: no caller,
//! org or request id shows.
use std::{
    future::Future,
    time::{Duration, Instant},
};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{jitter, unix_ms, ProfileStore, StoreDown};

/// How long past its own deadline a claim is still waited for (the owner may be
/// writing its result).
const CLAIM_GRACE: Duration = Duration::from_secs(5);

#[derive(Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Record {
    Pending {
        fingerprint: Vec<u8>,
        until_ms: u64,
    },
    Done {
        fingerprint: Vec<u8>,
        result: Vec<u8>,
    },
}

/// What a shared idempotent run produced.
pub enum Shared<E> {
    /// This replica ran the call (`Ok`) or the first result was replayed.
    Ran(Result<Bytes, E>),
    /// Another call (here or on another replica) ran it first: its encoded response.
    Replayed(Bytes),
    /// The id was used with a different request.
    Reused,
    /// A replica died while running this id: the create may or may not exist.
    OutcomeUnknown,
    /// The first attempt is still running and this caller's deadline came first.
    TimedOut,
}

/// Runs `call` at most once per `scope` across the fleet. `Err(call)` gives the call
/// back when the store cannot be used, so the caller can run it with in-process state.
pub async fn run_once<E, F, Fut>(
    shared: &ProfileStore,
    scope: &[u8],
    fingerprint: &[u8],
    window: Duration,
    deadline: Instant,
    call: F,
) -> Result<Shared<E>, F>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Bytes, E>>,
{
    let key = shared.sealer.hashed_key("idem", &[scope]);
    let store = &shared.store;
    let seal = |r: &Record| {
        shared
            .sealer
            .seal(&key, &serde_json::to_vec(r).expect("serializable"))
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let claim = seal(&Record::Pending {
        fingerprint: fingerprint.to_vec(),
        until_ms: unix_ms() + (left + CLAIM_GRACE).as_millis() as u64,
    });
    loop {
        match store.set_nx(&key, &claim, window).await {
            Err(StoreDown) => return Err(call),
            Ok(true) => {
                let result = call().await;
                match &result {
                    Ok(value) => {
                        let done = seal(&Record::Done {
                            fingerprint: fingerprint.to_vec(),
                            result: value.to_vec(),
                        });
                        let _ = store.set(&key, &done, window).await;
                    }
                    Err(_) => {
                        let _ = store.delete_if_equal(&key, &claim).await;
                    }
                }
                return Ok(Shared::Ran(result));
            }
            Ok(false) => {}
        }
        let record = match store.get(&key).await {
            Err(StoreDown) => return Err(call),
            Ok(None) => continue, // released between our SET and GET: claim again
            Ok(Some(sealed)) => shared
                .sealer
                .open(&key, &sealed)
                .and_then(|p| serde_json::from_slice::<Record>(&p).ok()),
        };
        let Some(record) = record else {
            return Err(call); // unreadable: do not trust it, do not overwrite it
        };
        match record {
            Record::Done { fingerprint: f, .. } | Record::Pending { fingerprint: f, .. }
                if f != fingerprint =>
            {
                return Ok(Shared::Reused)
            }
            Record::Done { result, .. } => return Ok(Shared::Replayed(result.into())),
            Record::Pending { until_ms, .. } if until_ms < unix_ms() => {
                return Ok(Shared::OutcomeUnknown)
            }
            Record::Pending { .. } => {
                let pause = jitter();
                if Instant::now() + pause >= deadline {
                    return Ok(Shared::TimedOut);
                }
                tokio::time::sleep(pause).await;
            }
        }
    }
}
