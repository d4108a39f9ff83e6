//! The held token: the cache's current token, read by every call under one uncontended
//! read lock, with no await and no cache bookkeeping. It sits in front of the moka cache,
//! which keeps coalescing fetches, the refresh and the 401 compare-and-remove; whatever
//! the cache gets is published here. Generations only move forward: a newer token is
//! never replaced by an older one, and a token a 401 dropped is never held again (a slow
//! waiter of the fetch that produced it cannot bring it back). It never logs.
use std::{
    sync::{Arc, RwLock},
    time::Instant,
};

use super::AccessToken;

/// The token every call reads first.
#[derive(Default)]
pub(super) struct Held(RwLock<Slot>);

#[derive(Default)]
struct Slot {
    token: Option<Arc<AccessToken>>,
    /// Tokens of a lower generation were dropped by a 401.
    rejected_below: u64,
}

impl Held {
    /// The held token while it is unexpired (the cache evicts it at the same instant).
    pub(super) fn get(&self, now: Instant) -> Option<Arc<AccessToken>> {
        let slot = self.0.read().expect("not poisoned");
        slot.token.as_ref().filter(|t| now < t.expires_at).cloned()
    }

    /// Holds `token`, unless a newer one is held or a 401 dropped it.
    pub(super) fn publish(&self, token: &Arc<AccessToken>) {
        let mut slot = self.0.write().expect("not poisoned");
        let newer_held = slot
            .token
            .as_ref()
            .is_some_and(|t| t.generation >= token.generation);
        if token.generation >= slot.rejected_below && !newer_held {
            slot.token = Some(Arc::clone(token));
        }
    }

    /// A 401 dropped the token of `generation`: it (and anything older) is not held now
    /// nor ever again.
    pub(super) fn reject(&self, generation: u64) {
        let mut slot = self.0.write().expect("not poisoned");
        slot.rejected_below = slot.rejected_below.max(generation + 1);
        if slot
            .token
            .as_ref()
            .is_some_and(|t| t.generation <= generation)
        {
            slot.token = None;
        }
    }
}
