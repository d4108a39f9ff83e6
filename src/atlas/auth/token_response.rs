//! Reading the OAuth token endpoint's answer (RFC 6749 section 5): the access token and
//! its lifetime on 200, and what a refusal means otherwise. Whatever the body holds,
//! this never panics and never yields a lifetime that could overflow a clock: lifetimes
//! are clamped to [1 s, [`MAX_TOKEN_LIFETIME`]]. It never logs and never echoes a token.
use std::time::Duration;

use serde::Deserialize;

use crate::atlas::error::excerpt;

/// Longest lifetime believed (Atlas tokens live one hour). A longer `expires_in` only
/// makes the gateway refresh earlier than it must, which is harmless.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// A usable token from a 200 answer.
#[derive(Debug, PartialEq)]
pub struct Issued {
    /// The bearer token.
    pub access_token: String,
    /// How long it is valid (`expires_in`, clamped).
    pub lifetime: Duration,
}

/// Why the token endpoint refused (a 4xx with an RFC 6749 error body, or none).
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// The service account already holds Atlas's maximum of active tokens.
    TokenLimitReached,
    /// Anything else: the credentials (or the request) were refused.
    Credentials {
        /// The RFC 6749 `error` code (`invalid_client`, ...), or a description.
        error: String,
    },
}

/// Parses a 200 body: `{"access_token": "...", "expires_in": <number>}`.
pub fn parse_issued(body: &[u8]) -> Result<Issued, &'static str> {
    #[derive(Deserialize)]
    struct Body {
        access_token: Option<String>,
        expires_in: Option<serde_json::Value>,
    }
    let parsed: Body = serde_json::from_slice(body)
        .map_err(|_| "the token endpoint answered 200 with a body that is not a JSON object")?;
    let access_token = parsed
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or("the token endpoint answered 200 without an access_token")?;
    // RFC 6750 b64token characters are visible ASCII; anything else cannot go in a header.
    if !access_token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "the token endpoint answered 200 with an access_token that is not a bearer token",
        );
    }
    Ok(Issued {
        access_token,
        lifetime: lifetime(parsed.expires_in.as_ref()),
    })
}

/// `expires_in` as a lifetime: a number of seconds (integer or not, even as a string),
/// clamped to [1 s, one hour]; missing or unreadable means one hour.
fn lifetime(expires_in: Option<&serde_json::Value>) -> Duration {
    let secs = match expires_in {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match secs.filter(|s| s.is_finite()) {
        Some(s) => Duration::from_secs_f64(s.clamp(1.0, MAX_TOKEN_LIFETIME.as_secs_f64())),
        None => MAX_TOKEN_LIFETIME,
    }
}

/// Classifies a refusal body. Atlas answers 403 `access_denied` with the description
/// "Access Token limit reached. ..." when the service account has 100 active tokens.
pub fn parse_refusal(status: u16, body: &[u8]) -> Refusal {
    #[derive(Deserialize)]
    struct OAuthError {
        error: Option<String>,
        error_description: Option<String>,
    }
    let parsed = serde_json::from_slice::<OAuthError>(body).ok();
    let description = parsed
        .as_ref()
        .and_then(|e| e.error_description.as_deref())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if status == 403 && description.contains("token limit") {
        return Refusal::TokenLimitReached;
    }
    let error = match parsed.and_then(|e| e.error) {
        Some(e) => excerpt(e.as_bytes()),
        None => "the token endpoint refused the client credentials".into(),
    };
    Refusal::Credentials { error }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_clamped_and_never_overflow() {
        let life = |json: &str| parse_issued(json.as_bytes()).map(|i| i.lifetime);
        assert_eq!(
            life(r#"{"access_token":"t","expires_in":120}"#),
            Ok(Duration::from_secs(120))
        );
        for huge in ["18446744073709551615", "1e300", "\"99999999999999999999\""] {
            let json = format!(r#"{{"access_token":"t","expires_in":{huge}}}"#);
            assert_eq!(life(&json), Ok(MAX_TOKEN_LIFETIME), "{huge}");
        }
        for tiny in ["0", "-5", "0.001", "\"-1\""] {
            let json = format!(r#"{{"access_token":"t","expires_in":{tiny}}}"#);
            assert_eq!(life(&json), Ok(Duration::from_secs(1)), "{tiny}");
        }
        for odd in ["null", "true", "\"soon\"", "[]"] {
            let json = format!(r#"{{"access_token":"t","expires_in":{odd}}}"#);
            assert_eq!(life(&json), Ok(MAX_TOKEN_LIFETIME), "{odd}");
        }
    }

    #[test]
    fn unusable_tokens_are_refused() {
        for body in [
            "",
            "[]",
            "{}",
            r#"{"access_token":""}"#,
            r#"{"access_token":"a b"}"#,
            r#"{"access_token":"t\n"}"#,
            r#"{"access_token":7}"#,
        ] {
            assert!(parse_issued(body.as_bytes()).is_err(), "{body}");
        }
    }

    #[test]
    fn the_token_cap_is_not_a_credentials_problem() {
        let cap = br#"{"error":"access_denied","error_description":"Access Token limit reached. Please use the existing Access Tokens or create a new Service Account."}"#;
        assert_eq!(parse_refusal(403, cap), Refusal::TokenLimitReached);
        assert_eq!(
            parse_refusal(401, br#"{"error":"invalid_client"}"#),
            Refusal::Credentials {
                error: "invalid_client".into()
            }
        );
        assert!(matches!(
            parse_refusal(403, b"<html>"),
            Refusal::Credentials { .. }
        ));
    }
}
