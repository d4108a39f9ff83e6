//! The fleet engine: a key's [`Record`] in the shared store, so a retry that lands on
//! another replica, or comes after the first replica was killed, gets the first answer
//! with one Atlas create. It runs inside the in-process engine's flight, so one
//! replica sends at most one claim per key at a time.
//!
//! A run claims the key with `SET NX` (a sealed `Pending` naming this instance and the
//! run's end), replaces it with the sealed answer (or "unknown"), or deletes it (only
//! while still its own) when nothing was created. Anything the store cannot do (down,
//! slow, unreadable record) fails closed: [`Refused::StoreUnavailable`], Atlas not
//! called. A claim whose reply was lost is deleted in the background once the store
//! answers, and a later run of the same instance recognises it as its own, so it never
//! ages into "unknown"; a `Pending` of another instance past its end means that replica
//! died mid-run: "unknown" for the rest of the window. Key names are keyed hashes: no
//! caller, org or request id shows.
use std::{
    future::Future,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use super::{Digest, Finished, Key, Outcome, Record, Refused, State, Verdict};
use crate::store::{jitter, unix_ms, ProfileStore, SharedStore, StoreDown};

/// How long past its own end a claim is still waited for (the owner may be writing its
/// answer).
const CLAIM_GRACE: Duration = Duration::from_secs(5);
/// Pause between background attempts to write a record the store missed.
const SETTLE_RETRY: Duration = Duration::from_millis(500);
/// Background settles held at most (each ends when the store answers): beyond it, what
/// the store missed is left to the rules (a claim past its end reads "unknown").
const MAX_SETTLING: usize = 4096;

/// Background settles in progress in this process.
static SETTLING: AtomicUsize = AtomicUsize::new(0);

/// One key's record in the store, as one run sees it.
pub struct SharedRecord<'a> {
    /// The profile's store (connection and sealer).
    pub store: &'a ProfileStore,
    /// This instance (the owner named in its claims).
    pub owner: u64,
    /// The record's key.
    pub key: &'a Key,
    /// The request's fingerprint.
    pub fingerprint: Digest,
    /// How long records live.
    pub window: Duration,
}

impl SharedRecord<'_> {
    /// Runs `call` unless the fleet's record answers first; `end` bounds the run and
    /// any wait for another replica's.
    pub async fn run_once<E, Fut>(&self, end: Instant, call: Fut) -> Finished<E>
    where
        Fut: Future<Output = Finished<E>>,
        E: From<Refused>,
    {
        let key = self.store.sealer.hashed_key("idem", &[self.key.as_ref()]);
        let left = end.saturating_duration_since(Instant::now());
        let until_ms = unix_ms() + (left + CLAIM_GRACE).as_millis() as u64;
        let claim = self.seal(
            &key,
            State::Pending {
                owner: self.owner,
                until_ms,
            },
        );
        let store = &self.store.store;
        loop {
            match store.set_nx(&key, &claim, self.window).await {
                Ok(true) => return self.own(key, claim, call).await,
                Ok(false) => {}
                Err(StoreDown) => {
                    // The claim may have landed without its reply: take it back later.
                    settle_later(store, key, Settle::Release(claim), self.window);
                    return Finished::Failed(Refused::StoreUnavailable.into());
                }
            }
            let sealed = match store.get(&key).await {
                Err(StoreDown) => return Finished::Failed(Refused::StoreUnavailable.into()),
                Ok(None) => continue, // released between our SET and GET: claim again
                Ok(Some(sealed)) => sealed,
            };
            let Some(record) = self.open(&key, &sealed) else {
                return Finished::Failed(Refused::StoreUnavailable.into()); // not overwritten
            };
            if matches!(record.state, State::Pending { owner, .. } if owner == self.owner) {
                // An earlier run here whose claim was never used (only one runs at a time).
                if store.delete_if_equal(&key, &sealed).await.is_err() {
                    return Finished::Failed(Refused::StoreUnavailable.into());
                }
                continue;
            }
            match record.verdict(&self.fingerprint, unix_ms()) {
                Verdict::Replay(b) => return Finished::Answered(b, Outcome::Replayed),
                Verdict::Reused => return Finished::Failed(Refused::Reused.into()),
                Verdict::Unknown => return Finished::Unknown(Refused::OutcomeUnknown.into()),
                Verdict::Wait => {
                    let pause = jitter();
                    if Instant::now() + pause >= end {
                        return Finished::Failed(Refused::TimedOut.into());
                    }
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// The claim is ours: run, then leave the answer, "unknown", or nothing.
    async fn own<E, Fut>(&self, key: String, claim: Vec<u8>, call: Fut) -> Finished<E>
    where
        Fut: Future<Output = Finished<E>>,
    {
        let finished = call.await;
        let settle = match &finished {
            Finished::Answered(b, _) => {
                Settle::Write(self.seal(&key, State::Done { result: b.to_vec() }))
            }
            Finished::Unknown(_) => Settle::Write(self.seal(&key, State::Unknown)),
            Finished::Failed(_) => Settle::Release(claim),
        };
        let store = &self.store.store;
        if settle.apply(store, &key, self.window).await.is_err() {
            settle_later(store, key, settle, self.window);
        }
        finished
    }

    fn seal(&self, key: &str, state: State) -> Vec<u8> {
        let record = Record {
            fingerprint: self.fingerprint,
            state,
        };
        let plain = serde_json::to_vec(&record).expect("serializable");
        self.store.sealer.seal(key, &plain)
    }

    fn open(&self, key: &str, sealed: &[u8]) -> Option<Record> {
        let plain = self.store.sealer.open(key, sealed)?;
        serde_json::from_slice(&plain).ok()
    }
}

/// What a run leaves in the store when it ends.
enum Settle {
    /// The final record (an answer, or "unknown").
    Write(Vec<u8>),
    /// Nothing: the claim (this value) is deleted while it is still there.
    Release(Vec<u8>),
}

impl Settle {
    async fn apply(
        &self,
        store: &SharedStore,
        key: &str,
        window: Duration,
    ) -> Result<(), StoreDown> {
        match self {
            Settle::Write(record) => store.set(key, record, window).await,
            Settle::Release(claim) => store.delete_if_equal(key, claim).await.map(drop),
        }
    }
}

/// Retries `settle` in the background until the store takes it or the window is over,
/// so that what the store missed does not read as a live or dead claim for long.
fn settle_later(store: &Arc<SharedStore>, key: String, settle: Settle, window: Duration) {
    let Some(slot) = Settling::take() else {
        return;
    };
    let store = Arc::clone(store);
    let give_up = Instant::now() + window;
    tokio::spawn(async move {
        let _slot = slot;
        while Instant::now() < give_up {
            tokio::time::sleep(SETTLE_RETRY + jitter()).await;
            if settle.apply(&store, &key, window).await.is_ok() {
                return;
            }
        }
    });
}

/// One of the [`MAX_SETTLING`] background settles, given back when dropped.
struct Settling;

impl Settling {
    fn take() -> Option<Settling> {
        if SETTLING.fetch_add(1, Ordering::AcqRel) < MAX_SETTLING {
            return Some(Settling);
        }
        SETTLING.fetch_sub(1, Ordering::AcqRel);
        None
    }
}

impl Drop for Settling {
    fn drop(&mut self) {
        SETTLING.fetch_sub(1, Ordering::AcqRel);
    }
}
