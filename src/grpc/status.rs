//! The error mapper: the only place where gRPC codes and google.rpc details are chosen
//! (AIP-193). Every [`Failure`] becomes a `Status` with a human message, an `ErrorInfo`
//! (reason, domain, metadata), a `RequestInfo`, and where they apply `BadRequest`,
//! `RetryInfo`, `QuotaFailure`, `Help` and `LocalizedMessage`.
//!
//! Messages come from Atlas's `detail` or a gateway sentence: never a Debug dump, a raw
//! body or a secret. See README.md "Errors" for the table this implements.
use std::{collections::HashMap, time::Duration};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::{
    atlas::{
        error::{ApiFailure, AtlasError},
        retry::is_rate_limit_code,
        Operation,
    },
    validate::{self, Violation},
};

/// Active access tokens Atlas allows per service account.
const ATLAS_ACTIVE_TOKEN_CAP: u32 = 100;

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
    /// Atlas (or the way to it) failed.
    Atlas(AtlasError),
}

impl From<AtlasError> for Failure {
    fn from(e: AtlasError) -> Self {
        Failure::Atlas(e)
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
        };
        meta.insert("operation".into(), ctx.operation.id().into());
        d.set_error_info(reason, domain, meta);
        if d.request_info().is_none() {
            d.set_request_info(ctx.request_id, "");
        }
        Status::with_error_details(code, message, d)
    }
}

/// Maps an upstream failure; fills details; returns code, message and reason.
fn upstream(
    e: AtlasError,
    ctx: &ErrorContext<'_>,
    d: &mut ErrorDetails,
    meta: &mut HashMap<String, String>,
) -> (Code, String, String) {
    let creates = ctx.operation != Operation::DeleteLinkToken;
    match e {
        AtlasError::Api(f) => api_failure(*f, ctx, d, meta),
        AtlasError::BadResponse {
            status,
            what,
            atlas_request_id,
        } => {
            meta.insert("http_status".into(), status.to_string());
            d.set_request_info(ctx.request_id, atlas_request_id.unwrap_or_default());
            let effect = if creates {
                " The operation may have taken effect in Atlas."
            } else {
                ""
            };
            let msg = format!("Atlas answered HTTP {status} but the gateway could not read the response ({what}).{effect}");
            (Code::Internal, msg, "UPSTREAM_BAD_RESPONSE".into())
        }
        AtlasError::Unreachable { detail, sent } => {
            let maybe = if sent && creates {
                " The request may have reached Atlas."
            } else {
                ""
            };
            (
                Code::Unavailable,
                format!("Atlas is unreachable ({detail}).{maybe}"),
                "UPSTREAM_UNREACHABLE".into(),
            )
        }
        AtlasError::Timeout => (
            Code::DeadlineExceeded,
            "the call's deadline ran out before Atlas answered".into(),
            "DEADLINE_EXCEEDED".into(),
        ),
        e @ (AtlasError::CredentialsRejected { .. }
        | AtlasError::TokenLimitReached { .. }
        | AtlasError::TokenEndpointUnavailable { .. }
        | AtlasError::TokenEndpointRateLimited { .. }) => token_endpoint(e, ctx, d, meta),
    }
}

/// Maps a token-endpoint failure (no Atlas API call was made).
fn token_endpoint(
    e: AtlasError,
    ctx: &ErrorContext<'_>,
    d: &mut ErrorDetails,
    meta: &mut HashMap<String, String>,
) -> (Code, String, String) {
    meta.insert("profile".into(), ctx.profile.into());
    match e {
        AtlasError::CredentialsRejected { status, detail } => {
            meta.insert("http_status".into(), status.to_string());
            let msg = format!("Atlas refused the gateway's service-account credentials for profile {:?} ({detail}); check MONGODB_ATLAS_CLIENT_ID / MONGODB_ATLAS_CLIENT_SECRET", ctx.profile);
            (
                Code::Unauthenticated,
                msg,
                "ATLAS_CREDENTIALS_REJECTED".into(),
            )
        }
        AtlasError::TokenLimitReached { retry_after } => {
            meta.insert("http_status".into(), "403".into());
            d.set_retry_info(Some(retry_after));
            d.add_quota_failure_violation(
                format!("profiles/{}", ctx.profile),
                format!("Atlas allows {ATLAS_ACTIVE_TOKEN_CAP} active access tokens per service account"),
            );
            let msg = format!("Atlas refused a new access token for profile {:?}: the service account already holds its {ATLAS_ACTIVE_TOKEN_CAP} active tokens (the credentials are fine). Share tokens between gateways with a shared token store, or run fewer gateways per service account", ctx.profile);
            (
                Code::ResourceExhausted,
                msg,
                "ATLAS_TOKEN_LIMIT_REACHED".into(),
            )
        }
        AtlasError::TokenEndpointRateLimited { retry_after } => {
            // Atlas allows about 10 token requests per minute: without a hint, wait 60 s.
            d.set_retry_info(Some(retry_after.unwrap_or(Duration::from_secs(60))));
            let msg =
                "the Atlas token endpoint rate-limited the gateway and no valid token is cached"
                    .to_string();
            (
                Code::ResourceExhausted,
                msg,
                "TOKEN_ENDPOINT_RATE_LIMITED".into(),
            )
        }
        // TokenEndpointUnavailable (its Display is the message: no secret in it).
        other => (
            Code::Unavailable,
            other.to_string(),
            "TOKEN_ENDPOINT_UNAVAILABLE".into(),
        ),
    }
}

