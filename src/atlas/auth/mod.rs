//! How the gateway proves itself to Atlas, per profile: a service account (OAuth2
//! client credentials, [`oauth::TokenSource`]) or an API key pair (HTTP Digest,
//! [`digest::DigestSession`]). One token per service account, not per profile:
//! profiles with the same token URL, client id and secret share one `TokenSource`
//! ([`ServiceAccounts`]), so their token requests, their token and their fleet entry
//! are one (Atlas caps a service account at 100 active tokens). Its metric and log
//! label is the first such profile's name.
pub mod digest;
pub mod oauth;
pub mod token_response;

use std::{collections::HashMap, sync::Arc};

use crate::{
    config::{Credentials, Profile},
    secret::Secret,
    store::{token::TokenSlot, ProfileStore},
};

/// The token sources made so far, by (token URL, client id), each with its secret (a
/// profile with the same id and another secret is another source: one of the two
/// secrets is wrong, and readiness must say which).
#[derive(Default)]
pub struct ServiceAccounts(HashMap<AccountKey, Vec<(Secret, Arc<oauth::TokenSource>)>>);

/// (token URL, client id).
type AccountKey = (String, String);

impl ServiceAccounts {
    /// The source of `p`'s service account: an existing one, or one made by `make`.
    fn source(
        &mut self,
        p: &Profile,
        client_id: &str,
        secret: &Secret,
        make: impl FnOnce() -> Arc<oauth::TokenSource>,
    ) -> Arc<oauth::TokenSource> {
        let same = self
            .0
            .entry((p.token_url.clone(), client_id.to_string()))
            .or_default();
        if let Some((_, source)) = same.iter().find(|(s, _)| s.expose() == secret.expose()) {
            return Arc::clone(source);
        }
        let source = make();
        same.push((secret.clone(), Arc::clone(&source)));
        source
    }
}

/// One profile's authenticator.
pub enum Authenticator {
    /// A service account: OAuth2 client-credentials tokens, cached and shared.
    OAuth(Arc<oauth::TokenSource>),
    /// A programmatic API key: HTTP Digest.
    Digest(digest::DigestSession),
}

impl Authenticator {
    /// With `shared`, a service account's token is shared with the fleet; `accounts`
    /// holds the sources of the profiles made before, one per service account.
    pub fn new(
        http: &reqwest::Client,
        p: &Profile,
        shared: Option<Arc<ProfileStore>>,
        accounts: &mut ServiceAccounts,
    ) -> Self {
        match &p.credentials {
            Credentials::ServiceAccount {
                client_id,
                client_secret,
            } => Authenticator::OAuth(accounts.source(p, client_id, client_secret, || {
                oauth::TokenSource::new(
                    http.clone(),
                    oauth::Endpoints {
                        profile: &p.name,
                        token_url: &p.token_url,
                        revoke_url: &p.revoke_url,
                    },
                    client_id,
                    client_secret.clone(),
                    shared.map(TokenSlot::new),
                )
            })),
            Credentials::ApiKey {
                public_key,
                private_key,
            } => Authenticator::Digest(digest::DigestSession::new(public_key, private_key.clone())),
        }
    }
}
