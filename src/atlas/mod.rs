//! The Atlas Admin API side: one pooled HTTP client ([`client::AtlasClient`]), the
//! operations as the official spec defines them ([`Operation`], typed in [`operations`]),
//! their JSON shapes ([`models`]), reading answers ([`response`]), authentication
//! ([`auth`]), the retry policy ([`retry`]) and the upstream error type
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

use retry::Idempotency;

/// The Atlas operations the gateway calls (operationIds from the official spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    CreateLinkToken,
    DeleteLinkToken,
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

    pub fn method(self) -> reqwest::Method {
        match self {
            Operation::DeleteLinkToken => reqwest::Method::DELETE,
            _ => reqwest::Method::POST,
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
        }
    }

    pub fn idempotency(self) -> Idempotency {
        match self {
            Operation::DeleteLinkToken => Idempotency::Idempotent,
            _ => Idempotency::NonIdempotent,
        }
    }
}