fn api_failure(
    f: ApiFailure,
    ctx: &ErrorContext<'_>,
    d: &mut ErrorDetails,
    meta: &mut HashMap<String, String>,
) -> (Code, String, String) {
    let status = f.status;
    let error_code = f.error_code().map(str::to_string);
    let code = code_for(status, error_code.as_deref());
    meta.insert("http_status".into(), status.to_string());
    d.set_request_info(
        ctx.request_id,
        f.atlas_request_id.clone().unwrap_or_default(),
    );
    d.add_help_link(
        "Atlas Admin API reference for this operation",
        ctx.operation.docs_url(),
    );
    let rate_limited = status == 429 || error_code.as_deref().is_some_and(is_rate_limit_code);
    if let Some(ra) = f
        .retry_after
        .filter(|_| rate_limited || matches!(code, Code::Unavailable | Code::ResourceExhausted))
    {
        d.set_retry_info(Some(ra));
    }
    let detail = f
        .api_error
        .as_ref()
        .and_then(|e| e.detail.clone())
        .filter(|s| !s.is_empty());
    if let Some(e) = &f.api_error {
        if let Some(r) = &e.reason {
            meta.insert("atlas_reason".into(), r.clone());
        }
        if let Some(p) = e.parameters.as_ref().filter(|p| !p.is_null()) {
            meta.insert("parameters".into(), p.to_string());
        }
        if let Some(brd) = &e.bad_request_detail {
            for v in &brd.fields {
                d.add_bad_request_violation(proto_field_path(&v.field), v.description.clone());
            }
        }
    }
    if rate_limited {
        let subject = format!("organizations/{}", ctx.org_id);
        let what = detail
            .clone()
            .unwrap_or_else(|| "Atlas Admin API rate limit".into());
        d.add_quota_failure_violation(subject, what);
    }
    if let Some(why) = &f.unreadable_body {
        meta.insert("upstream_body".into(), why.clone());
    }
    let reason = match (&error_code, &f.unreadable_body) {
        (Some(c), None) => c.clone(),
        (Some(c), Some(_)) => {
            meta.insert("atlas_error_code".into(), c.clone());
            "UPSTREAM_BAD_RESPONSE".into()
        }
        (None, _) => "UPSTREAM_BAD_RESPONSE".into(),
    };
    if let Some(dt) = &detail {
        d.set_localized_message("en-US", dt.clone());
    }
    let base = match &detail {
        Some(dt) => dt.clone(),
        None => format!(
            "Atlas answered HTTP {status}{}",
            error_code
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        ),
    };
    let message = match (code, error_code.as_deref()) {
        (Code::Unauthenticated, _) => format!(
            "Atlas refused the gateway's credentials for profile {:?}: {base}",
            ctx.profile
        ),
        (_, Some("VERSION_GONE")) => format!(
            "{base} (the Atlas API version the gateway sends is retired; set --api-version / ATLAS_GATEWAY_API_VERSION)"
        ),
        _ => base,
    };
    (code, message, reason)
}

/// errorCode overrides: they win over the HTTP status.
const OVERRIDES: &[(&str, Code)] = &[
    (
        "CANNOT_DELETE_ORG_ACTIVE_LIVE_MIGRATION_ATLAS_ORG_LINK",
        Code::FailedPrecondition,
    ),
    ("NO_PAYMENT_INFORMATION_FOUND", Code::FailedPrecondition),
    ("VERSION_GONE", Code::FailedPrecondition),
    ("SERVICE_UNAVAILABLE", Code::Unavailable),
    ("NOT_ORG_GROUP_CREATOR", Code::PermissionDenied),
];

/// The gRPC code for an Atlas answer: errorCode override first, then the HTTP status.
#[allow(clippy::match_overlapping_arm)] // specific statuses first, then the class
pub fn code_for(status: u16, error_code: Option<&str>) -> Code {
    if let Some(c) = error_code {
        if let Some((_, code)) = OVERRIDES.iter().find(|(name, _)| *name == c) {
            return *code;
        }
        if is_rate_limit_code(c) {
            return Code::ResourceExhausted;
        }
    }
    match status {
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 if error_code
            .is_some_and(|c| c.starts_with("DUPLICATE_") || c.ends_with("_ALREADY_EXISTS")) =>
        {
            Code::AlreadyExists
        }
        409 => Code::Aborted,
        402 | 410 | 412 => Code::FailedPrecondition,
        429 => Code::ResourceExhausted,
        500 => Code::Internal,
        501 => Code::Unimplemented,
        502 | 503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        400..=499 => Code::FailedPrecondition,
        _ => Code::Internal,
    }
}

/// Atlas field names to proto paths: `accessListIps[1]` -> `access_list_ips[1]`.
pub fn proto_field_path(atlas_field: &str) -> String {
    let mut out = String::with_capacity(atlas_field.len() + 4);
    let mut prev_lower = false;
    for c in atlas_field.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

#[cfg(test)]
mod tests;
