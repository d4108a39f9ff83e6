//! The service-account paths of the emulator: which endpoint a method and path address
//! (`resolve`), and the fault route of each.
use http::Method;

use super::super::faults::Route;

/// One service-account endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Endpoint {
    Create,
    List,
    Get,
    Delete,
    CreateSecret,
    DeleteSecret,
    AddAccessList,
    ListAccessList,
}

/// The endpoint (or the methods the path allows), its template, and `clientId` and
/// `secretId`, for the path segments after `/orgs/{orgId}/serviceAccounts`.
#[allow(clippy::type_complexity)]
pub(crate) fn resolve(
    method: &Method,
    rest: &[&str],
) -> Option<(Result<Endpoint, &'static str>, &'static str, Vec<String>)> {
    const BASE: &str = "/api/atlas/v2/orgs/{orgId}/serviceAccounts";
    let (ops, allow, template): (&[(Method, Endpoint)], _, _) = match rest {
        [] => (
            &[
                (Method::POST, Endpoint::Create),
                (Method::GET, Endpoint::List),
            ],
            "GET, POST",
            BASE,
        ),
        [_] => (
            &[
                (Method::GET, Endpoint::Get),
                (Method::DELETE, Endpoint::Delete),
            ],
            "GET, DELETE",
            "/api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}",
        ),
        [_, "secrets"] => (
            &[(Method::POST, Endpoint::CreateSecret)],
            "POST",
            "/api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}/secrets",
        ),
        [_, "secrets", _] => (
            &[(Method::DELETE, Endpoint::DeleteSecret)],
            "DELETE",
            "/api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}/secrets/{secretId}",
        ),
        [_, "accessList"] => (
            &[
                (Method::POST, Endpoint::AddAccessList),
                (Method::GET, Endpoint::ListAccessList),
            ],
            "GET, POST",
            "/api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}/accessList",
        ),
        _ => return None,
    };
    let endpoint = ops
        .iter()
        .find(|(m, _)| m == method)
        .map(|(_, e)| *e)
        .ok_or(allow);
    let ids = rest.iter().step_by(2).map(|s| s.to_string()).collect();
    Some((endpoint, template, ids))
}

impl Endpoint {
    /// The fault route of the endpoint.
    pub(crate) fn route(self) -> Route {
        match self {
            Endpoint::Create => Route::CreateServiceAccount,
            Endpoint::List => Route::ListServiceAccounts,
            Endpoint::Get => Route::GetServiceAccount,
            Endpoint::Delete => Route::DeleteServiceAccount,
            Endpoint::CreateSecret => Route::CreateServiceAccountSecret,
            Endpoint::DeleteSecret => Route::DeleteServiceAccountSecret,
            Endpoint::AddAccessList => Route::CreateServiceAccountAccessList,
            Endpoint::ListAccessList => Route::ListServiceAccountAccessList,
        }
    }
}
