//! Response building blocks shared by the emulator's handlers: Atlas `ApiError` bodies, the
//! versioned media type, JSON responses, random identifiers and the headers every Atlas
//! response carries.
//!
//! Nothing here decides *which* response to send; it only shapes them like Atlas does.

use axum::body::Body;
use axum::response::Response;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::StatusCode;
use serde_json::{json, Value};

/// Value of the `Ratelimit-Limit` header, per one-minute window.
pub(crate) const RATE_LIMIT: u32 = 500;

/// The only versioned media type of the emulated operations.
pub(crate) const VERSIONED: &str = "application/vnd.atlas.2023-01-01+json";
/// `Content-Type` of successful Atlas responses.
pub(crate) const VERSIONED_UTF8: &str = "application/vnd.atlas.2023-01-01+json;charset=utf-8";
/// `Content-Type` of error responses.
pub(crate) const JSON: &str = "application/json";

/// An Atlas `ApiError` body under construction.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    status: StatusCode,
    error_code: String,
    detail: Option<String>,
    parameters: Value,
    fields: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, error_code: &str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error_code: error_code.to_string(),
            detail: Some(detail.into()),
            parameters: json!([]),
            fields: Vec::new(),
        }
    }

    /// From fault parameters: any status number (invalid ones become 500).
    pub fn from_parts(
        status: u16,
        error_code: &str,
        detail: Option<String>,
        parameters: Option<Value>,
        fields: Vec<(String, String)>,
    ) -> ApiError {
        let status = status_or_500(status);
        ApiError {
            status,
            error_code: error_code.to_string(),
            detail,
            parameters: parameters.unwrap_or_else(|| json!([])),
            fields,
        }
    }

    pub fn parameters(mut self, parameters: Value) -> ApiError {
        self.parameters = parameters;
        self
    }

    /// Adds one `badRequestDetail.fields` entry.
    pub fn field(mut self, field: &str, description: impl Into<String>) -> ApiError {
        self.fields.push((field.to_string(), description.into()));
        self
    }

    /// The JSON body (keys in the order Atlas sends them: alphabetical).
    pub fn body(&self) -> Value {
        let reason = reason_phrase(self.status);
        let mut body = json!({
            "detail": self.detail,
            "error": self.status.as_u16(),
            "errorCode": self.error_code,
            "parameters": self.parameters,
            "reason": reason,
        });
        if !self.fields.is_empty() {
            let fields: Vec<Value> = self
                .fields
                .iter()
                .map(|(field, description)| json!({"field": field, "description": description}))
                .collect();
            body["badRequestDetail"] = json!({ "fields": fields });
        }
        body
    }

    /// `application/json` response with `X-Error-Code`.
    pub fn into_response(self) -> Response {
        let body = self.body();
        let mut resp = json_response(self.status, JSON, &body);
        if let Ok(code) = HeaderValue::from_str(&self.error_code) {
            resp.headers_mut()
                .insert(HeaderName::from_static("x-error-code"), code);
        }
        resp
    }
}

/// A valid status from any number; anything outside 100..=999 becomes 500.
pub(crate) fn status_or_500(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The canonical reason phrase ("Not Found"), or "Unknown" for unregistered codes.
pub(crate) fn reason_phrase(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Unknown")
}

/// A response with `body` serialised and the given content type.
pub(crate) fn json_response(status: StatusCode, content_type: &str, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    raw_response(status, content_type, Body::from(bytes))
}

/// A successful Atlas response (versioned content type).
pub(crate) fn versioned_json(status: StatusCode, body: &Value) -> Response {
    json_response(status, VERSIONED_UTF8, body)
}

/// Any body with any content type (an invalid content type is dropped, never a panic).
pub(crate) fn raw_response(status: StatusCode, content_type: &str, body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(CONTENT_TYPE, value);
    }
    resp
}

/// Adds the headers every Atlas response carries.
pub(crate) fn stamp(resp: &mut Response, rate_remaining: u32) {
    let headers = resp.headers_mut();
    headers.insert(
        HeaderName::from_static("ratelimit-limit"),
        HeaderValue::from(RATE_LIMIT),
    );
    headers.insert(
        HeaderName::from_static("ratelimit-remaining"),
        HeaderValue::from(rate_remaining),
    );
    if let Ok(id) = HeaderValue::from_str(&random_hex(16)) {
        headers.insert(HeaderName::from_static("x-request-id"), id);
    }
    mark_emulated(resp);
}

/// `X-Atlas-Emulator: true`: says the response did not come from the real Atlas.
pub(crate) fn mark_emulated(resp: &mut Response) {
    resp.headers_mut().insert(
        HeaderName::from_static("x-atlas-emulator"),
        HeaderValue::from_static("true"),
    );
}

/// `2 * bytes` lowercase hex characters.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fastrand::fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// `bytes` random bytes, URL-safe base64 without padding.
pub(crate) fn random_b64(bytes: usize) -> String {
    use base64::Engine as _;
    let mut buf = vec![0u8; bytes];
    fastrand::fill(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_body_has_atlas_shape() {
        let body = ApiError::new(StatusCode::BAD_REQUEST, "INVALID_ATTRIBUTE", "bad")
            .field("desc", "too long")
            .body();
        assert_eq!(body["error"], 400);
        assert_eq!(body["errorCode"], "INVALID_ATTRIBUTE");
        assert_eq!(body["reason"], "Bad Request");
        assert_eq!(body["parameters"], json!([]));
        assert_eq!(body["badRequestDetail"]["fields"][0]["field"], "desc");
    }

    #[test]
    fn odd_status_numbers_do_not_panic() {
        assert_eq!(status_or_500(7), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(reason_phrase(status_or_500(599)), "Unknown");
    }

    #[test]
    fn random_ids_have_the_requested_size() {
        assert_eq!(random_hex(12).len(), 24);
        assert!(random_hex(12).chars().all(|c| c.is_ascii_hexdigit()));
    }
}
