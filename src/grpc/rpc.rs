//! The `Rpc` trait: what one RPC is, and nothing else. Its request and response types,
//! how to validate the request, what policy and the audit trail need from it, its
//! AIP-155 `request_id`, and its Atlas call with the mapping of the answer. `GatewayService` runs every `Rpc`
//! through the same path (metadata, validation, profile and policy, idempotency, Atlas,
//! answer), so an RPC never repeats that path. The RPCs themselves are in [`super::rpcs`].
use std::{future::Future, sync::Arc};

use super::status::Failure;
use crate::{
    atlas::{
        client::{AtlasClient, CallContext},
        Operation,
    },
    audit::ObjectIds,
    config::Profile,
    pb::{
        CreateApiKeyRequest, CreateLinkTokenRequest, CreateServiceAccountRequest,
        DeleteApiKeyRequest, DeleteLinkTokenRequest, DeleteServiceAccountRequest,
        ListApiKeysRequest, ListServiceAccountsRequest, RotateServiceAccountSecretRequest,
    },
    validate::Violation,
};

/// A request that acts on one organization (every request of the API does).
pub trait OrgScoped {
    /// The request's `org_id`, as the caller sent it.
    fn org_id(&self) -> &str;
}

macro_rules! org_scoped {
    ($($request:ty),+) => {$(
        impl OrgScoped for $request {
            fn org_id(&self) -> &str {
                &self.org_id
            }
        }
    )+};
}

org_scoped!(
    CreateLinkTokenRequest,
    DeleteLinkTokenRequest,
    CreateApiKeyRequest,
    DeleteApiKeyRequest,
    ListApiKeysRequest,
    CreateServiceAccountRequest,
    DeleteServiceAccountRequest,
    ListServiceAccountsRequest,
    RotateServiceAccountSecretRequest
);

/// One unary RPC of `atlas.gateway.v1.AtlasGateway`.
pub trait Rpc: Send + Sync + 'static {
    /// The RPC's request message.
    type Request: prost::Message + Default + Clone + OrgScoped + Send + Sync + 'static;
    /// The RPC's response message.
    type Response: prost::Message + Default + Send + 'static;
    /// The gRPC method name (`CreateApiKey`): logs, metrics, policy.
    const METHOD: &'static str;
    /// The Atlas operation the RPC stands for (operationId, docs link, error wording).
    const OPERATION: Operation;

    /// Every rule the request breaks, all at once; nothing is sent when any is broken.
    fn validate(req: &Self::Request) -> Result<(), Vec<Violation>>;

    /// True for an RPC that changes nothing in Atlas (no audit records).
    const READ_ONLY: bool = false;

    /// The roles the request would grant (`OrgRole` values), for policy.
    fn roles(_req: &Self::Request) -> &[i32] {
        &[]
    }

    /// The ids of what the call created or deleted, for its audit `end` record (the
    /// response when it succeeded). Never a secret.
    fn audit_ids(_req: &Self::Request, _resp: Option<&Self::Response>) -> ObjectIds {
        ObjectIds::default()
    }

    /// The rules that depend on the call's profile (its lease bounds), checked after
    /// policy and before any Atlas call.
    fn validate_with_profile(
        _req: &Self::Request,
        _profile: &Profile,
    ) -> Result<(), Vec<Violation>> {
        Ok(())
    }

    /// Takes the AIP-155 `request_id` out of the request (empty: none, or the RPC has
    /// no such field). What is left is the request's fingerprint.
    fn take_request_id(_req: &mut Self::Request) -> String {
        String::new()
    }

    /// The Atlas call(s) and the mapping of the answer.
    fn call(
        atlas: &Arc<AtlasClient>,
        ctx: &CallContext<'_>,
        req: &Self::Request,
    ) -> impl Future<Output = Result<Self::Response, Failure>> + Send;
}
