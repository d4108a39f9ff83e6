//! Fault rules: what a test asks the emulator to do instead of (or before) answering
//! normally, and how each rule turns into a response.
//!
//! Rules are checked before normal handling, in insertion order; the first rule whose route
//! matches and whose remaining `times` is above zero applies (and is decremented, then
//! dropped when it reaches zero). Only that one rule applies to a request.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::response::{raw_response, status_or_500, ApiError, JSON, VERSIONED_UTF8};

/// Largest body an `Oversized` fault sends (larger requests are capped to this).
pub(crate) const MAX_OVERSIZED: usize = 64 * 1024 * 1024;

/// Which endpoint a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `POST /api/oauth/token`.
    Token,
    /// `POST /api/atlas/v2/orgs/{orgId}/liveMigrations/linkTokens`.
    CreateLinkToken,
    /// `DELETE /api/atlas/v2/orgs/{orgId}/liveMigrations/linkTokens`.
    DeleteLinkToken,
    /// `POST /api/atlas/v2/orgs/{orgId}/apiKeys`.
    CreateApiKey,
    /// `GET /api/atlas/v2/orgs/{orgId}/apiKeys`.
    ListApiKeys,
    /// `GET /api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}`.
    GetApiKey,
    /// `PATCH /api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}`.
    UpdateApiKey,
    /// `DELETE /api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}`.
    DeleteApiKey,
    /// `POST /api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}/accessList`.
    CreateApiKeyAccessList,
    /// `GET /api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}/accessList`.
    ListApiKeyAccessList,
    /// `POST /api/atlas/v2/orgs/{orgId}/serviceAccounts`.
    CreateServiceAccount,
    /// `GET /api/atlas/v2/orgs/{orgId}/serviceAccounts`.
    ListServiceAccounts,
    /// `GET /api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}`.
    GetServiceAccount,
    /// `DELETE /api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}`.
    DeleteServiceAccount,
    /// `POST /api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}/secrets`.
    CreateServiceAccountSecret,
    /// `DELETE /api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}/secrets/{secretId}`.
    DeleteServiceAccountSecret,
    /// `POST /api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}/accessList`.
    CreateServiceAccountAccessList,
    /// `GET /api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}/accessList`.
    ListServiceAccountAccessList,
    /// Every request except the control API.
    Any,
}

/// One fault rule.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fault {
    /// Which requests it applies to.
    pub route: Route,
    /// Apply to the next N matching requests; `None`: until cleared.
    #[serde(default)]
    pub times: Option<u32>,
    /// What to do.
    pub action: FaultAction,
}

impl Fault {
    /// A rule applying to every matching request until cleared.
    pub fn new(route: Route, action: FaultAction) -> Fault {
        Fault {
            route,
            times: None,
            action,
        }
    }

    /// A rule applying to the next matching request only.
    pub fn once(route: Route, action: FaultAction) -> Fault {
        Fault::new(route, action).limit(1)
    }

    /// Limits the rule to the next `n` matching requests.
    pub fn limit(mut self, n: u32) -> Fault {
        self.times = Some(n);
        self
    }
}

/// What a fault rule does.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// An Atlas ApiError body: `{"detail","error","errorCode","parameters","reason"[,
    /// "badRequestDetail"]}`, content-type `application/json`.
    Error {
        /// HTTP status.
        status: u16,
        /// Atlas `errorCode`.
        error_code: String,
        #[serde(default)]
        /// `detail` text (a default per status if absent).
        detail: Option<String>,
        #[serde(default)]
        /// `Retry-After` header value.
        retry_after: Option<String>,
        #[serde(default)]
        /// `parameters` of the body.
        parameters: Option<serde_json::Value>,
        #[serde(default)]
        /// `badRequestDetail.fields` as (field, description).
        bad_request_fields: Vec<(String, String)>,
    },
    /// Wait, then handle the request normally.
    Latency {
        /// How long to wait.
        millis: u64,
    },
    /// An HTML page (like a load balancer's 502), content-type `text/html`.
    Html {
        /// HTTP status.
        status: u16,
    },
    /// A valid status (e.g. 200/201) whose JSON body is cut in the middle.
    Truncated {
        /// HTTP status.
        status: u16,
    },
    /// A valid status with the first half of the normal body, then nothing: the
    /// connection stays open and the rest never comes (a stalled upstream).
    StalledBody {
        /// HTTP status.
        status: u16,
    },
    /// Any raw body and content type.
    Raw {
        /// HTTP status.
        status: u16,
        /// `Content-Type` header.
        content_type: String,
        /// Body.
        body: String,
    },
    /// A body of `bytes` bytes (valid JSON prefix then padding), capped at 64 MiB.
    Oversized {
        /// HTTP status.
        status: u16,
        /// Body size in bytes.
        bytes: usize,
    },
    /// Drop the connection without a complete response.
    Reset,
    /// Token endpoint only: issued tokens stop working after `actual_secs` while
    /// `expires_in` still advertises the configured lifetime.
    ShortTokens {
        /// The lifetime tokens really have.
        actual_secs: u64,
    },
}

