//! The emulator's control API (`/__emulator/...`, not part of Atlas), which
//! lets tests in any language read counters, inject faults, revoke tokens and reset state.
//!
//! Routes (all JSON, `application/json`):
//! - `GET /__emulator/counters` → [`Counters`](super::Counters)
//! - `GET /__emulator/faults` → `{"faults": [Fault, ...]}`
//! - `POST /__emulator/faults` with one `Fault` or an array of them → `{"active_faults": n}`
//! - `DELETE /__emulator/faults` → `{"active_faults": 0}`
//! - `POST /__emulator/tokens/revoke` → `{"revoked": n}`
//! - `POST /__emulator/reset` → `{"reset": true}` (counters, faults, tokens, nonces, links,
//!   keys; limits stay)
//! - `GET /__emulator/limits` → [`Limits`]; `POST` one to replace them (absent = unlimited)
//! - `GET /__emulator/state` → `{"links": [orgId], "api_keys": [{"org_id","id","desc","access_list"}], "active_tokens": n}`
//!
//! Control requests are not counted and never pass through fault rules.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::faults::Fault;
use super::limits::Limits;
use super::response::{json_response, mark_emulated, JSON};
use super::state::Shared;

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
        .route("/__emulator/limits", get(get_limits).post(set_limits))
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

async fn get_limits(State(shared): State<Arc<Shared>>) -> Response {
    let limits = shared.lock().limits;
    reply(StatusCode::OK, json!(limits))
}

/// Replaces the limits: fields left out (or null) mean unlimited.
async fn set_limits(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Limits>(&body) {
        Ok(limits) => {
            shared.lock().limits = limits;
            reply(StatusCode::OK, json!(limits))
        }
        Err(e) => reply(
            StatusCode::BAD_REQUEST,
            json!({ "error": format!("invalid limits: {e}") }),
        ),
    }
}

async fn reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().reset();
    reply(StatusCode::OK, json!({ "reset": true }))
}

async fn state(State(shared): State<Arc<Shared>>) -> Response {
    reply(StatusCode::OK, snapshot(&shared))
}

/// The body of `GET /__emulator/state`.
pub(crate) fn snapshot(shared: &Shared) -> Value {
    let inner = shared.lock();
    let mut links: Vec<&String> = inner.links.iter().collect();
    links.sort();
    let api_keys: Vec<Value> = inner
        .api_keys
        .iter()
        .map(|k| {
            let access_list: Vec<&str> = k
                .access_list
                .iter()
                .map(|e| e.cidr_block.as_str())
                .collect();
            json!({"org_id": k.org_id, "id": k.id, "desc": k.desc, "access_list": access_list})
        })
        .collect();
    let active_tokens = inner.active_tokens();
    json!({ "links": links, "api_keys": api_keys, "active_tokens": active_tokens })
}
