//! Authentication as Atlas does it: the OAuth 2.0 client-credentials token endpoint, Bearer
//! token checks, and HTTP Digest (RFC 7616, `qop=auth`) with nonce lifetime and nc replay
//! protection.
//!
//! Choices: a missing `Authorization` gets a Digest challenge (counted in
//! `digest_challenges` only); a bad Digest response, a replayed nc or an unsupported scheme
//! gets a fresh challenge and also counts as `unauthorized`; an expired or unknown nonce
//! with an otherwise correct response gets a challenge with `stale=true` (not
//! `unauthorized`); a bad Bearer token gets 401 `UNAUTHORIZED` without a Digest challenge.
//! The client must authenticate to the token endpoint with HTTP Basic only.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::response::Response;
use base64::Engine as _;
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::StatusCode;
use md5::Md5;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::response::{json_response, random_b64, ApiError, JSON};
use super::state::Shared;
use super::DigestAlgorithm;

/// The realm Atlas sends in its Digest challenge.
pub(crate) const REALM: &str = "MMS Public API";

/// `POST /api/oauth/token`. `short_secs`: a `ShortTokens` fault is active.
pub(crate) fn token_endpoint(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    short_secs: Option<u64>,
) -> Response {
    let config = &shared.config;
    let client_ok = basic_credentials(headers)
        .is_some_and(|(id, secret)| id == config.client_id && secret == config.client_secret);
    if !client_ok {
        let mut resp = oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client credentials",
        );
        resp.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"MongoDB Atlas\""),
        );
        return resp;
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
    let lifetime = config.token_lifetime;
    let valid_for = short_secs.map(Duration::from_secs).unwrap_or(lifetime);
    {
        let mut inner = shared.lock();
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
fn parse_form(body: &[u8]) -> HashMap<String, String> {
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
        return Some(challenge(shared, false, false));
    };
    let Ok(value) = value.to_str() else {
        return Some(challenge(shared, false, true));
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
        return Some(challenge(shared, false, true));
    }
    match verify_digest(shared, method, path, path_and_query, rest) {
        DigestVerdict::Ok => None,
        DigestVerdict::Stale => Some(challenge(shared, true, false)),
        DigestVerdict::Bad => Some(challenge(shared, false, true)),
    }
}

enum DigestVerdict {
    Ok,
    Stale,
    Bad,
}

fn verify_digest(
    shared: &Shared,
    method: &str,
    path: &str,
    path_and_query: &str,
    params: &str,
) -> DigestVerdict {
    let config = &shared.config;
    let p = parse_params(params);
    let get = |k: &str| p.get(k).map(String::as_str);
    let (Some(username), Some(realm), Some(nonce), Some(uri), Some(response)) = (
        get("username"),
        get("realm"),
        get("nonce"),
        get("uri"),
        get("response"),
    ) else {
        return DigestVerdict::Bad;
    };
    let (Some("auth"), Some(nc_text), Some(cnonce)) = (get("qop"), get("nc"), get("cnonce")) else {
        return DigestVerdict::Bad;
    };
    let Ok(nc) = u32::from_str_radix(nc_text, 16) else {
        return DigestVerdict::Bad;
    };
    let expected_algorithm = algorithm_name(config.digest_algorithm);
    let algorithm_ok = match get("algorithm") {
        Some(a) => a.eq_ignore_ascii_case(expected_algorithm),
        None => config.digest_algorithm == DigestAlgorithm::Md5,
    };
    if !algorithm_ok
        || username != config.public_key
        || realm != REALM
        || (uri != path_and_query && uri != path)
    {
        return DigestVerdict::Bad;
    }
    let h = |s: String| hash(config.digest_algorithm, &s);
    let ha1 = h(format!("{username}:{realm}:{}", config.private_key));
    let ha2 = h(format!("{method}:{uri}"));
    let expected = h(format!("{ha1}:{nonce}:{nc_text}:{cnonce}:auth:{ha2}"));
    let hash_ok = expected.eq_ignore_ascii_case(response);

    let mut inner = shared.lock();
    let fresh = inner
        .nonces
        .get(nonce)
        .is_some_and(|n| Instant::now().duration_since(n.issued) < config.nonce_lifetime);
    if !fresh {
        inner.nonces.remove(nonce);
        return if hash_ok {
            DigestVerdict::Stale
        } else {
            DigestVerdict::Bad
        };
    }
    if !hash_ok {
        return DigestVerdict::Bad;
    }
    let accepted = inner
        .nonces
        .get_mut(nonce)
        .is_some_and(|state| state.accept_nc(nc));
    if accepted {
        DigestVerdict::Ok
    } else {
        DigestVerdict::Bad
    }
}

/// A 401 with a fresh nonce in `WWW-Authenticate: Digest ...`.
fn challenge(shared: &Shared, stale: bool, unauthorized: bool) -> Response {
    let nonce = random_b64(24);
    {
        let mut inner = shared.lock();
        inner.issue_nonce(nonce.clone(), shared.config.nonce_lifetime);
        inner.counters.digest_challenges += 1;
        if unauthorized {
            inner.counters.unauthorized += 1;
        }
    }
    let header = format!(
        "Digest realm=\"{REALM}\", domain=\"\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\", stale={stale}",
        algorithm_name(shared.config.digest_algorithm)
    );
    let mut resp = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "You are not authorized for this resource.",
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&header) {
        resp.headers_mut()
            .insert(HeaderName::from_static("www-authenticate"), value);
    }
    resp
}

fn algorithm_name(algorithm: DigestAlgorithm) -> &'static str {
    match algorithm {
        DigestAlgorithm::Md5 => "MD5",
        DigestAlgorithm::Sha256 => "SHA-256",
    }
}

/// Lowercase hex digest of `input`.
fn hash(algorithm: DigestAlgorithm, input: &str) -> String {
    let bytes: Vec<u8> = match algorithm {
        DigestAlgorithm::Md5 => Md5::digest(input.as_bytes()).to_vec(),
        DigestAlgorithm::Sha256 => Sha256::digest(input.as_bytes()).to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `k=v, k="quoted \" value", ...` → map with lowercase keys. Never fails: junk is skipped.
fn parse_params(input: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.peek().is_none() && key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
                value = value.trim().to_string();
            }
        }
        let key = key.trim().to_ascii_lowercase();
        if !key.is_empty() {
            out.insert(key, value);
        }
        if chars.peek().is_none() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_parse_quoted_and_bare_values() {
        let p = parse_params(
            r#"username="demopubk", realm="MMS Public API", nc=00000001, qop=auth, cnonce="a\"b""#,
        );
        assert_eq!(p["username"], "demopubk");
        assert_eq!(p["realm"], "MMS Public API");
        assert_eq!(p["nc"], "00000001");
        assert_eq!(p["qop"], "auth");
        assert_eq!(p["cnonce"], "a\"b");
    }

    #[test]
    fn params_parser_survives_junk() {
        for junk in ["", ",,,", "=", "\"", "a=\"unterminated", "a=b=c", "  , x"] {
            let _ = parse_params(junk);
        }
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%20c%zz%4"), "a b c%zz%4");
        let form = parse_form(b"grant_type=client_credentials&x");
        assert_eq!(form["grant_type"], "client_credentials");
    }

    #[test]
    fn md5_matches_rfc2617_example() {
        // RFC 2617 section 3.5: HA1 of Mufasa:testrealm@host.com:Circle Of Life.
        assert_eq!(
            hash(
                DigestAlgorithm::Md5,
                "Mufasa:testrealm@host.com:Circle Of Life"
            ),
            "939e7578ed9e3c518a452acee763bce9"
        );
    }
}
