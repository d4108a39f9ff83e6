//! The Atlas surface of the emulator: request routing, counting, fault application, the
//! common checks (auth, media type, org), the link-token operations and the token
//! endpoint; the API key operations are in `api_keys`, the service-account ones in
//! `service_accounts`.
//!
//! Every non-control request goes through [`dispatch`]: count → fault → endpoint. Request
//! bodies are capped at 1 MiB (413 `ApiError` above that).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use http::header::{HeaderMap, HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use http::{Method, StatusCode};
use serde_json::json;

use super::api_keys;
use super::auth::{self, media_type};
use super::bodies::{is_org_id, link_token_request};
use super::control;
use super::counters::{RecordedRequest, RECORDED_MAX};
use super::faults::{self, Outcome, Route};
use super::response::{
    random_b64, random_hex, raw_response, stamp, versioned_json, ApiError, VERSIONED,
    VERSIONED_UTF8,
};
use super::service_accounts::{self, SA_VERSIONED};
use super::state::Shared;

/// Largest request body read.
pub(crate) const MAX_REQUEST_BODY: usize = 1024 * 1024;
/// Beyond this, an oversized request body is no longer drained (the connection closes).
const MAX_DRAIN: usize = 16 * 1024 * 1024;

const TOKEN_PATH: &str = "/api/oauth/token";
const REVOKE_PATH: &str = "/api/oauth/revoke";
const LINK_TOKENS: &str = "/api/atlas/v2/orgs/{orgId}/liveMigrations/linkTokens";
const API_KEYS: &str = "/api/atlas/v2/orgs/{orgId}/apiKeys";
const API_KEY: &str = "/api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}";
const ACCESS_LIST: &str = "/api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}/accessList";
const SYSTEM_STATUS: &str = "/api/atlas/v2";

/// The emulator's whole router: control API plus the Atlas surface.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    control::router().fallback(dispatch).with_state(shared)
}

/// Which endpoint a request addresses.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Token,
    Revoke,
    CreateLinkToken,
    DeleteLinkToken,
    CreateApiKey,
    ListApiKeys,
    GetApiKey,
    UpdateApiKey,
    DeleteApiKey,
    CreateAccessList,
    ListAccessList,
    SystemStatus,
    ServiceAccount(service_accounts::Endpoint),
    /// A known path with a method it does not support.
    WrongMethod(&'static str),
    Unknown,
}

impl Op {
    fn route(self) -> Option<Route> {
        Some(match self {
            Op::Token => Route::Token,
            Op::CreateLinkToken => Route::CreateLinkToken,
            Op::DeleteLinkToken => Route::DeleteLinkToken,
            Op::CreateApiKey => Route::CreateApiKey,
            Op::ListApiKeys => Route::ListApiKeys,
            Op::GetApiKey => Route::GetApiKey,
            Op::UpdateApiKey => Route::UpdateApiKey,
            Op::DeleteApiKey => Route::DeleteApiKey,
            Op::CreateAccessList => Route::CreateApiKeyAccessList,
            Op::ListAccessList => Route::ListApiKeyAccessList,
            Op::ServiceAccount(endpoint) => endpoint.route(),
            Op::Revoke | Op::SystemStatus | Op::WrongMethod(_) | Op::Unknown => return None,
        })
    }
}

/// What a request addresses: the endpoint, its path template and path parameters.
struct Target {
    op: Op,
    template: &'static str,
    org: Option<String>,
    key: Option<String>,
    /// `clientId` and `secretId` of a service-account path.
    ids: Vec<String>,
}

/// The operation for `method` among a path's `(method, op)` pairs.
fn pick(method: &Method, ops: &[(Method, Op)], allow: &'static str) -> Op {
    ops.iter()
        .find(|(m, _)| m == method)
        .map_or(Op::WrongMethod(allow), |(_, op)| *op)
}

