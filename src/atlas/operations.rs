//! The Atlas operations the gateway calls, one typed method each: the request as the
//! official spec shapes it ([`super::models`]), then `AtlasClient::execute`, then the
//! 2xx body parsed (the service-account ones in [`super::service_accounts`]). Nothing
//! here retries, authenticates or maps errors.
use super::{
    client::{AtlasClient, AtlasRequest, CallContext},
    error::AtlasError,
    models,
    response::parse_success,
    Operation,
};
use crate::secret::Secret;

pub(super) fn json_body(value: &impl serde::Serialize) -> Option<bytes::Bytes> {
    Some(serde_json::to_vec(value).expect("serializable").into())
}

impl AtlasClient {
    /// GET /api/atlas/v2 (`getSystemStatus`): succeeds when Atlas accepts the profile's
    /// credentials from this host. The body (build, API key metadata) is not read.
    pub async fn system_status(&self, ctx: &CallContext<'_>) -> Result<(), AtlasError> {
        let req = AtlasRequest {
            op: Operation::GetSystemStatus,
            org_id: "",
            api_key_id: "",
            secret_id: "",
            query: None,
            body: None,
        };
        self.execute(ctx, &req).await.map(drop)
    }

    /// POST .../liveMigrations/linkTokens; returns the link token.
    pub async fn create_link_token(
        &self,
        ctx: &CallContext<'_>,
        org_id: &str,
        access_list_ips: &[String],
    ) -> Result<Secret, AtlasError> {
        let req = AtlasRequest {
            op: Operation::CreateLinkToken,
            org_id,
            api_key_id: "",
            secret_id: "",
            query: None,
            body: json_body(&models::TargetOrgRequest { access_list_ips }),
        };
        let answer = self.execute(ctx, &req).await?;
        let parsed: models::TargetOrg = parse_success(&answer, "a TargetOrg with linkToken")?;
        Ok(parsed.link_token)
    }

    /// DELETE .../liveMigrations/linkTokens.
    pub async fn delete_link_token(
        &self,
        ctx: &CallContext<'_>,
        org_id: &str,
    ) -> Result<(), AtlasError> {
        let req = AtlasRequest {
            op: Operation::DeleteLinkToken,
            org_id,
            api_key_id: "",
            secret_id: "",
            query: None,
            body: None,
        };
        self.execute(ctx, &req).await.map(drop)
    }

    /// POST .../apiKeys; returns the created key (with its one-time private key).
    pub async fn create_api_key(
        &self,
        ctx: &CallContext<'_>,
        org_id: &str,
        desc: &str,
        roles: Vec<&str>,
    ) -> Result<models::ApiKeyUserDetails, AtlasError> {
        let req = AtlasRequest {
            op: Operation::CreateApiKey,
            org_id,
            api_key_id: "",
            secret_id: "",
            query: None,
            body: json_body(&models::CreateAtlasOrganizationApiKey { desc, roles }),
        };
        let answer = self.execute(ctx, &req).await?;
        parse_success(&answer, "an ApiKeyUserDetails")
    }

    /// POST .../apiKeys/{apiUserId}/accessList or .../serviceAccounts/{clientId}/accessList
    /// (`op`, same body and answer); returns the credential's access list entries.
    pub async fn add_access_list(
        &self,
        ctx: &CallContext<'_>,
        op: Operation,
        org_id: &str,
        api_key_id: &str,
        entries: &[String],
    ) -> Result<Vec<String>, AtlasError> {
        let body: Vec<_> = entries
            .iter()
            .map(|e| models::UserAccessListRequest::new(e))
            .collect();
        let req = AtlasRequest {
            op,
            org_id,
            api_key_id,
            secret_id: "",
            query: None,
            body: json_body(&body),
        };
        let answer = self.execute(ctx, &req).await?;
        let list: models::PaginatedApiUserAccessListResponseView =
            parse_success(&answer, "a PaginatedApiUserAccessListResponseView")?;
        Ok(list.results.into_iter().filter_map(|e| e.entry()).collect())
    }

    /// DELETE .../apiKeys/{apiUserId}.
    pub async fn delete_api_key(
        &self,
        ctx: &CallContext<'_>,
        org_id: &str,
        api_key_id: &str,
    ) -> Result<(), AtlasError> {
        let req = AtlasRequest {
            op: Operation::DeleteApiKey,
            org_id,
            api_key_id,
            secret_id: "",
            query: None,
            body: None,
        };
        self.execute(ctx, &req).await.map(drop)
    }

    /// GET .../apiKeys?itemsPerPage=&pageNum=&includeCount=true: one page of keys.
    pub async fn list_api_keys(
        &self,
        ctx: &CallContext<'_>,
        org_id: &str,
        items_per_page: u32,
        page_num: u32,
    ) -> Result<models::PaginatedApiApiUserView, AtlasError> {
        let query = format!("itemsPerPage={items_per_page}&pageNum={page_num}&includeCount=true");
        let req = AtlasRequest {
            op: Operation::ListApiKeys,
            org_id,
            api_key_id: "",
            secret_id: "",
            query: Some(query),
            body: None,
        };
        let answer = self.execute(ctx, &req).await?;
        parse_success(&answer, "a PaginatedApiApiUserView")
    }
}
