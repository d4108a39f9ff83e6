//! `GatewayService`: the thin tonic service. Each RPC is metadata → validation →
//! profile and policy → (idempotent) Atlas call → response. It owns no HTTP, no error
//! codes (see `status`) and no validation rules (see `validate`).
use std::{sync::Arc, time::Instant};

use prost::Message;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::{
    call::{Call, CallerIdentity},
    status::Failure,
};
use crate::{
    atlas::{
        client::{AtlasClient, CallContext},
        models::ApiKeyUserDetails,
        Operation,
    },
    config::{Config, Profile},
    idempotency::{request_digest, IdempotencyCache, Key, Outcome},
    pb::{
        atlas_gateway_server::AtlasGateway, ApiKey, CreateApiKeyRequest, CreateApiKeyResponse,
        CreateLinkTokenRequest, CreateLinkTokenResponse, DeleteLinkTokenRequest,
        DeleteLinkTokenResponse, Link, OrgRole, RoleAssignment,
    },
    validate,
};

/// The `atlas.gateway.v1.AtlasGateway` implementation.
pub struct GatewayService {
    atlas: Arc<AtlasClient>,
    default_profile: String,
    request_timeout: std::time::Duration,
    max_call_duration: std::time::Duration,
    link_tokens: IdempotencyCache<CreateLinkTokenResponse>,
    api_keys: IdempotencyCache<CreateApiKeyResponse>,
    /// Global bound on calls in progress; beyond it calls are shed at once.
    permits: Semaphore,
    /// Atlas host per profile, parsed once.
    domains: std::collections::HashMap<String, String>,
}

impl GatewayService {
    /// The service over a shared Atlas client.
    pub fn new(config: &Config, atlas: Arc<AtlasClient>) -> Self {
        Self {
            atlas,
            default_profile: config.default_profile.clone(),
            request_timeout: config.request_timeout,
            max_call_duration: config.max_call_duration,
            link_tokens: IdempotencyCache::new(config.idempotency_window),
            api_keys: IdempotencyCache::new(config.idempotency_window),
            permits: Semaphore::new(config.max_concurrency),
            domains: config
                .profiles
                .values()
                .map(|p| {
                    let host = reqwest::Url::parse(&p.base_url)
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_string))
                        .unwrap_or_else(|| "cloud.mongodb.com".into());
                    (p.name.clone(), host)
                })
                .collect(),
        }
    }

    fn begin<T>(
        &self,
        op: Operation,
        method: &'static str,
        req: &Request<T>,
        org_id: &str,
    ) -> Call {
        let mut call = Call::begin(
            op,
            method,
            req.metadata(),
            org_id,
            &self.default_profile,
            self.request_timeout,
            self.max_call_duration,
        );
        call.caller = req.extensions().get::<CallerIdentity>().cloned();
        call
    }

    /// The call's profile, with its org policy applied.
    fn profile(&self, call: &Call) -> Result<&Profile, Failure> {
        let profile = self
            .atlas
            .profile(&call.profile)
            .ok_or_else(|| Failure::UnknownProfile(call.profile.clone()))?;
        if let Some(allowed) = &profile.allowed_org_ids {
            if !allowed.contains(&call.org_id) {
                return Err(Failure::PolicyDenied {
                    field: "org_id".into(),
                    detail: format!(
                        "profile {:?} may not act on org {}",
                        profile.name, call.org_id
                    ),
                });
            }
        }
        Ok(profile)
    }

    /// The Atlas host of the call's profile (ErrorInfo.domain of upstream errors).
    fn domain(&self, call: &Call) -> &str {
        self.domains
            .get(&call.profile)
            .map(String::as_str)
            .unwrap_or("cloud.mongodb.com")
    }

    /// Runs a call's body under its span and the global concurrency limit.
    async fn run<T>(
        &self,
        call: &Call,
        body: impl std::future::Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        match self.permits.try_acquire() {
            Ok(_permit) => body.instrument(call.span.clone()).await,
            Err(_) => Err(Failure::Overloaded),
        }
    }

    fn answer<T>(&self, call: Call, result: Result<T, Failure>) -> Result<Response<T>, Status> {
        let domain = self.domain(&call);
        call.finish(result, domain)
    }

    fn context<'a>(call: &'a Call) -> CallContext<'a> {
        CallContext {
            profile: &call.profile,
            request_id: &call.request_id,
            deadline: call.deadline,
            trace: &call.trace,
        }
    }
}

