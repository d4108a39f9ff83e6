//! Atlas Admin API v2 JSON shapes of the gateway's operations, named as in the official
//! spec (`TargetOrgRequest`, `ApiKeyUserDetails`, `UserAccessListRequest`,
//! `PaginatedApiApiUserView`, `ApiError`, ...).
//!
//! Parsing is lenient where Atlas may add fields (unknown fields are ignored) and strict
//! where the gateway depends on a value (`linkToken` is required).
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Body of createOrgLiveMigrationLinkToken.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetOrgRequest<'a> {
    pub access_list_ips: &'a [String],
}

/// Response of createOrgLiveMigrationLinkToken.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetOrg {
    pub link_token: Secret,
}

/// Body of createOrgApiKey.
#[derive(Debug, Serialize)]
pub struct CreateAtlasOrganizationApiKey<'a> {
    pub desc: &'a str,
    pub roles: Vec<&'a str>,
}

/// Response of createOrgApiKey.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyUserDetails {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub desc: String,
    #[serde(default)]
    pub public_key: String,
    pub private_key: Option<Secret>,
    #[serde(default)]
    pub roles: Vec<CloudAccessRoleAssignment>,
    #[serde(default)]
    pub links: Vec<Link>,
}

/// One entry of createOrgApiKeyAccessListEntry's body: an address or a CIDR block.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum UserAccessListRequest<'a> {
    IpAddress(&'a str),
    CidrBlock(&'a str),
}

impl<'a> UserAccessListRequest<'a> {
    /// `10.0.0.0/8` is a CIDR block, `203.0.113.7` an address.
    pub fn new(entry: &'a str) -> Self {
        if entry.contains('/') {
            UserAccessListRequest::CidrBlock(entry)
        } else {
            UserAccessListRequest::IpAddress(entry)
        }
    }
}

/// One entry of an API key's access list, as Atlas returns it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAccessListResponse {
    pub ip_address: Option<String>,
    pub cidr_block: Option<String>,
}

impl UserAccessListResponse {
    /// The address when Atlas names one, else the CIDR block.
    pub fn entry(self) -> Option<String> {
        self.ip_address.or(self.cidr_block)
    }
}

/// Response of createOrgApiKeyAccessListEntry: the key's whole access list.
#[derive(Debug, Deserialize)]
pub struct PaginatedApiUserAccessListResponseView {
    pub results: Vec<UserAccessListResponse>,
}

/// Response of listOrgApiKeys: one page of keys, and the total when asked for.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaginatedApiApiUserView {
    pub results: Vec<ApiKeyUserDetails>,
    pub total_count: Option<u32>,
}

/// One role and the org or project it applies to.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudAccessRoleAssignment {
    pub role_name: Option<String>,
    pub org_id: Option<String>,
    pub group_id: Option<String>,
}

/// RFC 5988 link.
#[derive(Debug, Deserialize)]
pub struct Link {
    pub href: Option<String>,
    pub rel: Option<String>,
}

/// Atlas's error body.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    pub detail: Option<String>,
    pub error: Option<u16>,
    pub error_code: String,
    pub parameters: Option<serde_json::Value>,
    pub reason: Option<String>,
    pub bad_request_detail: Option<BadRequestDetail>,
}

/// `badRequestDetail`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct BadRequestDetail {
    #[serde(default)]
    pub fields: Vec<FieldViolation>,
}

/// One invalid field as Atlas names it (`accessListIps`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct FieldViolation {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub description: String,
}

/// Parses an `ApiError`; `None` for anything else (HTML, empty, other JSON).
pub fn parse_api_error(body: &[u8]) -> Option<ApiError> {
    serde_json::from_slice::<ApiError>(body)
        .ok()
        .filter(|e| !e.error_code.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_real_404_body() {
        let body = br#"{"detail":"Could not find the requested external organization link.","error":404,"errorCode":"UNEXPECTED_ERROR","parameters":null,"reason":"Not Found"}"#;
        let e = parse_api_error(body).unwrap();
        assert_eq!(e.error_code, "UNEXPECTED_ERROR");
        assert_eq!(e.error, Some(404));
        assert_eq!(e.parameters, None);
    }

    #[test]
    fn rejects_non_api_errors() {
        for body in [
            &b"<html>502</html>"[..],
            b"",
            b"{}",
            b"[1,2]",
            b"{\"errorCode\":42}",
            b"{\"error\":\"x\"",
        ] {
            assert_eq!(parse_api_error(body), None);
        }
    }

    #[test]
    fn access_list_entries_are_addresses_or_cidr_blocks() {
        let body = serde_json::to_string(&[
            UserAccessListRequest::new("203.0.113.7"),
            UserAccessListRequest::new("10.0.0.0/8"),
        ])
        .unwrap();
        assert_eq!(
            body,
            r#"[{"ipAddress":"203.0.113.7"},{"cidrBlock":"10.0.0.0/8"}]"#
        );
    }

    #[test]
    fn api_key_private_key_is_redacted_in_debug() {
        let k: ApiKeyUserDetails =
            serde_json::from_str(r#"{"id":"a","privateKey":"s3cr3t-value"}"#).unwrap();
        assert!(!format!("{k:?}").contains("s3cr3t-value"));
    }
}
