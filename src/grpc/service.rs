//! `GatewayService`: the thin tonic service. Every RPC runs through one path,
//! `GatewayService::handle`: metadata → validation → profile and policy → (idempotent)
//! Atlas call → answer. What differs per RPC is its [`Rpc`] (see `rpcs`). It owns no
//! HTTP, no error codes (see `status`) and no validation rules (see `validate`).
use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use prost::Message;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::{
    call::{Call, CallerIdentity},
    rpc::{OrgScoped, Rpc},
    rpcs::{CreateApiKey, CreateLinkToken, DeleteApiKey, DeleteLinkToken, ListApiKeys},
    rpcs::{
        CreateServiceAccount, DeleteServiceAccount, ListServiceAccounts, RotateServiceAccountSecret,
    },
    status::Failure,
};
use crate::{
    atlas::client::{AtlasClient, CallContext},
    atlas::error::AtlasError,
    config::{Config, Profile},
    idempotency::{request_digest, Digest, IdempotencyCache, Key, Outcome},
    pb::{
        atlas_gateway_server::AtlasGateway, CreateApiKeyRequest, CreateApiKeyResponse,
        CreateLinkTokenRequest, CreateLinkTokenResponse, DeleteApiKeyRequest, DeleteApiKeyResponse,
        DeleteLinkTokenRequest, DeleteLinkTokenResponse, ListApiKeysRequest, ListApiKeysResponse,
    },
    pb::{
        CreateServiceAccountRequest, CreateServiceAccountResponse, DeleteServiceAccountRequest,
        DeleteServiceAccountResponse, ListServiceAccountsRequest, ListServiceAccountsResponse,
        RotateServiceAccountSecretRequest, RotateServiceAccountSecretResponse,
    },
    store::{idem, ProfileStore},
};

/// The `atlas.gateway.v1.AtlasGateway` implementation.
pub struct GatewayService {
    atlas: Arc<AtlasClient>,
    default_profile: String,
    request_timeout: std::time::Duration,
    max_call_duration: std::time::Duration,
    /// AIP-155 results of every RPC (each response encoded), keyed by profile, caller,
    /// method and request_id.
    replays: IdempotencyCache,
    /// How long a `request_id` is remembered (also in the shared store).
    window: std::time::Duration,
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
            replays: IdempotencyCache::new(config.idempotency_window),
            window: config.idempotency_window,
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

    /// The one path every RPC takes, from arrival to answer.
    async fn handle<R: Rpc>(
        &self,
        request: Request<R::Request>,
    ) -> Result<Response<R::Response>, Status> {
        let mut call = Call::begin(
            R::OPERATION,
            R::METHOD,
            request.metadata(),
            request.get_ref().org_id(),
            &self.default_profile,
            self.request_timeout,
            self.max_call_duration,
        );
        call.caller = request.extensions().get::<CallerIdentity>().cloned();
        let result = match self.permits.try_acquire() {
            Ok(_permit) => {
                self.process::<R>(&call, request.into_inner())
                    .instrument(call.span.clone())
                    .await
            }
            Err(_) => Err(Failure::Overloaded),
        };
        call.finish(result, |profile| self.domain(profile))
    }

    async fn process<R: Rpc>(
        &self,
        call: &Call,
        mut req: R::Request,
    ) -> Result<R::Response, Failure> {
        R::validate(&req).map_err(Failure::Invalid)?;
        let profile = self.profile(call)?;
        R::authorize(&req, profile)?;
        let request_id = R::take_request_id(&mut req);
        let ctx = CallContext {
            profile: &call.profile,
            org_id: &call.org_id,
            request_id: &call.request_id,
            deadline: call.deadline,
            trace: &call.trace,
        };
        if request_id.is_empty() {
            return timed(call, R::call(&self.atlas, &ctx, &req)).await;
        }
        // Boxed: the idempotency path (records, the shared store) would otherwise make
        // every call's future, which tonic moves into its own box, that much larger.
        Box::pin(self.once::<R>(call, &ctx, &req, &request_id)).await
    }

    /// A call with a `request_id`: at most once per window (AIP-155), here or fleet-wide.
    async fn once<R: Rpc>(
        &self,
        call: &Call,
        ctx: &CallContext<'_>,
        req: &R::Request,
        request_id: &str,
    ) -> Result<R::Response, Failure> {
        let caller = call.caller.as_ref().map_or("", |c| &c.0);
        let key = Key::new(&call.profile, caller, call.method, request_id);
        // The response this call made itself, kept so that it is not decoded back from
        // the bytes recorded for replays.
        let made = std::sync::Mutex::new(None);
        let fresh = || async {
            let response = timed(call, R::call(&self.atlas, ctx, req)).await?;
            let bytes = Bytes::from(response.encode_to_vec());
            *made.lock().expect("not poisoned") = Some(response);
            Ok(bytes)
        };
        let digest = request_digest(req);
        let (bytes, outcome) = match self.atlas.shared(&call.profile) {
            Some(shared) => self.once_shared(shared, call, key, digest, fresh).await?,
            None => self.replays.run(key, digest, fresh).await?,
        };
        call.flush_upstream();
        call.span.record("replayed", outcome == Outcome::Replayed);
        match made.into_inner().expect("not poisoned") {
            Some(response) => Ok(response),
            None => Ok(R::Response::decode(bytes).expect("a response this gateway encoded")),
        }
    }

