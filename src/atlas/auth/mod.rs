//! How the gateway proves itself to Atlas, per profile: a service account (OAuth2
//! client credentials, [`oauth::TokenSource`]) or an API key pair (HTTP Digest,
//! [`digest::DigestSession`]).
pub mod digest;
pub mod oauth;
pub mod token_response;

use std::sync::Arc;

use crate::{
    config::{Credentials, Profile},
    store::{token::TokenSlot, ProfileStore},
};

/// One profile's authenticator.
pub enum Authenticator {
    /// A service account: OAuth2 client-credentials tokens, cached and shared.
    OAuth(Arc<oauth::TokenSource>),
    /// A programmatic API key: HTTP Digest.
    Digest(digest::DigestSession),
}

impl Authenticator {
    /// With `shared`, a service account's token is shared with the fleet.
    pub fn new(http: &reqwest::Client, p: &Profile, shared: Option<Arc<ProfileStore>>) -> Self {
        match &p.credentials {
            Credentials::ServiceAccount {
                client_id,
                client_secret,
            } => Authenticator::OAuth(oauth::TokenSource::new(
                http.clone(),
                oauth::Endpoints {
                    profile: &p.name,
                    token_url: &p.token_url,
                    revoke_url: &p.revoke_url,
                },
                client_id,
                client_secret.clone(),
                shared.map(TokenSlot::new),
            )),
            Credentials::ApiKey {
                public_key,
                private_key,
            } => Authenticator::Digest(digest::DigestSession::new(public_key, private_key.clone())),
        }
    }
}
