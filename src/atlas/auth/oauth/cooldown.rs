//! Token-endpoint failures ([`TokenError`]) and how long they are remembered: after a
//! failed fetch, callers without a valid token get the same error, and no token request
//! is sent, until its cooldown passes (`Retry-After` or a minute after a 429 or the token
//! cap, a short jittered pause otherwise). No error here carries the secret or a token.
use std::time::{Duration, Instant};

use super::TokenSource;
use crate::atlas::error::AtlasError;

/// Token-endpoint failures, shareable between coalesced waiters.
#[derive(Clone, Debug)]
pub(super) enum TokenError {
    Rejected {
        status: u16,
        detail: String,
    },
    /// The service account holds Atlas's maximum of active tokens.
    LimitReached,
    Unavailable {
        detail: String,
    },
    RateLimited {
        retry_after: Option<Duration>,
    },
    /// Revocation at stop has begun: no token is fetched any more.
    ShuttingDown,
}

/// A token-endpoint failure remembered until `until`: no token request before then.
pub(super) struct Cooldown {
    until: Instant,
    error: TokenError,
}

impl From<&TokenError> for AtlasError {
    fn from(e: &TokenError) -> Self {
        match e.clone() {
            TokenError::Rejected { status, detail } => {
                AtlasError::CredentialsRejected { status, detail }
            }
            TokenError::LimitReached => AtlasError::TokenLimitReached {
                retry_after: TOKEN_LIMIT_COOLDOWN,
            },
            TokenError::Unavailable { detail } => AtlasError::TokenEndpointUnavailable { detail },
            TokenError::RateLimited { retry_after } => {
                AtlasError::TokenEndpointRateLimited { retry_after }
            }
            TokenError::ShuttingDown => AtlasError::ShuttingDown,
        }
    }
}

/// How long callers are answered from memory after a 429 without `Retry-After`: Atlas
/// counts token requests per minute.
const RATE_LIMIT_COOLDOWN: Duration = Duration::from_secs(60);
/// After the token cap (100 active tokens): asking again within a minute cannot help.
const TOKEN_LIMIT_COOLDOWN: Duration = Duration::from_secs(60);
/// After any other failure (5xx, unreachable, refused): a short pause, jittered up to
/// twice as long so a fleet that failed together does not ask again together.
const FAILURE_SPACING: Duration = Duration::from_secs(1);

impl TokenSource {
    /// The remembered failure, while its cooldown lasts (a 429's remaining wait).
    pub(super) fn cooling_down(&self) -> Option<TokenError> {
        let cooldown = self.cooldown.lock().expect("not poisoned");
        let c = cooldown.as_ref()?;
        let left = c.until.checked_duration_since(Instant::now())?;
        Some(match &c.error {
            TokenError::RateLimited { .. } => TokenError::RateLimited {
                retry_after: Some(left),
            },
            other => other.clone(),
        })
    }

    /// Remembers a failed fetch so the next callers do not ask again at once.
    pub(super) fn remember(&self, error: &TokenError) {
        let wait =
            pause_for(error).unwrap_or_else(|| FAILURE_SPACING.mul_f64(1.0 + fastrand::f64()));
        *self.cooldown.lock().expect("not poisoned") = Some(Cooldown {
            until: Instant::now() + wait,
            error: error.clone(),
        });
    }
}

/// How long the token endpoint is left alone after `error`, when Atlas says so: a 429
/// until its Retry-After (else a minute), the token cap for its own cool-down. The same
/// rule for one process and for a fleet (`fleet.rs`).
pub(super) fn pause_for(error: &TokenError) -> Option<Duration> {
    match error {
        TokenError::RateLimited { retry_after } => Some(retry_after.unwrap_or(RATE_LIMIT_COOLDOWN)),
        TokenError::LimitReached => Some(TOKEN_LIMIT_COOLDOWN),
        _ => None,
    }
}
