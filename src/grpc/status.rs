//! The error mapper: the only place where gRPC codes and google.rpc details are chosen
//! (AIP-193). Every [`Failure`] becomes a `Status` with a human message, an `ErrorInfo`
//! (reason, domain, metadata), a `RequestInfo`, and where they apply `BadRequest`,
//! `RetryInfo`, `QuotaFailure`, `Help` and `LocalizedMessage`.
//!
//! This file owns [`Failure`] and maps the failures the gateway raises itself; Atlas's
//! failures are mapped in `upstream` (transport, token endpoint, the access-list step)
//! and `api_failure` (Atlas's error answers: the code table and their details).
//!
//! Messages come from Atlas's `detail` or a gateway sentence: never a Debug dump, a raw
//! body or a secret. See README.md "Errors" for the table this implements.
use std::{collections::HashMap, time::Duration};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::{
    atlas::{error::AtlasError, Operation},
    idempotency::RequestIdReused,
    validate::{self, Violation},
};

mod api_failure;
mod upstream;

pub use api_failure::{code_for, proto_field_path};
use upstream::{access_list_failed, upstream};

/// `ErrorInfo.domain` for errors the gateway itself raises.
pub const GATEWAY_DOMAIN: &str = "atlas-grpc-gateway";

/// Everything a call can fail with.
#[derive(Debug)]
pub enum Failure {
    /// The request breaks the contract's rules (no upstream call was made).
    Invalid(Vec<Violation>),
    /// `x-atlas-profile` names no configured profile.
    UnknownProfile(String),
    /// The profile's policy forbids this org or role.
    PolicyDenied {
        /// The request field the policy concerns (`org_id`, `roles`).
        field: String,
        /// Why, for the caller.
        detail: String,
    },
    /// A `request_id` was reused with a different request.
    RequestIdReused,
    /// The gateway is draining or overloaded.
    Overloaded,
    /// A replica stopped while running this `request_id` (shared store): the create may
    /// or may not have reached Atlas, so it is not run again.
    RequestOutcomeUnknown,
    /// Atlas (or the way to it) failed.
    Atlas(AtlasError),
    /// A create (`CreateApiKey`, `CreateServiceAccount`) made credential `id`, but adding
    /// its access list failed with `error`; `rolled_back` says whether it was deleted again.
    AccessListFailed {
        /// What kind of credential was created.
        minted: Minted,
        /// Its id (API key id or service-account client id).
        id: String,
        /// Why the access list could not be added.
        error: AtlasError,
        /// Whether the key was deleted again.
        rolled_back: bool,
    },
}

/// The kinds of credential a create mints with an access list as one unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Minted {
    /// An organization API key (`CreateApiKey`).
    ApiKey,
    /// An organization service account (`CreateServiceAccount`).
    ServiceAccount,
}

impl Minted {
    /// The Atlas operation that adds its access list.
    pub fn access_list_operation(self) -> Operation {
        match self {
            Minted::ApiKey => Operation::CreateApiKeyAccessList,
            Minted::ServiceAccount => Operation::CreateServiceAccountAccessList,
        }
    }

    /// The ErrorInfo metadata key and log field of its id.
    pub fn id_field(self) -> &'static str {
        match self {
            Minted::ApiKey => "api_key_id",
            Minted::ServiceAccount => "client_id",
        }
    }

    /// What a person calls it.
    pub fn noun(self) -> &'static str {
        match self {
            Minted::ApiKey => "API key",
            Minted::ServiceAccount => "service account",
        }
    }

    /// The ErrorInfo reason when it exists without its access list.
    pub fn orphan_reason(self) -> &'static str {
        match self {
            Minted::ApiKey => "ORPHANED_API_KEY",
            Minted::ServiceAccount => "ORPHANED_SERVICE_ACCOUNT",
        }
    }

    /// The RPC that deletes it.
    pub fn delete_rpc(self) -> &'static str {
        match self {
            Minted::ApiKey => "DeleteApiKey",
            Minted::ServiceAccount => "DeleteServiceAccount",
        }
    }
}

impl From<AtlasError> for Failure {
    fn from(e: AtlasError) -> Self {
        Failure::Atlas(e)
    }
}

