//! The organization service-account endpoints of the emulator (`createOrgServiceAccount`,
//! `listOrgServiceAccounts`, `getOrgServiceAccount`, `deleteOrgServiceAccount`,
//! `createOrgSecret`, `deleteOrgSecret`, `createOrgAccessList`, `listOrgAccessList`) with
//! Atlas's rules: media type `2024-08-05` only, at most two secrets per account, a new
//! secret shortens older ones to at most 7 days, a second `createOrgSecret` while one is
//! under way is 409 `DATA_CONCURRENCY_ERROR`, a secret's value only in the answer that
//! created it (`maskedSecretValue` otherwise), and the token endpoint accepts an
//! account's unexpired secrets ([`accepts`]).
//!
//! Choices where Atlas is silent: a third secret is 400
//! `SERVICE_ACCOUNT_SECRET_LIMIT_EXCEEDED`; `secretExpiresAfterHours` must be 8 to 8760
//! (the org setting's widest range); creating a secret takes [`SECRET_CREATION_TIME`]
//! (the window in which a second one conflicts); expired secrets stay until deleted and
//! count toward the two. Auth, media type and org checks happened before (`routes`).

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};

use super::api_keys::Page;
use super::bodies::access_list_request;
use super::response::{json_response, random_hex, raw_response, ApiError};
use super::state::{Shared, StoredSecret, StoredServiceAccount};

/// The versioned media type of the service-account operations.
pub(crate) const SA_VERSIONED: &str = "application/vnd.atlas.2024-08-05+json";
const SA_VERSIONED_UTF8: &str = "application/vnd.atlas.2024-08-05+json;charset=utf-8";
/// How long `createOrgSecret` takes; a second one for the account meanwhile is 409.
pub(crate) const SECRET_CREATION_TIME: Duration = Duration::from_millis(100);
/// Older secrets live at most this long once a new one exists.
const SHORTENED_TO: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_SECRETS: usize = 2;

mod endpoint;
mod request;
pub(crate) use endpoint::{resolve, Endpoint};
use request::{check_client_id, invalid, object, secret_hours, AccountRequest};

/// Runs `endpoint` for `org`; `ids` are `clientId` and `secretId` as the path has them.
pub(crate) async fn handle(
    shared: &Shared,
    endpoint: Endpoint,
    org: &str,
    ids: &[String],
    query: Option<&str>,
    body: &[u8],
) -> Response {
    let id = |i: usize| ids.get(i).map_or("", String::as_str);
    let result = match endpoint {
        Endpoint::Create => create(shared, org, body),
        Endpoint::List => list(shared, org, query),
        Endpoint::Get => with(shared, org, id(0), |sa| account_json(sa, None)).map(ok),
        Endpoint::Delete => delete(shared, org, id(0)),
        Endpoint::CreateSecret => create_secret(shared, org, id(0), body).await,
        Endpoint::DeleteSecret => delete_secret(shared, org, id(0), id(1)),
        Endpoint::AddAccessList => add_access_list(shared, org, id(0), body, query),
        Endpoint::ListAccessList => with(shared, org, id(0), |sa| sa.access_list.clone())
            .and_then(|list| access_list_page(shared, org, id(0), &list, query)),
    };
    result.unwrap_or_else(ApiError::into_response)
}

/// True when `client_id`/`secret` name an account's unexpired secret.
pub(crate) fn accepts(shared: &Shared, client_id: &str, secret: &str) -> bool {
    let now = SystemTime::now();
    shared.lock().service_accounts.iter().any(|sa| {
        sa.client_id == client_id
            && sa
                .secrets
                .iter()
                .any(|s| s.value == secret && s.expires_at > now)
    })
}

fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, SA_VERSIONED_UTF8, &body)
}

fn no_content() -> Response {
    raw_response(StatusCode::NO_CONTENT, SA_VERSIONED_UTF8, Body::empty())
}

fn create(shared: &Shared, org: &str, body: &[u8]) -> Result<Response, ApiError> {
    let request = AccountRequest::parse(body)?;
    let now = SystemTime::now();
    let (secret, value) = new_secret(now, request.hours);
    let sa = StoredServiceAccount {
        org_id: org.to_string(),
        client_id: format!("mdb_sa_id_{}", random_hex(12)),
        name: request.name,
        description: request.description,
        roles: request.roles,
        created_at: now,
        secrets: vec![secret],
        access_list: Vec::new(),
        creating_secret: false,
    };
    let body = account_json(&sa, Some(&value));
    let mut inner = shared.lock();
    inner.service_accounts.push(sa);
    inner.counters.service_accounts_created += 1;
    inner.counters.service_account_secrets_created += 1;
    Ok(json_response(StatusCode::CREATED, SA_VERSIONED_UTF8, &body))
}

