//! The organization API key endpoints of the emulator (`createOrgApiKey`,
//! `listOrgApiKeys`, `getOrgApiKey`, `updateApiKey`, `deleteOrgApiKey`,
//! `createOrgApiKeyAccessListEntry`, `listOrgApiKeyAccessListEntries`), shaped like the
//! official spec: versioned media type, `PaginatedApi...` envelopes with `links`,
//! `results` and `totalCount`, private keys masked after creation. A key's `desc` is
//! kept and answered as sent (a gateway's lease marker included), as Atlas does.
//!
//! Choices where the spec is silent: keys list in creation order; `itemsPerPage` outside
//! 1..=500 or `pageNum` below 1 is 400 `INVALID_ATTRIBUTE`; an unknown `apiUserId` is 404
//! `RESOURCE_NOT_FOUND`. Auth, media type and org checks happened before (`routes`).

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};

use super::bodies::{
    access_list_request, api_key_request, api_key_update_request, is_org_id, AccessEntry,
};
use super::response::{random_hex, raw_response, versioned_json, ApiError, VERSIONED_UTF8};
use super::state::{Shared, StoredApiKey};

/// `POST .../apiKeys`: the new key, with its private key shown this once.
pub(crate) fn create(shared: &Shared, org: &str, body: &[u8]) -> Response {
    let (desc, roles) = match api_key_request(body) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    let private_key = uuid::Uuid::new_v4().to_string();
    let key = StoredApiKey {
        org_id: org.to_string(),
        id: random_hex(12),
        desc,
        public_key: (0..8).map(|_| fastrand::lowercase()).collect(),
        private_key_tail: private_key[private_key.len() - 12..].to_string(),
        roles,
        access_list: Vec::new(),
    };
    let body = key_json(shared, &key, &private_key);
    {
        let mut inner = shared.lock();
        inner.api_keys.push(key);
        inner.counters.api_keys_created += 1;
    }
    versioned_json(StatusCode::OK, &body)
}

/// `GET .../apiKeys?itemsPerPage=&pageNum=&includeCount=`: one page, oldest first.
pub(crate) fn list(shared: &Shared, org: &str, query: Option<&str>) -> Response {
    let page = match Page::parse(query) {
        Ok(page) => page,
        Err(error) => return error.into_response(),
    };
    let keys: Vec<Value> = {
        let inner = shared.lock();
        inner
            .api_keys
            .iter()
            .filter(|k| k.org_id == org)
            .map(|k| key_json(shared, k, &masked(k)))
            .collect()
    };
    let path = format!("/api/atlas/v2/orgs/{org}/apiKeys");
    versioned_json(StatusCode::OK, &page.envelope(shared, &path, keys))
}

/// `GET .../apiKeys/{apiUserId}`.
pub(crate) fn get(shared: &Shared, org: &str, id: &str) -> Response {
    match find(shared, org, id, |k| key_json(shared, k, &masked(k))) {
        Ok(body) => versioned_json(StatusCode::OK, &body),
        Err(error) => error.into_response(),
    }
}

/// `PATCH .../apiKeys/{apiUserId}`: a new `desc`; answers the key, private key masked.
pub(crate) fn update(shared: &Shared, org: &str, id: &str, body: &[u8]) -> Response {
    let changed = check_id(id)
        .and_then(|()| api_key_update_request(body))
        .and_then(|desc| {
            find_mut(shared, org, id, |key| {
                key.desc = desc;
                key_json(shared, key, &masked(key))
            })
        });
    match changed {
        Ok(body) => versioned_json(StatusCode::OK, &body),
        Err(error) => error.into_response(),
    }
}

/// `DELETE .../apiKeys/{apiUserId}`: 204, or 404 for an unknown key.
pub(crate) fn delete(shared: &Shared, org: &str, id: &str) -> Response {
    if let Err(error) = check_id(id) {
        return error.into_response();
    }
    let removed = {
        let mut inner = shared.lock();
        let before = inner.api_keys.len();
        inner.api_keys.retain(|k| !(k.org_id == org && k.id == id));
        let removed = inner.api_keys.len() < before;
        if removed {
            inner.counters.api_keys_deleted += 1;
        }
        removed
    };
    if removed {
        raw_response(StatusCode::NO_CONTENT, VERSIONED_UTF8, Body::empty())
    } else {
        not_found(id).into_response()
    }
}

/// `POST .../apiKeys/{apiUserId}/accessList`: adds the entries, answers the whole list.
pub(crate) fn add_access_list(shared: &Shared, org: &str, id: &str, body: &[u8]) -> Response {
    let entries = match check_id(id).and_then(|()| access_list_request(body)) {
        Ok(entries) => entries,
        Err(error) => return error.into_response(),
    };
    let added = entries.len() as u64;
    let list = find_mut(shared, org, id, |key| {
        for entry in entries {
            if !key.access_list.contains(&entry) {
                key.access_list.push(entry);
            }
        }
        key.access_list.clone()
    });
    match list {
        Ok(list) => {
            shared.lock().counters.access_list_entries_created += added;
            access_list_page(shared, org, id, list, None)
        }
        Err(error) => error.into_response(),
    }
}