impl From<RequestIdReused> for Failure {
    fn from(_: RequestIdReused) -> Self {
        Failure::RequestIdReused
    }
}

impl Failure {
    /// The upstream error behind this failure, if any (for logs and metrics).
    pub fn atlas_error(&self) -> Option<&AtlasError> {
        match self {
            Failure::Atlas(e) | Failure::AccessListFailed { error: e, .. } => Some(e),
            _ => None,
        }
    }
}

/// Per-call facts the details need.
pub struct ErrorContext<'a> {
    /// The Atlas operation.
    pub operation: Operation,
    /// The call's request id.
    pub request_id: &'a str,
    /// The org the call acted on.
    pub org_id: &'a str,
    /// The profile used.
    pub profile: &'a str,
    /// The configured Atlas host (ErrorInfo.domain for upstream errors).
    pub atlas_domain: &'a str,
}

impl Failure {
    /// The gRPC status for this failure.
    pub fn into_status(self, ctx: &ErrorContext<'_>) -> Status {
        let mut d = ErrorDetails::new();
        let mut meta = HashMap::from([("org_id".to_string(), ctx.org_id.to_string())]);
        let (code, message, reason, domain) = match self {
            Failure::Invalid(violations) => {
                let violations = validate::reported(violations);
                let summary = violations
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.description))
                    .collect::<Vec<_>>()
                    .join("; ");
                d.set_bad_request(
                    violations
                        .into_iter()
                        .map(|v| FieldViolation::new(v.field, v.description))
                        .collect::<Vec<_>>(),
                );
                let msg = format!("invalid request: {summary}");
                (
                    Code::InvalidArgument,
                    msg,
                    "INVALID_REQUEST".to_string(),
                    GATEWAY_DOMAIN,
                )
            }
            Failure::UnknownProfile(name) => {
                meta.insert("profile".into(), name.clone());
                d.add_bad_request_violation(
                    "x-atlas-profile",
                    "no profile with this name is configured",
                );
                let msg = format!("unknown profile {name:?} in x-atlas-profile metadata");
                (
                    Code::InvalidArgument,
                    msg,
                    "UNKNOWN_PROFILE".into(),
                    GATEWAY_DOMAIN,
                )
            }
            Failure::PolicyDenied { field, detail } => {
                meta.insert("profile".into(), ctx.profile.into());
                meta.insert("field".into(), field);
                (
                    Code::PermissionDenied,
                    detail,
                    "POLICY_DENIED".into(),
                    GATEWAY_DOMAIN,
                )
            }
            Failure::RequestIdReused => {
                d.add_bad_request_violation("request_id", "already used for a different request");
                let msg =
                    "request_id was already used with a different request; use a new request_id"
                        .to_string();
                (
                    Code::InvalidArgument,
                    msg,
                    "REQUEST_ID_REUSED".into(),
                    GATEWAY_DOMAIN,
                )
            }
            Failure::RequestOutcomeUnknown => {
                let msg = "a gateway replica stopped while running this request_id, so the create may or may not exist in Atlas; check the org, then retry with a new request_id".to_string();
                (
                    Code::Aborted,
                    msg,
                    "REQUEST_OUTCOME_UNKNOWN".into(),
                    GATEWAY_DOMAIN,
                )
            }
            Failure::Overloaded => {
                d.set_retry_info(Some(Duration::from_secs(1)));
                let msg = "the gateway is at its concurrency limit; retry shortly".to_string();
                (
                    Code::ResourceExhausted,
                    msg,
                    "GATEWAY_OVERLOADED".into(),
                    GATEWAY_DOMAIN,
                )
            }
            Failure::Atlas(e) => {
                let (code, message, reason) = upstream(e, ctx, &mut d, &mut meta);
                (code, message, reason, ctx.atlas_domain)
            }
            Failure::AccessListFailed {
                minted,
                id,
                error,
                rolled_back,
            } => access_list_failed(minted, id, error, rolled_back, ctx, &mut d, &mut meta),
        };
        meta.entry("operation".into())
            .or_insert_with(|| ctx.operation.id().into());
        d.set_error_info(reason, domain, meta);
        if d.request_info().is_none() {
            d.set_request_info(ctx.request_id, "");
        }
        Status::with_error_details(code, message, d)
    }
}

#[cfg(test)]
mod tests;