impl FaultAction {
    /// An `ApiError` with this status and errorCode, default detail, no `Retry-After`.
    pub fn error(status: u16, error_code: &str) -> FaultAction {
        FaultAction::Error {
            status,
            error_code: error_code.to_string(),
            detail: None,
            retry_after: None,
            parameters: None,
            bad_request_fields: Vec::new(),
        }
    }

    /// An `ApiError` with a `Retry-After` header (seconds or an HTTP date).
    pub fn error_with_retry_after(status: u16, error_code: &str, retry_after: &str) -> FaultAction {
        match FaultAction::error(status, error_code) {
            FaultAction::Error {
                status,
                error_code,
                detail,
                parameters,
                bad_request_fields,
                ..
            } => FaultAction::Error {
                status,
                error_code,
                detail,
                retry_after: Some(retry_after.to_string()),
                parameters,
                bad_request_fields,
            },
            other => other,
        }
    }
}

/// Finds the first rule for `route` (`None`: a path that is none of the endpoints),
/// decrements its budget and returns its action.
pub(crate) fn take_matching(faults: &mut Vec<Fault>, route: Option<Route>) -> Option<FaultAction> {
    faults.retain(|f| f.times != Some(0));
    let index = faults
        .iter()
        .position(|f| f.route == Route::Any || Some(f.route) == route)?;
    let action = faults[index].action.clone();
    if let Some(times) = faults[index].times.as_mut() {
        *times -= 1;
        if *times == 0 {
            faults.remove(index);
        }
    }
    Some(action)
}

/// What handling does after a fault was applied.
pub(crate) enum Outcome {
    /// Send this instead of handling the request.
    Respond(Response),
    /// Handle normally; on the token endpoint, tokens live `short_token_secs` if set.
    Continue { short_token_secs: Option<u64> },
}

/// Turns an action into an outcome (sleeps for `Latency`).
pub(crate) async fn apply(action: FaultAction, route: Option<Route>) -> Outcome {
    match action {
        FaultAction::Error {
            status,
            error_code,
            detail,
            retry_after,
            parameters,
            bad_request_fields,
        } => {
            let detail = detail.or_else(|| Some(format!("Emulated fault: {error_code}.")));
            let mut resp =
                ApiError::from_parts(status, &error_code, detail, parameters, bad_request_fields)
                    .into_response();
            if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                resp.headers_mut()
                    .insert(HeaderName::from_static("retry-after"), value);
            }
            Outcome::Respond(resp)
        }
        FaultAction::Latency { millis } => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            Outcome::Continue {
                short_token_secs: None,
            }
        }
        FaultAction::Html { status } => {
            let status = status_or_500(status);
            let page = format!(
                "<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n<center><h1>{status}</h1></center>\r\n</body>\r\n</html>\r\n"
            );
            Outcome::Respond(raw_response(status, "text/html", Body::from(page)))
        }
        FaultAction::Truncated { status } => {
            let status = status_or_500(status);
            let full = sample_body(route);
            let cut = full[..full.len() / 2].to_string();
            Outcome::Respond(raw_response(
                status,
                content_type(status, route),
                Body::from(cut),
            ))
        }
        FaultAction::StalledBody { status } => {
            use tokio_stream::StreamExt as _;
            let status = status_or_500(status);
            let full = sample_body(route);
            let half = Bytes::from(full[..full.len() / 2].to_string());
            let chunks = tokio_stream::once(Ok::<_, std::convert::Infallible>(half))
                .chain(tokio_stream::pending());
            Outcome::Respond(raw_response(
                status,
                content_type(status, route),
                Body::from_stream(chunks),
            ))
        }
        FaultAction::Raw {
            status,
            content_type,
            body,
        } => Outcome::Respond(raw_response(
            status_or_500(status),
            &content_type,
            Body::from(body),
        )),
        FaultAction::Oversized { status, bytes } => {
            let status = status_or_500(status);
            let body = oversized_body(bytes.min(MAX_OVERSIZED));
            Outcome::Respond(raw_response(
                status,
                content_type(status, route),
                Body::from(body),
            ))
        }
        FaultAction::Reset => {
            let failing = tokio_stream::once(Err::<Bytes, std::io::Error>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "emulated connection reset",
            )));
            Outcome::Respond(raw_response(
                http::StatusCode::OK,
                content_type(http::StatusCode::OK, route),
                Body::from_stream(failing),
            ))
        }
        FaultAction::ShortTokens { actual_secs } => Outcome::Continue {
            short_token_secs: (route == Some(Route::Token)).then_some(actual_secs),
        },
    }
}

