//! The sweeper's deletions on the audit trail: each `DELETE` of a key the gateway
//! removes by itself (an expired lease, an orphan) runs between a `begin` and an `end`
//! record with caller [`super::sweeper::CALLER`], as a caller's `DeleteApiKey` would. No
//! `begin` written, no delete (the next sweep tries again). It never records a secret:
//! it only knows the key's id.
use std::sync::Arc;

use crate::{
    atlas::{
        client::{AtlasClient, CallContext},
        error::AtlasError,
    },
    audit::{AuditLog, Entry, ObjectIds, Outcome},
    grpc::{audited::canonical, status::code_for},
};

/// Why a sweeper delete did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// The audit `begin` record could not be written: Atlas was not called.
    #[error("the audit begin record could not be written (AUDIT_UNAVAILABLE)")]
    Audit,
    /// Atlas refused or could not be reached.
    #[error(transparent)]
    Atlas(AtlasError),
}

/// Deletes `api_key_id` in `ctx.org_id`, audited when `audit` is on.
pub async fn delete_key(
    atlas: &AtlasClient,
    audit: Option<&Arc<AuditLog>>,
    caller: &str,
    ctx: &CallContext<'_>,
    api_key_id: &str,
) -> Result<(), DeleteError> {
    let Some(log) = audit else {
        return (atlas.delete_api_key(ctx, ctx.org_id, api_key_id).await)
            .map_err(DeleteError::Atlas);
    };
    let entry = Entry {
        caller: caller.to_string(),
        profile: ctx.profile.to_string(),
        rpc: "DeleteApiKey",
        org_id: ctx.org_id.to_string(),
        gateway_request_id: ctx.request_id.to_string(),
        ..Entry::default()
    };
    let pending = log.begin(entry).await.map_err(|_| DeleteError::Audit)?;
    let deleted = atlas.delete_api_key(ctx, ctx.org_id, api_key_id).await;
    let object = ObjectIds {
        api_key_id: api_key_id.to_string(),
        ..ObjectIds::default()
    };
    pending.end(outcome(&deleted, object)).await;
    deleted.map_err(DeleteError::Atlas)
}

/// The `end` record of a delete's result.
fn outcome(deleted: &Result<(), AtlasError>, object: ObjectIds) -> Outcome {
    let (code, reason, atlas_request_id) = match deleted {
        Ok(()) => (tonic::Code::Ok, String::new(), String::new()),
        Err(AtlasError::Api(f)) => (
            code_for(f.status, f.error_code()),
            f.error_code().unwrap_or_default().to_string(),
            f.atlas_request_id.clone().unwrap_or_default(),
        ),
        Err(AtlasError::Timeout) => (tonic::Code::DeadlineExceeded, String::new(), String::new()),
        Err(_) => (tonic::Code::Unavailable, String::new(), String::new()),
    };
    Outcome {
        code: canonical(code),
        reason,
        atlas_request_id,
        object,
    }
}