fn resolve(method: &Method, path: &str) -> Target {
    let target = |op, template, org: Option<&&str>, key: Option<&&str>| Target {
        op,
        template,
        org: org.map(|s| s.to_string()),
        key: key.map(|s| s.to_string()),
        ids: Vec::new(),
    };
    if path == TOKEN_PATH {
        return target(
            pick(method, &[(Method::POST, Op::Token)], "POST"),
            TOKEN_PATH,
            None,
            None,
        );
    }
    if path == REVOKE_PATH {
        return target(
            pick(method, &[(Method::POST, Op::Revoke)], "POST"),
            REVOKE_PATH,
            None,
            None,
        );
    }
    if path == SYSTEM_STATUS {
        let op = pick(method, &[(Method::GET, Op::SystemStatus)], "GET");
        return target(op, SYSTEM_STATUS, None, None);
    }
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        ["", "api", "atlas", "v2", "orgs", org, "liveMigrations", "linkTokens"] => {
            let ops = [
                (Method::POST, Op::CreateLinkToken),
                (Method::DELETE, Op::DeleteLinkToken),
            ];
            target(
                pick(method, &ops, "POST, DELETE"),
                LINK_TOKENS,
                Some(org),
                None,
            )
        }
        ["", "api", "atlas", "v2", "orgs", org, "apiKeys"] => {
            let ops = [
                (Method::POST, Op::CreateApiKey),
                (Method::GET, Op::ListApiKeys),
            ];
            target(pick(method, &ops, "GET, POST"), API_KEYS, Some(org), None)
        }
        ["", "api", "atlas", "v2", "orgs", org, "apiKeys", key] => {
            let ops = [
                (Method::GET, Op::GetApiKey),
                (Method::PATCH, Op::UpdateApiKey),
                (Method::DELETE, Op::DeleteApiKey),
            ];
            target(
                pick(method, &ops, "GET, PATCH, DELETE"),
                API_KEY,
                Some(org),
                Some(key),
            )
        }
        ["", "api", "atlas", "v2", "orgs", org, "apiKeys", key, "accessList"] => {
            let ops = [
                (Method::POST, Op::CreateAccessList),
                (Method::GET, Op::ListAccessList),
            ];
            target(
                pick(method, &ops, "GET, POST"),
                ACCESS_LIST,
                Some(org),
                Some(key),
            )
        }
        ["", "api", "atlas", "v2", "orgs", org, "serviceAccounts", rest @ ..] => {
            match service_accounts::resolve(method, rest) {
                Some((endpoint, template, ids)) => Target {
                    ids,
                    ..target(
                        endpoint.map_or_else(Op::WrongMethod, Op::ServiceAccount),
                        template,
                        Some(org),
                        None,
                    )
                },
                None => target(Op::Unknown, "*", None, None),
            }
        }
        _ => target(Op::Unknown, "*", None, None),
    }
}

/// Entry point of every request that is not for the control API.
async fn dispatch(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let target = resolve(req.method(), req.uri().path());
    {
        let mut inner = shared.lock();
        let key = format!("{} {}", req.method(), target.template);
        *inner.counters.requests.entry(key).or_default() += 1;
        if target.op == Op::Token {
            inner.counters.token_requests += 1;
        }
    }
    let mut guard = AbandonGuard(Some(&*shared));
    let mut resp = handle(&shared, target, req).await;
    guard.0 = None; // answered: not abandoned
    let remaining = shared.lock().rate_remaining();
    stamp(&mut resp, remaining);
    resp
}

/// Counts a request whose handler is dropped before it answers (the client hung up).
struct AbandonGuard<'a>(Option<&'a Shared>);

impl Drop for AbandonGuard<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.lock().counters.abandoned += 1;
        }
    }
}

