//! `AtlasError`: everything that can go wrong between the gateway and Atlas, with the
//! facts the error mapper needs (status, Atlas's `ApiError`, `Retry-After`, Atlas's
//! request id). It carries no secret and no raw body: at most a short, sanitized
//! excerpt of a body that was not an `ApiError`.
use std::time::Duration;

use super::models::ApiError;

/// An upstream failure.
#[derive(Debug, thiserror::Error)]
pub enum AtlasError {
    /// Atlas answered with a non-2xx status.
    #[error("Atlas answered HTTP {}", .0.status)]
    Api(Box<ApiFailure>),
    /// Atlas answered 2xx, but the body is not what the spec promises.
    #[error("Atlas sent a response the gateway could not read: {what}")]
    BadResponse {
        /// The 2xx status.
        status: u16,
        /// What was wrong with the body.
        what: String,
        /// Atlas's own request id, when it sent one.
        atlas_request_id: Option<String>,
    },
    /// No HTTP answer: connection refused, DNS, TLS, reset, or a body cut short.
    #[error("Atlas is unreachable: {detail}")]
    Unreachable {
        /// What failed, without secrets.
        detail: String,
        /// Whether the request may have reached Atlas.
        sent: bool,
    },
    /// The caller's deadline (or the gateway's upstream timeout) ran out.
    #[error("the deadline ran out before Atlas answered")]
    Timeout,
    /// The token endpoint refused the service-account credentials.
    #[error("Atlas refused the gateway's service-account credentials (HTTP {status})")]
    CredentialsRejected {
        /// The token endpoint's status.
        status: u16,
        /// Its error, without secrets.
        detail: String,
    },
    /// The service account holds Atlas's maximum of active tokens (100): the token
    /// endpoint answered 403 "Access Token limit reached". The credentials are fine.
    #[error("the Atlas service account has reached its active token limit")]
    TokenLimitReached {
        /// When to try again.
        retry_after: Duration,
    },
    /// The token endpoint is down or answered something unusable.
    #[error("the Atlas token endpoint is unavailable: {detail}")]
    TokenEndpointUnavailable {
        /// What failed, without secrets.
        detail: String,
    },
    /// The token endpoint rate-limited the gateway and no valid token is cached.
    #[error("the Atlas token endpoint rate-limited the gateway")]
    TokenEndpointRateLimited {
        /// `Retry-After`, when sent.
        retry_after: Option<Duration>,
    },
    /// Atlas rate-limited this (profile, org, operation) a moment ago (on this replica
    /// or, with a shared store, another): answered without calling Atlas.
    #[error("Atlas rate-limited this operation for this org; cooling down")]
    CoolingDown {
        /// What is left of Atlas's `Retry-After`.
        retry_after: Duration,
    },
    /// The gateway is stopping and has started revoking its Atlas tokens: no new token
    /// is fetched for this call.
    #[error("the gateway is shutting down; retry on another replica")]
    ShuttingDown,
}

/// A non-2xx answer from Atlas.
#[derive(Debug)]
pub struct ApiFailure {
    /// The HTTP status.
    pub status: u16,
    /// The parsed `ApiError`, when the body was one.
    pub api_error: Option<ApiError>,
    /// Why the body was not an `ApiError` (non-JSON, oversized, ...), when it was not.
    pub unreadable_body: Option<String>,
    /// `X-Error-Code` header, when Atlas sent one.
    pub error_code_header: Option<String>,
    /// `Retry-After`, when Atlas sent one.
    pub retry_after: Option<Duration>,
    /// Atlas's own request id, when it sent one.
    pub atlas_request_id: Option<String>,
}

impl ApiFailure {
    /// Atlas's errorCode from the body, else the `X-Error-Code` header.
    pub fn error_code(&self) -> Option<&str> {
        self.api_error
            .as_ref()
            .map(|e| e.error_code.as_str())
            .or(self.error_code_header.as_deref())
    }
}

impl AtlasError {
    /// Atlas's errorCode, when there is one (for logs and metrics).
    pub fn error_code(&self) -> Option<&str> {
        match self {
            AtlasError::Api(f) => f.error_code(),
            _ => None,
        }
    }

    /// Upstream HTTP status, when Atlas answered.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            AtlasError::Api(f) => Some(f.status),
            AtlasError::BadResponse { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A short excerpt of an unexpected body, safe to show: printable ASCII only, at most
/// 120 characters, so HTML pages and binary junk cannot flood messages or logs.
pub fn excerpt(body: &[u8]) -> String {
    // Most inputs (Atlas's request id header on every answer) are already short and
    // clean: printable ASCII without spaces comes out unchanged.
    if body.len() <= 120 && body.iter().all(u8::is_ascii_graphic) {
        return String::from_utf8_lossy(body).into_owned();
    }
    let text: String = String::from_utf8_lossy(&body[..body.len().min(512)])
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > 120 {
        format!("{}...", text.chars().take(120).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_short_and_printable() {
        let html = format!(
            "<html>\n\t<body>{}</body>\u{0}\u{7f}</html>",
            "x".repeat(1000)
        );
        let e = excerpt(html.as_bytes());
        assert!(e.len() <= 123, "{e}");
        assert!(e.starts_with("<html> <body>xxx"));
        assert_eq!(excerpt(b""), "");
        assert_eq!(excerpt(&[0xff, 0xfe, b'o', b'k']), "ok");
        let id = "5f1a0c2b-3d4e-5f6a-7b8c-9d0e1f2a3b4c";
        assert_eq!(
            excerpt(id.as_bytes()),
            id,
            "a clean header value is kept as is"
        );
        assert_eq!(excerpt(" a  b ".as_bytes()), "a b");
        assert_eq!(
            excerpt("x".repeat(121).as_bytes()).len(),
            123,
            "cut after 120"
        );
    }
}
