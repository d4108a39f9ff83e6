//! The in-process engine: one owner per [`Key`] from first arrival to final answer.
//!
//! The first arrival starts the key's run as a detached task (a *flight*), so the run
//! goes on when its caller cancels or runs out of time; every arrival, the first one
//! included, then waits for the flight at most until its own deadline. A flight lands
//! under the same lock an arrival looks under: the record it leaves (an answer, or
//! "unknown") is in place before the flight is gone, so no arrival ever finds neither
//! and starts a second run. A flight that failed before anything could be created
//! leaves nothing: waiting twins then start the next run, one of them as its owner.
//! Records are bounded in bytes (moka, weighed per record) and by the window (TTL).
use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use moka::sync::Cache;
use tokio::sync::{oneshot, watch};

use super::{Digest, Finished, Key, Outcome, Record, Refused, State, Verdict};

/// Bytes of records kept at most (a CreateApiKey answer is about 300 bytes).
const MAX_BYTES: u64 = 32 * 1024 * 1024;
/// Bookkeeping per record beyond its response (key, digest, cache entry).
const RECORD_OVERHEAD: usize = 128;

/// How a flight ended, as its twins see it.
#[derive(Clone)]
enum Landed {
    Answered(Bytes),
    Failed,
    Unknown,
}

/// A run in progress: its request's fingerprint and where it will announce its end.
struct Flight {
    fingerprint: Digest,
    landed: watch::Receiver<Option<Landed>>,
}

struct Inner {
    records: Cache<Key, Arc<Record>>,
    flights: Mutex<HashMap<Key, Flight>>,
}

/// Idempotency records and runs in progress of this process.
pub struct IdempotencyCache {
    inner: Arc<Inner>,
    owner: u64,
}

/// What an arrival found.
enum Arrival {
    Settled(Verdict),
    Twin(watch::Receiver<Option<Landed>>),
    Owner(watch::Sender<Option<Landed>>),
}

impl IdempotencyCache {
    /// Records kept for `window`.
    pub fn new(window: Duration) -> Self {
        Self::with_budget(window, MAX_BYTES)
    }

