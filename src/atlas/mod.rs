//! The Atlas Admin API side: one pooled HTTP client ([`client::AtlasClient`]), the three
//! operations as the official spec defines them ([`Operation`]), their JSON shapes
//! ([`models`]), authentication ([`auth`]), the retry policy ([`retry`]) and the
//! upstream error type ([`error::AtlasError`]).
//!
//! This module knows HTTP and Atlas; it knows nothing of gRPC. It never logs a secret
//! and never returns a raw upstream body.
pub mod auth;
pub mod client;
pub mod error;
pub mod models;
pub mod retry;

use bytes::{Bytes, BytesMut};

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

    pub fn idempotency(self) -> Idempotency {
        match self {
            Operation::DeleteLinkToken => Idempotency::Idempotent,
            _ => Idempotency::NonIdempotent,
        }
    }
}

/// Why a response body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the response body exceeds the {0}-byte limit")]
    TooLarge(usize),
    #[error("the connection failed while reading the response body")]
    Interrupted,
}

/// Reads a response body, refusing more than `cap` bytes (announced or actual).
pub async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Bytes, BodyError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge(cap));
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|_| BodyError::Interrupted)? {
        if buf.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge(cap));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A short, secret-free description of a transport failure (no URL, no headers).
pub fn describe_transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the connection failed while reading the response"
    } else {
        "the connection failed"
    };
    // The innermost cause (e.g. "Connection refused (os error 111)") names no secret.
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    if std::ptr::eq(source as *const _ as *const u8, e as *const _ as *const u8) {
        kind.to_string()
    } else {
        format!("{kind}: {}", error::excerpt(source.to_string().as_bytes()))
    }
}
