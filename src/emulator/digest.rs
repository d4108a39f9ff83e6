//! HTTP Digest (RFC 7616, `qop=auth`) as Atlas's API keys use it: challenges with fresh
//! nonces, verification of the client's response (MD5 or SHA-256), nonce lifetime (`stale`)
//! and nc replay protection (see `state::NonceState`).
//!
//! It must never log or return the private key; the only secret-derived output is the 401.

use std::collections::HashMap;
use std::time::Instant;

use axum::response::Response;
use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use md5::Md5;
use sha2::{Digest as _, Sha256};

use super::response::{random_b64, ApiError};
use super::state::Shared;
use super::DigestAlgorithm;

/// The realm Atlas sends in its Digest challenge.
pub(crate) const REALM: &str = "MMS Public API";

/// What a Digest `Authorization` header is worth.
pub(crate) enum DigestVerdict {
    Ok,
    Stale,
    Bad,
}

/// Checks the parameters of `Authorization: Digest <params>` for this request.
pub(crate) fn verify(
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
pub(crate) fn challenge(shared: &Shared, stale: bool, unauthorized: bool) -> Response {
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