/// `GET .../apiKeys/{apiUserId}/accessList`.
pub(crate) fn list_access_list(
    shared: &Shared,
    org: &str,
    id: &str,
    query: Option<&str>,
) -> Response {
    match find(shared, org, id, |k| k.access_list.clone()) {
        Ok(list) => access_list_page(shared, org, id, list, query),
        Err(error) => error.into_response(),
    }
}

fn access_list_page(
    shared: &Shared,
    org: &str,
    id: &str,
    list: Vec<AccessEntry>,
    query: Option<&str>,
) -> Response {
    let page = match Page::parse(query) {
        Ok(page) => page,
        Err(error) => return error.into_response(),
    };
    let path = format!("/api/atlas/v2/orgs/{org}/apiKeys/{id}/accessList");
    let items = list
        .iter()
        .map(|e| {
            let href = format!(
                "{}{path}/{}",
                shared.base_url,
                e.cidr_block.replace('/', "%2F")
            );
            let mut item =
                json!({"cidrBlock": e.cidr_block, "links": [{"href": href, "rel": "self"}]});
            if let Some(ip) = &e.ip_address {
                item["ipAddress"] = json!(ip);
            }
            item
        })
        .collect();
    versioned_json(StatusCode::OK, &page.envelope(shared, &path, items))
}

/// `itemsPerPage`, `pageNum` and `includeCount` of a list request.
pub(crate) struct Page {
    items_per_page: usize,
    page_num: usize,
    include_count: bool,
}

impl Page {
    pub(crate) fn parse(query: Option<&str>) -> Result<Page, ApiError> {
        let mut page = Page {
            items_per_page: 100,
            page_num: 1,
            include_count: true,
        };
        for (key, value) in query
            .unwrap_or("")
            .split('&')
            .filter_map(|p| p.split_once('='))
        {
            let number = || value.parse::<usize>().ok();
            match key {
                "itemsPerPage" => match number().filter(|n| (1..=500).contains(n)) {
                    Some(n) => page.items_per_page = n,
                    None => {
                        return Err(bad_query("itemsPerPage", "itemsPerPage must be 1 to 500."))
                    }
                },
                "pageNum" => match number().filter(|n| *n >= 1) {
                    Some(n) => page.page_num = n,
                    None => return Err(bad_query("pageNum", "pageNum must be at least 1.")),
                },
                "includeCount" => page.include_count = value != "false",
                _ => {}
            }
        }
        Ok(page)
    }

    /// `{"links", "results", "totalCount"}` for this page of `all`.
    pub(crate) fn envelope(&self, shared: &Shared, path: &str, all: Vec<Value>) -> Value {
        let total = all.len();
        let start = (self.page_num - 1).saturating_mul(self.items_per_page);
        let results: Vec<Value> = all
            .into_iter()
            .skip(start)
            .take(self.items_per_page)
            .collect();
        let link = |n: usize, rel: &str| json!({"href": format!("{}{path}?pageNum={n}&itemsPerPage={}", shared.base_url, self.items_per_page), "rel": rel});
        let mut links = vec![link(self.page_num, "self")];
        if start + results.len() < total {
            links.push(link(self.page_num + 1, "next"));
        }
        let mut body = json!({"links": links, "results": results});
        if self.include_count {
            body["totalCount"] = json!(total);
        }
        body
    }
}

pub(crate) fn bad_query(field: &str, description: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "INVALID_ATTRIBUTE",
        format!("Invalid attribute {field} specified."),
    )
    .parameters(json!([field]))
    .field(field, description)
}

/// `ApiKeyUserDetails` with the given private key (shown once, or masked).
fn key_json(shared: &Shared, key: &StoredApiKey, private_key: &str) -> Value {
    let href = format!(
        "{}/api/atlas/v2/orgs/{}/apiKeys/{}",
        shared.base_url, key.org_id, key.id
    );
    let roles: Vec<Value> = key
        .roles
        .iter()
        .map(|role| json!({"orgId": key.org_id, "roleName": role}))
        .collect();
    json!({
        "desc": key.desc,
        "id": key.id,
        "links": [{"href": href, "rel": "self"}],
        "privateKey": private_key,
        "publicKey": key.public_key,
        "roles": roles,
    })
}

/// How Atlas shows a private key after creation.
fn masked(key: &StoredApiKey) -> String {
    format!("********-****-****-{}", key.private_key_tail)
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if is_org_id(id) {
        return Ok(());
    }
    Err(bad_query(
        "apiUserId",
        "apiUserId must match ^([a-f0-9]{24})$.",
    ))
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        format!("Cannot find resource API key {id}."),
    )
    .parameters(json!([id]))
}

/// Reads key `id` of `org`.
fn find<T>(
    shared: &Shared,
    org: &str,
    id: &str,
    read: impl FnOnce(&StoredApiKey) -> T,
) -> Result<T, ApiError> {
    check_id(id)?;
    let inner = shared.lock();
    let key = inner
        .api_keys
        .iter()
        .find(|k| k.org_id == org && k.id == id);
    key.map(read).ok_or_else(|| not_found(id))
}

/// Changes key `id` of `org`.
fn find_mut<T>(
    shared: &Shared,
    org: &str,
    id: &str,
    change: impl FnOnce(&mut StoredApiKey) -> T,
) -> Result<T, ApiError> {
    let mut inner = shared.lock();
    let key = inner
        .api_keys
        .iter_mut()
        .find(|k| k.org_id == org && k.id == id);
    key.map(change).ok_or_else(|| not_found(id))
}
