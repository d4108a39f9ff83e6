//! Token hygiene without a shared store (RFC 7009, `POST {base}/api/oauth/revoke`):
//! tokens this process minted are revoked when it stops gracefully, after draining, and
//! a token replaced by a refresh ahead is revoked once no call holds it any more, so a
//! rolling restart does not leave a second set of live tokens against Atlas's cap of
//! 100 per service account. A token stored for the fleet is never revoked here.
//!
//! Revocation at stop is final: it first closes the source (no call and no refresh
//! fetches a token after it; `fetch`), waits for a fetch already on its way, and revokes
//! that token with the rest. It never logs a token.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::{AccessToken, TokenSource};
use crate::secret::Secret;

/// Longest wait for calls still using a replaced token (they are bounded by their own
/// deadlines well before this).
const RETIRE_WAIT: Duration = Duration::from_secs(120);
const REVOKE_TIMEOUT: Duration = Duration::from_secs(5);

impl TokenSource {
    /// Remembers a token minted by this process (revoked at a graceful stop).
    pub(super) fn remember_minted(&self, token: &AccessToken) {
        let mut minted = self.minted.lock().expect("not poisoned");
        let now = Instant::now();
        minted.retain(|(_, expires)| *expires > now);
        minted.push((token.value.clone(), token.expires_at));
    }

    /// The token belongs to the fleet (or is revoked): not ours to revoke any more.
    /// Returns whether it was ours (minted here, unexpired, not yet revoked).
    pub(super) fn forget_minted(&self, token: &Secret) -> bool {
        let mut minted = self.minted.lock().expect("not poisoned");
        let before = minted.len();
        minted.retain(|(t, _)| t != token);
        minted.len() < before
    }

    /// After a refresh ahead replaced `old`: revokes it once no call holds it.
    pub(super) fn retire(self: &Arc<Self>, old: Arc<AccessToken>) {
        if old.shared.get().is_some() {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let since = Instant::now();
            loop {
                // The cache may still hold the replaced entry until its housekeeping runs.
                this.cache.run_pending_tasks().await;
                if Arc::strong_count(&old) == 1 || since.elapsed() >= RETIRE_WAIT {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Not ours any more when the stop has revoked it already.
            if this.forget_minted(&old.value) {
                this.revoke(&old.value).await;
            }
        });
    }

    /// Stops fetching tokens, then revokes every unexpired token this process minted
    /// and did not share, a fetch that was on its way included (bounded by its timeout).
    pub async fn revoke_minted(&self) {
        *self.stopping.write().await = true;
        let minted = std::mem::take(&mut *self.minted.lock().expect("not poisoned"));
        let now = Instant::now();
        for (token, expires) in minted {
            if expires > now {
                self.revoke(&token).await;
            }
        }
    }

    async fn revoke(&self, token: &Secret) {
        let body = format!(
            "token={}&token_type_hint=access_token",
            form_encode(token.expose())
        );
        let sent = self
            .client_post(&self.revoke_url, body)
            .timeout(REVOKE_TIMEOUT)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                tracing::info!(profile = %self.profile, "revoked an access token this gateway minted")
            }
            Ok(r) => {
                tracing::warn!(profile = %self.profile, http_status = r.status().as_u16(), "token revocation refused")
            }
            Err(_) => {
                tracing::warn!(profile = %self.profile, "token revocation failed: endpoint unreachable")
            }
        }
    }
}

/// `application/x-www-form-urlencoded` value encoding (RFC 3986 unreserved kept).
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_encoding_escapes_reserved_bytes() {
        assert_eq!(super::form_encode("a+b/c=d.e_f~"), "a%2Bb%2Fc%3Dd.e_f~");
    }
}
