//! The service-account RPCs, one [`Rpc`] each: `CreateServiceAccount` (with its access
//! list as one unit, as `CreateApiKey`), `DeleteServiceAccount`, `ListServiceAccounts`
//! (AIP-158; never a secret value) and `RotateServiceAccountSecret` (make room, then
//! create; one rotation per account at a time in this process and, with a shared store,
//! in the fleet). A secret value leaves
//! this module only in the answer that created it.
use std::{sync::Arc, time::SystemTime};

use prost_types::Timestamp;

use super::{atlas_page, fence, next_page, role_names};
use crate::{
    atlas::{
        client::{AtlasClient, CallContext},
        error::AtlasError,
        service_accounts::{self as atlas_sa, OrgServiceAccountRequest},
        Operation,
    },
    audit::ObjectIds,
    grpc::{
        rpc::Rpc,
        status::{Failure, Minted},
    },
    pb::{
        CreateServiceAccountRequest, CreateServiceAccountResponse, DeleteServiceAccountRequest,
        DeleteServiceAccountResponse, ListServiceAccountsRequest, ListServiceAccountsResponse,
        RotateServiceAccountSecretRequest, RotateServiceAccountSecretResponse, ServiceAccount,
        ServiceAccountSecret,
    },
    store::{rotation::RotationTurn, StoreDown},
    validate::{self, Violation},
};

/// Atlas holds at most this many secrets per service account.
const MAX_SECRETS: usize = 2;

/// `CreateServiceAccount`: POST .../serviceAccounts, then (with `access_list_ips`) POST
/// .../serviceAccounts/{clientId}/accessList, as one unit.
pub struct CreateServiceAccount;

impl Rpc for CreateServiceAccount {
    type Request = CreateServiceAccountRequest;
    type Response = CreateServiceAccountResponse;
    const METHOD: &'static str = "CreateServiceAccount";
    const OPERATION: Operation = Operation::CreateServiceAccount;

    fn validate(req: &Self::Request) -> Result<(), Vec<Violation>> {
        validate::create_service_account(req)
    }

    fn roles(req: &Self::Request) -> &[i32] {
        &req.roles
    }

    fn audit_ids(_req: &Self::Request, resp: Option<&Self::Response>) -> ObjectIds {
        let account = resp.and_then(|r| r.service_account.as_ref());
        ObjectIds {
            client_id: account.map(|a| a.client_id.clone()).unwrap_or_default(),
            secret_id: (account.and_then(|a| a.secrets.first()))
                .map(|s| s.id.clone())
                .unwrap_or_default(),
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
        let request = OrgServiceAccountRequest {
            name: &req.name,
            description: &req.description,
            roles: role_names(&req.roles).collect(),
            secret_expires_after_hours: req.secret_expires_after_hours,
        };
        let created = atlas
            .create_service_account(ctx, &req.org_id, &request)
            .await?;
        let mut account = service_account(created, Reveal::Yes);
        if !req.access_list_ips.is_empty() {
            let (org, id, ips) = (&req.org_id, &account.client_id, &req.access_list_ips);
            account.access_list_ips =
                fence(atlas, ctx, Minted::ServiceAccount, org, id, ips).await?;
        }
        Ok(CreateServiceAccountResponse {
            service_account: Some(account),
        })
    }
}

/// `DeleteServiceAccount`: DELETE .../serviceAccounts/{clientId}.
pub struct DeleteServiceAccount;

impl Rpc for DeleteServiceAccount {
    type Request = DeleteServiceAccountRequest;
    type Response = DeleteServiceAccountResponse;
    const METHOD: &'static str = "DeleteServiceAccount";
    const OPERATION: Operation = Operation::DeleteServiceAccount;

    fn validate(req: &Self::Request) -> Result<(), Vec<Violation>> {
        validate::delete_service_account(req)
    }

    fn audit_ids(req: &Self::Request, _resp: Option<&Self::Response>) -> ObjectIds {
        ObjectIds {
            client_id: req.client_id.clone(),
            ..ObjectIds::default()
        }
    }

