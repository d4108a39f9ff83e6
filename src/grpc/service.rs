//! `GatewayService`: the thin tonic service. Every RPC runs through one path,
//! `GatewayService::handle`: metadata and caller → validation → policy (`policy`) →
//! audit `begin` (calls that change Atlas) → (idempotent) Atlas call → answer, audit
//! `end`. What differs per RPC is its [`Rpc`] (see `rpcs`). It owns no
//! HTTP, no error codes (see `status`) and no validation rules (see `validate`).
use std::{net::SocketAddr, sync::Arc, time::Instant};

use bytes::Bytes;
use prost::Message;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::{
    audited,
    call::{Call, CallDefaults},
    policy::{self, Ask},
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
    audit::{AuditLog, Pending},
    callers::CallerIdentity,
    config::Config,
    idempotency::{
        request_digest, shared::SharedRecord, Digest, Finished, IdempotencyCache, Key, Outcome,
    },
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
};

/// The `atlas.gateway.v1.AtlasGateway` implementation.
pub struct GatewayService {
    atlas: Arc<AtlasClient>,
    defaults: CallDefaults,
    /// The audit trail of calls that change Atlas, when on.
    audit: Option<Arc<AuditLog>>,
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
    /// The service over a shared Atlas client, auditing to `audit` when given.
    pub fn new(config: &Config, atlas: Arc<AtlasClient>, audit: Option<Arc<AuditLog>>) -> Self {
        Self {
            atlas,
            defaults: CallDefaults {
                profile: config.default_profile.clone(),
                request_timeout: config.request_timeout,
                max_call_duration: config.max_call_duration,
            },
            audit,
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

    /// The one path every RPC takes, from arrival to answer. An audited call's `end`
    /// record is written after the answer is built and before it leaves.
    async fn handle<R: Rpc>(
        &self,
        request: Request<R::Request>,
    ) -> Result<Response<R::Response>, Status> {
        let caller = (request.extensions().get::<CallerIdentity>().cloned())
            .unwrap_or_else(CallerIdentity::anonymous);
        let peer = request.remote_addr();
        let org_id = request.get_ref().org_id();
        let call = Call::begin(
            R::OPERATION,
            R::METHOD,
            request.metadata(),
            org_id,
            caller,
            &self.defaults,
        );
        let mut req = request.into_inner();
        let mut audit = None;
        let result = match self.permits.try_acquire() {
            Ok(_permit) => {
                self.process::<R>(&call, &mut req, peer, &mut audit)
                    .instrument(call.span.clone())
                    .await
            }
            Err(_) => Err(Failure::Overloaded),
        };
        let Some(pending) = audit else {
            return call.finish(result, |profile| self.domain(profile));
        };
        let object = R::audit_ids(&req, result.as_ref().ok());
        let answer = call.finish(result, |profile| self.domain(profile));
        pending.end(audited::outcome(&answer, object)).await;
        answer
    }

    async fn process<R: Rpc>(
        &self,
        call: &Call,
        req: &mut R::Request,
        peer: Option<SocketAddr>,
        audit: &mut Option<Pending>,
    ) -> Result<R::Response, Failure> {
        R::validate(req).map_err(Failure::Invalid)?;
        let ask = Ask {
            caller: &call.caller,
            profile: &call.profile,
            method: R::METHOD,
            org_id: &call.org_id,
            roles: R::roles(req),
        };
        let profile = policy::authorize(&ask, |name| self.atlas.profile(name))?;
        R::validate_with_profile(req, profile).map_err(Failure::Invalid)?;
        let request_id = R::take_request_id(req);
        if let Some(log) = self.audit.as_ref().filter(|_| !R::READ_ONLY) {
            let begun = log.begin(audited::entry(call, peer, &request_id)).await;
            *audit = Some(begun.map_err(|_| Failure::AuditUnavailable)?);
        }
        if !request_id.is_empty() {
            call.record_idempotency_key(&request_id);
        }
        let req = &*req;
        let ctx = CallContext {
            profile: &call.profile,
            org_id: &call.org_id,
            request_id: &call.request_id,
            deadline: call.deadline,
            trace: &call.trace,
        };
        if request_id.is_empty() {
            return timed(call, R::call(&self.atlas, &ctx, req)).await;
        }
        // Boxed: the idempotency path (records, the shared store) would otherwise make
        // every call's future, which tonic moves into its own box, that much larger.
        Box::pin(self.once::<R>(call, (*req).clone(), &request_id)).await
    }

    /// A call with a `request_id`: at most once per window (AIP-155), here or fleet-wide;
    /// this caller waits for the one run until its own deadline.
    async fn once<R: Rpc>(
        &self,
        call: &Call,
        req: R::Request,
        request_id: &str,
    ) -> Result<R::Response, Failure> {
        let key = Key::new(&call.profile, call.caller.scope(), call.method, request_id);
        let fingerprint = request_digest(&req);
        let run = self.run_once::<R>(call, req, key, fingerprint);
        let started = Instant::now();
        let (bytes, outcome) = self
            .replays
            .run(key, fingerprint, call.deadline, run)
            .await?;
        if outcome == Outcome::Fresh {
            call.upstream_took(started.elapsed());
        }
        call.flush_upstream();
        call.span.record("replayed", outcome == Outcome::Replayed);
        Ok(R::Response::decode(bytes).expect("a response this gateway encoded"))
    }

    /// The one run of a `request_id`, detached from its caller: it owns what it needs,
    /// and its Atlas part is bounded by `max_call_duration`, not the caller's deadline,
    /// so a create whose caller left still ends with an answer to record.
    fn run_once<R: Rpc>(
        &self,
        call: &Call,
        req: R::Request,
        key: Key,
        fingerprint: Digest,
    ) -> impl std::future::Future<Output = Finished<Failure>> + Send + 'static {
        let atlas = Arc::clone(&self.atlas);
        let (owner, window) = (self.replays.owner(), self.window);
        let end = Instant::now() + self.defaults.max_call_duration;
        let (profile, org_id) = (call.profile.clone(), call.org_id.clone());
        let (request_id, trace) = (call.request_id.clone(), call.trace.clone());
        async move {
            let ctx = CallContext {
                profile: &profile,
                org_id: &org_id,
                request_id: &request_id,
                deadline: end,
                trace: &trace,
            };
            let atlas_call = async {
                let answer = tokio::time::timeout_at(end.into(), R::call(&atlas, &ctx, &req));
                match answer
                    .await
                    .unwrap_or(Err(Failure::Atlas(AtlasError::Timeout)))
                {
                    Ok(r) => Finished::Answered(Bytes::from(r.encode_to_vec()), Outcome::Fresh),
                    Err(f) if f.outcome_unknown() => Finished::Unknown(f),
                    Err(f) => Finished::Failed(f),
                }
            };
            let Some(store) = atlas.shared(&profile) else {
                return atlas_call.await;
            };
            let record = SharedRecord {
                store,
                owner,
                key: &key,
                fingerprint,
                window,
            };
            record.run_once(end, atlas_call).await
        }
        .instrument(call.span.clone())
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
