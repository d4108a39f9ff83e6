//! How the gateway proves itself to Atlas, per profile: a service account (OAuth2
//! client credentials, [`oauth::TokenSource`]) or an API key pair (HTTP Digest,
//! [`digest::DigestSession`]).
pub mod digest;
pub mod oauth;
pub mod token_response;

use std::sync::Arc;

use crate::config::Credentials;

/// One profile's authenticator.
pub enum Authenticator {
    /// A service account: OAuth2 client-credentials tokens, cached and shared.
    OAuth(Arc<oauth::TokenSource>),
    /// A programmatic API key: HTTP Digest.
    Digest(digest::DigestSession),
}

impl Authenticator {
    /// The authenticator for a profile's credentials (no network I/O).
    pub fn new(http: &reqwest::Client, profile: &str, token_url: &str, c: &Credentials) -> Self {
        match c {
            Credentials::ServiceAccount {
                client_id,
                client_secret,
            } => Authenticator::OAuth(oauth::TokenSource::new(
                http.clone(),
                profile,
                token_url,
                client_id,
                client_secret.clone(),
            )),
            Credentials::ApiKey {
                public_key,
                private_key,
            } => Authenticator::Digest(digest::DigestSession::new(public_key, private_key.clone())),
        }
    }
}
