//! Validation of the service-account requests, from `OrgServiceAccountRequest` and
//! `ServiceAccountSecretRequest` in the spec: `name` 1–64 and `description` 1–250
//! characters of `^[\p{L}\p{N}\-_.,' ]*$`, at least one role, `secret_expires_after_hours`
//! above 0 (and at most 8760, the widest an organization's setting allows), `client_id`
//! `^mdb_sa_id_[a-fA-F0-9]{24}$`, access lists as for API keys. Leases (`ttl`) are not
//! supported for service accounts yet and are refused.
use super::{
    check_access_list, check_org_id, check_request_id, check_roles, finish, list_page, Violation,
};
use crate::pb::{
    CreateServiceAccountRequest, DeleteServiceAccountRequest, ListServiceAccountsRequest,
    RotateServiceAccountSecretRequest,
};

/// Most hours a secret may live: the top of `maxServiceAccountSecretValidityInHours`.
pub const MAX_SECRET_HOURS: i32 = 8760;

/// Checks a `CreateServiceAccount` request.
pub fn create_service_account(req: &CreateServiceAccountRequest) -> Result<(), Vec<Violation>> {
    let mut v = Vec::new();
    check_org_id(&req.org_id, &mut v);
    check_text("name", &req.name, 64, &mut v);
    check_text("description", &req.description, 250, &mut v);
    check_roles(&req.roles, &mut v);
    check_hours(req.secret_expires_after_hours, &mut v);
    check_access_list(&req.access_list_ips, &mut v);
    check_request_id(&req.request_id, &mut v);
    if req.ttl.is_some_and(|t| t.seconds != 0 || t.nanos != 0) {
        v.push(Violation::new(
            "ttl",
            "leases for service accounts are not supported yet; leave ttl unset",
        ));
    }
    finish(v)
}

/// Checks a `DeleteServiceAccount` request.
pub fn delete_service_account(req: &DeleteServiceAccountRequest) -> Result<(), Vec<Violation>> {
    let mut v = Vec::new();
    check_org_id(&req.org_id, &mut v);
    check_client_id(&req.client_id, &mut v);
    finish(v)
}

/// Checks a `ListServiceAccounts` request.
pub fn list_service_accounts(req: &ListServiceAccountsRequest) -> Result<(), Vec<Violation>> {
    list_page(&req.org_id, req.page_size, &req.page_token)
}

/// Checks a `RotateServiceAccountSecret` request.
pub fn rotate_service_account_secret(
    req: &RotateServiceAccountSecretRequest,
) -> Result<(), Vec<Violation>> {
    let mut v = Vec::new();
    check_org_id(&req.org_id, &mut v);
    check_client_id(&req.client_id, &mut v);
    check_hours(req.secret_expires_after_hours, &mut v);
    check_request_id(&req.request_id, &mut v);
    finish(v)
}

/// True for `^mdb_sa_id_[a-fA-F0-9]{24}$`.
pub fn is_client_id(s: &str) -> bool {
    s.strip_prefix("mdb_sa_id_")
        .is_some_and(|hex| hex.len() == 24 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn check_client_id(client_id: &str, v: &mut Vec<Violation>) {
    if client_id.is_empty() {
        v.push(Violation::new("client_id", "client_id is required"));
    } else if !is_client_id(client_id) {
        v.push(Violation::new(
            "client_id",
            "client_id must be mdb_sa_id_ followed by 24 hexadecimal digits (^mdb_sa_id_[a-fA-F0-9]{24}$)",
        ));
    }
}

/// 1 to `max` characters, each a letter, a digit, a space or one of `-_.,'`.
fn check_text(field: &str, value: &str, max: usize, v: &mut Vec<Violation>) {
    let chars = value.chars().count();
    let allowed = |c: char| c.is_alphabetic() || c.is_numeric() || "-_.,' ".contains(c);
    if chars == 0 || chars > max {
        v.push(Violation::new(
            field,
            format!("{field} is required: 1 to {max} characters (got {chars})"),
        ));
    } else if !value.chars().all(allowed) {
        v.push(Violation::new(
            field,
            format!("{field} may hold only letters, digits, spaces and -_.,' (^[\\p{{L}}\\p{{N}}\\-_.,' ]*$)"),
        ));
    }
}

fn check_hours(hours: i32, v: &mut Vec<Violation>) {
    if !(1..=MAX_SECRET_HOURS).contains(&hours) {
        v.push(Violation::new(
            "secret_expires_after_hours",
            format!("secret_expires_after_hours is required: 1 to {MAX_SECRET_HOURS} (the organization's settings may allow less)"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::OrgRole;

    const ORG: &str = "5f1a0c2b3d4e5f6a7b8c9d0e";

    fn fields(r: Result<(), Vec<Violation>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn create_rules() {
        let mut req = CreateServiceAccountRequest {
            org_id: ORG.into(),
            name: "ci bot, v2".into(),
            description: "Mints tokens for the éüro team".into(),
            roles: vec![OrgRole::OrgMember as i32],
            secret_expires_after_hours: 24,
            ..Default::default()
        };
        assert!(create_service_account(&req).is_ok());
        req.name = "n".repeat(65);
        req.description = "no <html>".into();
        req.roles = vec![0];
        req.secret_expires_after_hours = 0;
        req.access_list_ips = vec!["10.0.0.0/33".into()];
        req.ttl = Some(prost_types::Duration {
            seconds: 60,
            nanos: 0,
        });
        assert_eq!(
            fields(create_service_account(&req)),
            [
                "name",
                "description",
                "roles[0]",
                "secret_expires_after_hours",
                "access_list_ips[0]",
                "ttl"
            ]
        );
    }

    #[test]
    fn client_ids() {
        assert!(is_client_id("mdb_sa_id_0123456789abcdefABCDEF01"));
        for bad in [
            "",
            "mdb_sa_id_0123",
            "mdb_sa_sk_0123456789abcdef01234567",
            "mdb_sa_id_0123456789abcdef0123456g",
        ] {
            assert!(!is_client_id(bad), "{bad}");
        }
        let req = RotateServiceAccountSecretRequest {
            org_id: ORG.into(),
            client_id: "nope".into(),
            secret_expires_after_hours: MAX_SECRET_HOURS + 1,
            request_id: String::new(),
        };
        assert_eq!(
            fields(rotate_service_account_secret(&req)),
            ["client_id", "secret_expires_after_hours"]
        );
    }
}
