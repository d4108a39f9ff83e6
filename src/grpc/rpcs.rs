//! The RPCs, one [`Rpc`] each: request, validation, what policy and the audit trail
//! need, and Atlas call. The shared
//! path (metadata, profile, idempotency, logs, metrics, errors) is `GatewayService`'s.
use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use super::{
    rpc::Rpc,
    status::{Failure, Minted},
};
use crate::{
    atlas::{
        client::{AtlasClient, CallContext},
        error::AtlasError,
        models::ApiKeyUserDetails,
        Operation,
    },
    audit::ObjectIds,
    config::Profile,
    lease, page_token,
    pb::{
        ApiKey, CreateApiKeyRequest, CreateApiKeyResponse, CreateLinkTokenRequest,
        CreateLinkTokenResponse, DeleteApiKeyRequest, DeleteApiKeyResponse, DeleteLinkTokenRequest,
        DeleteLinkTokenResponse, Link, ListApiKeysRequest, ListApiKeysResponse, OrgRole,
        RoleAssignment,
    },
    store::sweep::Orphan,
    validate::{self, Violation},
};

/// Time the rollback of a half-made key gets, even past the caller's deadline: a key
/// left without its access list is worse than a late answer.
const ROLLBACK_BUDGET: Duration = Duration::from_secs(10);

mod service_accounts;
pub use service_accounts::{
    CreateServiceAccount, DeleteServiceAccount, ListServiceAccounts, RotateServiceAccountSecret,
};

/// `CreateLinkToken`: POST .../liveMigrations/linkTokens.
pub struct CreateLinkToken;

impl Rpc for CreateLinkToken {
    type Request = CreateLinkTokenRequest;
    type Response = CreateLinkTokenResponse;
    const METHOD: &'static str = "CreateLinkToken";
    const OPERATION: Operation = Operation::CreateLinkToken;

    fn validate(req: &Self::Request) -> Result<(), Vec<Violation>> {
        validate::create_link_token(req)
    }

    fn take_request_id(req: &mut Self::Request) -> String {
        std::mem::take(&mut req.request_id)
    }

    async fn call(
        atlas: &Arc<AtlasClient>,
        ctx: &CallContext<'_>,
        req: &Self::Request,
    ) -> Result<Self::Response, Failure> {
        let token = atlas
            .create_link_token(ctx, &req.org_id, &req.access_list_ips)
            .await?;
        Ok(CreateLinkTokenResponse {
            link_token: token.expose().to_string(),
        })
    }
}

/// `DeleteLinkToken`: DELETE .../liveMigrations/linkTokens.
pub struct DeleteLinkToken;

impl Rpc for DeleteLinkToken {
    type Request = DeleteLinkTokenRequest;
    type Response = DeleteLinkTokenResponse;
    const METHOD: &'static str = "DeleteLinkToken";
    const OPERATION: Operation = Operation::DeleteLinkToken;

    fn validate(req: &Self::Request) -> Result<(), Vec<Violation>> {
        validate::delete_link_token(req)
    }

    async fn call(
        atlas: &Arc<AtlasClient>,
        ctx: &CallContext<'_>,
        req: &Self::Request,
    ) -> Result<Self::Response, Failure> {
        atlas.delete_link_token(ctx, &req.org_id).await?;
        Ok(DeleteLinkTokenResponse {})
    }
}

/// `CreateApiKey`: POST .../apiKeys, then (with `access_list_ips`) POST
/// .../apiKeys/{apiUserId}/accessList, as one unit.
pub struct CreateApiKey;

impl Rpc for CreateApiKey {
    type Request = CreateApiKeyRequest;
    type Response = CreateApiKeyResponse;
    const METHOD: &'static str = "CreateApiKey";
    const OPERATION: Operation = Operation::CreateApiKey;

    fn validate(req: &Self::Request) -> Result<(), Vec<Violation>> {
        validate::create_api_key(req)
    }

    fn validate_with_profile(req: &Self::Request, profile: &Profile) -> Result<(), Vec<Violation>> {
        validate::key_lease(req, &profile.lease).map(|_| ())
    }

    fn roles(req: &Self::Request) -> &[i32] {
        &req.roles
    }

    fn audit_ids(_req: &Self::Request, resp: Option<&Self::Response>) -> ObjectIds {
        let key = resp.and_then(|r| r.api_key.as_ref());
        ObjectIds {
            api_key_id: key.map(|k| k.id.clone()).unwrap_or_default(),
            public_key: key.map(|k| k.public_key.clone()).unwrap_or_default(),
            ..ObjectIds::default()
        }
    }

    fn take_request_id(req: &mut Self::Request) -> String {
        std::mem::take(&mut req.request_id)
    }

