//! The Atlas Admin API side: one pooled HTTP client ([`client::AtlasClient`]), the three
//! operations as the official spec defines them ([`Operation`]), their JSON shapes
//! ([`models`]), reading answers ([`response`]), authentication ([`auth`]), the retry
//! policy ([`retry`]) and the upstream error type ([`error::AtlasError`]).
//!
//! This module knows HTTP and Atlas; it knows nothing of gRPC. It never logs a secret
//! and never returns a raw upstream body.
pub mod auth;
pub mod client;
pub mod error;
pub mod models;
pub mod response;
pub mod retry;

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
}

impl Operation {
    /// The spec's operationId, used in logs and metrics.
    pub fn id(self) -> &'static str {
        match self {
            Operation::CreateLinkToken => "createOrgLiveMigrationLinkToken",
            Operation::DeleteLinkToken => "deleteOrgLiveMigrationLinkTokens",
            Operation::CreateApiKey => "createOrgApiKey",
        }
    }

    /// The operation's HTTP method.
    pub fn method(self) -> reqwest::Method {
        match self {
            Operation::DeleteLinkToken => reqwest::Method::DELETE,
            _ => reqwest::Method::POST,
        }
    }

    /// Request path for an (already validated) org id.
    pub fn path(self, org_id: &str) -> String {
        match self {
            Operation::CreateLinkToken | Operation::DeleteLinkToken => {
                format!("/api/atlas/v2/orgs/{org_id}/liveMigrations/linkTokens")
            }
            Operation::CreateApiKey => format!("/api/atlas/v2/orgs/{org_id}/apiKeys"),
        }
    }

    /// Atlas API docs for the operation (`x-xgen-docs-url`).
    pub fn docs_url(self) -> &'static str {
        match self {
            Operation::CreateLinkToken => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Cloud-Migration-Service/operation/createOrgLiveMigrationLinkToken",
            Operation::DeleteLinkToken => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Cloud-Migration-Service/operation/deleteOrgLiveMigrationLinkTokens",
            Operation::CreateApiKey => "https://mongodb.com/docs/atlas/reference/api-resources-spec/v2/#tag/Programmatic-API-Keys/operation/createOrgApiKey",
        }
    }

    /// Whether Atlas may safely receive the request twice (decides retries after a send).
    pub fn idempotency(self) -> Idempotency {
        match self {
            Operation::DeleteLinkToken => Idempotency::Idempotent,
            _ => Idempotency::NonIdempotent,
        }
    }
}
