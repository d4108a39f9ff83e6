//! Maps Atlas's error answers (an HTTP error status with its `ApiError` body): the gRPC
//! code table ([`code_for`]), Atlas field names as proto paths ([`proto_field_path`]),
//! and the details an answer carries (RequestInfo, Help, RetryInfo, QuotaFailure,
//! BadRequest, LocalizedMessage). The message is Atlas's `detail` or a gateway sentence,
//! never the raw body.
use std::collections::HashMap;

use tonic::Code;
use tonic_types::ErrorDetails;

use super::ErrorContext;
use crate::atlas::{error::ApiFailure, retry::is_rate_limit_code};

/// Maps one Atlas error answer; fills details; returns code, message and reason.
pub(super) fn api_failure(
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
    if code == Code::Aborted && error_code.as_deref() == Some("DATA_CONCURRENCY_ERROR") {
        // Two writes to one object at once (two secrets of one service account): the
        // other finishes at once, so a retry soon succeeds.
        d.set_retry_info(Some(std::time::Duration::from_secs(1)));
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
