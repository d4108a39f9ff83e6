use super::*;
use crate::atlas::{error::ApiFailure, models::ApiError};

fn ctx() -> ErrorContext<'static> {
    ErrorContext {
        operation: Operation::CreateApiKey,
        request_id: "req-1",
        org_id: "5f1a0c2b3d4e5f6a7b8c9d0e",
        profile: "default",
        atlas_domain: "cloud.mongodb.com",
    }
}

fn failure(status: u16, code: Option<&str>, retry_after: Option<Duration>) -> Failure {
    Failure::Atlas(AtlasError::Api(Box::new(ApiFailure {
        status,
        api_error: code.map(|c| ApiError {
            error_code: c.into(),
            error: Some(status),
            detail: Some("it broke".into()),
            ..Default::default()
        }),
        unreadable_body: None,
        error_code_header: None,
        retry_after,
        atlas_request_id: Some("atlas-req".into()),
    })))
}

#[test]
fn code_table() {
    assert_eq!(code_for(409, Some("DUPLICATE_X")), Code::AlreadyExists);
    assert_eq!(
        code_for(409, Some("GROUP_ALREADY_EXISTS")),
        Code::AlreadyExists
    );
    assert_eq!(
        code_for(
            409,
            Some("CANNOT_DELETE_ORG_ACTIVE_LIVE_MIGRATION_ATLAS_ORG_LINK")
        ),
        Code::FailedPrecondition
    );
    assert_eq!(code_for(409, None), Code::Aborted);
    assert_eq!(
        code_for(404, Some("UNEXPECTED_ERROR")),
        Code::NotFound,
        "the status decides"
    );
    assert_eq!(
        code_for(401, Some("NOT_ORG_GROUP_CREATOR")),
        Code::PermissionDenied
    );
    assert_eq!(code_for(400, Some("RATE_LIMITED")), Code::ResourceExhausted);
    assert_eq!(
        code_for(500, Some("SOME_RATE_LIMIT_EXCEEDED")),
        Code::ResourceExhausted
    );
    assert_eq!(
        code_for(503, Some("SERVICE_UNAVAILABLE")),
        Code::Unavailable
    );
    assert_eq!(
        code_for(410, Some("VERSION_GONE")),
        Code::FailedPrecondition
    );
    assert_eq!(code_for(451, None), Code::FailedPrecondition);
    assert_eq!(code_for(599, None), Code::Internal);
    assert_eq!(code_for(504, None), Code::DeadlineExceeded);
}

#[test]
fn field_paths() {
    assert_eq!(proto_field_path("accessListIps"), "access_list_ips");
    assert_eq!(proto_field_path("accessListIps[2]"), "access_list_ips[2]");
    assert_eq!(proto_field_path("roles.roleName"), "roles.role_name");
    assert_eq!(proto_field_path("desc"), "desc");
    assert_eq!(proto_field_path("URL"), "url");
}

#[test]
fn upstream_error_details() {
    let s = failure(
        503,
        Some("SERVICE_UNAVAILABLE"),
        Some(Duration::from_secs(3)),
    )
    .into_status(&ctx());
    assert_eq!(s.code(), Code::Unavailable);
    assert_eq!(s.message(), "it broke");
    let d = s.get_error_details();
    let info = d.error_info().unwrap();
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("SERVICE_UNAVAILABLE", "cloud.mongodb.com")
    );
    assert_eq!(info.metadata["http_status"], "503");
    assert_eq!(info.metadata["operation"], "createOrgApiKey");
    assert_eq!(
        d.retry_info().unwrap().retry_delay,
        Some(Duration::from_secs(3))
    );
    let ri = d.request_info().unwrap();
    assert_eq!(
        (ri.request_id.as_str(), ri.serving_data.as_str()),
        ("req-1", "atlas-req")
    );
    assert!(d.help().unwrap().links[0].url.contains("createOrgApiKey"));
}

#[test]
fn no_retry_info_for_non_retryable_errors_even_with_the_header() {
    let s = failure(404, Some("ORG_NOT_FOUND"), Some(Duration::from_secs(3))).into_status(&ctx());
    assert!(s.get_error_details().retry_info().is_none());
}

#[test]
fn gateway_errors_use_the_gateway_domain() {
    let s = Failure::RequestIdReused.into_status(&ctx());
    assert_eq!(s.code(), Code::InvalidArgument);
    let info = s.get_error_details().error_info().cloned().unwrap();
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("REQUEST_ID_REUSED", GATEWAY_DOMAIN)
    );
    let s = Failure::from(AtlasError::Timeout).into_status(&ctx());
    assert_eq!(s.code(), Code::DeadlineExceeded);
}

#[test]
fn a_store_that_cannot_record_a_request_id_is_retryable_in_a_second() {
    let s = Failure::from(Refused::StoreUnavailable).into_status(&ctx());
    assert_eq!(s.code(), Code::Unavailable);
    let d = s.get_error_details();
    assert_eq!(d.error_info().unwrap().reason, "SHARED_STORE_UNAVAILABLE");
    let delay = d.retry_info().unwrap().retry_delay;
    assert_eq!(delay, Some(Duration::from_secs(1)));
}

#[test]
fn only_failures_without_an_answer_leave_the_outcome_unknown() {
    let unreachable = |sent| AtlasError::Unreachable {
        detail: "reset".into(),
        sent,
    };
    assert!(Failure::from(AtlasError::Timeout).outcome_unknown());
    assert!(Failure::from(unreachable(true)).outcome_unknown());
    assert!(!Failure::from(unreachable(false)).outcome_unknown());
    assert!(!failure(503, None, None).outcome_unknown());
    assert!(!Failure::SharedStoreUnavailable.outcome_unknown());
}
