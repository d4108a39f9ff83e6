//! Authentication as Atlas does it: the OAuth 2.0 client-credentials token endpoint and the
//! per-request check (Bearer token, or HTTP Digest via `digest.rs`).
//!
//! Choices: a missing `Authorization` gets a Digest challenge (counted in
//! `digest_challenges` only); a bad Digest response, a replayed nc or an unsupported scheme
//! gets a fresh challenge and also counts as `unauthorized`; an expired or unknown nonce
//! with an otherwise correct response gets a challenge with `stale=true` (not
//! `unauthorized`); a bad Bearer token gets 401 `UNAUTHORIZED` without a Digest challenge.
//! The client must authenticate to the token endpoint with HTTP Basic only.

use std::collections::HashMap;
use std::time::Duration;

use axum::response::Response;
use base64::Engine as _;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::StatusCode;
use serde_json::json;

use super::digest;
use super::response::{json_response, random_b64, ApiError, JSON};
use super::state::Shared;

/// `POST /api/oauth/token`. `short_secs`: a `ShortTokens` fault is active.
pub(crate) fn token_endpoint(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    short_secs: Option<u64>,
) -> Response {
    if let Some(refusal) = refuse_client(shared, headers) {
        return refusal;
    }
    let form_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| media_type(v) == "application/x-www-form-urlencoded")
        .unwrap_or(false);
    if !form_type {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let form = parse_form(body);
    match form.get("grant_type").map(String::as_str) {
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing grant_type",
            )
        }
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only grant_type=client_credentials is supported",
            )
        }
    }
    let token = random_b64(32);
    let lifetime = shared.config.token_lifetime;
    let valid_for = short_secs.map(Duration::from_secs).unwrap_or(lifetime);
    {
        let mut inner = shared.lock();
        if let Some(refusal) = super::limits::admit_token_request(&mut inner) {
            return refusal;
        }
        inner.issue_token(token.clone(), valid_for);
        inner.counters.tokens_issued += 1;
    }
    let mut resp = json_response(
        StatusCode::OK,
        JSON,
        &json!({"access_token": token, "expires_in": lifetime.as_secs(), "token_type": "Bearer"}),
    );
    let h = resp.headers_mut();
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    h.insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// `None` when `Authorization: Basic` carries the service account's credentials, else
/// the 401 `invalid_client` to send.
pub(crate) fn refuse_client(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let config = &shared.config;
    let client_ok = basic_credentials(headers).is_some_and(|(id, secret)| {
        (id == config.client_id && secret == config.client_secret)
            || super::service_accounts::accepts(shared, &id, &secret)
    });
    if client_ok {
        return None;
    }
    let mut resp = oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Invalid client credentials",
    );
    resp.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"MongoDB Atlas\""),
    );
    Some(resp)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        JSON,
        &json!({"error": error, "error_description": description}),
    )
}

/// `(client_id, client_secret)` from `Authorization: Basic ...` (form-decoded per RFC 6749).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

/// `application/x-www-form-urlencoded` body → map (last value wins).
pub(crate) fn parse_form(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

/// Decodes `+` and `%XX`; invalid escapes are kept as they are.
fn form_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                out.push(hex_value(bytes[i + 1]) * 16 + hex_value(bytes[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit
            .to_ascii_lowercase()
            .wrapping_sub(b'a')
            .wrapping_add(10),
    }
}

/// The media type without parameters, lowercase.
pub(crate) fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Checks `Authorization` on an Atlas route: `None` when accepted, else the 401 to send.
pub(crate) fn reject(
    shared: &Shared,
    method: &str,
    path: &str,
    path_and_query: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Some(digest::challenge(shared, false, false));
    };
    let Ok(value) = value.to_str() else {
        return Some(digest::challenge(shared, false, true));
    };
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        let mut inner = shared.lock();
        if inner.token_valid(rest.trim()) {
            return None;
        }
        inner.counters.unauthorized += 1;
        drop(inner);
        return Some(
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "The access token is invalid, expired or revoked.",
            )
            .into_response(),
        );
    }
    if !scheme.eq_ignore_ascii_case("digest") {
        return Some(digest::challenge(shared, false, true));
    }
    match digest::verify(shared, method, path, path_and_query, rest) {
        digest::DigestVerdict::Ok => None,
        digest::DigestVerdict::Stale => Some(digest::challenge(shared, true, false)),
        digest::DigestVerdict::Bad => Some(digest::challenge(shared, false, true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%20c%zz%4"), "a b c%zz%4");
        let form = parse_form(b"grant_type=client_credentials&x");
        assert_eq!(form["grant_type"], "client_credentials");
    }
}