/// Versioned type for 2xx on Atlas routes, plain JSON otherwise (and on the token endpoint).
fn content_type(status: http::StatusCode, route: Option<Route>) -> &'static str {
    if status.is_success() && route != Some(Route::Token) {
        VERSIONED_UTF8
    } else {
        JSON
    }
}

/// What a successful response of `route` looks like (before truncation).
fn sample_body(route: Option<Route>) -> String {
    match route {
        Some(Route::Token) => {
            r#"{"access_token":"emulated-truncated-token-0000000000","expires_in":3600,"token_type":"Bearer"}"#.to_string()
        }
        Some(Route::CreateApiKey | Route::GetApiKey | Route::UpdateApiKey) => r#"{"desc":"emulated","id":"000000000000000000000000","links":[],"privateKey":"00000000-0000-0000-0000-000000000000","publicKey":"abcdefgh","roles":[{"orgId":"000000000000000000000000","roleName":"ORG_MEMBER"}]}"#.to_string(),
        Some(Route::ListApiKeys | Route::CreateApiKeyAccessList | Route::ListApiKeyAccessList) => {
            r#"{"links":[],"results":[{"cidrBlock":"10.0.0.0/8"},{"cidrBlock":"192.168.0.0/16"}],"totalCount":2}"#.to_string()
        }
        _ => r#"{"linkToken":"ZW11bGF0ZWQtdHJ1bmNhdGVkLWxpbmstdG9rZW4tMDAwMDAwMDAwMDAwMDAwMA=="}"#
            .to_string(),
    }
}

/// Exactly `bytes` bytes: an unterminated JSON string, padded with `x`.
fn oversized_body(bytes: usize) -> Vec<u8> {
    let prefix = br#"{"detail":""#;
    let mut body = Vec::with_capacity(bytes);
    body.extend_from_slice(&prefix[..prefix.len().min(bytes)]);
    body.resize(bytes, b'x');
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_applies_and_is_used_up() {
        let mut rules = vec![
            Fault::once(Route::Token, FaultAction::error(503, "SERVICE_UNAVAILABLE")),
            Fault::new(Route::Any, FaultAction::Html { status: 502 }),
        ];
        assert!(matches!(
            take_matching(&mut rules, Some(Route::CreateApiKey)),
            Some(FaultAction::Html { .. })
        ));
        assert!(matches!(
            take_matching(&mut rules, Some(Route::Token)),
            Some(FaultAction::Error { .. })
        ));
        assert_eq!(rules.len(), 1);
        assert!(matches!(
            take_matching(&mut rules, Some(Route::Token)),
            Some(FaultAction::Html { .. })
        ));
    }

    #[test]
    fn zero_times_never_applies() {
        let mut rules = vec![Fault::new(Route::Any, FaultAction::Reset).limit(0)];
        assert!(take_matching(&mut rules, None).is_none());
        assert!(rules.is_empty());
    }

    #[test]
    fn fault_json_round_trips() {
        let json = r#"{"route":"create_api_key","times":2,"action":{"kind":"error","status":429,"error_code":"RATE_LIMITED","retry_after":"3"}}"#;
        let fault: Fault = serde_json::from_str(json).unwrap();
        assert_eq!(fault.route, Route::CreateApiKey);
        assert_eq!(fault.times, Some(2));
        assert!(matches!(
            fault.action,
            FaultAction::Error { status: 429, .. }
        ));
    }

    #[test]
    fn oversized_body_has_exact_size() {
        assert_eq!(oversized_body(3).len(), 3);
        assert_eq!(oversized_body(2048).len(), 2048);
        assert!(oversized_body(2048).starts_with(b"{\"detail\":\""));
    }
}
