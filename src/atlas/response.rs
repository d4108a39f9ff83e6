//! Reading Atlas's answers: the capped body read, the response headers the gateway
//! uses (`Retry-After`, Atlas's request id, `X-Error-Code`, Digest challenges), parsing
//! 2xx bodies, and short, secret-free descriptions of what went wrong.
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderValue};

use super::{
    error::{excerpt, ApiFailure, AtlasError},
    models,
    retry::parse_retry_after,
};

/// Headers Atlas (or a proxy in front of it) may use for its own request id.
const ATLAS_REQUEST_ID_HEADERS: [&str; 2] = ["x-request-id", "x-correlation-id"];

/// A successful answer.
pub struct Answer {
    /// The 2xx status.
    pub status: u16,
    /// The body, within the size cap.
    pub body: Bytes,
    /// Atlas's own request id, when it sent one (see [`AtlasRequestId`]).
    pub(super) atlas_request_id: AtlasRequestId,
}

/// Atlas's request id header as it came: made into text (an excerpt) only when an error
/// carries it, not on every answer.
pub(super) struct AtlasRequestId(Option<HeaderValue>);

impl AtlasRequestId {
    /// The first of the request id headers with something printable in it.
    fn read(h: &HeaderMap) -> Self {
        let printable = |v: &&HeaderValue| {
            v.to_str()
                .is_ok_and(|s| s.bytes().any(|b| b.is_ascii_graphic()))
        };
        Self(
            ATLAS_REQUEST_ID_HEADERS
                .iter()
                .find_map(|n| h.get(*n).filter(printable))
                .cloned(),
        )
    }

    /// The id, safe to show.
    pub fn text(&self) -> Option<String> {
        self.0.as_ref().map(|v| excerpt(v.as_bytes()))
    }
}

/// Why a response body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the response body exceeds the {0}-byte limit")]
    /// The body is larger than the configured cap (bytes).
    TooLarge(usize),
    #[error("the connection failed while reading the response body")]
    /// The connection broke mid-body.
    Interrupted,
}

/// Reads a response body, refusing more than `cap` bytes (announced or actual).
pub async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Bytes, BodyError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge(cap));
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|_| BodyError::Interrupted)? {
        if buf.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge(cap));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A short, secret-free description of a transport failure (no URL, no headers).
pub fn describe_transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the connection failed while reading the response"
    } else {
        "the connection failed"
    };
    // The innermost cause (e.g. "Connection refused (os error 111)") names no secret.
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    if std::ptr::eq(source as *const _ as *const u8, e as *const _ as *const u8) {
        kind.to_string()
    } else {
        format!("{kind}: {}", excerpt(source.to_string().as_bytes()))
    }
}

/// The response headers the gateway uses.
pub(super) struct HeaderFacts {
    pub retry_after: Option<Duration>,
    pub request_id: AtlasRequestId,
    pub error_code: Option<String>,
    pub digest_challenge: Option<String>,
}

impl HeaderFacts {
    pub fn read(h: &HeaderMap) -> Self {
        let text = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| excerpt(s.as_bytes()))
                .filter(|s| !s.is_empty())
        };
        Self {
            retry_after: h
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
            request_id: AtlasRequestId::read(h),
            error_code: text("x-error-code"),
            digest_challenge: h
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|v| v.trim_start().starts_with("Digest"))
                .map(str::to_string),
        }
    }

    pub fn failure(
        self,
        status: u16,
        api_error: Option<models::ApiError>,
        unreadable_body: Option<String>,
    ) -> ApiFailure {
        ApiFailure {
            status,
            api_error,
            unreadable_body,
            error_code_header: self.error_code,
            retry_after: self.retry_after,
            atlas_request_id: self.request_id.text(),
        }
    }
}

/// A bounded metric label for an HTTP status.
#[allow(clippy::match_overlapping_arm)] // common statuses first, then the class
pub(super) fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        409 => "409",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Why a non-2xx body is not an `ApiError`, with a short sanitized excerpt.
pub(super) fn unreadable_reason(body: &[u8]) -> String {
    if body.is_empty() {
        "the body is empty".into()
    } else if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        format!("the JSON body is not an Atlas ApiError: {}", excerpt(body))
    } else {
        format!("the body is not JSON: {}", excerpt(body))
    }
}

/// Parses a 2xx body, or explains what was expected.
pub(super) fn parse_success<T: serde::de::DeserializeOwned>(
    answer: &Answer,
    expected: &str,
) -> Result<T, AtlasError> {
    serde_json::from_slice(&answer.body).map_err(|_| AtlasError::BadResponse {
        status: answer.status,
        what: format!("expected {expected}, got {}", body_kind(&answer.body)),
        atlas_request_id: answer.atlas_request_id.text(),
    })
}

fn body_kind(body: &[u8]) -> &'static str {
    if body.is_empty() {
        "an empty body"
    } else if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        "JSON of another shape"
    } else {
        "a body that is not JSON"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atlas_request_id_is_the_first_printable_header_as_an_excerpt() {
        let id = |headers: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (name, value) in headers {
                h.append(*name, HeaderValue::from_str(value).unwrap());
            }
            AtlasRequestId::read(&h).text()
        };
        assert_eq!(id(&[]), None);
        assert_eq!(id(&[("x-request-id", "abc-1")]).as_deref(), Some("abc-1"));
        assert_eq!(
            id(&[("x-request-id", "  "), ("x-correlation-id", "c-2")]).as_deref(),
            Some("c-2"),
            "a blank id is skipped"
        );
        assert_eq!(
            id(&[("x-correlation-id", " a  b ")]).as_deref(),
            Some("a b")
        );
        let long = "x".repeat(200);
        assert_eq!(id(&[("x-request-id", &long)]).unwrap().len(), 123);
    }
}