    async fn call(
        atlas: &Arc<AtlasClient>,
        ctx: &CallContext<'_>,
        req: &Self::Request,
    ) -> Result<Self::Response, Failure> {
        let profile = atlas
            .profile(ctx.profile)
            .expect("the gRPC layer resolves profiles before calling Atlas");
        let end =
            validate::key_ttl(req, &profile.lease).map(|ttl| lease::expiry(SystemTime::now(), ttl));
        if end.is_some() {
            let shared = atlas.shared(ctx.profile);
            (atlas.lease_orgs())
                .remember(ctx.profile, shared, &req.org_id)
                .await;
        }
        let desc = lease::created(&req.desc, end);
        let key = atlas
            .create_api_key(ctx, &req.org_id, &desc, role_names(&req.roles).collect())
            .await?;
        let mut key = api_key(key);
        if !req.access_list_ips.is_empty() {
            let ips = &req.access_list_ips;
            key.access_list_ips =
                fence(atlas, ctx, Minted::ApiKey, &req.org_id, &key.id, ips).await?;
        }
        Ok(CreateApiKeyResponse { api_key: Some(key) })
    }
}

/// Adds the access list to a credential just created; if that fails, deletes it again.
/// Runs as its own task: once the credential exists, a caller that hangs up must not
/// leave it half-made.
async fn fence(
    atlas: &Arc<AtlasClient>,
    ctx: &CallContext<'_>,
    minted: Minted,
    org_id: &str,
    key_id: &str,
    ips: &[String],
) -> Result<Vec<String>, Failure> {
    let atlas = Arc::clone(atlas);
    let (profile, request_id, deadline, trace) = (
        ctx.profile.to_owned(),
        ctx.request_id.to_owned(),
        ctx.deadline,
        ctx.trace.clone(),
    );
    let (org_id, key_id, ips) = (org_id.to_owned(), key_id.to_owned(), ips.to_vec());
    let unit = tokio::spawn(async move {
        let ctx = CallContext {
            profile: &profile,
            org_id: &org_id,
            request_id: &request_id,
            deadline,
            trace: &trace,
        };
        let op = minted.access_list_operation();
        let error = match atlas
            .add_access_list(&ctx, op, &org_id, &key_id, &ips)
            .await
        {
            Ok(applied) => return Ok(applied),
            Err(e) => e,
        };
        let rollback = CallContext {
            deadline: deadline.max(Instant::now() + ROLLBACK_BUDGET),
            ..ctx
        };
        let (rolled_back, sweeper_retries) =
            roll_back(&atlas, &rollback, minted, &org_id, &key_id).await;
        Err(Failure::AccessListFailed {
            minted,
            id: key_id,
            error,
            rolled_back,
            sweeper_retries,
        })
    });
    unit.await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Deletes a credential whose access list could not be added: `(true, false)` when it
/// is gone. If the delete fails, an API key is an orphan handed to the lease sweeper,
/// which retries the delete every sweep until it succeeds (`(false, true)`; `(false,
/// false)` when the sweeper's orphan set could not take it, and for a service account).
/// Never logs a secret (it is not even here), always the credential's id.
async fn roll_back(
    atlas: &AtlasClient,
    ctx: &CallContext<'_>,
    minted: Minted,
    org_id: &str,
    id: &str,
) -> (bool, bool) {
    let deleted = match minted {
        Minted::ApiKey => atlas.delete_api_key(ctx, org_id, id).await,
        Minted::ServiceAccount => atlas.delete_service_account(ctx, org_id, id).await,
    };
    let credential = minted.noun();
    let e = match deleted {
        Ok(()) => {
            tracing::warn!(
                credential,
                id,
                "adding the access list failed; the new credential was deleted again"
            );
            return (true, false);
        }
        Err(AtlasError::Api(f)) if f.status == 404 => return (true, false),
        Err(e) => e,
    };
    let retries = match minted {
        Minted::ApiKey => {
            let orphan = Orphan {
                org_id: org_id.to_owned(),
                api_key_id: id.to_owned(),
            };
            let shared = atlas.shared(ctx.profile);
            (atlas.orphans())
                .remember(ctx.profile, shared, orphan)
                .await
        }
        Minted::ServiceAccount => false,
    };
    let next = if retries {
        "the lease sweeper will retry the delete every sweep until it succeeds"
    } else {
        "delete it by hand"
    };
    let what = credential.to_uppercase();
    tracing::error!(credential, id, org_id, error = %e, reason = minted.orphan_reason(), sweeper_retries_delete = retries, "ORPHANED {what}: adding the access list failed and deleting the new {credential} failed too; it exists in Atlas without its access list: {next}");
    (false, retries)
}

/// `DeleteApiKey`: DELETE .../apiKeys/{apiUserId}.
pub struct DeleteApiKey;

impl Rpc for DeleteApiKey {
    type Request = DeleteApiKeyRequest;
    type Response = DeleteApiKeyResponse;
    const METHOD: &'static str = "DeleteApiKey";
    const OPERATION: Operation = Operation::DeleteApiKey;

    fn validate(req: &Self::Request) -> Result<(), Vec<Violation>> {
        validate::delete_api_key(req)
    }

    fn audit_ids(req: &Self::Request, _resp: Option<&Self::Response>) -> ObjectIds {
        ObjectIds {
            api_key_id: req.api_key_id.clone(),
            ..ObjectIds::default()
        }
    }

    async fn call(
        atlas: &Arc<AtlasClient>,
        ctx: &CallContext<'_>,
        req: &Self::Request,
    ) -> Result<Self::Response, Failure> {
        atlas
            .delete_api_key(ctx, &req.org_id, &req.api_key_id)
            .await?;
        Ok(DeleteApiKeyResponse {})
    }
}

/// `ListApiKeys`: GET .../apiKeys, AIP-158 pages over Atlas's page numbers.
pub struct ListApiKeys;

impl Rpc for ListApiKeys {
    type Request = ListApiKeysRequest;
    type Response = ListApiKeysResponse;
    const METHOD: &'static str = "ListApiKeys";
    const OPERATION: Operation = Operation::ListApiKeys;
    const READ_ONLY: bool = true;

    fn validate(req: &Self::Request) -> Result<(), Vec<Violation>> {
        validate::list_api_keys(req)
    }

    async fn call(
        atlas: &Arc<AtlasClient>,
        ctx: &CallContext<'_>,
        req: &Self::Request,
    ) -> Result<Self::Response, Failure> {
        let (size, page) = atlas_page(&req.org_id, req.page_size, &req.page_token);
        let listed = atlas.list_api_keys(ctx, &req.org_id, size, page).await?;
        let (next_page_token, total_size) = next_page(
            &req.org_id,
            (size, page),
            listed.total_count,
            listed.results.len(),
        );
        Ok(ListApiKeysResponse {
            next_page_token,
            total_size,
            api_keys: listed.results.into_iter().map(api_key).collect(),
        })
    }
}

/// AIP-158 over Atlas's page numbers: `(itemsPerPage, pageNum)` for a list request.
/// Validation has checked both: a non-negative size, a token for this org and size.
fn atlas_page(org_id: &str, page_size: i32, page_token: &str) -> (u32, u32) {
    let size = page_token::page_size(page_size).unwrap_or(page_token::DEFAULT_PAGE_SIZE);
    let page = page_token::decode(page_token, org_id, size).unwrap_or(1);
    (size, page)
}

/// The next page's token (empty on the last page) and the total, from Atlas's answer to
/// page `(size, page)`: its `totalCount` and how many items it held.
fn next_page(
    org_id: &str,
    (size, page): (u32, u32),
    total: Option<u32>,
    got: usize,
) -> (String, i32) {
    let seen = u64::from(page) * u64::from(size);
    let more = match total {
        Some(total) => seen < u64::from(total),
        None => got as u64 == u64::from(size),
    };
    let token = if more {
        page_token::encode(org_id, size, page + 1)
    } else {
        String::new()
    };
    (
        token,
        total.map_or(0, |t| i32::try_from(t).unwrap_or(i32::MAX)),
    )
}

/// The request's roles as Atlas spells them (validation has refused unknown values).
fn role_names(roles: &[i32]) -> impl Iterator<Item = &'static str> + '_ {
    roles
        .iter()
        .filter_map(|r| OrgRole::try_from(*r).ok())
        .map(|r| r.as_str_name())
}

/// A key as Atlas answers it, its lease marker turned into `expire_time`.
fn api_key(k: ApiKeyUserDetails) -> ApiKey {
    let (desc, expires) = lease::read(&k.desc);
    ApiKey {
        id: k.id,
        desc: desc.to_string(),
        expire_time: expires.map(lease::timestamp),
        public_key: k.public_key,
        private_key: k
            .private_key
            .map(|s| s.expose().to_string())
            .unwrap_or_default(),
        roles: k
            .roles
            .into_iter()
            .map(|r| RoleAssignment {
                role_name: r.role_name.unwrap_or_default(),
                org_id: r.org_id.unwrap_or_default(),
                group_id: r.group_id.unwrap_or_default(),
            })
            .collect(),
        links: k
            .links
            .into_iter()
            .map(|l| Link {
                href: l.href.unwrap_or_default(),
                rel: l.rel.unwrap_or_default(),
            })
            .collect(),
        access_list_ips: Vec::new(),
    }
}