async fn handle(shared: &Shared, target: Target, req: Request) -> Response {
    let op = target.op;
    let fault = faults::take_matching(&mut shared.lock().faults, op.route());
    let mut short_token_secs = None;
    if let Some(action) = fault {
        match faults::apply(action, op.route()).await {
            Outcome::Respond(resp) => return resp,
            Outcome::Continue {
                short_token_secs: secs,
            } => short_token_secs = secs,
        }
    }
    let (parts, body) = req.into_parts();
    match op {
        Op::Unknown => {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                "RESOURCE_NOT_FOUND",
                format!("Cannot find resource {}.", parts.uri.path()),
            )
            .parameters(json!([parts.uri.path()]))
            .into_response()
        }
        Op::WrongMethod(allow) => {
            let mut resp = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                format!("Method {} is not allowed on this resource.", parts.method),
            )
            .into_response();
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            return resp;
        }
        _ => {}
    }
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    if op == Op::Token {
        return auth::token_endpoint(shared, &parts.headers, &body, short_token_secs);
    }
    if op == Op::Revoke {
        return super::limits::revoke_endpoint(shared, &parts.headers, &body);
    }
    record(shared, &parts, &body);
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    if let Some(resp) = auth::reject(
        shared,
        parts.method.as_str(),
        parts.uri.path(),
        path_and_query,
        &parts.headers,
    ) {
        return resp;
    }
    let versioned = match op {
        Op::ServiceAccount(_) => SA_VERSIONED,
        _ => VERSIONED,
    };
    if let Err(error) = check_media_types(&parts.method, &parts.headers, versioned) {
        return error.into_response();
    }
    if op == Op::SystemStatus {
        return system_status();
    }
    let org = target.org.unwrap_or_default();
    if let Err(error) = check_org(shared, &org) {
        return error.into_response();
    }
    let key = target.key.unwrap_or_default();
    let query = parts.uri.query();
    match op {
        Op::CreateLinkToken => create_link_token(shared, &org, &body),
        Op::DeleteLinkToken => delete_link_token(shared, &org),
        Op::CreateApiKey => api_keys::create(shared, &org, &body),
        Op::ListApiKeys => api_keys::list(shared, &org, query),
        Op::GetApiKey => api_keys::get(shared, &org, &key),
        Op::UpdateApiKey => api_keys::update(shared, &org, &key, &body),
        Op::DeleteApiKey => api_keys::delete(shared, &org, &key),
        Op::CreateAccessList => api_keys::add_access_list(shared, &org, &key, &body),
        Op::ServiceAccount(endpoint) => {
            service_accounts::handle(shared, endpoint, &org, &target.ids, query, &body).await
        }
        _ => api_keys::list_access_list(shared, &org, &key, query),
    }
}

/// `getSystemStatus` for credentials the common checks accepted: a `SystemStatus`
/// (`appName`, `build`, `throttling`, `apiKey`, `links`).
fn system_status() -> Response {
    let body = json!({
        "appName": "MongoDB Atlas (emulated)",
        "build": random_hex(20),
        "throttling": false,
        "apiKey": {"accessList": [], "id": random_hex(12), "publicKey": "emulated", "roles": []},
        "links": [{"href": SYSTEM_STATUS, "rel": "self"}],
    });
    versioned_json(StatusCode::OK, &body)
}

/// Keeps the request (credentials reduced to their scheme) for tests to inspect.
fn record(shared: &Shared, parts: &http::request::Parts, body: &[u8]) {
    let header = |name: http::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let entry = RecordedRequest {
        method: parts.method.to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        accept: header(http::header::ACCEPT),
        content_type: header(http::header::CONTENT_TYPE),
        user_agent: header(http::header::USER_AGENT),
        authorization: header(http::header::AUTHORIZATION)
            .map(|v| v.split(' ').next().unwrap_or_default().to_string()),
        body: String::from_utf8_lossy(body).into_owned(),
    };
    let mut inner = shared.lock();
    if inner.recorded.len() >= RECORDED_MAX {
        inner.recorded.pop_front();
    }
    inner.recorded.push_back(entry);
}

/// Reads at most [`MAX_REQUEST_BODY`] bytes. Above that it discards the rest (up to
/// [`MAX_DRAIN`], so the client finishes sending and reads the 413 instead of a reset) and
/// answers 413 `REQUEST_TOO_LARGE`; a body that fails mid-way is 400 `MALFORMED_REQUEST`.
async fn read_body(body: Body) -> Result<bytes::Bytes, Response> {
    use tokio_stream::StreamExt as _;
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut seen: usize = 0;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "MALFORMED_REQUEST",
                "The request body could not be read.",
            )
            .into_response());
        };
        seen = seen.saturating_add(chunk.len());
        if seen <= MAX_REQUEST_BODY {
            buf.extend_from_slice(&chunk);
        } else if seen > MAX_DRAIN {
            break;
        }
    }
    if seen > MAX_REQUEST_BODY {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "REQUEST_TOO_LARGE",
            "The request body exceeds 1 MiB.",
        )
        .into_response());
    }
    Ok(buf.freeze())
}

