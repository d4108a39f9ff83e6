//! Request validation on whatever a caller can put on the wire: the first byte picks the
//! message type, the rest is decoded as that prost message and validated. Violations are
//! then mapped to a gRPC status, as the service does.
#![no_main]
use atlas_grpc_gateway::{
    atlas::Operation,
    grpc::status::{ErrorContext, Failure},
    pb::{CreateApiKeyRequest, CreateLinkTokenRequest, DeleteLinkTokenRequest},
    validate,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn check(op: Operation, result: Result<(), Vec<validate::Violation>>, known: &[&str]) {
    let Err(violations) = result else { return };
    assert!(!violations.is_empty());
    for v in &violations {
        let base = v.field.split('[').next().unwrap_or_default();
        assert!(known.contains(&base), "unknown field path {:?}", v.field);
    }
    let ctx = ErrorContext {
        operation: op,
        request_id: "fuzz",
        org_id: "",
        profile: "default",
        atlas_domain: "cloud.mongodb.com",
    };
    let status = Failure::Invalid(violations).into_status(&ctx);
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            if let Ok(r) = CreateLinkTokenRequest::decode(bytes) {
                let res = validate::create_link_token(&r);
                check(
                    Operation::CreateLinkToken,
                    res,
                    &["org_id", "access_list_ips", "request_id"],
                );
            }
        }
        1 => {
            if let Ok(r) = DeleteLinkTokenRequest::decode(bytes) {
                check(
                    Operation::DeleteLinkToken,
                    validate::delete_link_token(&r),
                    &["org_id"],
                );
            }
        }
        _ => {
            if let Ok(r) = CreateApiKeyRequest::decode(bytes) {
                let res = validate::create_api_key(&r);
                check(
                    Operation::CreateApiKey,
                    res,
                    &["org_id", "desc", "roles", "request_id"],
                );
            }
        }
    }
});
