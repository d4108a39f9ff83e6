//! The organization service-account operations (media type `2024-08-05`, see
//! [`Operation::fixed_version`]) and their JSON shapes as the spec names them
//! (`OrgServiceAccountRequest`, `OrgServiceAccount`, `ServiceAccountSecret`,
//! `PaginatedOrgServiceAccounts`). The access list uses the API keys' shapes
//! (`AtlasClient::add_access_list`). Nothing here retries, authenticates or maps errors;
//! a secret value is only ever held as a [`Secret`].
use serde::{Deserialize, Serialize};

use super::{
    client::{AtlasClient, AtlasRequest, CallContext},
    error::AtlasError,
    operations::json_body,
    response::parse_success,
    Operation,
};
use crate::secret::Secret;

/// Body of createOrgServiceAccount.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgServiceAccountRequest<'a> {
    /// 1 to 64 characters.
    pub name: &'a str,
    /// 1 to 250 characters.
    pub description: &'a str,
    /// Atlas role names to grant.
    pub roles: Vec<&'a str>,
    /// Hours until the first secret expires.
    pub secret_expires_after_hours: i32,
}

/// Body of createOrgSecret.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceAccountSecretRequest {
    secret_expires_after_hours: i32,
}

/// A service account as Atlas answers it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgServiceAccount {
    /// `mdb_sa_id_` and 24 hex digits.
    pub client_id: String,
    #[serde(default)]
    /// Its name.
    pub name: String,
    #[serde(default)]
    /// Its description.
    pub description: String,
    #[serde(default)]
    /// Role names, as Atlas spells them.
    pub roles: Vec<String>,
    /// RFC 3339 creation time.
    pub created_at: Option<String>,
    #[serde(default)]
    /// Its secrets (at most two).
    pub secrets: Vec<ServiceAccountSecret>,
}

/// One secret as Atlas answers it; `secret` only in the answer that created it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSecret {
    /// 24 hex digits.
    pub id: String,
    /// The value (secret), present only at creation.
    pub secret: Option<Secret>,
    /// What Atlas shows instead of the value.
    pub masked_secret_value: Option<String>,
    /// RFC 3339 creation time.
    pub created_at: Option<String>,
    /// RFC 3339 expiry time.
    pub expires_at: Option<String>,
}

/// Response of listOrgServiceAccounts.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaginatedOrgServiceAccounts {
    /// The accounts on this page.
    pub results: Vec<OrgServiceAccount>,
    /// All accounts of the organization, when Atlas counts them.
    pub total_count: Option<u32>,
}

impl AtlasClient {
    async fn service_account_call(
        &self,
        ctx: &CallContext<'_>,
        op: Operation,
        (org_id, client_id, secret_id): (&str, &str, &str),
        query: Option<String>,
        body: Option<bytes::Bytes>,
    ) -> Result<super::response::Answer, AtlasError> {
        let req = AtlasRequest {
            op,
            org_id,
            api_key_id: client_id,
            secret_id,
            query,
            body,
        };
        self.execute(ctx, &req).await
    }

    /// POST .../serviceAccounts; the account with its first secret's value.
    pub async fn create_service_account(
        &self,
        ctx: &CallContext<'_>,
        org_id: &str,
        request: &OrgServiceAccountRequest<'_>,
    ) -> Result<OrgServiceAccount, AtlasError> {
        let op = Operation::CreateServiceAccount;
        let body = json_body(request);
        let answer = self
            .service_account_call(ctx, op, (org_id, "", ""), None, body)
            .await?;
        parse_success(&answer, "an OrgServiceAccount")
    }

    /// GET .../serviceAccounts?itemsPerPage=&pageNum=: one page of accounts.
    pub async fn list_service_accounts(
        &self,
        ctx: &CallContext<'_>,
        org_id: &str,
        items_per_page: u32,
        page_num: u32,
    ) -> Result<PaginatedOrgServiceAccounts, AtlasError> {
        let op = Operation::ListServiceAccounts;
        let query = format!("itemsPerPage={items_per_page}&pageNum={page_num}");
        let answer = self
            .service_account_call(ctx, op, (org_id, "", ""), Some(query), None)
            .await?;
        parse_success(&answer, "a PaginatedOrgServiceAccounts")
    }

    /// GET .../serviceAccounts/{clientId}.
    pub async fn get_service_account(
        &self,
        ctx: &CallContext<'_>,
        org_id: &str,
        client_id: &str,
    ) -> Result<OrgServiceAccount, AtlasError> {
        let op = Operation::GetServiceAccount;
        let answer = self
            .service_account_call(ctx, op, (org_id, client_id, ""), None, None)
            .await?;
        parse_success(&answer, "an OrgServiceAccount")
    }

    /// DELETE .../serviceAccounts/{clientId}.
    pub async fn delete_service_account(
        &self,
        ctx: &CallContext<'_>,
        org_id: &str,
        client_id: &str,
    ) -> Result<(), AtlasError> {
        let op = Operation::DeleteServiceAccount;
        self.service_account_call(ctx, op, (org_id, client_id, ""), None, None)
            .await
            .map(drop)
    }

    /// POST .../serviceAccounts/{clientId}/secrets; the new secret with its value.
    pub async fn create_service_account_secret(
        &self,
        ctx: &CallContext<'_>,
        org_id: &str,
        client_id: &str,
        secret_expires_after_hours: i32,
    ) -> Result<ServiceAccountSecret, AtlasError> {
        let op = Operation::CreateServiceAccountSecret;
        let body = json_body(&ServiceAccountSecretRequest {
            secret_expires_after_hours,
        });
        let answer = self
            .service_account_call(ctx, op, (org_id, client_id, ""), None, body)
            .await?;
        parse_success(&answer, "a ServiceAccountSecret")
    }

    /// DELETE .../serviceAccounts/{clientId}/secrets/{secretId}.
    pub async fn delete_service_account_secret(
        &self,
        ctx: &CallContext<'_>,
        org_id: &str,
        client_id: &str,
        secret_id: &str,
    ) -> Result<(), AtlasError> {
        let op = Operation::DeleteServiceAccountSecret;
        self.service_account_call(ctx, op, (org_id, client_id, secret_id), None, None)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_value_is_redacted_in_debug() {
        let s: ServiceAccountSecret =
            serde_json::from_str(r#"{"id":"a","secret":"mdb_sa_sk_s3cr3t"}"#).unwrap();
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }
}