    async fn call(
        atlas: &Arc<AtlasClient>,
        ctx: &CallContext<'_>,
        req: &Self::Request,
    ) -> Result<Self::Response, Failure> {
        atlas
            .delete_service_account(ctx, &req.org_id, &req.client_id)
            .await?;
        Ok(DeleteServiceAccountResponse {})
    }
}

/// `ListServiceAccounts`: GET .../serviceAccounts, AIP-158 pages over Atlas's page
/// numbers, secret values dropped.
pub struct ListServiceAccounts;

impl Rpc for ListServiceAccounts {
    type Request = ListServiceAccountsRequest;
    type Response = ListServiceAccountsResponse;
    const METHOD: &'static str = "ListServiceAccounts";
    const OPERATION: Operation = Operation::ListServiceAccounts;
    const READ_ONLY: bool = true;

    fn validate(req: &Self::Request) -> Result<(), Vec<Violation>> {
        validate::list_service_accounts(req)
    }

    async fn call(
        atlas: &Arc<AtlasClient>,
        ctx: &CallContext<'_>,
        req: &Self::Request,
    ) -> Result<Self::Response, Failure> {
        let (size, page) = atlas_page(&req.org_id, req.page_size, &req.page_token);
        let listed = atlas
            .list_service_accounts(ctx, &req.org_id, size, page)
            .await?;
        let got = listed.results.len();
        let (next_page_token, total_size) =
            next_page(&req.org_id, (size, page), listed.total_count, got);
        Ok(ListServiceAccountsResponse {
            service_accounts: listed
                .results
                .into_iter()
                .map(|sa| service_account(sa, Reveal::No))
                .collect(),
            next_page_token,
            total_size,
        })
    }
}

/// `RotateServiceAccountSecret`: GET the account, DELETE its expired secrets, then the
/// older of two that remain, then POST .../secrets.
pub struct RotateServiceAccountSecret;

impl Rpc for RotateServiceAccountSecret {
    type Request = RotateServiceAccountSecretRequest;
    type Response = RotateServiceAccountSecretResponse;
    const METHOD: &'static str = "RotateServiceAccountSecret";
    const OPERATION: Operation = Operation::CreateServiceAccountSecret;

    fn validate(req: &Self::Request) -> Result<(), Vec<Violation>> {
        validate::rotate_service_account_secret(req)
    }