/// `Accept` must list the operation's versioned type (406); POST and PATCH bodies must use it
/// too
/// (415).
fn check_media_types(
    method: &Method,
    headers: &HeaderMap,
    versioned: &str,
) -> Result<(), ApiError> {
    let accept_ok = headers.get_all(ACCEPT).iter().any(|value| {
        value
            .to_str()
            .map(|v| v.split(',').any(|item| media_type(item) == versioned))
            .unwrap_or(false)
    });
    if !accept_ok {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "INVALID_VERSION_DATE",
            "Invalid accept header or version date.",
        ));
    }
    if method == Method::POST || method == Method::PATCH {
        let content_ok = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| media_type(v) == versioned);
        if !content_ok {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                format!("The request Content-Type must be {versioned}."),
            ));
        }
    }
    Ok(())
}

/// orgId syntax (400), existence (404), Owner role (403).
fn check_org(shared: &Shared, org: &str) -> Result<(), ApiError> {
    let config = &shared.config;
    if !is_org_id(org) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_ATTRIBUTE",
            "Invalid attribute orgId specified.",
        )
        .parameters(json!(["orgId"]))
        .field("orgId", "orgId must match ^([a-f0-9]{24})$."));
    }
    if config.org_ids.iter().any(|o| o == org) {
        return Ok(());
    }
    if config.read_only_org_ids.iter().any(|o| o == org) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "USER_UNAUTHORIZED",
            "Current user is not authorized to perform this action.",
        ));
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "ORG_NOT_FOUND",
        format!("No organization with ID {org} exists."),
    )
    .parameters(json!([org])))
}

fn create_link_token(shared: &Shared, org: &str, body: &[u8]) -> Response {
    let ips = match link_token_request(body) {
        Ok(ips) => ips,
        Err(error) => return error.into_response(),
    };
    // Shaped like a real link token: base64 of a JSON document, opaque to callers.
    let inner_doc = json!({
        "orgId": org,
        "accessListIps": ips,
        "linkId": random_hex(12),
        "secret": random_b64(48),
        "emulated": true,
    });
    let link_token = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(inner_doc.to_string())
    };
    {
        let mut inner = shared.lock();
        inner.links.insert(org.to_string());
        inner.counters.link_tokens_created += 1;
    }
    versioned_json(StatusCode::CREATED, &json!({ "linkToken": link_token }))
}

fn delete_link_token(shared: &Shared, org: &str) -> Response {
    let removed = {
        let mut inner = shared.lock();
        let removed = inner.links.remove(org);
        if removed {
            inner.counters.link_tokens_deleted += 1;
        }
        removed
    };
    if removed {
        return raw_response(StatusCode::NO_CONTENT, VERSIONED_UTF8, Body::empty());
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        "UNEXPECTED_ERROR",
        "Could not find the requested external organization link.",
    )
    .parameters(serde_json::Value::Null)
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_to_templates() {
        let t = resolve(
            &Method::POST,
            "/api/atlas/v2/orgs/5f1a0c2b3d4e5f6a7b8c9d0e/apiKeys",
        );
        assert_eq!(
            (t.op, t.template, t.org.as_deref()),
            (Op::CreateApiKey, API_KEYS, Some("5f1a0c2b3d4e5f6a7b8c9d0e"))
        );
        let t = resolve(
            &Method::DELETE,
            "/api/atlas/v2/orgs/x/liveMigrations/linkTokens",
        );
        assert_eq!((t.op, t.template), (Op::DeleteLinkToken, LINK_TOKENS));
        let t = resolve(&Method::POST, "/api/atlas/v2/orgs/o/apiKeys/k/accessList");
        assert_eq!(
            (t.op, t.template, t.key.as_deref()),
            (Op::CreateAccessList, ACCESS_LIST, Some("k"))
        );
        let t = resolve(&Method::PATCH, "/api/atlas/v2/orgs/o/apiKeys/k");
        assert_eq!((t.op, t.template), (Op::UpdateApiKey, API_KEY));
        let t = resolve(&Method::PUT, "/api/atlas/v2/orgs/o/apiKeys/k");
        assert_eq!(
            (t.op, t.template),
            (Op::WrongMethod("GET, PATCH, DELETE"), API_KEY)
        );
        assert_eq!(
            resolve(&Method::GET, TOKEN_PATH).op,
            Op::WrongMethod("POST")
        );
        assert_eq!(resolve(&Method::GET, "/api/atlas/v2/orgs").op, Op::Unknown);
    }
}
