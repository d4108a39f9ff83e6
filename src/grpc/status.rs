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
//! body or a secret. See docs/errors.md for the table this implements.
use std::{collections::HashMap, time::Duration};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::{
    atlas::{error::AtlasError, Operation},
    idempotency::Refused,
    validate::{self, Violation},
};

mod api_failure;
mod upstream;

pub use api_failure::{code_for, proto_field_path};
use upstream::{access_list_failed, upstream};

/// `ErrorInfo.domain` for errors the gateway itself raises.
pub const GATEWAY_DOMAIN: &str = "atlas-grpc-gateway";

/// `ErrorInfo.reason` of a call still running when the gateway, stopping, starts
/// revoking its Atlas tokens (`UNAVAILABLE`).
const SHUTTING_DOWN: &str = "SHUTTING_DOWN";

/// The answer to a call still running when the gateway starts revoking its tokens at
/// shutdown: `UNAVAILABLE`, reason `SHUTTING_DOWN` (what [`AtlasError::ShuttingDown`]
/// maps to, without a call's context).
pub fn shutting_down() -> Status {
    let details = ErrorDetails::with_error_info(SHUTTING_DOWN, GATEWAY_DOMAIN, HashMap::new());
    let message = AtlasError::ShuttingDown.to_string();
    Status::with_error_details(Code::Unavailable, message, details)
}

/// Everything a call can fail with.
#[derive(Debug)]
pub enum Failure {
    /// The request breaks the contract's rules (no upstream call was made).
    Invalid(Vec<Violation>),
    /// `x-atlas-profile` names no configured profile.
    UnknownProfile(String),
    /// Policy forbids this profile (for this caller), RPC, org or role.
    PolicyDenied {
        /// The caller's name.
        caller: String,
        /// What the policy concerns (`x-atlas-profile`, `rpc`, `org_id`, `roles`).
        field: String,
        /// Why, for the caller.
        detail: String,
    },
    /// A `request_id` was reused with a different request.
    RequestIdReused,
    /// The gateway is draining or overloaded.
    Overloaded,
    /// The audit `begin` record could not be written: Atlas was not called.
    AuditUnavailable,
    /// The first run of this `request_id` ended without an answer (no reply from Atlas,
    /// or its replica stopped): the create may or may not exist, so it is not run again.
    RequestOutcomeUnknown,
    /// The shared store could not claim or read this `request_id`'s record: Atlas was
    /// not called (fleet idempotency fails closed).
    SharedStoreUnavailable,
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
        /// Not deleted: whether the lease sweeper took the key, to retry the delete.
        sweeper_retries: bool,
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

impl From<Refused> for Failure {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Reused => Failure::RequestIdReused,
            Refused::OutcomeUnknown => Failure::RequestOutcomeUnknown,
            Refused::TimedOut => Failure::Atlas(AtlasError::Timeout),
            Refused::StoreUnavailable => Failure::SharedStoreUnavailable,
        }
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

    /// Whether a create that failed this way may exist in Atlas all the same: no answer
    /// came after the request may have been sent, or a 2xx answer could not be read.
    /// Its `request_id` must not run again.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Failure::Atlas(
                AtlasError::Timeout
                    | AtlasError::Unreachable { sent: true, .. }
                    | AtlasError::BadResponse { .. }
            )
        )
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
            Failure::PolicyDenied {
                caller,
                field,
                detail,
            } => {
                meta.insert("profile".into(), ctx.profile.into());
                meta.insert("field".into(), field);
                meta.insert("caller".into(), caller);
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
                let msg = "the first call with this request_id ended without an answer from Atlas (or its gateway replica stopped), so the create may or may not exist in Atlas; check the org, then retry with a new request_id".to_string();
                (
                    Code::Aborted,
                    msg,
                    "REQUEST_OUTCOME_UNKNOWN".into(),
                    GATEWAY_DOMAIN,
                )
            }
            Failure::SharedStoreUnavailable => {
                d.set_retry_info(Some(Duration::from_secs(1)));
                let msg = "the shared store does not answer, so the gateway cannot keep this call's fleet-wide guarantee (its request_id record or rotation lock) and did not send it to Atlas; retry shortly".to_string();
                (
                    Code::Unavailable,
                    msg,
                    "SHARED_STORE_UNAVAILABLE".into(),
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
            Failure::AuditUnavailable => {
                let msg = "the audit trail cannot be written, so the gateway does not act on Atlas; retry once the audit log is writable".to_string();
                (
                    Code::Unavailable,
                    msg,
                    "AUDIT_UNAVAILABLE".into(),
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
                sweeper_retries,
            } => {
                let outcome = (rolled_back, sweeper_retries);
                access_list_failed(minted, id, error, outcome, ctx, &mut d, &mut meta)
            }
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

/// Why [`crate::callers::CallerAuth`] refused to name a call's caller.
#[derive(Debug, Clone, Copy)]
pub enum CallerRefused {
    /// No bearer token (and no client certificate naming a caller).
    Unauthenticated,
    /// A bearer token no caller has.
    TokenNotAllowed,
    /// A client certificate whose SANs name no caller, and no bearer token.
    CertificateNotAllowed,
}

impl From<CallerRefused> for Status {
    fn from(r: CallerRefused) -> Status {
        let (code, message, reason) = match r {
            CallerRefused::Unauthenticated => (
                Code::Unauthenticated,
                "this gateway requires a caller token: send metadata authorization: Bearer <token>",
                "CALLER_UNAUTHENTICATED",
            ),
            CallerRefused::TokenNotAllowed => (
                Code::PermissionDenied,
                "the caller token is not on this gateway's allow-list",
                "CALLER_NOT_ALLOWED",
            ),
            CallerRefused::CertificateNotAllowed => (
                Code::PermissionDenied,
                "the client certificate names no configured caller (mtls_identity)",
                "CALLER_NOT_ALLOWED",
            ),
        };
        let details = ErrorDetails::with_error_info(reason, GATEWAY_DOMAIN, HashMap::new());
        Status::with_error_details(code, message, details)
    }
}

#[cfg(test)]
mod tests;
