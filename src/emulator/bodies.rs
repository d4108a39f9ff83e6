//! Request-body parsing and validation for the POST operations, following the spec's
//! schemas (`TargetOrgRequest`, `CreateAtlasOrganizationApiKey`, an array of
//! `UserAccessListRequest`), plus the `orgId` rule.
//!
//! Every violation is reported at once in `badRequestDetail.fields`; field names are the
//! Atlas (camelCase) names. Malformed JSON is 400 `MALFORMED_REQUEST`; schema violations are
//! 400 `INVALID_ATTRIBUTE`, or `INVALID_ENUM_VALUE` when only role names are wrong.

use std::net::IpAddr;

use http::StatusCode;
use serde_json::{json, Map, Value};

use super::response::ApiError;

/// The `roles` enum of `CreateAtlasOrganizationApiKey`.
pub(crate) const ORG_ROLES: [&str; 7] = [
    "ORG_OWNER",
    "ORG_MEMBER",
    "ORG_GROUP_CREATOR",
    "ORG_BILLING_ADMIN",
    "ORG_BILLING_READ_ONLY",
    "ORG_STREAM_PROCESSING_ADMIN",
    "ORG_READ_ONLY",
];

/// `^[a-f0-9]{24}$`.
pub(crate) fn is_org_id(value: &str) -> bool {
    value.len() == 24
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A valid IPv4/IPv6 address, or one followed by `/prefix` within the address size.
pub(crate) fn is_ip_or_cidr(value: &str) -> bool {
    match value.split_once('/') {
        None => value.parse::<IpAddr>().is_ok(),
        Some((ip, prefix)) => {
            let Ok(ip) = ip.parse::<IpAddr>() else {
                return false;
            };
            if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit())
            {
                return false;
            }
            let max = if ip.is_ipv4() { 32 } else { 128 };
            prefix.parse::<u32>().is_ok_and(|p| p <= max)
        }
    }
}

/// The body as a JSON object, or 400 `MALFORMED_REQUEST`.
fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let malformed = |detail: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_REQUEST",
            detail.to_string(),
        )
    };
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(malformed("The request body is required."));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(malformed("The request body must be a JSON object.")),
        Err(_) => Err(malformed("Received JSON is malformed.")),
    }
}

/// `TargetOrgRequest` → the access list entries.
pub(crate) fn link_token_request(body: &[u8]) -> Result<Vec<String>, ApiError> {
    let map = json_object(body)?;
    let mut error = ApiError::new(
        StatusCode::BAD_REQUEST,
        "INVALID_ATTRIBUTE",
        "Invalid attribute accessListIps specified.",
    )
    .parameters(json!(["accessListIps"]));
    let mut bad = false;
    let mut ips = Vec::new();
    match map.get("accessListIps") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(ip) if is_ip_or_cidr(ip) => ips.push(ip.to_string()),
                    _ => {
                        bad = true;
                        error = error.field(
                            "accessListIps",
                            format!(
                                "accessListIps[{i}] ({item}) is not a valid IPv4/IPv6 address or CIDR block."
                            ),
                        );
                    }
                }
            }
        }
        Some(_) => {
            bad = true;
            error = error.field(
                "accessListIps",
                "accessListIps must be an array of strings.",
            );
        }
    }
    if bad {
        Err(error)
    } else {
        Ok(ips)
    }
}

/// `desc`: required, 1 to 250 characters.
fn desc_field(map: &Map<String, Value>, fields: &mut Vec<(&str, String)>) -> String {
    match map.get("desc") {
        Some(Value::String(desc)) => {
            let len = desc.chars().count();
            if !(1..=250).contains(&len) {
                fields.push((
                    "desc",
                    format!("desc must be 1 to 250 characters long, got {len}."),
                ));
            }
            desc.clone()
        }
        None | Some(Value::Null) => {
            fields.push(("desc", "desc is required.".to_string()));
            String::new()
        }
        Some(_) => {
            fields.push(("desc", "desc must be a string.".to_string()));
            String::new()
        }
    }
}