/// Runs a create at most once per `request_id` (AIP-155) and caller; without one, just
/// runs it. The request digest is taken without the request_id.
async fn once<M, T, Fut>(
    call: &Call,
    cache: &IdempotencyCache<T>,
    request_id: &str,
    msg: &M,
    clear_request_id: impl FnOnce(&mut M),
    run: impl FnOnce() -> Fut,
) -> Result<T, Failure>
where
    M: Message + Clone,
    T: Message + Default + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    if request_id.is_empty() {
        return run().await;
    }
    let mut fingerprint = msg.clone();
    clear_request_id(&mut fingerprint);
    let caller = call.caller.as_ref().map_or("", |c| &c.0);
    let key = Key::new(&call.profile, caller, call.method, request_id);
    // Boxed: keeps the cache's future out of the calls that send no request_id.
    let (resp, outcome) = Box::pin(cache.run(key, request_digest(&fingerprint), run)).await?;
    call.span.record("replayed", outcome == Outcome::Replayed);
    Ok(resp)
}

/// Records how long the Atlas part of a call took.
async fn timed<T>(call: &Call, fut: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = fut.await;
    let upstream_ms = crate::telemetry::log_millis(started.elapsed());
    call.span.record("upstream_ms", upstream_ms);
    out
}

#[tonic::async_trait]
impl AtlasGateway for GatewayService {
    async fn create_link_token(
        &self,
        request: Request<CreateLinkTokenRequest>,
    ) -> Result<Response<CreateLinkTokenResponse>, Status> {
        let call = self.begin(
            Operation::CreateLinkToken,
            "CreateLinkToken",
            &request,
            &request.get_ref().org_id,
        );
        let req = request.into_inner();
        let result = async {
            validate::create_link_token(&req).map_err(Failure::Invalid)?;
            self.profile(&call)?;
            let ctx = Self::context(&call);
            let run = || async {
                let token = timed(
                    &call,
                    self.atlas
                        .create_link_token(&ctx, &req.org_id, &req.access_list_ips),
                )
                .await?;
                Ok(CreateLinkTokenResponse {
                    link_token: token.expose().to_string(),
                })
            };
            let clear = |m: &mut CreateLinkTokenRequest| m.request_id.clear();
            once(&call, &self.link_tokens, &req.request_id, &req, clear, run).await
        };
        let result = self.run(&call, result).await;
        self.answer(call, result)
    }

    async fn delete_link_token(
        &self,
        request: Request<DeleteLinkTokenRequest>,
    ) -> Result<Response<DeleteLinkTokenResponse>, Status> {
        let call = self.begin(
            Operation::DeleteLinkToken,
            "DeleteLinkToken",
            &request,
            &request.get_ref().org_id,
        );
        let req = request.into_inner();
        let result = async {
            validate::delete_link_token(&req).map_err(Failure::Invalid)?;
            self.profile(&call)?;
            let ctx = Self::context(&call);
            timed(&call, self.atlas.delete_link_token(&ctx, &req.org_id)).await?;
            Ok(DeleteLinkTokenResponse {})
        };
        let result = self.run(&call, result).await;
        self.answer(call, result)
    }

    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        let call = self.begin(
            Operation::CreateApiKey,
            "CreateApiKey",
            &request,
            &request.get_ref().org_id,
        );
        let req = request.into_inner();
        let result = async {
            validate::create_api_key(&req).map_err(Failure::Invalid)?;
            let profile = self.profile(&call)?;
            let roles: Vec<&str> = req
                .roles
                .iter()
                .filter_map(|r| OrgRole::try_from(*r).ok())
                .map(|r| r.as_str_name())
                .collect();
            if let Some(allowed) = &profile.allowed_roles {
                if let Some(denied) = roles.iter().find(|r| !allowed.contains(**r)) {
                    return Err(Failure::PolicyDenied {
                        field: "roles".into(),
                        detail: format!(
                            "profile {:?} may not create API keys with role {denied}",
                            profile.name
                        ),
                    });
                }
            }
            let ctx = Self::context(&call);
            let run = || async {
                let key = timed(
                    &call,
                    self.atlas
                        .create_api_key(&ctx, &req.org_id, &req.desc, roles.clone()),
                )
                .await?;
                Ok(CreateApiKeyResponse {
                    api_key: Some(api_key(key)),
                })
            };
            let clear = |m: &mut CreateApiKeyRequest| m.request_id.clear();
            once(&call, &self.api_keys, &req.request_id, &req, clear, run).await
        };
        let result = self.run(&call, result).await;
        self.answer(call, result)
    }
}

fn api_key(k: ApiKeyUserDetails) -> ApiKey {
    ApiKey {
        id: k.id,
        desc: k.desc,
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
    }
}
