//! In-memory state of one emulator: issued tokens, Digest nonces, org links, created API
//! keys, fault rules and counters, behind one mutex.
//!
//! The lock is never held across an `.await`; a poisoned lock is recovered (the data stays
//! consistent because every critical section is a few plain assignments).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::bodies::AccessEntry;
use super::counters::{Counters, RecordedRequest};
use super::faults::Fault;
use super::response::RATE_LIMIT;
use super::EmulatorConfig;

/// Above this many live entries, expired tokens / nonces are swept on the next insert.
const SWEEP_THRESHOLD: usize = 1024;

/// How many nc values below the highest seen one are still accepted once (out-of-order
/// requests sharing a nonce), like an IPsec anti-replay window.
pub(crate) const NC_WINDOW: u32 = 64;

/// Everything shared by the handlers of one emulator.
pub(crate) struct Shared {
    pub config: EmulatorConfig,
    /// `http://IP:PORT`, used in `links[].href`.
    pub base_url: String,
    inner: Mutex<Inner>,
}

impl Shared {
    pub fn new(config: EmulatorConfig, base_url: String) -> Shared {
        Shared {
            inner: Mutex::new(Inner {
                limits: config.limits,
                ..Inner::default()
            }),
            config,
            base_url,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One issued Digest nonce.
#[derive(Debug)]
pub(crate) struct NonceState {
    pub issued: Instant,
    /// Highest nc accepted so far (0: none yet).
    pub max_nc: u32,
    /// Bit `i` set: nc `max_nc - i` was accepted.
    pub seen: u64,
}

impl NonceState {
    /// Records `nc` and returns true if it was not used before (and is not too old).
    pub fn accept_nc(&mut self, nc: u32) -> bool {
        if nc == 0 {
            return false;
        }
        if nc > self.max_nc {
            let shift = nc - self.max_nc;
            self.seen = if shift >= NC_WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.max_nc = nc;
            return true;
        }
        let back = self.max_nc - nc;
        if back >= NC_WINDOW || self.seen & (1u64 << back) != 0 {
            return false;
        }
        self.seen |= 1u64 << back;
        true
    }
}

/// One API key created through `POST .../apiKeys`.
#[derive(Debug, Clone)]
pub(crate) struct StoredApiKey {
    pub org_id: String,
    pub id: String,
    pub desc: String,
    pub public_key: String,
    /// The end of the private key: after creation Atlas shows only this, masked.
    pub private_key_tail: String,
    pub roles: Vec<String>,
    pub access_list: Vec<AccessEntry>,
}

/// One service account created through `POST .../serviceAccounts`.
#[derive(Clone)]
pub(crate) struct StoredServiceAccount {
    pub org_id: String,
    pub client_id: String,
    pub name: String,
    pub description: String,
    pub roles: Vec<String>,
    pub created_at: std::time::SystemTime,
    pub secrets: Vec<StoredSecret>,
    pub access_list: Vec<AccessEntry>,
    /// A `createOrgSecret` is under way: a second one meanwhile is 409.
    pub creating_secret: bool,
}

/// One secret of a service account; the value is what the token endpoint checks.
#[derive(Clone)]
pub(crate) struct StoredSecret {
    pub id: String,
    pub value: String,
    pub created_at: std::time::SystemTime,
    pub expires_at: std::time::SystemTime,
}

/// Mutable state; see [`Shared::lock`].
#[derive(Default)]
pub(crate) struct Inner {
    pub counters: Counters,
    pub faults: Vec<Fault>,
    /// Access token -> instant after which it is refused.
    pub tokens: HashMap<String, Instant>,
    pub nonces: HashMap<String, NonceState>,
    /// Orgs that currently have a live-migration link.
    pub links: HashSet<String>,
    pub api_keys: Vec<StoredApiKey>,
    pub service_accounts: Vec<StoredServiceAccount>,
    /// The most recent Atlas API requests (at most `counters::RECORDED_MAX`).
    pub recorded: std::collections::VecDeque<RecordedRequest>,
    rate_window: Option<(Instant, u32)>,
    /// Service-account limits in force (kept across resets: they are configuration).
    pub limits: super::limits::Limits,
    pub token_window: super::limits::TokenWindow,
}

impl Inner {
    /// Back to a fresh start: counters, faults, tokens, nonces, links and keys.
    pub fn reset(&mut self) {
        let limits = self.limits;
        *self = Inner::default();
        self.limits = limits;
    }

    /// Issued tokens that are neither expired nor revoked.
    pub fn active_tokens(&self) -> usize {
        let now = Instant::now();
        self.tokens.values().filter(|e| **e > now).count()
    }

    pub fn issue_token(&mut self, token: String, valid_for: Duration) {
        let now = Instant::now();
        if self.tokens.len() >= SWEEP_THRESHOLD {
            self.tokens.retain(|_, expires| *expires > now);
        }
        self.tokens.insert(token, now + valid_for);
    }

    /// True when `token` was issued, is not revoked and has not expired.
    pub fn token_valid(&self, token: &str) -> bool {
        self.tokens
            .get(token)
            .is_some_and(|expires| *expires > Instant::now())
    }

    pub fn issue_nonce(&mut self, nonce: String, lifetime: Duration) {
        let now = Instant::now();
        if self.nonces.len() >= SWEEP_THRESHOLD {
            self.nonces
                .retain(|_, n| now.duration_since(n.issued) < lifetime);
        }
        self.nonces.insert(
            nonce,
            NonceState {
                issued: now,
                max_nc: 0,
                seen: 0,
            },
        );
    }

    /// Counts one response against the current one-minute window; returns what remains.
    pub fn rate_remaining(&mut self) -> u32 {
        let now = Instant::now();
        let used = match &mut self.rate_window {
            Some((start, used)) if now.duration_since(*start) < Duration::from_secs(60) => {
                *used = used.saturating_add(1);
                *used
            }
            _ => {
                self.rate_window = Some((now, 1));
                1
            }
        };
        RATE_LIMIT.saturating_sub(used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> NonceState {
        NonceState {
            issued: Instant::now(),
            max_nc: 0,
            seen: 0,
        }
    }

    #[test]
    fn nc_increasing_is_accepted_and_replay_refused() {
        let mut n = fresh();
        assert!(n.accept_nc(1));
        assert!(n.accept_nc(2));
        assert!(!n.accept_nc(2));
        assert!(!n.accept_nc(1));
        assert!(!n.accept_nc(0));
    }

    #[test]
    fn nc_out_of_order_within_window_is_accepted_once() {
        let mut n = fresh();
        assert!(n.accept_nc(3));
        assert!(n.accept_nc(2));
        assert!(!n.accept_nc(2));
        assert!(n.accept_nc(100));
        assert!(!n.accept_nc(3), "too old for the window");
        assert!(n.accept_nc(99));
    }
}
