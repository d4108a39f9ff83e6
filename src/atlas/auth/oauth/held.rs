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

#[cfg(test)]
mod tests {
    use std::{sync::OnceLock, time::Duration};

    use super::*;

    fn token(generation: u64, expires_at: Instant) -> Arc<AccessToken> {
        Arc::new(AccessToken::new(
            format!("token-{generation}"),
            expires_at,
            expires_at,
            generation,
            OnceLock::new(),
        ))
    }

    fn held_generation(held: &Held, now: Instant) -> Option<u64> {
        held.get(now).map(|t| t.generation)
    }

    #[test]
    fn a_newer_token_is_never_replaced_by_an_older_one() {
        let (now, later) = (Instant::now(), Instant::now() + Duration::from_secs(60));
        let held = Held::default();
        held.publish(&token(2, later));
        held.publish(&token(1, later));
        assert_eq!(held_generation(&held, now), Some(2));
        held.publish(&token(3, later));
        assert_eq!(held_generation(&held, now), Some(3));
    }

    #[test]
    fn a_token_a_401_dropped_is_never_held_again() {
        let (now, later) = (Instant::now(), Instant::now() + Duration::from_secs(60));
        let held = Held::default();
        let dropped = token(1, later);
        held.publish(&dropped);
        held.reject(1);
        assert_eq!(held_generation(&held, now), None, "dropped at once");
        // A slow waiter of the fetch that produced it publishes it again: refused.
        held.publish(&dropped);
        assert_eq!(held_generation(&held, now), None);
        held.publish(&token(2, later));
        assert_eq!(held_generation(&held, now), Some(2));
        // A 401 on an older token leaves the newer one held.
        held.reject(1);
        assert_eq!(held_generation(&held, now), Some(2));
    }

    #[test]
    fn an_expired_token_is_not_handed_out() {
        let now = Instant::now();
        let held = Held::default();
        held.publish(&token(1, now + Duration::from_secs(1)));
        assert_eq!(held_generation(&held, now), Some(1));
        assert_eq!(held_generation(&held, now + Duration::from_secs(1)), None);
    }
}