    /// Records holding at most `max_bytes`.
    pub fn with_budget(window: Duration, max_bytes: u64) -> Self {
        let records = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_, r: &Arc<Record>| {
                let size = match &r.state {
                    State::Done { result } => result.len(),
                    _ => 0,
                };
                u32::try_from(size + RECORD_OVERHEAD).unwrap_or(u32::MAX)
            })
            .time_to_live(window)
            .build();
        Self {
            inner: Arc::new(Inner {
                records,
                flights: Mutex::new(HashMap::new()),
            }),
            owner: fastrand::u64(1..),
        }
    }

    /// This instance's random id: the owner named in the claims it makes in a store.
    pub fn owner(&self) -> u64 {
        self.owner
    }

    /// The answer for `key`: replayed, or from `work` (run detached, once per key at a
    /// time, only when no record or flight exists), waited for until `deadline`.
    pub async fn run<E, W>(
        &self,
        key: Key,
        fingerprint: Digest,
        deadline: Instant,
        work: W,
    ) -> Result<(Bytes, Outcome), E>
    where
        W: Future<Output = Finished<E>> + Send + 'static,
        E: From<Refused> + Send + 'static,
    {
        loop {
            let mut landed = match self.arrive(key, &fingerprint) {
                Arrival::Settled(verdict) => return settled(verdict),
                Arrival::Twin(landed) => landed,
                Arrival::Owner(announce) => {
                    let (tx, rx) = oneshot::channel();
                    let flight = Landing {
                        inner: Arc::clone(&self.inner),
                        key,
                        fingerprint,
                        announce,
                        landed: false,
                    };
                    tokio::spawn(flight.fly(work, tx));
                    return match tokio::time::timeout_at(deadline.into(), rx).await {
                        Err(_) => Err(Refused::TimedOut.into()),
                        Ok(Err(_)) => Err(Refused::OutcomeUnknown.into()),
                        Ok(Ok(Finished::Answered(b, outcome))) => Ok((b, outcome)),
                        Ok(Ok(Finished::Failed(e) | Finished::Unknown(e))) => Err(e),
                    };
                }
            };
            let end = tokio::time::timeout_at(deadline.into(), landed.wait_for(Option::is_some));
            let end = match end.await {
                Err(_) => return Err(Refused::TimedOut.into()),
                Ok(Err(_)) => Landed::Unknown,
                Ok(Ok(end)) => end.clone().unwrap_or(Landed::Unknown),
            };
            // A failed run created nothing: go round, and the next run may start.
            match end {
                Landed::Answered(b) => return Ok((b, Outcome::Replayed)),
                Landed::Unknown => return Err(Refused::OutcomeUnknown.into()),
                Landed::Failed => {}
            }
        }
    }

    /// Looks for a record, then a flight, under the lock a flight lands under; starts
    /// a flight when there is neither.
    fn arrive(&self, key: Key, fingerprint: &Digest) -> Arrival {
        let mut flights = self.inner.flights.lock().expect("not poisoned");
        if let Some(record) = self.inner.records.get(&key) {
            // Records here are answers or unknowns, never pending: the time is moot.
            return Arrival::Settled(record.verdict(fingerprint, 0));
        }
        if let Some(flight) = flights.get(&key) {
            if &flight.fingerprint != fingerprint {
                return Arrival::Settled(Verdict::Reused);
            }
            return Arrival::Twin(flight.landed.clone());
        }
        let (announce, landed) = watch::channel(None);
        let fingerprint = *fingerprint;
        flights.insert(
            key,
            Flight {
                fingerprint,
                landed,
            },
        );
        Arrival::Owner(announce)
    }

    /// Bytes currently held by records.
    #[cfg(test)]
    fn weighted_size(&self) -> u64 {
        self.inner.records.run_pending_tasks();
        self.inner.records.weighted_size()
    }
}

/// The answer a record gives (records hold only answers and unknowns).
fn settled<E: From<Refused>>(verdict: Verdict) -> Result<(Bytes, Outcome), E> {
    match verdict {
        Verdict::Replay(b) => Ok((b, Outcome::Replayed)),
        Verdict::Reused => Err(Refused::Reused.into()),
        Verdict::Unknown | Verdict::Wait => Err(Refused::OutcomeUnknown.into()),
    }
}

/// A flight's end: lands it once, also when its task is dropped mid-run (then the
/// create may exist: unknown).
struct Landing {
    inner: Arc<Inner>,
    key: Key,
    fingerprint: Digest,
    announce: watch::Sender<Option<Landed>>,
    landed: bool,
}

impl Landing {
    async fn fly<E>(
        mut self,
        work: impl Future<Output = Finished<E>>,
        owner: oneshot::Sender<Finished<E>>,
    ) {
        let finished = work.await;
        self.land(match &finished {
            Finished::Answered(b, _) => Landed::Answered(b.clone()),
            Finished::Failed(_) => Landed::Failed,
            Finished::Unknown(_) => Landed::Unknown,
        });
        let _ = owner.send(finished);
    }

    /// Leaves the record, then removes the flight (one critical section), then tells
    /// the twins.
    fn land(&mut self, end: Landed) {
        self.landed = true;
        let state = match &end {
            Landed::Answered(b) => Some(State::Done { result: b.to_vec() }),
            Landed::Unknown => Some(State::Unknown),
            Landed::Failed => None,
        };
        if let Ok(mut flights) = self.inner.flights.lock() {
            if let Some(state) = state {
                let record = Record {
                    fingerprint: self.fingerprint,
                    state,
                };
                self.inner.records.insert(self.key, Arc::new(record));
            }
            flights.remove(&self.key);
        }
        self.announce.send_replace(Some(end));
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        if !self.landed {
            self.land(Landed::Unknown);
        }
    }
}

#[cfg(test)]
mod tests;
