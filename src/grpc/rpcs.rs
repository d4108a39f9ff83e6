//! The RPCs, one [`Rpc`] each: request, validation, policy and Atlas call. The shared
//! path (metadata, profile, idempotency, logs, metrics, errors) is `GatewayService`'s.
use super::{rpc::Rpc, status::Failure};
use crate::{
    atlas::{
        client::{AtlasClient, CallContext},
        models::ApiKeyUserDetails,
        Operation,
    },
    config::Profile,
    pb::{
        ApiKey, CreateApiKeyRequest, CreateApiKeyResponse, CreateLinkTokenRequest,
        CreateLinkTokenResponse, DeleteLinkTokenRequest, DeleteLinkTokenResponse, Link, OrgRole,
        RoleAssignment,
    },
    validate::{self, Violation},
};

/// `CreateLinkToken`: POST .../liveMigrations/linkTokens.
pub struct CreateLinkToken;

impl Rpc for CreateLinkToken {
    type Request = CreateLinkTokenRequest;
    type Response = CreateLinkTokenResponse;
    const METHOD: &'static str = "CreateLinkToken";
    const OPERATION: Operation = Operation::CreateLinkToken;

    fn org_id(req: &Self::Request) -> &str {
        &req.org_id
    }

    fn validate(req: &Self::Request) -> Result<(), Vec<Violation>> {
        validate::create_link_token(req)
    }

    fn take_request_id(req: &mut Self::Request) -> String {
        std::mem::take(&mut req.request_id)
    }

    async fn call(
        atlas: &AtlasClient,
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

    fn org_id(req: &Self::Request) -> &str {
        &req.org_id
    }

    fn validate(req: &Self::Request) -> Result<(), Vec<Violation>> {
        validate::delete_link_token(req)
    }

    async fn call(
        atlas: &AtlasClient,
        ctx: &CallContext<'_>,
        req: &Self::Request,
    ) -> Result<Self::Response, Failure> {
        atlas.delete_link_token(ctx, &req.org_id).await?;
        Ok(DeleteLinkTokenResponse {})
    }
}

/// `CreateApiKey`: POST .../apiKeys.
pub struct CreateApiKey;

impl Rpc for CreateApiKey {
    type Request = CreateApiKeyRequest;
    type Response = CreateApiKeyResponse;
    const METHOD: &'static str = "CreateApiKey";
    const OPERATION: Operation = Operation::CreateApiKey;

    fn org_id(req: &Self::Request) -> &str {
        &req.org_id
    }

    fn validate(req: &Self::Request) -> Result<(), Vec<Violation>> {
        validate::create_api_key(req)
    }

    fn authorize(req: &Self::Request, profile: &Profile) -> Result<(), Failure> {
        let Some(allowed) = &profile.allowed_roles else {
            return Ok(());
        };
        match role_names(req).find(|r| !allowed.contains(*r)) {
            None => Ok(()),
            Some(denied) => Err(Failure::PolicyDenied {
                field: "roles".into(),
                detail: format!(
                    "profile {:?} may not create API keys with role {denied}",
                    profile.name
                ),
            }),
        }
    }

    fn take_request_id(req: &mut Self::Request) -> String {
        std::mem::take(&mut req.request_id)
    }

    async fn call(
        atlas: &AtlasClient,
        ctx: &CallContext<'_>,
        req: &Self::Request,
    ) -> Result<Self::Response, Failure> {
        let key = atlas
            .create_api_key(ctx, &req.org_id, &req.desc, role_names(req).collect())
            .await?;
        Ok(CreateApiKeyResponse {
            api_key: Some(api_key(key)),
        })
    }
}

/// The request's roles as Atlas spells them (validation has refused unknown values).
fn role_names(req: &CreateApiKeyRequest) -> impl Iterator<Item = &'static str> + '_ {
    req.roles
        .iter()
        .filter_map(|r| OrgRole::try_from(*r).ok())
        .map(|r| r.as_str_name())
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
