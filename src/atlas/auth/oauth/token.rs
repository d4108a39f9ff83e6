//! [`AccessToken`]: one cached OAuth access token, with the times it expires and is
//! refreshed, its generation, its sealed form in the shared store (fleet mode), and its
//! `Authorization: Bearer` header built once. The value is a [`Secret`]: never logged.
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        OnceLock,
    },
    time::Instant,
};

use reqwest::{
    header::{HeaderValue, AUTHORIZATION},
    RequestBuilder,
};

use crate::secret::Secret;

/// A cached access token.
pub struct AccessToken {
    /// The bearer token (redacted in Debug and logs).
    pub value: Secret,
    /// Atlas accepted this token at least once (answered anything but 401).
    pub(super) proven: AtomicBool,
    pub(super) expires_at: Instant,
    pub(super) refresh_at: Instant,
    pub(super) generation: u64,
    /// The sealed value in the shared store, when the token is the fleet's: what a 401
    /// compares before dropping it there.
    pub(super) shared: OnceLock<Vec<u8>>,
    /// `Bearer <value>` as a sensitive header value, built once instead of per call
    /// (`None`: the value cannot be a header; the request then fails as it would have).
    bearer: Option<HeaderValue>,
}

impl AccessToken {
    pub(super) fn new(
        value: String,
        expires_at: Instant,
        refresh_at: Instant,
        generation: u64,
        shared: OnceLock<Vec<u8>>,
    ) -> Self {
        let bearer = HeaderValue::try_from(format!("Bearer {value}"))
            .ok()
            .map(|mut h| {
                h.set_sensitive(true);
                h
            });
        AccessToken {
            value: Secret::new(value),
            proven: AtomicBool::new(false),
            expires_at,
            refresh_at,
            generation,
            shared,
            bearer,
        }
    }

    /// Adds the token to `http` as `Authorization: Bearer`.
    pub fn authorize(&self, http: RequestBuilder) -> RequestBuilder {
        match &self.bearer {
            Some(h) => http.header(AUTHORIZATION, h.clone()),
            None => http.bearer_auth(self.value.expose()),
        }
    }

    /// Records that Atlas accepted the token (any answer but 401).
    pub fn mark_accepted(&self) {
        if !self.proven.load(Ordering::Relaxed) {
            self.proven.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(value: &str) -> AccessToken {
        let now = Instant::now();
        AccessToken::new(value.into(), now, now, 1, OnceLock::new())
    }

    #[test]
    fn the_bearer_header_carries_the_token_and_is_marked_sensitive() {
        let http = reqwest::Client::new();
        let sent = token("eyJhbGciOi.abc-_")
            .authorize(http.get("http://127.0.0.1:9/"))
            .build()
            .unwrap();
        let header = sent.headers().get(AUTHORIZATION).unwrap();
        assert_eq!(header, "Bearer eyJhbGciOi.abc-_");
        assert!(
            header.is_sensitive(),
            "kept out of Debug output, as bearer_auth does"
        );
        // A value that cannot be a header fails the request, as `bearer_auth` made it.
        let bad = token("a\nb").authorize(http.get("http://127.0.0.1:9/"));
        assert!(bad.build().is_err());
    }
}
