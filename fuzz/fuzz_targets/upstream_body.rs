//! Upstream response bodies: whatever Atlas (or a proxy in front of it) sends back.
//! `parse_api_error` for error bodies, serde of the two success shapes, and the
//! sanitized excerpt used when a body is not an `ApiError`.
#![no_main]
use atlas_grpc_gateway::atlas::{
    error::excerpt,
    models::{parse_api_error, ApiKeyUserDetails, TargetOrg},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(e) = parse_api_error(data) {
        assert!(!e.error_code.is_empty());
    }
    if let Ok(k) = serde_json::from_slice::<ApiKeyUserDetails>(data) {
        // The private key never shows in Debug output.
        if k.private_key.is_some() {
            assert_eq!(format!("{:?}", k.private_key), "Some([REDACTED])");
        }
    }
    let _ = serde_json::from_slice::<TargetOrg>(data);
    let e = excerpt(data);
    assert!(e.chars().count() <= 123);
    assert!(e.chars().all(|c| c.is_ascii_graphic() || c == ' '));
});
