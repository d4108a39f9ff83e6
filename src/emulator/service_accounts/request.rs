//! Request bodies of the service-account endpoints (`OrgServiceAccountRequest`,
//! `ServiceAccountSecretRequest`) and the `clientId` rule, checked as Atlas does: every
//! violation in one 400 `INVALID_ATTRIBUTE`, malformed JSON 400 `MALFORMED_REQUEST`.
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::super::api_keys::bad_query;
use super::super::bodies::ORG_ROLES;
use super::super::response::ApiError;

/// `OrgServiceAccountRequest`, checked.
pub(super) struct AccountRequest {
    pub name: String,
    pub description: String,
    pub roles: Vec<String>,
    pub hours: u64,
}

impl AccountRequest {
    pub(super) fn parse(body: &[u8]) -> Result<AccountRequest, ApiError> {
        let map = object(body)?;
        let mut bad: Vec<(&'static str, String)> = Vec::new();
        let mut text = |field: &'static str, max: usize| match map
            .get(field)
            .and_then(Value::as_str)
        {
            Some(s) if (1..=max).contains(&s.chars().count()) && s.chars().all(is_text_char) => {
                s.to_string()
            }
            _ => {
                bad.push((
                    field,
                    format!("{field} must be 1 to {max} letters, digits or -_.,' and spaces."),
                ));
                String::new()
            }
        };
        let (name, description) = (text("name", 64), text("description", 250));
        let roles: Vec<String> = match map.get("roles").and_then(Value::as_array) {
            Some(items)
                if !items.is_empty()
                    && items
                        .iter()
                        .all(|r| r.as_str().is_some_and(|r| ORG_ROLES.contains(&r))) =>
            {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            }
            _ => {
                bad.push((
                    "roles",
                    format!("roles must be one or more of {}.", ORG_ROLES.join(", ")),
                ));
                Vec::new()
            }
        };
        let hours = secret_hours(&map).map_err(|b| bad.push(b)).unwrap_or(0);
        if !bad.is_empty() {
            return Err(invalid(&bad));
        }
        Ok(AccountRequest {
            name,
            description,
            roles,
            hours,
        })
    }
}

/// `^[\p{L}\p{N}\-_.,' ]*$`.
pub(super) fn is_text_char(c: char) -> bool {
    c.is_alphabetic() || c.is_numeric() || "-_.,' ".contains(c)
}

pub(super) fn secret_hours(map: &Map<String, Value>) -> Result<u64, (&'static str, String)> {
    match map.get("secretExpiresAfterHours").and_then(Value::as_u64) {
        Some(h) if (8..=8760).contains(&h) => Ok(h),
        _ => Err((
            "secretExpiresAfterHours",
            "secretExpiresAfterHours must be 8 to 8760 (the organization's limits).".to_string(),
        )),
    }
}

pub(super) fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_REQUEST",
            "The request body must be a JSON object.",
        )),
    }
}

pub(super) fn invalid(fields: &[(&str, String)]) -> ApiError {
    let names: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
    let mut error = ApiError::new(
        StatusCode::BAD_REQUEST,
        "INVALID_ATTRIBUTE",
        "The request contains invalid attributes.",
    )
    .parameters(json!(names));
    for (field, description) in fields {
        error = error.field(field, description.clone());
    }
    error
}

pub(super) fn check_client_id(client_id: &str) -> Result<(), ApiError> {
    let hex = client_id.strip_prefix("mdb_sa_id_").unwrap_or("");
    if hex.len() == 24 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(());
    }
    Err(bad_query(
        "clientId",
        "clientId must match ^mdb_sa_id_[a-fA-F\\d]{24}$.",
    ))
}
