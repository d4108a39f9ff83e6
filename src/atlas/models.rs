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
    /// IP addresses or CIDR blocks allowed to use the link.
    pub access_list_ips: &'a [String],
}

/// Response of createOrgLiveMigrationLinkToken.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetOrg {
    /// The link token (secret).
    pub link_token: Secret,
}

/// Body of createOrgApiKey.
#[derive(Debug, Serialize)]
pub struct CreateAtlasOrganizationApiKey<'a> {
    /// Purpose of the key, 1 to 250 characters.
    pub desc: &'a str,
    /// Atlas role names to grant.
    pub roles: Vec<&'a str>,
}

/// Response of createOrgApiKey.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyUserDetails {
    #[serde(default)]
    /// The key's 24-hex id.
    pub id: String,
    #[serde(default)]
    /// The key's description.
    pub desc: String,
    #[serde(default)]
    /// The public part of the key (its user name).
    pub public_key: String,
    /// The private part, present only in the create response (secret).
    pub private_key: Option<Secret>,
    #[serde(default)]
    /// Roles granted to the key.
    pub roles: Vec<CloudAccessRoleAssignment>,
    #[serde(default)]
    /// Links to the key's resources.
    pub links: Vec<Link>,
}

/// One entry of createOrgApiKeyAccessListEntry's body: an address or a CIDR block.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum UserAccessListRequest<'a> {
    /// `{"ipAddress": ...}`: one address.
    IpAddress(&'a str),
    /// `{"cidrBlock": ...}`: a network.
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
    /// The entry's address, when it is one address.
    pub ip_address: Option<String>,
    /// The entry's network, in CIDR notation.
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
    /// The entries.
    pub results: Vec<UserAccessListResponse>,
}

/// Response of listOrgApiKeys: one page of keys, and the total when asked for.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaginatedApiApiUserView {
    /// The keys on this page.
    pub results: Vec<ApiKeyUserDetails>,
    /// `totalCount`: all keys of the organization (sent with `includeCount=true`).
    pub total_count: Option<u32>,
}

/// One role and the org or project it applies to.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudAccessRoleAssignment {
    /// The Atlas role name (`ORG_MEMBER`, ...).
    pub role_name: Option<String>,
    /// The org the role applies to.
    pub org_id: Option<String>,
    /// The project the role applies to.
    pub group_id: Option<String>,
}

/// RFC 5988 link.
#[derive(Debug, Deserialize)]
pub struct Link {
    /// The target URL.
    pub href: Option<String>,
    /// The relation (`self`).
    pub rel: Option<String>,
}

/// Atlas's error body.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    /// Human-readable explanation.
    pub detail: Option<String>,
    /// The HTTP status, repeated.
    pub error: Option<u16>,
    /// Atlas's machine-readable code (`RATE_LIMITED`, ...).
    pub error_code: String,
    /// Values that fill the detail's placeholders.
    pub parameters: Option<serde_json::Value>,
    /// The HTTP reason phrase.
    pub reason: Option<String>,
    /// Per-field violations of a 400.
    pub bad_request_detail: Option<BadRequestDetail>,
}

/// `badRequestDetail`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct BadRequestDetail {
    #[serde(default)]
    /// The invalid fields.
    pub fields: Vec<FieldViolation>,
}

/// One invalid field as Atlas names it (`accessListIps`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct FieldViolation {
    #[serde(default)]
    /// The field's Atlas (camelCase) name.
    pub field: String,
    #[serde(default)]
    /// What is wrong with it.
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