fn list(shared: &Shared, org: &str, query: Option<&str>) -> Result<Response, ApiError> {
    let page = Page::parse(query)?;
    let all = shared
        .lock()
        .service_accounts
        .iter()
        .filter(|sa| sa.org_id == org)
        .map(|sa| account_json(sa, None))
        .collect();
    let path = format!("/api/atlas/v2/orgs/{org}/serviceAccounts");
    Ok(ok(page.envelope(shared, &path, all)))
}

fn delete(shared: &Shared, org: &str, client_id: &str) -> Result<Response, ApiError> {
    check_client_id(client_id)?;
    let mut inner = shared.lock();
    let before = inner.service_accounts.len();
    inner
        .service_accounts
        .retain(|sa| !(sa.org_id == org && sa.client_id == client_id));
    if inner.service_accounts.len() == before {
        return Err(not_found("service account", client_id));
    }
    inner.counters.service_accounts_deleted += 1;
    Ok(no_content())
}

/// `createOrgSecret`: refused while another is under way or at two secrets; else the
/// older secrets are shortened and the new one answered with its value, this once.
async fn create_secret(
    shared: &Shared,
    org: &str,
    client_id: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let hours = secret_hours(&object(body)?).map_err(|(f, d)| invalid(&[(f, d)]))?;
    let mut conflict = false;
    with_mut(shared, org, client_id, |sa| {
        if sa.creating_secret {
            conflict = true;
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "DATA_CONCURRENCY_ERROR",
                "Another request modified this service account at the same time; retry.",
            ));
        }
        if sa.secrets.len() >= MAX_SECRETS {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "SERVICE_ACCOUNT_SECRET_LIMIT_EXCEEDED",
                "A service account can have at most 2 secrets; delete one first.",
            ));
        }
        sa.creating_secret = true;
        Ok(())
    })
    .and_then(|started| started)
    .inspect_err(|_| {
        if conflict {
            shared.lock().counters.service_account_secret_conflicts += 1;
        }
    })?;
    let mut pending = Pending(Some((shared, org, client_id)));
    tokio::time::sleep(SECRET_CREATION_TIME).await;
    pending.0 = None;
    let now = SystemTime::now();
    let (secret, value) = new_secret(now, hours);
    let body = secret_json(&secret, Some(&value));
    with_mut(shared, org, client_id, |sa| {
        sa.creating_secret = false;
        for older in &mut sa.secrets {
            older.expires_at = older.expires_at.min(now + SHORTENED_TO);
        }
        sa.secrets.push(secret);
    })?;
    shared.lock().counters.service_account_secrets_created += 1;
    Ok(json_response(StatusCode::CREATED, SA_VERSIONED_UTF8, &body))
}

/// Clears `creating_secret` when a `createOrgSecret` is dropped mid-way.
struct Pending<'a>(Option<(&'a Shared, &'a str, &'a str)>);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some((shared, org, client_id)) = self.0.take() {
            let _ = with_mut(shared, org, client_id, |sa| sa.creating_secret = false);
        }
    }
}

fn delete_secret(
    shared: &Shared,
    org: &str,
    client_id: &str,
    secret_id: &str,
) -> Result<Response, ApiError> {
    let removed = with_mut(shared, org, client_id, |sa| {
        let before = sa.secrets.len();
        sa.secrets.retain(|s| s.id != secret_id);
        sa.secrets.len() < before
    })?;
    if !removed {
        return Err(not_found("secret", secret_id));
    }
    shared.lock().counters.service_account_secrets_deleted += 1;
    Ok(no_content())
}

fn add_access_list(
    shared: &Shared,
    org: &str,
    client_id: &str,
    body: &[u8],
    query: Option<&str>,
) -> Result<Response, ApiError> {
    check_client_id(client_id)?;
    let entries = access_list_request(body)?;
    let list = with_mut(shared, org, client_id, |sa| {
        for entry in entries {
            if !sa.access_list.contains(&entry) {
                sa.access_list.push(entry);
            }
        }
        sa.access_list.clone()
    })?;
    access_list_page(shared, org, client_id, &list, query)
}