    fn audit_ids(req: &Self::Request, resp: Option<&Self::Response>) -> ObjectIds {
        ObjectIds {
            client_id: req.client_id.clone(),
            secret_id: (resp.and_then(|r| r.secret.as_ref()))
                .map(|s| s.id.clone())
                .unwrap_or_default(),
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
        let (org, client_id) = (req.org_id.as_str(), req.client_id.as_str());
        let _turn = atlas.rotation_locks().turn(org, client_id).await;
        let _fleet_turn = fleet_turn(atlas, ctx, org, client_id).await?;
        let account = atlas.get_service_account(ctx, org, client_id).await?;
        for stale in stale_secrets(account.secrets, SystemTime::now()) {
            match atlas
                .delete_service_account_secret(ctx, org, client_id, &stale)
                .await
            {
                Err(AtlasError::Api(f)) if f.status == 404 => {} // already gone
                other => other?,
            }
        }
        let created = atlas
            .create_service_account_secret(ctx, org, client_id, req.secret_expires_after_hours)
            .await?;
        Ok(RotateServiceAccountSecretResponse {
            secret: Some(secret(created, Reveal::Yes)),
        })
    }
}

/// The ids of the secrets to delete before a new one fits: every expired one, then the
/// oldest of those left while [`MAX_SECRETS`] or more remain.
fn stale_secrets(secrets: Vec<atlas_sa::ServiceAccountSecret>, now: SystemTime) -> Vec<String> {
    let now = Timestamp::from(now);
    let at = |t: &Option<String>| t.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
    let (mut expired, mut live): (Vec<_>, Vec<_>) = secrets
        .into_iter()
        .map(|s| (at(&s.created_at), at(&s.expires_at), s.id))
        .partition(|(_, expires, _)| expires.as_ref().is_some_and(|e| order(e) <= order(&now)));
    live.sort_by_key(|(created, _, _)| created.as_ref().map(order));
    let surplus = (live.len() + 1).saturating_sub(MAX_SECRETS);
    expired.extend(live.drain(..surplus));
    expired.into_iter().map(|(_, _, id)| id).collect()
}

fn order(t: &Timestamp) -> (i64, i32) {
    (t.seconds, t.nanos)
}

/// With a shared store, waits for the fleet's turn to rotate this account (see
/// [`crate::store::rotation`]): `DEADLINE_EXCEEDED` when the deadline passes first,
/// `UNAVAILABLE` `SHARED_STORE_UNAVAILABLE` when the store does not answer (never a
/// silent fall back to the in-process lock alone).
async fn fleet_turn(
    atlas: &AtlasClient,
    ctx: &CallContext<'_>,
    org_id: &str,
    client_id: &str,
) -> Result<Option<RotationTurn>, Failure> {
    let Some(shared) = atlas.shared(ctx.profile) else {
        return Ok(None);
    };
    match shared.rotation_turn(org_id, client_id, ctx.deadline).await {
        Ok(Some(turn)) => Ok(Some(turn)),
        Ok(None) => Err(Failure::Atlas(AtlasError::Timeout)),
        Err(StoreDown) => Err(Failure::SharedStoreUnavailable),
    }
}

/// Whether a secret's value may be shown: only in the answer that created it.
#[derive(Clone, Copy, PartialEq)]
enum Reveal {
    Yes,
    No,
}

fn service_account(sa: atlas_sa::OrgServiceAccount, reveal: Reveal) -> ServiceAccount {
    ServiceAccount {
        client_id: sa.client_id,
        name: sa.name,
        description: sa.description,
        roles: sa.roles,
        create_time: timestamp(sa.created_at.as_deref()),
        secrets: sa.secrets.into_iter().map(|s| secret(s, reveal)).collect(),
        access_list_ips: Vec::new(),
        expire_time: None,
    }
}

fn secret(s: atlas_sa::ServiceAccountSecret, reveal: Reveal) -> ServiceAccountSecret {
    let value = s.secret.filter(|_| reveal == Reveal::Yes);
    ServiceAccountSecret {
        id: s.id,
        secret: value.map(|v| v.expose().to_string()).unwrap_or_default(),
        expire_time: timestamp(s.expires_at.as_deref()),
        create_time: timestamp(s.created_at.as_deref()),
        masked_secret_value: s.masked_secret_value.unwrap_or_default(),
    }
}

fn timestamp(rfc3339: Option<&str>) -> Option<Timestamp> {
    rfc3339.and_then(|t| t.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(id: &str, created: &str, expires: &str) -> atlas_sa::ServiceAccountSecret {
        serde_json::from_value(serde_json::json!({
            "id": id, "createdAt": created, "expiresAt": expires,
        }))
        .unwrap()
    }

    #[test]
    fn makes_room_for_one_more() {
        let now = "2026-06-01T00:00:00Z".parse::<Timestamp>().unwrap();
        let now = SystemTime::try_from(now).unwrap();
        let (past, future) = ("2026-05-01T00:00:00Z", "2026-07-01T00:00:00Z");
        let one = vec![s("a", "2026-01-01T00:00:00Z", future)];
        assert!(stale_secrets(one, now).is_empty());
        let two = vec![
            s("new", "2026-03-01T00:00:00Z", future),
            s("old", "2026-02-01T00:00:00Z", future),
        ];
        assert_eq!(stale_secrets(two, now), ["old"]);
        let one_expired = vec![
            s("new", "2026-03-01T00:00:00Z", future),
            s("gone", "2026-02-01T00:00:00Z", past),
        ];
        assert_eq!(stale_secrets(one_expired, now), ["gone"]);
        assert_eq!(
            stale_secrets(vec![s("x", "2026-01-01T00:00:00Z", past)], now),
            ["x"]
        );
    }
}
