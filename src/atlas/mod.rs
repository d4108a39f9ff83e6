//! The Atlas Admin API side: one pooled HTTP client ([`client::AtlasClient`]), the
//! operations as the official spec defines them ([`Operation`], typed in [`operations`]),
//! their JSON shapes ([`models`]), reading answers ([`response`]), authentication
//! ([`auth`]), the retry policy ([`retry`]), request URLs (`urls`) and the upstream error type
//! ([`error::AtlasError`]).
//!
//! This module knows HTTP and Atlas; it knows nothing of gRPC. It never logs a secret
//! and never returns a raw upstream body.
pub mod auth;
pub mod client;
pub mod error;
pub mod models;
pub mod operations;
pub mod response;
pub mod retry;
mod urls;

use retry::Idempotency;

/// The Atlas operations the gateway calls (operationIds from the official spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// POST .../liveMigrations/linkTokens (`createOrgLiveMigrationLinkToken`).
    CreateLinkToken,
    /// DELETE .../liveMigrations/linkTokens (`deleteOrgLiveMigrationLinkTokens`).
    DeleteLinkToken,
    /// POST .../apiKeys (`createOrgApiKey`).
    CreateApiKey,
    /// POST .../apiKeys/{apiUserId}/accessList (`createOrgApiKeyAccessListEntry`).
    CreateApiKeyAccessList,
    /// DELETE .../apiKeys/{apiUserId} (`deleteOrgApiKey`).
    DeleteApiKey,
    /// GET .../apiKeys (`listOrgApiKeys`).
    ListApiKeys,
}

impl Operation {
    /// The spec's operationId, used in logs and metrics.
    pub fn id(self) -> &'static str {
        match self {
            Operation::CreateLinkToken => "createOrgLiveMigrationLinkToken",
            Operation::DeleteLinkToken => "deleteOrgLiveMigrationLinkTokens",
            Operation::CreateApiKey => "createOrgApiKey",
            Operation::CreateApiKeyAccessList => "createOrgApiKeyAccessListEntry",
            Operation::DeleteApiKey => "deleteOrgApiKey",
            Operation::ListApiKeys => "listOrgApiKeys",
        }
    }

    /// The operation's HTTP method.
    pub fn method(self) -> reqwest::Method {
        match self {
            Operation::DeleteLinkToken | Operation::DeleteApiKey => reqwest::Method::DELETE,
            Operation::ListApiKeys => reqwest::Method::GET,
            _ => reqwest::Method::POST,
        }
    }

    /// The spec's path template (`/api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}`).
    pub fn template(self) -> &'static str {
        match self {
            Operation::CreateLinkToken | Operation::DeleteLinkToken => {
                "/api/atlas/v2/orgs/{orgId}/liveMigrations/linkTokens"
            }
            Operation::CreateApiKey | Operation::ListApiKeys => {
                "/api/atlas/v2/orgs/{orgId}/apiKeys"
            }
            Operation::DeleteApiKey => "/api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}",
            Operation::CreateApiKeyAccessList => {
                "/api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}/accessList"
            }
        }
    }

    /// True for the POSTs: a failure after sending may have created something.
    pub fn creates(self) -> bool {
        self.method() == reqwest::Method::POST
    }

    /// Atlas API docs for the operation (`x-xgen-docs-url`).
    pub fn docs_url(self) -> &'static str {
        match self {
            Operation::CreateLinkToken => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Cloud-Migration-Service/operation/createOrgLiveMigrationLinkToken",
            Operation::DeleteLinkToken => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Cloud-Migration-Service/operation/deleteOrgLiveMigrationLinkTokens",
            Operation::CreateApiKey => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Programmatic-API-Keys/operation/createOrgApiKey",
            Operation::CreateApiKeyAccessList => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Programmatic-API-Keys/operation/createOrgApiKeyAccessListEntry",
            Operation::DeleteApiKey => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Programmatic-API-Keys/operation/deleteOrgApiKey",
            Operation::ListApiKeys => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Programmatic-API-Keys/operation/listOrgApiKeys",
        }
    }

    /// Whether Atlas may safely receive the request twice (decides retries after a send).
    pub fn idempotency(self) -> Idempotency {
        if self.creates() {
            Idempotency::NonIdempotent
        } else {
            Idempotency::Idempotent
        }
    }
}
