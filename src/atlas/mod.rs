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
pub mod service_accounts;
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
    /// GET /api/atlas/v2 (`getSystemStatus`): the readiness check of a profile's credentials.
    GetSystemStatus,
    /// POST .../serviceAccounts (`createOrgServiceAccount`).
    CreateServiceAccount,
    /// GET .../serviceAccounts (`listOrgServiceAccounts`).
    ListServiceAccounts,
    /// GET .../serviceAccounts/{clientId} (`getOrgServiceAccount`).
    GetServiceAccount,
    /// DELETE .../serviceAccounts/{clientId} (`deleteOrgServiceAccount`).
    DeleteServiceAccount,
    /// POST .../serviceAccounts/{clientId}/secrets (`createOrgSecret`).
    CreateServiceAccountSecret,
    /// DELETE .../serviceAccounts/{clientId}/secrets/{secretId} (`deleteOrgSecret`).
    DeleteServiceAccountSecret,
    /// POST .../serviceAccounts/{clientId}/accessList (`createOrgAccessList`).
    CreateServiceAccountAccessList,
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
            Operation::GetSystemStatus => "getSystemStatus",
            Operation::CreateServiceAccount => "createOrgServiceAccount",
            Operation::ListServiceAccounts => "listOrgServiceAccounts",
            Operation::GetServiceAccount => "getOrgServiceAccount",
            Operation::DeleteServiceAccount => "deleteOrgServiceAccount",
            Operation::CreateServiceAccountSecret => "createOrgSecret",
            Operation::DeleteServiceAccountSecret => "deleteOrgSecret",
            Operation::CreateServiceAccountAccessList => "createOrgAccessList",
        }
    }

    /// The operation's HTTP method.
    pub fn method(self) -> reqwest::Method {
        match self {
            Operation::DeleteLinkToken
            | Operation::DeleteApiKey
            | Operation::DeleteServiceAccount
            | Operation::DeleteServiceAccountSecret => reqwest::Method::DELETE,
            Operation::ListApiKeys
            | Operation::GetSystemStatus
            | Operation::ListServiceAccounts
            | Operation::GetServiceAccount => reqwest::Method::GET,
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
            Operation::GetSystemStatus => "/api/atlas/v2",
            Operation::CreateServiceAccount | Operation::ListServiceAccounts => {
                "/api/atlas/v2/orgs/{orgId}/serviceAccounts"
            }
            Operation::GetServiceAccount | Operation::DeleteServiceAccount => {
                "/api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}"
            }
            Operation::CreateServiceAccountSecret => {
                "/api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}/secrets"
            }
            Operation::DeleteServiceAccountSecret => {
                "/api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}/secrets/{secretId}"
            }
            Operation::CreateServiceAccountAccessList => {
                "/api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}/accessList"
            }
        }
    }

    /// The API version the operation is sent and answered at: the service-account
    /// operations exist only at `2024-08-05`; `None` for the others, which use the
    /// configured `--api-version` (default `2023-01-01`).
    pub fn fixed_version(self) -> Option<&'static str> {
        match self {
            Operation::CreateServiceAccount
            | Operation::ListServiceAccounts
            | Operation::GetServiceAccount
            | Operation::DeleteServiceAccount
            | Operation::CreateServiceAccountSecret
            | Operation::DeleteServiceAccountSecret
            | Operation::CreateServiceAccountAccessList => Some("2024-08-05"),
            _ => None,
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
            Operation::GetSystemStatus => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Root/operation/getSystemStatus",
            Operation::CreateServiceAccount => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Service-Accounts/operation/createOrgServiceAccount",
            Operation::ListServiceAccounts => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Service-Accounts/operation/listOrgServiceAccounts",
            Operation::GetServiceAccount => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Service-Accounts/operation/getOrgServiceAccount",
            Operation::DeleteServiceAccount => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Service-Accounts/operation/deleteOrgServiceAccount",
            Operation::CreateServiceAccountSecret => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Service-Accounts/operation/createOrgSecret",
            Operation::DeleteServiceAccountSecret => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Service-Accounts/operation/deleteOrgSecret",
            Operation::CreateServiceAccountAccessList => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Service-Accounts/operation/createOrgAccessList",
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