fn access_list_page(
    shared: &Shared,
    org: &str,
    client_id: &str,
    list: &[super::bodies::AccessEntry],
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let page = Page::parse(query)?;
    let items = list
        .iter()
        .map(|e| {
            let mut item = json!({"cidrBlock": e.cidr_block, "requestCount": 0});
            if let Some(ip) = &e.ip_address {
                item["ipAddress"] = json!(ip);
            }
            item
        })
        .collect();
    let path = format!("/api/atlas/v2/orgs/{org}/serviceAccounts/{client_id}/accessList");
    Ok(ok(page.envelope(shared, &path, items)))
}

/// A new secret expiring after `hours`, and its value.
fn new_secret(now: SystemTime, hours: u64) -> (StoredSecret, String) {
    let value = format!("mdb_sa_sk_{}", random_hex(20));
    let secret = StoredSecret {
        id: random_hex(12),
        value: value.clone(),
        created_at: now,
        expires_at: now + Duration::from_secs(hours * 3600),
    };
    (secret, value)
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `ServiceAccountSecret`: the value when just created, else only the masked value.
fn secret_json(secret: &StoredSecret, value: Option<&str>) -> Value {
    let tail = &secret.value[secret.value.len() - 4..];
    let mut body = json!({
        "id": secret.id,
        "createdAt": time(secret.created_at),
        "expiresAt": time(secret.expires_at),
        "maskedSecretValue": format!("mdb_sa_sk_********{tail}"),
    });
    if let Some(value) = value {
        body["secret"] = json!(value);
    }
    body
}

/// `OrgServiceAccount`; `value`: the value of its (one) new secret.
fn account_json(sa: &StoredServiceAccount, value: Option<&str>) -> Value {
    let secrets: Vec<Value> = sa.secrets.iter().map(|s| secret_json(s, value)).collect();
    json!({
        "clientId": sa.client_id,
        "name": sa.name,
        "description": sa.description,
        "roles": sa.roles,
        "createdAt": time(sa.created_at),
        "secrets": secrets,
    })
}

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        format!("Cannot find resource {what} {id}."),
    )
    .parameters(json!([id]))
}

/// Reads account `client_id` of `org`.
fn with<T>(
    shared: &Shared,
    org: &str,
    client_id: &str,
    read: impl FnOnce(&StoredServiceAccount) -> T,
) -> Result<T, ApiError> {
    check_client_id(client_id)?;
    let inner = shared.lock();
    let sa = inner
        .service_accounts
        .iter()
        .find(|sa| sa.org_id == org && sa.client_id == client_id);
    sa.map(read)
        .ok_or_else(|| not_found("service account", client_id))
}

/// Changes account `client_id` of `org`.
fn with_mut<T>(
    shared: &Shared,
    org: &str,
    client_id: &str,
    change: impl FnOnce(&mut StoredServiceAccount) -> T,
) -> Result<T, ApiError> {
    check_client_id(client_id)?;
    let mut inner = shared.lock();
    let sa = inner
        .service_accounts
        .iter_mut()
        .find(|sa| sa.org_id == org && sa.client_id == client_id);
    sa.map(change)
        .ok_or_else(|| not_found("service account", client_id))
}

/// The secret ids of account `client_id`, oldest first (tests).
pub(crate) fn secret_ids(shared: &Shared, client_id: &str) -> Vec<String> {
    let inner = shared.lock();
    let sa = inner
        .service_accounts
        .iter()
        .find(|sa| sa.client_id == client_id);
    sa.map(|sa| sa.secrets.iter().map(|s| s.id.clone()).collect())
        .unwrap_or_default()
}

/// Makes one secret of account `client_id` expired; false when there is no such secret.
pub(crate) fn expire_secret(shared: &Shared, client_id: &str, secret_id: &str) -> bool {
    let mut inner = shared.lock();
    let secret = inner
        .service_accounts
        .iter_mut()
        .filter(|sa| sa.client_id == client_id)
        .flat_map(|sa| sa.secrets.iter_mut())
        .find(|s| s.id == secret_id);
    secret
        .map(|s| s.expires_at = SystemTime::now() - Duration::from_secs(1))
        .is_some()
}