/// `UpdateAtlasOrganizationApiKey` → the new `desc` (the emulator changes only that).
pub(crate) fn api_key_update_request(body: &[u8]) -> Result<String, ApiError> {
    let map = json_object(body)?;
    let mut fields = Vec::new();
    let desc = desc_field(&map, &mut fields);
    match fields.pop() {
        None => Ok(desc),
        Some((field, description)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_ATTRIBUTE",
            "The request contains invalid attributes.",
        )
        .parameters(json!([field]))
        .field(field, description)),
    }
}

/// `CreateAtlasOrganizationApiKey` → `(desc, roles)`.
pub(crate) fn api_key_request(body: &[u8]) -> Result<(String, Vec<String>), ApiError> {
    let map = json_object(body)?;
    let mut fields: Vec<(&str, String)> = Vec::new();
    let mut only_enum = true;

    let desc = desc_field(&map, &mut fields);
    if !fields.is_empty() {
        only_enum = false;
    }

    let mut roles = Vec::new();
    match map.get("roles") {
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(role) if ORG_ROLES.contains(&role) => roles.push(role.to_string()),
                    _ => fields.push((
                        "roles",
                        format!(
                            "roles[{i}] ({item}) is not one of {}.",
                            ORG_ROLES.join(", ")
                        ),
                    )),
                }
            }
        }
        Some(Value::Array(_)) => {
            only_enum = false;
            fields.push(("roles", "roles must contain at least one role.".to_string()));
        }
        None | Some(Value::Null) => {
            only_enum = false;
            fields.push(("roles", "roles is required.".to_string()));
        }
        Some(_) => {
            only_enum = false;
            fields.push(("roles", "roles must be an array of role names.".to_string()));
        }
    }

    if fields.is_empty() {
        return Ok((desc, roles));
    }
    let (code, detail) = if only_enum {
        (
            "INVALID_ENUM_VALUE",
            "An invalid enumeration value was specified for roles.",
        )
    } else {
        (
            "INVALID_ATTRIBUTE",
            "The request contains invalid attributes.",
        )
    };
    let names: Vec<&str> = {
        let mut names: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
        names.dedup();
        names
    };
    let mut error = ApiError::new(StatusCode::BAD_REQUEST, code, detail).parameters(json!(names));
    for (field, description) in fields {
        error = error.field(field, description);
    }
    Err(error)
}

/// One access list entry: an address (Atlas also shows it as a /32 or /128 block), or a
/// CIDR block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AccessEntry {
    pub ip_address: Option<String>,
    pub cidr_block: String,
}

