//! The token request itself: a client-credentials POST to the token endpoint (HTTP
//! Basic client auth, a capped body, its own timeout), the answer classified as a token
//! or a [`TokenError`], counted and logged (outcome and time only: never the secret or
//! the token), and remembered (a minted token for revocation, a failure for its cooldown).
//! Once revocation at stop has begun it sends no token request.
use std::{
    sync::{Arc, OnceLock},
    time::{Duration, Instant, SystemTime},
};

use super::{cooldown::TokenError, AccessToken, TokenSource};
use crate::{
    atlas::{
        auth::token_response::{parse_issued, parse_refusal, Issued, Refusal},
        response::{describe_transport_error, read_capped},
        retry::parse_retry_after,
    },
    telemetry::metrics as m,
};

const TOKEN_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TOKEN_BODY: usize = 64 * 1024;

impl TokenSource {
    /// A new token, unless revocation at stop has begun. The fetch holds the stop gate
    /// open until its token is remembered, so the revocation waits for it (`revoke`).
    pub(super) async fn fetch(&self) -> Result<Arc<AccessToken>, TokenError> {
        let stopping = self.stopping.read().await;
        if *stopping {
            return Err(TokenError::ShuttingDown);
        }
        let result = self.fetch_counted().await;
        drop(stopping);
        result
    }

    async fn fetch_counted(&self) -> Result<Arc<AccessToken>, TokenError> {
        let started = Instant::now();
        let result = self.request_token().await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(TokenError::Rejected { .. }) => "rejected",
            Err(TokenError::LimitReached) => "token_limit",
            Err(TokenError::RateLimited { .. }) => "rate_limited",
            Err(TokenError::Unavailable { .. }) => "unavailable",
            Err(TokenError::ShuttingDown) => "shutting_down",
        };
        m::token_fetch(&self.profile, outcome, started.elapsed());
        tracing::debug!(profile = %self.profile, outcome, elapsed_ms = started.elapsed().as_millis() as u64, "token fetch");
        match &result {
            Ok(token) => self.remember_minted(token),
            Err(e) => self.remember(e),
        }
        result
    }

    async fn request_token(&self) -> Result<Arc<AccessToken>, TokenError> {
        let unavailable = |detail: String| TokenError::Unavailable { detail };
        let resp = self
            .client_post(&self.token_url, "grant_type=client_credentials".into())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(TOKEN_FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| unavailable(describe_transport_error(&e)))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = read_capped(resp, MAX_TOKEN_BODY)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        match status {
            200 => {
                let issued = parse_issued(&body).map_err(|e| unavailable(e.into()))?;
                self.new_token(issued).map(Arc::new)
            }
            400 | 401 | 403 => Err(match parse_refusal(status, &body) {
                Refusal::TokenLimitReached => TokenError::LimitReached,
                Refusal::Credentials { error } => TokenError::Rejected {
                    status,
                    detail: error,
                },
            }),
            429 => Err(TokenError::RateLimited { retry_after }),
            _ => Err(unavailable(format!(
                "token endpoint answered HTTP {status}"
            ))),
        }
    }

    /// A form POST to the OAuth service (token, revoke) with HTTP Basic client auth.
    pub(super) fn client_post(&self, url: &str, body: String) -> reqwest::RequestBuilder {
        self.http
            .post(url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
    }

    /// The cached form of a token; `lifetime` is already clamped, and the arithmetic is
    /// checked anyway (an `Instant` near the end of its range must not panic).
    fn new_token(&self, t: Issued) -> Result<AccessToken, TokenError> {
        let lifetime = t.lifetime;
        // Stop using a token a little early (skew); refresh ahead by half the remaining
        // lifetime, at most 60 s (one hour tokens: refreshed a minute before).
        let skew = (lifetime / 20).min(Duration::from_secs(5));
        let margin = ((lifetime - skew) / 2).min(Duration::from_secs(60));
        let now = Instant::now();
        let at = |d: Duration| {
            now.checked_add(d).ok_or_else(|| TokenError::Unavailable {
                detail: "the token endpoint answered an unusable expires_in".into(),
            })
        };
        Ok(AccessToken::new(
            t.access_token,
            at(lifetime - skew)?,
            at(lifetime - skew - margin)?,
            self.next_generation(),
            OnceLock::new(),
        ))
    }
}