    /// AIP-155 across the fleet: the record lives in the shared store (see
    /// `store::idem`); the in-process cache when the store cannot be used.
    async fn once_shared<F, Fut>(
        &self,
        shared: &ProfileStore,
        call: &Call,
        key: Key,
        digest: Digest,
        fresh: F,
    ) -> Result<(Bytes, Outcome), Failure>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Bytes, Failure>>,
    {
        let ran = idem::run_once(
            shared,
            key.as_ref(),
            &digest,
            self.window,
            call.deadline,
            fresh,
        );
        match ran.await {
            Ok(idem::Shared::Ran(result)) => result.map(|b| (b, Outcome::Fresh)),
            Ok(idem::Shared::Replayed(b)) => Ok((b, Outcome::Replayed)),
            Ok(idem::Shared::Reused) => Err(Failure::RequestIdReused),
            Ok(idem::Shared::OutcomeUnknown) => Err(Failure::RequestOutcomeUnknown),
            Ok(idem::Shared::TimedOut) => Err(Failure::Atlas(AtlasError::Timeout)),
            Err(fresh) => self.replays.run(key, digest, fresh).await,
        }
    }

    /// The call's profile, with its RPC and org policy applied.
    fn profile(&self, call: &Call) -> Result<&Profile, Failure> {
        let profile = self
            .atlas
            .profile(&call.profile)
            .ok_or_else(|| Failure::UnknownProfile(call.profile.clone()))?;
        if let Some(allowed) = &profile.allowed_rpcs {
            if !allowed.contains(call.method) {
                return Err(Failure::PolicyDenied {
                    field: "rpc".into(),
                    detail: format!("profile {:?} may not call {}", profile.name, call.method),
                });
            }
        }
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

    /// The Atlas host of `profile` (ErrorInfo.domain of upstream errors).
    fn domain(&self, profile: &str) -> &str {
        self.domains
            .get(profile)
            .map(String::as_str)
            .unwrap_or("cloud.mongodb.com")
    }
}

/// Records how long the Atlas part of a call took.
async fn timed<T>(call: &Call, fut: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = fut.await;
    call.upstream_took(started.elapsed());
    out
}

#[tonic::async_trait]
impl AtlasGateway for GatewayService {
    async fn create_link_token(
        &self,
        request: Request<CreateLinkTokenRequest>,
    ) -> Result<Response<CreateLinkTokenResponse>, Status> {
        self.handle::<CreateLinkToken>(request).await
    }

    async fn delete_link_token(
        &self,
        request: Request<DeleteLinkTokenRequest>,
    ) -> Result<Response<DeleteLinkTokenResponse>, Status> {
        self.handle::<DeleteLinkToken>(request).await
    }

    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        self.handle::<CreateApiKey>(request).await
    }

    async fn delete_api_key(
        &self,
        request: Request<DeleteApiKeyRequest>,
    ) -> Result<Response<DeleteApiKeyResponse>, Status> {
        self.handle::<DeleteApiKey>(request).await
    }

    async fn list_api_keys(
        &self,
        request: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        self.handle::<ListApiKeys>(request).await
    }

    async fn create_service_account(
        &self,
        request: Request<CreateServiceAccountRequest>,
    ) -> Result<Response<CreateServiceAccountResponse>, Status> {
        self.handle::<CreateServiceAccount>(request).await
    }

    async fn delete_service_account(
        &self,
        request: Request<DeleteServiceAccountRequest>,
    ) -> Result<Response<DeleteServiceAccountResponse>, Status> {
        self.handle::<DeleteServiceAccount>(request).await
    }

    async fn list_service_accounts(
        &self,
        request: Request<ListServiceAccountsRequest>,
    ) -> Result<Response<ListServiceAccountsResponse>, Status> {
        self.handle::<ListServiceAccounts>(request).await
    }

    async fn rotate_service_account_secret(
        &self,
        request: Request<RotateServiceAccountSecretRequest>,
    ) -> Result<Response<RotateServiceAccountSecretResponse>, Status> {
        self.handle::<RotateServiceAccountSecret>(request).await
    }
}
