//! Maps an [`AtlasError`] that is not an Atlas error answer: an unreadable response, an
//! unreachable Atlas, a deadline, a local rate-limit cool-down, the token endpoint's
//! failures, and the access-list step of `CreateApiKey`. Atlas's error answers go to
//! [`super::api_failure`]. It only fills details and picks code, message and reason;
//! it never puts a raw body or a secret in a message.
use std::{collections::HashMap, time::Duration};

use tonic::Code;
use tonic_types::ErrorDetails;

use super::{api_failure::api_failure, ErrorContext, Minted, GATEWAY_DOMAIN, SHUTTING_DOWN};
use crate::atlas::error::AtlasError;

/// Active access tokens Atlas allows per service account.
const ATLAS_ACTIVE_TOKEN_CAP: u32 = 100;

/// The access-list step of `CreateApiKey` or `CreateServiceAccount` failed. Rolled back:
/// the access-list error as it is. Not rolled back: `INTERNAL` / `ORPHANED_API_KEY` or
/// `ORPHANED_SERVICE_ACCOUNT`, the id to clean up, and whether the lease sweeper retries
/// the delete (`sweeper_retries_delete`).
pub(super) fn access_list_failed<'a>(
    minted: Minted,
    id: String,
    error: AtlasError,
    (rolled_back, sweeper_retries): (bool, bool),
    ctx: &ErrorContext<'a>,
    d: &mut ErrorDetails,
    meta: &mut HashMap<String, String>,
) -> (Code, String, String, &'a str) {
    let step = ErrorContext {
        operation: minted.access_list_operation(),
        ..*ctx
    };
    let (code, message, reason) = upstream(error, &step, d, meta);
    meta.insert("operation".into(), step.operation.id().into());
    meta.insert("rolled_back".into(), rolled_back.to_string());
    let noun = minted.noun();
    meta.insert(minted.id_field().into(), id.clone());
    if rolled_back {
        let msg = format!(
            "adding the new {noun}'s access list failed, so the {noun} was deleted again: {message}"
        );
        return (code, msg, reason, ctx.atlas_domain);
    }
    meta.insert("access_list_error".into(), reason);
    meta.insert("sweeper_retries_delete".into(), sweeper_retries.to_string());
    let delete = minted.delete_rpc();
    let next = if sweeper_retries {
        format!("the gateway's lease sweeper will retry the delete every sweep until it succeeds; delete it sooner with {delete}")
    } else {
        format!("delete it with {delete}")
    };
    let msg = format!("{noun} {id} was created, but adding its access list failed ({message}) and deleting it failed too: it exists without its access list; {next}");
    (
        Code::Internal,
        msg,
        minted.orphan_reason().into(),
        GATEWAY_DOMAIN,
    )
}

/// Maps an upstream failure; fills details; returns code, message and reason.
pub(super) fn upstream(
    e: AtlasError,
    ctx: &ErrorContext<'_>,
    d: &mut ErrorDetails,
    meta: &mut HashMap<String, String>,
) -> (Code, String, String) {
    let creates = ctx.operation.creates();
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
        AtlasError::CoolingDown { retry_after } => {
            d.set_retry_info(Some(retry_after));
            meta.insert("cooldown".into(), "true".into());
            let msg = format!(
                "Atlas rate-limited {} for this org a moment ago; not calling it again for {} s",
                ctx.operation.id(),
                retry_after.as_secs().max(1)
            );
            (Code::ResourceExhausted, msg, "RATE_LIMITED".into())
        }
        AtlasError::ShuttingDown => (
            Code::Unavailable,
            AtlasError::ShuttingDown.to_string(),
            SHUTTING_DOWN.into(),
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
