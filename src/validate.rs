//! Request validation: every rule of the official Atlas spec that can be checked before
//! an upstream call, reporting all violations at once.
//!
//! Field paths use proto field names (`access_list_ips[1]`), as google.rpc.BadRequest
//! expects. It also owns the bounds on what is echoed back: caller values shown in logs,
//! spans, messages and error metadata go through [`echo`], and an answer lists at most
//! [`MAX_REPORTED_VIOLATIONS`] violations, so error trailers stay small whatever the
//! input. This module never talks to Atlas and never allocates beyond the violations.
use std::net::IpAddr;

mod key_lease;
pub use key_lease::{key_lease, key_ttl, MAX_LEASED_DESC_CHARS};

use crate::{
    page_token,
    pb::{
        CreateApiKeyRequest, CreateLinkTokenRequest, DeleteApiKeyRequest, DeleteLinkTokenRequest,
        ListApiKeysRequest, OrgRole,
    },
};

/// One problem with one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The field's proto path (`access_list_ips[1]`).
    pub field: String,
    /// What is wrong and what is allowed.
    pub description: String,
}

impl Violation {
    fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Longest accepted `request_id` (AIP-155 recommends a UUID: 36 characters).
pub const MAX_REQUEST_ID_LEN: usize = 36;
/// Longest API key description, per the spec (`maxLength: 250`).
pub const MAX_DESC_CHARS: usize = 250;
/// Most access list entries accepted in one call (a sanity bound on the request size).
pub const MAX_ACCESS_LIST_IPS: usize = 1000;

/// Longest caller value echoed whole (an org id is 24, a UUID 36 characters).
pub const MAX_ECHO_CHARS: usize = 64;
/// Violations listed in one answer at most; the rest are counted in a last entry.
pub const MAX_REPORTED_VIOLATIONS: usize = 20;

/// A caller-supplied value as the gateway may show it: at most [`MAX_ECHO_CHARS`]
/// characters, else that many followed by `...` and the full size in bytes.
pub fn echo(value: &str) -> String {
    match value.char_indices().nth(MAX_ECHO_CHARS) {
        None => value.to_string(),
        Some((cut, _)) => format!("{}... ({} bytes)", &value[..cut], value.len()),
    }
}

/// The violations an answer lists: the first [`MAX_REPORTED_VIOLATIONS`], then one
/// entry saying how many more there are.
pub fn reported(mut violations: Vec<Violation>) -> Vec<Violation> {
    if violations.len() > MAX_REPORTED_VIOLATIONS {
        let more = violations.len() - (MAX_REPORTED_VIOLATIONS - 1);
        violations.truncate(MAX_REPORTED_VIOLATIONS - 1);
        violations.push(Violation::new(
            "request",
            format!("{more} more violations not listed; fix the ones above and retry"),
        ));
    }
    violations
}

/// True for a 24-character lowercase hex id (`^[a-f0-9]{24}$`).
pub fn is_org_id(s: &str) -> bool {
    s.len() == 24
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// True for an IPv4/IPv6 address or CIDR block (`10.0.0.0/8`, `2001:db8::/32`).
pub fn is_ip_or_cidr(s: &str) -> bool {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    match prefix {
        None => true,
        Some(p) => {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u8>().is_ok_and(|n| n <= max)
        }
    }
}

fn check_org_id(org_id: &str, out: &mut Vec<Violation>) {
    check_hex_id("org_id", org_id, out);
}

/// A 24-character lowercase hex id, such as `org_id` or `api_key_id`.
fn check_hex_id(field: &str, value: &str, out: &mut Vec<Violation>) {
    if value.is_empty() {
        out.push(Violation::new(field, format!("{field} is required")));
    } else if !is_org_id(value) {
        out.push(Violation::new(
            field,
            format!(
                "{field} must be a 24-character lowercase hexadecimal string (^[a-f0-9]{{24}}$)"
            ),
        ));
    }
}

/// Each entry an IP address or CIDR block, reported at its index; at most
/// [`MAX_ACCESS_LIST_IPS`] entries.
fn check_access_list(ips: &[String], out: &mut Vec<Violation>) {
    if ips.len() > MAX_ACCESS_LIST_IPS {
        out.push(Violation::new(
            "access_list_ips",
            format!("at most {MAX_ACCESS_LIST_IPS} entries are accepted"),
        ));
        return;
    }
    for (i, ip) in ips.iter().enumerate() {
        if !is_ip_or_cidr(ip) {
            out.push(Violation::new(
                format!("access_list_ips[{i}]"),
                "must be an IPv4 or IPv6 address or CIDR block, such as 203.0.113.7 or 10.0.0.0/8",
            ));
        }
    }
}

fn check_request_id(request_id: &str, out: &mut Vec<Violation>) {
    if request_id.len() > MAX_REQUEST_ID_LEN || !request_id.bytes().all(|b| b.is_ascii_graphic()) {
        out.push(Violation::new(
            "request_id",
            format!("request_id must be at most {MAX_REQUEST_ID_LEN} printable ASCII characters (a UUID is recommended)"),
        ));
    }
}

fn finish(violations: Vec<Violation>) -> Result<(), Vec<Violation>> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

/// Checks a `CreateLinkToken` request.
pub fn create_link_token(req: &CreateLinkTokenRequest) -> Result<(), Vec<Violation>> {
    let mut v = Vec::new();
    check_org_id(&req.org_id, &mut v);
    check_access_list(&req.access_list_ips, &mut v);
    check_request_id(&req.request_id, &mut v);
    finish(v)
}

/// Checks a `DeleteLinkToken` request.
pub fn delete_link_token(req: &DeleteLinkTokenRequest) -> Result<(), Vec<Violation>> {
    let mut v = Vec::new();
    check_org_id(&req.org_id, &mut v);
    finish(v)
}

/// Checks a `CreateApiKey` request.
pub fn create_api_key(req: &CreateApiKeyRequest) -> Result<(), Vec<Violation>> {
    let mut v = Vec::new();
    check_org_id(&req.org_id, &mut v);
    let chars = req.desc.chars().count();
    if chars == 0 {
        v.push(Violation::new(
            "desc",
            "desc is required (1 to 250 characters)",
        ));
    } else if chars > MAX_DESC_CHARS {
        v.push(Violation::new(
            "desc",
            format!("desc must be at most {MAX_DESC_CHARS} characters (got {chars})"),
        ));
    }
    check_roles(&req.roles, &mut v);
    check_access_list(&req.access_list_ips, &mut v);
    check_request_id(&req.request_id, &mut v);
    key_lease::check_ttl(req, &mut v);
    finish(v)
}

/// At least one role, each a known `OrgRole` other than `ORG_ROLE_UNSPECIFIED`.
fn check_roles(roles: &[i32], v: &mut Vec<Violation>) {
    if roles.is_empty() {
        v.push(Violation::new("roles", "at least one role is required"));
    }
    for (i, role) in roles.iter().enumerate() {
        match OrgRole::try_from(*role) {
            Ok(OrgRole::Unspecified) => v.push(Violation::new(
                format!("roles[{i}]"),
                "ORG_ROLE_UNSPECIFIED is not a role; use e.g. ORG_MEMBER",
            )),
            Ok(_) => {}
            Err(_) => v.push(Violation::new(
                format!("roles[{i}]"),
                format!("{role} is not a known OrgRole value"),
            )),
        }
    }
}

/// Checks a `DeleteApiKey` request.
pub fn delete_api_key(req: &DeleteApiKeyRequest) -> Result<(), Vec<Violation>> {
    let mut v = Vec::new();
    check_org_id(&req.org_id, &mut v);
    check_hex_id("api_key_id", &req.api_key_id, &mut v);
    finish(v)
}

/// Checks a `ListApiKeys` request: the page size, and a page token bound to this org
/// and size.
pub fn list_api_keys(req: &ListApiKeysRequest) -> Result<(), Vec<Violation>> {
    list_page(&req.org_id, req.page_size, &req.page_token)
}

/// Checks a list request (AIP-158): the org, the page size, and a page token bound to
/// this org and size.
fn list_page(org_id: &str, page_size: i32, page_token: &str) -> Result<(), Vec<Violation>> {
    let mut v = Vec::new();
    check_org_id(org_id, &mut v);
    match page_token::page_size(page_size) {
        None => v.push(Violation::new(
            "page_size",
            "page_size must not be negative (0 means the default, 100)",
        )),
        Some(size) if !page_token.is_empty() => {
            if let Err(why) = page_token::decode(page_token, org_id, size) {
                v.push(Violation::new("page_token", why));
            }
        }
        Some(_) => {}
    }
    finish(v)
}

mod service_accounts;
pub use service_accounts::{
    create_service_account, delete_service_account, is_client_id, list_service_accounts,
    rotate_service_account_secret,
};

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "5f1a0c2b3d4e5f6a7b8c9d0e";

    fn fields(r: Result<(), Vec<Violation>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn org_id_pattern() {
        assert!(is_org_id(ORG));
        for bad in [
            "",
            "5F1A0C2B3D4E5F6A7B8C9D0E",
            "5f1a0c2b3d4e5f6a7b8c9d0",
            "5f1a0c2b3d4e5f6a7b8c9d0g",
            "ééééééééééééééééééééééé",
        ] {
            assert!(!is_org_id(bad), "{bad}");
        }
    }

    #[test]
    fn ip_and_cidr() {
        for ok in [
            "203.0.113.7",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "::1",
            "2001:db8::/32",
            "2001:db8::1/128",
        ] {
            assert!(is_ip_or_cidr(ok), "{ok}");
        }
        for bad in [
            "",
            "1.2.3",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "host.example",
            "1.2.3.4/8/8",
            "1.2.3.4 ",
        ] {
            assert!(!is_ip_or_cidr(bad), "{bad}");
        }
    }

    #[test]
    fn link_token_reports_every_bad_entry_with_its_index() {
        let req = CreateLinkTokenRequest {
            org_id: "nope".into(),
            access_list_ips: vec![
                "10.0.0.1".into(),
                "bad".into(),
                "::1".into(),
                "1.2.3.4/40".into(),
            ],
            request_id: "x".repeat(37),
        };
        assert_eq!(
            fields(create_link_token(&req)),
            [
                "org_id",
                "access_list_ips[1]",
                "access_list_ips[3]",
                "request_id"
            ]
        );
    }

    #[test]
    fn api_key_rules() {
        let mut req = CreateApiKeyRequest {
            org_id: ORG.into(),
            desc: "ci key".into(),
            roles: vec![OrgRole::OrgMember as i32],
            request_id: String::new(),
            access_list_ips: vec!["10.0.0.0/8".into(), "203.0.113.7".into()],
            ttl: None,
        };
        assert!(create_api_key(&req).is_ok());
        req.desc = "é".repeat(250);
        assert!(
            create_api_key(&req).is_ok(),
            "250 characters (not bytes) is fine"
        );
        req.desc = "d".repeat(251);
        req.roles = vec![OrgRole::OrgOwner as i32, 0, 99];
        req.access_list_ips.push("10.0.0.0/33".into());
        assert_eq!(
            fields(create_api_key(&req)),
            ["desc", "roles[1]", "roles[2]", "access_list_ips[2]"]
        );
        req.access_list_ips.clear();
        req.desc.clear();
        req.roles.clear();
        req.org_id.clear();
        assert_eq!(fields(create_api_key(&req)), ["org_id", "desc", "roles"]);
    }

    #[test]
    fn delete_api_key_needs_both_ids() {
        let req = DeleteApiKeyRequest {
            org_id: "x".into(),
            api_key_id: String::new(),
        };
        assert_eq!(fields(delete_api_key(&req)), ["org_id", "api_key_id"]);
        let req = DeleteApiKeyRequest {
            org_id: ORG.into(),
            api_key_id: "5F1A0C2B3D4E5F6A7B8C9D0E".into(),
        };
        assert_eq!(fields(delete_api_key(&req)), ["api_key_id"]);
    }

    #[test]
    fn list_api_keys_checks_size_and_token() {
        let mut req = ListApiKeysRequest {
            org_id: ORG.into(),
            page_size: 0,
            page_token: page_token::encode(ORG, 100, 2),
        };
        assert!(list_api_keys(&req).is_ok(), "0 means 100");
        req.page_size = 50;
        assert_eq!(fields(list_api_keys(&req)), ["page_token"]);
        req.page_size = -1;
        req.org_id = "nope".into();
        assert_eq!(fields(list_api_keys(&req)), ["org_id", "page_size"]);
    }

    #[test]
    fn echoes_and_reports_are_bounded() {
        assert_eq!(echo(ORG), ORG);
        let long = echo(&"é".repeat(100_000));
        assert!(long.chars().count() < MAX_ECHO_CHARS + 20, "{long}");
        assert!(long.ends_with("... (200000 bytes)"), "{long}");
        let many = vec![Violation::new("roles[0]", "bad"); 1000];
        let shown = reported(many);
        assert_eq!(shown.len(), MAX_REPORTED_VIOLATIONS);
        assert!(shown[MAX_REPORTED_VIOLATIONS - 1]
            .description
            .starts_with("981 more"));
        assert_eq!(reported(vec![Violation::new("a", "b")]).len(), 1);
    }

    #[test]
    fn delete_needs_org() {
        assert_eq!(
            fields(delete_link_token(&DeleteLinkTokenRequest::default())),
            ["org_id"]
        );
        assert!(delete_link_token(&DeleteLinkTokenRequest { org_id: ORG.into() }).is_ok());
    }
}
