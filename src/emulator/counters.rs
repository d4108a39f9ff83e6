//! What the emulator received, for tests to assert on upstream traffic: [`Counters`]
//! and the most recent requests ([`RecordedRequest`]). Plain data: no locking, no HTTP.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One received Atlas API request (not token or control requests), as tests assert it.
/// `authorization` keeps only the scheme (`Bearer`, `Digest`), never the credential.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query string.
    pub path_and_query: String,
    /// `Accept` header.
    pub accept: Option<String>,
    /// `Content-Type` header.
    pub content_type: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// Authorization scheme only (`Bearer`, `Digest`).
    pub authorization: Option<String>,
    /// Request body.
    pub body: String,
}

/// How many recent requests are kept.
pub const RECORDED_MAX: usize = 100;

/// What the emulator received, for tests to assert on upstream traffic.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Counters {
    /// Requests by `"METHOD /path/template"`, e.g.
    /// `"POST /api/atlas/v2/orgs/{orgId}/apiKeys"`; unknown paths count as `"METHOD *"`.
    pub requests: BTreeMap<String, u64>,
    /// Every hit on the token endpoint.
    pub token_requests: u64,
    /// Successful token grants.
    pub tokens_issued: u64,
    /// 401 responses carrying `WWW-Authenticate: Digest`.
    pub digest_challenges: u64,
    /// 401 for a bad/expired/revoked bearer token or a bad/replayed digest.
    pub unauthorized: u64,
    /// Successful link-token creations.
    pub link_tokens_created: u64,
    /// Successful link deletions.
    pub link_tokens_deleted: u64,
    /// Successful API key creations.
    pub api_keys_created: u64,
    /// Token requests refused with 429 by the token-request limit.
    pub token_rate_limited: u64,
    /// Token requests refused with 403 by the active-token cap.
    pub token_limit_reached: u64,
    /// Requests to `POST /api/oauth/revoke` with valid client credentials.
    pub revoke_requests: u64,
    /// Live tokens those requests revoked.
    pub tokens_revoked: u64,
    /// Successful API key deletions.
    pub api_keys_deleted: u64,
    /// Access list entries added to API keys.
    pub access_list_entries_created: u64,
    /// Service accounts created.
    pub service_accounts_created: u64,
    /// Service accounts deleted.
    pub service_accounts_deleted: u64,
    /// Service-account secrets created (with the account, or by `createOrgSecret`).
    pub service_account_secrets_created: u64,
    /// Service-account secrets deleted.
    pub service_account_secrets_deleted: u64,
    /// `createOrgSecret` refused with 409 `DATA_CONCURRENCY_ERROR` (another under way).
    pub service_account_secret_conflicts: u64,
    /// Requests whose client went away before the emulator answered (the handler was
    /// dropped): shows that a cancelled gateway call drops its upstream request too.
    pub abandoned: u64,
}

impl Counters {
    /// Requests received for `method` on `template` (e.g. `"POST"`, `"/api/oauth/token"`).
    pub fn requests_for(&self, method: &str, template: &str) -> u64 {
        self.requests
            .get(&format!("{method} {template}"))
            .copied()
            .unwrap_or(0)
    }

    /// Requests received on every route.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_for_reads_the_template_key() {
        let mut c = Counters::default();
        c.requests.insert("POST /api/oauth/token".into(), 3);
        assert_eq!(c.requests_for("POST", "/api/oauth/token"), 3);
        assert_eq!(c.requests_for("GET", "/api/oauth/token"), 0);
        assert_eq!(c.total_requests(), 3);
    }
}
