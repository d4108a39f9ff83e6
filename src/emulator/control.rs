//! The emulator's counters and its control API (`/__emulator/...`, not part of Atlas), which
//! lets tests in any language read counters, inject faults, revoke tokens and reset state.
//!
//! Routes (all JSON, `application/json`):
//! - `GET /__emulator/counters` → [`Counters`]
//! - `GET /__emulator/faults` → `{"faults": [Fault, ...]}`
//! - `POST /__emulator/faults` with one `Fault` or an array of them → `{"active_faults": n}`
//! - `DELETE /__emulator/faults` → `{"active_faults": 0}`
//! - `POST /__emulator/tokens/revoke` → `{"revoked": n}`
//! - `POST /__emulator/reset` → `{"reset": true}` (counters, faults, tokens, nonces, links, keys)
//! - `GET /__emulator/state` → `{"links": [orgId], "api_keys": [{"org_id","id"}], "active_tokens": n}`
//!
//! Control requests are not counted and never pass through fault rules.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::faults::Fault;
use super::response::{json_response, mark_emulated, JSON};
use super::state::Shared;

/// One received Atlas API request (not token or control requests), as tests assert it.
/// `authorization` keeps only the scheme (`Bearer`, `Digest`), never the credential.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query string.
    pub path_and_query: String,
    /// `Accept` header.
    pub accept: Option<String>,
    /// `Content-Type` header.
    pub content_type: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// Authorization scheme only (`Bearer`, `Digest`).
    pub authorization: Option<String>,
    /// Request body.
    pub body: String,
}

/// How many recent requests are kept.
pub const RECORDED_MAX: usize = 100;

/// What the emulator received, for tests to assert on upstream traffic.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Counters {
    /// Requests by `"METHOD /path/template"`, e.g.
    /// `"POST /api/atlas/v2/orgs/{orgId}/apiKeys"`; unknown paths count as `"METHOD *"`.
    pub requests: BTreeMap<String, u64>,
    /// Every hit on the token endpoint.
    pub token_requests: u64,
    /// Successful token grants.
    pub tokens_issued: u64,
    /// 401 responses carrying `WWW-Authenticate: Digest`.
    pub digest_challenges: u64,
    /// 401 for a bad/expired/revoked bearer token or a bad/replayed digest.
    pub unauthorized: u64,
    /// Successful link-token creations.
    pub link_tokens_created: u64,
    /// Successful link deletions.
    pub link_tokens_deleted: u64,
    /// Successful API key creations.
    pub api_keys_created: u64,
    /// Requests whose client went away before the emulator answered (the handler was
    /// dropped): shows that a cancelled gateway call drops its upstream request too.
    pub abandoned: u64,
}

impl Counters {
    /// Requests received for `method` on `template` (e.g. `"POST"`, `"/api/oauth/token"`).
    pub fn requests_for(&self, method: &str, template: &str) -> u64 {
        self.requests
            .get(&format!("{method} {template}"))
            .copied()
            .unwrap_or(0)
    }

    /// Requests received on every route.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
}

/// The control routes, to be merged into the emulator's router.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/__emulator/counters", get(counters))
        .route(
            "/__emulator/faults",
            get(list_faults).post(add_faults).delete(clear_faults),
        )
        .route("/__emulator/tokens/revoke", post(revoke_tokens))
        .route("/__emulator/reset", post(reset))
        .route("/__emulator/state", get(state))
}

fn reply(status: StatusCode, body: Value) -> Response {
    let mut resp = json_response(status, JSON, &body);
    mark_emulated(&mut resp);
    resp
}

async fn counters(State(shared): State<Arc<Shared>>) -> Response {
    let counters = shared.lock().counters.clone();
    reply(
        StatusCode::OK,
        serde_json::to_value(counters).unwrap_or(Value::Null),
    )
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Response {
    let faults = shared.lock().faults.clone();
    reply(StatusCode::OK, json!({ "faults": faults }))
}

/// One fault object or an array of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Fault),
    Many(Vec<Fault>),
}

async fn add_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let faults = match serde_json::from_slice::<OneOrMany>(&body) {
        Ok(OneOrMany::One(fault)) => vec![fault],
        Ok(OneOrMany::Many(faults)) => faults,
        Err(_) => {
            // Re-parse as a single fault for a precise message.
            let why = serde_json::from_slice::<Fault>(&body)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            return reply(
                StatusCode::BAD_REQUEST,
                json!({ "error": format!("invalid fault: {why}") }),
            );
        }
    };
    let mut inner = shared.lock();
    inner.faults.extend(faults);
    let active = inner.faults.len();
    drop(inner);
    reply(StatusCode::OK, json!({ "active_faults": active }))
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().faults.clear();
    reply(StatusCode::OK, json!({ "active_faults": 0 }))
}

async fn revoke_tokens(State(shared): State<Arc<Shared>>) -> Response {
    let mut inner = shared.lock();
    let revoked = inner.tokens.len();
    inner.tokens.clear();
    drop(inner);
    reply(StatusCode::OK, json!({ "revoked": revoked }))
}

async fn reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().reset();
    reply(StatusCode::OK, json!({ "reset": true }))
}

async fn state(State(shared): State<Arc<Shared>>) -> Response {
    let inner = shared.lock();
    let mut links: Vec<&String> = inner.links.iter().collect();
    links.sort();
    let api_keys: Vec<Value> = inner
        .api_keys
        .iter()
        .map(|k| json!({"org_id": k.org_id, "id": k.id}))
        .collect();
    let active_tokens = inner.tokens.keys().filter(|t| inner.token_valid(t)).count();
    let body = json!({ "links": links, "api_keys": api_keys, "active_tokens": active_tokens });
    drop(inner);
    reply(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_for_reads_the_template_key() {
        let mut c = Counters::default();
        c.requests.insert("POST /api/oauth/token".into(), 3);
        assert_eq!(c.requests_for("POST", "/api/oauth/token"), 3);
        assert_eq!(c.requests_for("GET", "/api/oauth/token"), 0);
        assert_eq!(c.total_requests(), 3);
    }
}