/// An array of `UserAccessListRequest`: each entry exactly one of `ipAddress` (an
/// address) or `cidrBlock` (a block).
pub(crate) fn access_list_request(body: &[u8]) -> Result<Vec<AccessEntry>, ApiError> {
    let items = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "MALFORMED_REQUEST",
                "The request body must be a JSON array of access list entries.",
            ))
        }
    };
    let mut error = ApiError::new(
        StatusCode::BAD_REQUEST,
        "INVALID_ATTRIBUTE",
        "The request contains invalid access list entries.",
    );
    let mut entries = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = item.get("ipAddress").and_then(Value::as_str);
        let cidr = item.get("cidrBlock").and_then(Value::as_str);
        match (ip, cidr) {
            (Some(ip), None) if !ip.contains('/') && is_ip_or_cidr(ip) => {
                let bits = if ip.contains(':') { 128 } else { 32 };
                entries.push(AccessEntry {
                    ip_address: Some(ip.to_string()),
                    cidr_block: format!("{ip}/{bits}"),
                });
            }
            (None, Some(cidr)) if cidr.contains('/') && is_ip_or_cidr(cidr) => {
                entries.push(AccessEntry {
                    ip_address: None,
                    cidr_block: cidr.to_string(),
                });
            }
            _ => error = error.field(
                &format!("[{i}]"),
                "Set exactly one of ipAddress (an IPv4/IPv6 address) or cidrBlock (a CIDR block).",
            ),
        }
    }
    if entries.len() == items.len() && !items.is_empty() {
        Ok(entries)
    } else if items.is_empty() {
        Err(error.field("[]", "At least one access list entry is required."))
    } else {
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_ids() {
        assert!(is_org_id("5f1a0c2b3d4e5f6a7b8c9d0e"));
        assert!(!is_org_id("5F1A0C2B3D4E5F6A7B8C9D0E"));
        assert!(!is_org_id("5f1a0c2b3d4e5f6a7b8c9d0"));
        assert!(!is_org_id("5f1a0c2b3d4e5f6a7b8c9d0g"));
    }

    #[test]
    fn ips_and_cidrs() {
        for ok in [
            "10.0.0.1",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "::1",
            "2001:db8::/32",
            "1.2.3.4/32",
        ] {
            assert!(is_ip_or_cidr(ok), "{ok}");
        }
        for bad in [
            "",
            "10.0.0.256",
            "10.0.0.0/33",
            "::1/129",
            "1.2.3.4/",
            "1.2.3.4/+8",
            "x",
            " 1.2.3.4",
        ] {
            assert!(!is_ip_or_cidr(bad), "{bad}");
        }
    }

    #[test]
    fn link_token_body_reports_every_bad_entry() {
        let err = link_token_request(br#"{"accessListIps":["1.2.3.4","nope",7]}"#).unwrap_err();
        let body = err.body();
        assert_eq!(body["errorCode"], "INVALID_ATTRIBUTE");
        assert_eq!(
            body["badRequestDetail"]["fields"].as_array().unwrap().len(),
            2
        );
        assert_eq!(link_token_request(b"{}").unwrap(), Vec::<String>::new());
        assert_eq!(
            link_token_request(b"{nope").unwrap_err().body()["errorCode"],
            "MALFORMED_REQUEST"
        );
    }

    #[test]
    fn api_key_body_rules() {
        let ok = api_key_request(br#"{"desc":"ci","roles":["ORG_MEMBER"]}"#).unwrap();
        assert_eq!(ok, ("ci".to_string(), vec!["ORG_MEMBER".to_string()]));
        let enum_only = api_key_request(br#"{"desc":"ci","roles":["ORG_GOD"]}"#).unwrap_err();
        assert_eq!(enum_only.body()["errorCode"], "INVALID_ENUM_VALUE");
        let long = "x".repeat(251);
        let both = api_key_request(format!(r#"{{"desc":"{long}","roles":[]}}"#).as_bytes())
            .unwrap_err()
            .body();
        assert_eq!(both["errorCode"], "INVALID_ATTRIBUTE");
        assert_eq!(
            both["badRequestDetail"]["fields"].as_array().unwrap().len(),
            2
        );
    }

    #[test]
    fn access_list_entries() {
        let ok =
            access_list_request(br#"[{"ipAddress":"203.0.113.7"},{"cidrBlock":"10.0.0.0/8"}]"#)
                .unwrap();
        assert_eq!(ok[0].cidr_block, "203.0.113.7/32");
        assert_eq!(ok[1].ip_address, None);
        let bad = access_list_request(
            br#"[{"ipAddress":"10.0.0.0/8"},{"ipAddress":"1.2.3.4","cidrBlock":"1.2.3.4/32"},{}]"#,
        )
        .unwrap_err()
        .body();
        assert_eq!(
            bad["badRequestDetail"]["fields"].as_array().unwrap().len(),
            3
        );
        assert!(access_list_request(b"[]").is_err());
        assert_eq!(
            access_list_request(b"{}").unwrap_err().body()["errorCode"],
            "MALFORMED_REQUEST"
        );
    }
}
