//! Atlas's service-account limits, as the emulator models them (see
//! `shared/notes/atlas-fleet-limits.md`): token requests per minute per client (429
//! `RATE_LIMITED`, Atlas's body, no `Retry-After`: the real one may send none), active
//! tokens per client (403 `access_denied` "Access Token limit reached..."), and the RFC
//! 7009 revocation endpoint `POST /api/oauth/revoke`. Both limits are off unless set
//! (CLI `--token-rate-limit` / `--max-active-tokens`, or `POST /__emulator/limits`).
//!
//! The emulator has one service account, so "per client" is the whole emulator.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use axum::response::Response;
use http::header::HeaderMap;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::response::{json_response, JSON};
use super::state::{Inner, Shared};

const WINDOW: Duration = Duration::from_secs(60);

/// The limits in force (`None`: unlimited).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Token requests served per minute; more answer 429 `RATE_LIMITED`.
    pub token_requests_per_minute: Option<u32>,
    /// Unexpired, unrevoked tokens at once; one more answers 403 `access_denied`.
    pub max_active_tokens: Option<u32>,
}

/// Sliding one-minute window of served token requests.
#[derive(Default)]
pub(crate) struct TokenWindow(VecDeque<Instant>);

/// `None` when a token may be issued now (and counts the request), else the refusal.
pub(crate) fn admit_token_request(inner: &mut Inner) -> Option<Response> {
    let limits = inner.limits;
    if let Some(per_minute) = limits.token_requests_per_minute {
        let now = Instant::now();
        let window = &mut inner.token_window.0;
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            window.pop_front();
        }
        if window.len() >= per_minute as usize {
            inner.counters.token_rate_limited += 1;
            return Some(rate_limited(per_minute));
        }
        window.push_back(now);
    }
    if let Some(max) = limits.max_active_tokens {
        if inner.active_tokens() >= max as usize {
            inner.counters.token_limit_reached += 1;
            return Some(json_response(
                StatusCode::FORBIDDEN,
                JSON,
                &json!({
                    "error": "access_denied",
                    "error_description": "Access Token limit reached. Please use the existing Access Tokens or create a new Service Account."
                }),
            ));
        }
    }
    None
}

/// Atlas's own 429 body for the token endpoint.
fn rate_limited(per_minute: u32) -> Response {
    json_response(
        StatusCode::TOO_MANY_REQUESTS,
        JSON,
        &json!({
            "detail": format!("Resource /api/oauth/token is limited to {per_minute} requests every 1 minutes."),
            "error": 429,
            "errorCode": "RATE_LIMITED",
            "parameters": ["/api/oauth/token", per_minute, 1],
            "reason": "Too Many Requests"
        }),
    )
}

/// `POST /api/oauth/revoke` (RFC 7009): HTTP Basic client auth, form body
/// `token=...&token_type_hint=access_token`; 200 whether or not the token was live.
pub(crate) fn revoke_endpoint(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    if let Some(refusal) = super::auth::refuse_client(shared, headers) {
        return refusal;
    }
    let form = super::auth::parse_form(body);
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            JSON,
            &json!({"error": "invalid_request", "error_description": "Missing token"}),
        );
    };
    let mut inner = shared.lock();
    inner.counters.revoke_requests += 1;
    if inner.tokens.remove(token).is_some() {
        inner.counters.tokens_revoked += 1;
    }
    drop(inner);
    json_response(StatusCode::OK, JSON, &json!({}))
}
