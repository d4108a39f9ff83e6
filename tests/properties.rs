//! Property tests for the pure, input-facing parts of the gateway: request validation,
//! the upstream body/header parsers and the error mapper.
//!
//! Each property states what must hold for *every* input, not only the hand-picked ones
//! of the unit tests: no panic, field paths that point at the offending field, values
//! capped, codes that follow docs/design tables, no secret leaking into a status message.
//! `PROPTEST_CASES=10000 cargo test --test properties` runs a deeper pass.
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atlas_grpc_gateway::{
    atlas::{
        auth::token_response::{parse_issued, parse_refusal, MAX_TOKEN_LIFETIME},
        error::{excerpt, ApiFailure, AtlasError},
        models::{parse_api_error, ApiError, BadRequestDetail, FieldViolation},
        retry::{parse_retry_after, retryable_status, Idempotency},
        Operation,
    },
    grpc::status::{code_for, proto_field_path, ErrorContext, Failure},
    page_token,
    pb::{CreateApiKeyRequest, CreateLinkTokenRequest, DeleteLinkTokenRequest, ListApiKeysRequest},
    validate::{self, Violation, MAX_ACCESS_LIST_IPS, MAX_DESC_CHARS, MAX_REQUEST_ID_LEN},
};
use proptest::prelude::*;
use serde_json::{json, Value};
use tonic::Code;
use tonic_types::StatusExt;

const ORG: &str = "5f1a0c2b3d4e5f6a7b8c9d0e";

/// `cases` per property, unless `PROPTEST_CASES` asks for another number.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn fields(r: Result<(), Vec<Violation>>) -> Vec<String> {
    r.err()
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// Independent restatement of `^[a-f0-9]{24}$`.
fn org_id_ok(s: &str) -> bool {
    s.len() == 24 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

fn request_id_ok(s: &str) -> bool {
    s.len() <= MAX_REQUEST_ID_LEN && s.chars().all(|c| c.is_ascii_graphic())
}

// ---------------------------------------------------------------- strategies

/// Any string: arbitrary unicode (control characters, RTL marks, NUL, astral planes).
fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[ -~]{0,40}",
        1 => "[a-f0-9]{23,25}",
        1 => "[0-9./:a-fA-F]{0,45}",
        1 => (any::<char>(), 0usize..20_000).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

/// A valid IPv4/IPv6 address or CIDR block, as `is_ip_or_cidr` must accept.
fn valid_ip() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u32>().prop_map(|a| Ipv4Addr::from(a).to_string()),
        any::<u128>().prop_map(|a| Ipv6Addr::from(a).to_string()),
        (any::<u32>(), 0u8..=32).prop_map(|(a, p)| format!("{}/{p}", Ipv4Addr::from(a))),
        (any::<u128>(), 0u8..=128).prop_map(|(a, p)| format!("{}/{p}", Ipv6Addr::from(a))),
        // IPv4-mapped IPv6, with a prefix up to 128.
        (any::<u32>(), 0u8..=128).prop_map(|(a, p)| format!("::ffff:{}/{p}", Ipv4Addr::from(a))),
    ]
}

/// Something that is certainly not an IP or CIDR (independently of the validator).
fn invalid_ip() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        // A letter beyond hex never occurs in an address or a prefix.
        (any::<String>(), any::<String>(), "[g-zG-Z]").prop_map(|(a, b, z)| format!("{a}{z}{b}")),
        // Prefix too long for the family.
        (any::<u32>(), 33u16..1000).prop_map(|(a, p)| format!("{}/{p}", Ipv4Addr::from(a))),
        (any::<u128>(), 129u16..1000).prop_map(|(a, p)| format!("{}/{p}", Ipv6Addr::from(a))),
        // Surrounding whitespace, empty prefix, signed prefix, double prefix.
        any::<u32>().prop_map(|a| format!(" {}", Ipv4Addr::from(a))),
        any::<u32>().prop_map(|a| format!("{}/", Ipv4Addr::from(a))),
        any::<u32>().prop_map(|a| format!("{}/+8", Ipv4Addr::from(a))),
        any::<u32>().prop_map(|a| format!("{}/8/8", Ipv4Addr::from(a))),
        // Three octets.
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
    ]
}

/// A JSON value of bounded depth and size, of any type.
fn any_json() -> impl Strategy<Value = Value> {
    json_values(true)
}

/// `floats: false` leaves out floating-point numbers, which serde_json (without its
/// `float_roundtrip` feature) may read back one ulp off: fine for the gateway, which only
/// re-serializes `parameters` into ErrorInfo metadata, but not an exact round trip.
fn json_values(floats: bool) -> impl Strategy<Value = Value> {
    let float = any::<f64>()
        .prop_filter("finite", |f| f.is_finite())
        .prop_map(move |f| if floats { Value::from(f) } else { Value::Null });
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        float,
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON object using the `ApiError` field names with values of any type (sometimes the
/// right one), plus extra fields.
fn api_error_like_json() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "detail",
        "error",
        "errorCode",
        "parameters",
        "reason",
        "badRequestDetail",
        "fields",
        "field",
        "description",
        "extra",
    ]);
    let value = prop_oneof![
        any_json(),
        "[A-Z_]{1,30}".prop_map(Value::String),
        (0u32..70000).prop_map(Value::from),
        prop::collection::vec(
            (any_json(), any_json()).prop_map(|(f, d)| json!({"field": f, "description": d})),
            0..4
        )
        .prop_map(|v| json!({ "fields": v })),
    ];
    prop::collection::btree_map(names, value, 0..10)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

/// A snake_case proto path segment: lowercase words joined by `_`. Words have at least
/// two characters: `a_b_c` -> `aBC` reads as an acronym, which no mapping can undo.
fn snake_ident() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z][a-z0-9]{1,7}", 1..5)
}

fn camel(words: &[String]) -> String {
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                w.clone()
            } else {
                let mut c = w.chars();
                let first = c.next().unwrap().to_ascii_uppercase();
                std::iter::once(first).chain(c).collect()
            }
        })
        .collect()
}

// ---------------------------------------------------------------- page tokens

proptest! {
    #![proptest_config(config(256))]

    /// A token decodes to its page for its own org and size, and for no other.
    #[test]
    fn page_tokens_round_trip_and_stay_bound(size in 1u32..=500, page in 2u32.., other in 1u32..=500) {
        let token = page_token::encode(ORG, size, page);
        prop_assert_eq!(page_token::decode(&token, ORG, size), Ok(page));
        prop_assert!(page_token::decode(&token, "0123456789abcdef01234567", size).is_err());
        if other != size {
            prop_assert!(page_token::decode(&token, ORG, other).is_err());
        }
    }

    /// Arbitrary ListApiKeys requests: no panic; a page_token violation exactly when the
    /// token is not one issued for this org and (effective) size.
    #[test]
    fn list_validation_is_total(org_id in any_string(), page_size in any::<i32>(), token in any_string()) {
        let req = ListApiKeysRequest { org_id: org_id.clone(), page_size, page_token: token.clone() };
        let got = fields(validate::list_api_keys(&req));
        prop_assert_eq!(got.contains(&"page_size".to_string()), page_size < 0);
        let token_ok = token.is_empty() || page_token::page_size(page_size)
            .is_none_or(|size| page_token::decode(&token, &org_id, size).is_ok());
        prop_assert_eq!(got.contains(&"page_token".to_string()), !token_ok);
    }
}

// ---------------------------------------------------------------- validation

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary CreateLinkToken requests: no panic, and every violation names a field
    /// that exists, exactly once, and exactly when the independent rule says so.
    #[test]
    fn link_token_validation_is_total_and_precise(
        org_id in any_string(),
        ips in prop::collection::vec(any_string(), 0..20),
        request_id in any_string(),
    ) {
        let req = CreateLinkTokenRequest { org_id: org_id.clone(), access_list_ips: ips.clone(), request_id: request_id.clone() };
        let got = fields(validate::create_link_token(&req));
        let mut want = Vec::new();
        if !org_id_ok(&org_id) { want.push("org_id".to_string()); }
        for (i, ip) in ips.iter().enumerate() {
            if !validate::is_ip_or_cidr(ip) { want.push(format!("access_list_ips[{i}]")); }
        }
        if !request_id_ok(&request_id) { want.push("request_id".to_string()); }
        prop_assert_eq!(got, want);
    }

    /// Bad entries at chosen positions among valid ones: exactly `access_list_ips[k]` for
    /// each bad k, nothing else.
    #[test]
    fn bad_ip_entries_are_reported_at_their_index(
        entries in prop::collection::vec(
            prop_oneof![valid_ip().prop_map(|s| (true, s)), invalid_ip().prop_map(|s| (false, s))],
            0..40,
        ),
    ) {
        let req = CreateLinkTokenRequest {
            org_id: ORG.into(),
            access_list_ips: entries.iter().map(|(_, s)| s.clone()).collect(),
            request_id: String::new(),
        };
        let want: Vec<String> = entries
            .iter()
            .enumerate()
            .filter(|(_, (ok, _))| !ok)
            .map(|(i, _)| format!("access_list_ips[{i}]"))
            .collect();
        prop_assert_eq!(fields(validate::create_link_token(&req)), want);
    }

    /// Valid requests pass.
    #[test]
    fn valid_link_token_requests_pass(
        org_id in "[a-f0-9]{24}",
        ips in prop::collection::vec(valid_ip(), 0..30),
        request_id in "[!-~]{0,36}",
    ) {
        let req = CreateLinkTokenRequest { org_id, access_list_ips: ips, request_id };
        prop_assert_eq!(validate::create_link_token(&req), Ok(()));
    }

    /// Arbitrary CreateApiKey requests: violations name exactly the bad fields, with the
    /// index of each bad role.
    #[test]
    fn api_key_validation_is_total_and_precise(
        org_id in any_string(),
        desc in any_string(),
        roles in prop::collection::vec(prop_oneof![0i32..=8, any::<i32>()], 0..12),
        request_id in any_string(),
    ) {
        let req = CreateApiKeyRequest { org_id: org_id.clone(), desc: desc.clone(), roles: roles.clone(), request_id: request_id.clone(), ..Default::default() };
        let got = fields(validate::create_api_key(&req));
        let mut want = Vec::new();
        if !org_id_ok(&org_id) { want.push("org_id".to_string()); }
        let chars = desc.chars().count();
        if chars == 0 || chars > MAX_DESC_CHARS { want.push("desc".to_string()); }
        if roles.is_empty() { want.push("roles".to_string()); }
        for (i, r) in roles.iter().enumerate() {
            if !(1..=7).contains(r) { want.push(format!("roles[{i}]")); }
        }
        if !request_id_ok(&request_id) { want.push("request_id".to_string()); }
        prop_assert_eq!(got, want);
    }

    /// Valid CreateApiKey requests pass, whatever the characters of `desc`.
    #[test]
    fn valid_api_key_requests_pass(
        org_id in "[a-f0-9]{24}",
        desc in prop::collection::vec(any::<char>(), 1..=MAX_DESC_CHARS),
        roles in prop::collection::vec(1i32..=7, 1..8),
        request_id in "[!-~]{0,36}",
    ) {
        let req = CreateApiKeyRequest { org_id, desc: desc.into_iter().collect(), roles, request_id, ..Default::default() };
        prop_assert_eq!(validate::create_api_key(&req), Ok(()));
    }

    #[test]
    fn delete_validation_matches_the_pattern(org_id in any_string()) {
        let ok = org_id_ok(&org_id);
        let got = validate::delete_link_token(&DeleteLinkTokenRequest { org_id });
        prop_assert_eq!(got.is_ok(), ok);
    }

    #[test]
    fn ip_checker_accepts_valid_and_rejects_invalid(ok in valid_ip(), bad in invalid_ip()) {
        prop_assert!(validate::is_ip_or_cidr(&ok), "{ok}");
        prop_assert!(!validate::is_ip_or_cidr(&bad), "{bad}");
    }
}

#[test]
fn huge_inputs_are_bounded() {
    // Over the entry cap: one violation for the list, no per-entry work.
    let req = CreateLinkTokenRequest {
        org_id: ORG.into(),
        access_list_ips: vec!["x".repeat(10_000); MAX_ACCESS_LIST_IPS + 1],
        request_id: String::new(),
    };
    assert_eq!(
        fields(validate::create_link_token(&req)),
        ["access_list_ips"]
    );
    // At the cap: each bad entry is reported.
    let req = CreateLinkTokenRequest {
        access_list_ips: vec!["bad".into(); MAX_ACCESS_LIST_IPS],
        ..req
    };
    assert_eq!(
        fields(validate::create_link_token(&req)).len(),
        MAX_ACCESS_LIST_IPS
    );
    // A 4 MiB description and org id.
    let req = CreateApiKeyRequest {
        org_id: "a".repeat(4 << 20),
        desc: "é".repeat(2 << 20),
        roles: vec![2; 100_000],
        request_id: "r".repeat(1 << 20),
        ..Default::default()
    };
    assert_eq!(
        fields(validate::create_api_key(&req)),
        ["org_id", "desc", "request_id"]
    );
}

// ---------------------------------------------------------------- upstream parsers

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn parse_api_error_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Some(e) = parse_api_error(&body) {
            prop_assert!(!e.error_code.is_empty());
        }
    }

    #[test]
    fn parse_api_error_never_panics_on_json(v in prop_oneof![any_json(), api_error_like_json()]) {
        let body = serde_json::to_vec(&v).unwrap();
        if let Some(e) = parse_api_error(&body) {
            prop_assert!(!e.error_code.is_empty());
            // Whatever parsed came from a JSON object with a string errorCode.
            prop_assert_eq!(v.get("errorCode").and_then(Value::as_str), Some(e.error_code.as_str()));
        }
        // The success bodies too: lenient, never panicking.
        let _ = serde_json::from_slice::<atlas_grpc_gateway::atlas::models::ApiKeyUserDetails>(&body);
        let _ = serde_json::from_slice::<atlas_grpc_gateway::atlas::models::TargetOrg>(&body);
    }

    /// A well-formed ApiError (with extra fields) parses to what was sent.
    #[test]
    fn well_formed_api_errors_round_trip(
        detail in proptest::option::of(any::<String>()),
        status in proptest::option::of(any::<u16>()),
        code in "[A-Z][A-Z_]{0,40}",
        parameters in proptest::option::of(json_values(false)),
        reason in proptest::option::of(any::<String>()),
        fields in proptest::option::of(prop::collection::vec((any::<String>(), any::<String>()), 0..4)),
        extra in any_json(),
    ) {
        let mut v = json!({"errorCode": code, "someFutureField": extra});
        if let Some(d) = &detail { v["detail"] = json!(d); }
        if let Some(s) = status { v["error"] = json!(s); }
        if let Some(p) = &parameters { v["parameters"] = p.clone(); }
        if let Some(r) = &reason { v["reason"] = json!(r); }
        if let Some(f) = &fields {
            v["badRequestDetail"] = json!({"fields": f.iter().map(|(f, d)| json!({"field": f, "description": d})).collect::<Vec<_>>()});
        }
        let got = parse_api_error(&serde_json::to_vec(&v).unwrap()).expect("parses");
        let want = ApiError {
            detail,
            error: status,
            error_code: code,
            // serde maps JSON null to None for Option<Value>.
            parameters: parameters.filter(|p| !p.is_null()),
            reason,
            bad_request_detail: fields.map(|f| BadRequestDetail {
                fields: f.into_iter().map(|(field, description)| FieldViolation { field, description }).collect(),
            }),
        };
        prop_assert_eq!(got, want);
    }

    #[test]
    fn excerpt_is_short_and_printable(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let e = excerpt(&body);
        prop_assert!(e.chars().count() <= 123);
        prop_assert!(e.chars().all(|c| c.is_ascii_graphic() || c == ' ' ), "{e:?}");
    }

    #[test]
    fn retry_after_never_panics_and_is_capped(value in prop_oneof![
        any::<String>(),
        "[0-9]{1,30}",
        "[ \t]{0,2}[0-9]{1,6}[ \t]{0,2}",
        any::<u64>().prop_map(|s| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s % 253_402_300_799))),
        "(Mon|Sun|Xyz), [0-9]{1,3} (Nov|Feb|Foo) [0-9]{1,5} [0-9]{1,3}:[0-9]{1,3}:[0-9]{1,3} (GMT|UTC)",
    ], now_secs in 0u64..253_402_300_799) {
        let now = UNIX_EPOCH + Duration::from_secs(now_secs);
        if let Some(d) = parse_retry_after(&value, now) {
            prop_assert!(d <= Duration::from_secs(3600), "{value:?} -> {d:?}");
        }
    }

    /// Delay-seconds and HTTP dates both give the right delay (capped at 1 h).
    #[test]
    fn retry_after_values_are_exact(secs in 0u64..100_000, now_secs in 0u64..4_000_000_000) {
        let now = UNIX_EPOCH + Duration::from_secs(now_secs);
        let want = Duration::from_secs(secs.min(3600));
        prop_assert_eq!(parse_retry_after(&secs.to_string(), now), Some(want));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(secs));
        prop_assert_eq!(parse_retry_after(&date, now), Some(want));
        let past = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(now_secs.saturating_sub(secs)));
        prop_assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
    }

    /// Idempotent calls retry at least whenever non-idempotent ones do.
    #[test]
    fn retry_rules_are_monotone(status in any::<u16>(), code in proptest::option::of("[A-Z_]{0,30}"), ra in any::<bool>()) {
        let post = retryable_status(Idempotency::NonIdempotent, status, code.as_deref(), ra);
        let delete = retryable_status(Idempotency::Idempotent, status, code.as_deref(), ra);
        prop_assert!(!post || delete);
        prop_assert!(!post || ra, "POST is never retried without Retry-After");
        if status == 500 || (400..=428).contains(&status) && code.as_deref().is_none_or(|c| !c.contains("RATE_LIMIT")) {
            prop_assert!(!delete);
        }
    }
}

/// Token endpoint 200 bodies: JSON-ish objects around `access_token` and `expires_in`.
fn token_body() -> impl Strategy<Value = Vec<u8>> {
    let expires = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        any_string().prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("null".to_string()),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        (any_string(), expires).prop_map(|(token, expires)| format!(
            r#"{{"access_token":{},"expires_in":{expires}}}"#,
            serde_json::to_string(&token).unwrap()
        )
        .into_bytes()),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    /// The fuzz target `token_response`, as a property every `cargo test` runs.
    #[test]
    fn token_responses_never_panic_and_lifetimes_are_bounded(body in token_body(), status in 400u16..404) {
        if let Ok(issued) = parse_issued(&body) {
            prop_assert!(issued.lifetime >= Duration::from_secs(1));
            prop_assert!(issued.lifetime <= MAX_TOKEN_LIFETIME);
            prop_assert!(std::time::Instant::now().checked_add(issued.lifetime).is_some());
            prop_assert!(!issued.access_token.is_empty());
            prop_assert!(issued.access_token.bytes().all(|b| b.is_ascii_graphic()));
        }
        let _ = parse_refusal(status, &body);
    }
}

// ---------------------------------------------------------------- error mapper

/// The status rows of `../shared/design/errors.md` (no errorCode), for `code_for`.
fn table(status: u16) -> Code {
    match status {
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 => Code::Aborted,
        402 | 410 | 412 => Code::FailedPrecondition,
        429 => Code::ResourceExhausted,
        500 => Code::Internal,
        501 => Code::Unimplemented,
        502 | 503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        405..=499 => Code::FailedPrecondition,
        _ => Code::Internal,
    }
}

#[test]
fn code_for_matches_the_table_for_every_4xx_5xx() {
    for status in 400..=599u16 {
        assert_eq!(code_for(status, None), table(status), "{status}");
        // An errorCode that is neither an override nor a rate limit changes nothing.
        assert_eq!(
            code_for(status, Some("UNEXPECTED_ERROR")),
            table(status),
            "{status}"
        );
        assert_eq!(
            code_for(status, Some("RATE_LIMITED")),
            Code::ResourceExhausted
        );
        assert_eq!(
            code_for(status, Some("RATE_LIMITED_TOKEN_BUCKET")),
            Code::ResourceExhausted
        );
        for (c, want) in [
            (
                "CANNOT_DELETE_ORG_ACTIVE_LIVE_MIGRATION_ATLAS_ORG_LINK",
                Code::FailedPrecondition,
            ),
            ("NO_PAYMENT_INFORMATION_FOUND", Code::FailedPrecondition),
            ("VERSION_GONE", Code::FailedPrecondition),
            ("SERVICE_UNAVAILABLE", Code::Unavailable),
            ("NOT_ORG_GROUP_CREATOR", Code::PermissionDenied),
        ] {
            assert_eq!(code_for(status, Some(c)), want, "{status} {c}");
        }
    }
    assert_eq!(
        code_for(409, Some("DUPLICATE_API_KEY")),
        Code::AlreadyExists
    );
    assert_eq!(
        code_for(409, Some("ORG_LINK_ALREADY_EXISTS")),
        Code::AlreadyExists
    );
    assert_eq!(code_for(409, Some("CONFLICT")), Code::Aborted);
    assert_eq!(code_for(404, Some("UNEXPECTED_ERROR")), Code::NotFound);
}

proptest! {
    #![proptest_config(config(512))]

    /// Total over every status and errorCode, and never OK or UNKNOWN.
    #[test]
    fn code_for_is_total(status in any::<u16>(), code in proptest::option::of(any_string())) {
        let c = code_for(status, code.as_deref());
        prop_assert_ne!(c, Code::Ok);
        prop_assert_ne!(c, Code::Unknown);
    }

    #[test]
    fn proto_field_path_never_panics(s in any_string()) {
        let out = proto_field_path(&s);
        prop_assert!(!out.chars().any(|c| c.is_ascii_uppercase()));
        // Already-snake paths are unchanged.
        if !s.chars().any(|c| c.is_ascii_uppercase()) {
            prop_assert_eq!(out, s);
        }
    }

    /// camelCase (as Atlas names fields) maps to snake_case, segment by segment, with
    /// indexes kept: `accessListIps[3].fooBar` -> `access_list_ips[3].foo_bar`.
    #[test]
    fn proto_field_path_maps_camel_to_snake(
        segments in prop::collection::vec((snake_ident(), proptest::option::of(0usize..10_000)), 1..4),
    ) {
        let atlas = segments
            .iter()
            .map(|(w, i)| format!("{}{}", camel(w), i.map(|i| format!("[{i}]")).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(".");
        let proto = segments
            .iter()
            .map(|(w, i)| format!("{}{}", w.join("_"), i.map(|i| format!("[{i}]")).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(".");
        prop_assert_eq!(proto_field_path(&atlas), proto);
    }
}

/// Facts from `../shared/design/errors.md`, row by row (not derived from `code_for`):
/// Atlas's HTTP status and errorCode, the gRPC code the caller must see, and the
/// ErrorInfo reason.
const FACTS: &[(u16, Option<&str>, Code)] = &[
    (400, Some("INVALID_ATTRIBUTE"), Code::InvalidArgument),
    (400, Some("RATE_LIMITED"), Code::ResourceExhausted),
    (
        400,
        Some("RATE_LIMITED_TOKEN_BUCKET"),
        Code::ResourceExhausted,
    ),
    (401, Some("UNAUTHORIZED"), Code::Unauthenticated),
    (401, Some("NOT_ORG_GROUP_CREATOR"), Code::PermissionDenied),
    (
        403,
        Some("CANNOT_CHANGE_GROUP_NAME"),
        Code::PermissionDenied,
    ),
    (404, Some("RESOURCE_NOT_FOUND"), Code::NotFound),
    (404, Some("ORG_NOT_FOUND"), Code::NotFound),
    (404, Some("UNEXPECTED_ERROR"), Code::NotFound),
    (409, Some("DUPLICATE_API_KEY"), Code::AlreadyExists),
    (409, Some("ORG_LINK_ALREADY_EXISTS"), Code::AlreadyExists),
    (409, Some("CONFLICT"), Code::Aborted),
    (
        409,
        Some("CANNOT_DELETE_ORG_ACTIVE_LIVE_MIGRATION_ATLAS_ORG_LINK"),
        Code::FailedPrecondition,
    ),
    (
        402,
        Some("NO_PAYMENT_INFORMATION_FOUND"),
        Code::FailedPrecondition,
    ),
    (410, Some("VERSION_GONE"), Code::FailedPrecondition),
    (412, Some("PRECONDITION_FAILED"), Code::FailedPrecondition),
    (418, Some("TEAPOT"), Code::FailedPrecondition),
    (429, Some("RATE_LIMITED"), Code::ResourceExhausted),
    (500, Some("UNEXPECTED_ERROR"), Code::Internal),
    (501, Some("NOT_IMPLEMENTED"), Code::Unimplemented),
    (502, Some("BAD_GATEWAY"), Code::Unavailable),
    (503, Some("SERVICE_UNAVAILABLE"), Code::Unavailable),
    (504, Some("GATEWAY_TIMEOUT"), Code::DeadlineExceeded),
    (599, Some("ODD"), Code::Internal),
    // Not an ApiError body at all: the status alone decides.
    (400, None, Code::InvalidArgument),
    (401, None, Code::Unauthenticated),
    (403, None, Code::PermissionDenied),
    (404, None, Code::NotFound),
    (409, None, Code::Aborted),
    (429, None, Code::ResourceExhausted),
    (500, None, Code::Internal),
    (502, None, Code::Unavailable),
    (503, None, Code::Unavailable),
    (504, None, Code::DeadlineExceeded),
];

#[test]
fn into_status_follows_the_documented_facts() {
    for &(status, error_code, want) in FACTS {
        let api_error = error_code.map(|c| ApiError {
            detail: Some(format!("Atlas says {c}")),
            error: Some(status),
            error_code: c.to_string(),
            parameters: None,
            reason: None,
            bad_request_detail: None,
        });
        let unreadable_body = error_code.is_none().then(|| "an HTML page".to_string());
        let f = ApiFailure {
            status,
            api_error,
            unreadable_body,
            error_code_header: None,
            retry_after: Some(Duration::from_secs(7)),
            atlas_request_id: Some("atlas-req".into()),
        };
        let s = Failure::Atlas(AtlasError::Api(Box::new(f))).into_status(&ctx());
        assert_eq!(s.code(), want, "{status} {error_code:?}");
        let d = s.check_error_details().unwrap();
        let info = d.error_info().unwrap();
        assert_eq!(
            info.reason,
            error_code.unwrap_or("UPSTREAM_BAD_RESPONSE"),
            "{status}"
        );
        assert_eq!(info.metadata["http_status"], status.to_string());
        assert_eq!(d.request_info().unwrap().serving_data, "atlas-req");
        if want == Code::ResourceExhausted {
            assert_eq!(
                d.retry_info().unwrap().retry_delay,
                Some(Duration::from_secs(7))
            );
            assert!(
                d.quota_failure().is_some(),
                "{status} {error_code:?}: QuotaFailure"
            );
        }
    }
    let token_and_transport = [
        (
            AtlasError::CredentialsRejected {
                status: 401,
                detail: "invalid_client".into(),
            },
            Code::Unauthenticated,
            "ATLAS_CREDENTIALS_REJECTED",
        ),
        (
            AtlasError::TokenLimitReached {
                retry_after: Duration::from_secs(60),
            },
            Code::ResourceExhausted,
            "ATLAS_TOKEN_LIMIT_REACHED",
        ),
        (
            AtlasError::TokenEndpointUnavailable {
                detail: "HTTP 503".into(),
            },
            Code::Unavailable,
            "TOKEN_ENDPOINT_UNAVAILABLE",
        ),
        (
            AtlasError::TokenEndpointRateLimited { retry_after: None },
            Code::ResourceExhausted,
            "TOKEN_ENDPOINT_RATE_LIMITED",
        ),
        (
            AtlasError::Unreachable {
                detail: "refused".into(),
                sent: false,
            },
            Code::Unavailable,
            "UPSTREAM_UNREACHABLE",
        ),
        (
            AtlasError::Timeout,
            Code::DeadlineExceeded,
            "DEADLINE_EXCEEDED",
        ),
        (
            AtlasError::BadResponse {
                status: 201,
                what: "not JSON".into(),
                atlas_request_id: None,
            },
            Code::Internal,
            "UPSTREAM_BAD_RESPONSE",
        ),
    ];
    for (e, want, reason) in token_and_transport {
        let s = Failure::Atlas(e).into_status(&ctx());
        assert_eq!(
            (
                s.code(),
                s.check_error_details()
                    .unwrap()
                    .error_info()
                    .unwrap()
                    .reason
                    .as_str()
            ),
            (want, reason)
        );
    }
    // A token-endpoint 429 without Retry-After: RetryInfo of 60 s.
    let s = Failure::Atlas(AtlasError::TokenEndpointRateLimited { retry_after: None })
        .into_status(&ctx());
    assert_eq!(
        s.check_error_details()
            .unwrap()
            .retry_info()
            .unwrap()
            .retry_delay,
        Some(Duration::from_secs(60))
    );
}

const MARKER: &str = "SeCrEt-MaRkEr-7f3a";

fn ctx() -> ErrorContext<'static> {
    ErrorContext {
        operation: Operation::CreateApiKey,
        request_id: "req-1",
        org_id: ORG,
        profile: "default",
        atlas_domain: "cloud.mongodb.com",
    }
}

/// A string that sometimes embeds the marker.
fn maybe_marked() -> impl Strategy<Value = String> {
    (any_string(), any::<bool>(), any_string()).prop_map(|(a, mark, b)| {
        if mark {
            format!("{a}{MARKER}{b}")
        } else {
            a
        }
    })
}

/// An arbitrary ApiFailure whose *unrelated* fields (reason, parameters,
/// badRequestDetail, Atlas request id, unreadable-body note, the `X-Error-Code` header
/// when the body has its own code) may carry the marker, while the fields that may
/// legitimately appear in the message (detail, errorCode) never do.
fn api_failure() -> impl Strategy<Value = ApiFailure> {
    let api_error = (
        proptest::option::of(any_string().prop_filter("no marker", |s| !s.contains(MARKER))),
        proptest::option::of(any::<u16>()),
        prop_oneof![
            "[A-Z_]{0,40}",
            Just("RATE_LIMITED".to_string()),
            Just("VERSION_GONE".to_string()),
            Just("DUPLICATE_KEY".to_string()),
        ],
        proptest::option::of((any_json(), any::<bool>()).prop_map(|(v, m)| {
            if m {
                json!([v, MARKER])
            } else {
                v
            }
        })),
        proptest::option::of(maybe_marked()),
        proptest::option::of(prop::collection::vec(
            (maybe_marked(), maybe_marked()),
            0..4,
        )),
    )
        .prop_map(
            |(detail, error, error_code, parameters, reason, fields)| ApiError {
                detail,
                error,
                error_code,
                parameters,
                reason,
                bad_request_detail: fields.map(|f| BadRequestDetail {
                    fields: f
                        .into_iter()
                        .map(|(field, description)| FieldViolation { field, description })
                        .collect(),
                }),
            },
        );
    (
        prop_oneof![400u16..=599, any::<u16>()],
        proptest::option::of(api_error),
        proptest::option::of(maybe_marked()),
        maybe_marked(),
        proptest::option::of(any::<u64>().prop_map(Duration::from_millis)),
        proptest::option::of(maybe_marked()),
    )
        .prop_map(
            |(status, api_error, unreadable_body, header, retry_after, atlas_request_id)| {
                // The header is an unrelated field only when the body names its own code.
                let error_code_header = if api_error.is_some() {
                    Some(header)
                } else {
                    Some(header.replace(MARKER, "")).filter(|h| !h.is_empty())
                };
                ApiFailure {
                    status,
                    api_error,
                    unreadable_body,
                    error_code_header,
                    retry_after,
                    atlas_request_id,
                }
            },
        )
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn into_status_never_panics_nor_leaks(f in api_failure()) {
        let status_code = f.status;
        let error_code = f.error_code().map(str::to_string);
        let detail = f.api_error.as_ref().and_then(|e| e.detail.clone()).filter(|d| !d.is_empty());
        let s = Failure::Atlas(AtlasError::Api(Box::new(f))).into_status(&ctx());
        prop_assert!(!s.message().contains(MARKER), "{:?}", s.message());
        prop_assert!(!matches!(s.code(), Code::Ok | Code::Unknown));
        // Any rate-limit errorCode is RESOURCE_EXHAUSTED, whatever the status (errors.md).
        if error_code.as_deref().is_some_and(|c| c.contains("RATE_LIMIT")) {
            prop_assert_eq!(s.code(), Code::ResourceExhausted);
        }
        if let Some(d) = &detail {
            prop_assert!(s.message().contains(d.as_str()));
        }
        // The status survives the trip to HTTP/2 trailers and back.
        prop_assert!(s.add_header(&mut http::HeaderMap::new()).is_ok());
        let details = s.check_error_details().expect("details decode");
        let info = details.error_info().expect("ErrorInfo on every error");
        prop_assert_eq!(info.metadata.get("http_status"), Some(&status_code.to_string()));
        prop_assert_eq!(info.domain.as_str(), "cloud.mongodb.com");
        if let Some(ri) = details.retry_info() {
            prop_assert!(ri.retry_delay.is_some());
        }
    }

    /// Every other failure kind with arbitrary text: no panic, never OK.
    #[test]
    fn other_failures_never_panic(
        a in any_string(),
        b in any_string(),
        n in any::<u16>(),
        sent in any::<bool>(),
        ra in proptest::option::of(any::<u64>().prop_map(Duration::from_secs)),
        violations in prop::collection::vec((any_string(), any_string()), 0..5),
        pick in 0usize..12,
    ) {
        let failure = match pick {
            0 => Failure::Invalid(violations.into_iter().map(|(field, description)| Violation { field, description }).collect()),
            1 => Failure::UnknownProfile(a),
            2 => Failure::PolicyDenied { caller: b.clone(), field: a, detail: b },
            3 => Failure::RequestIdReused,
            4 if sent => Failure::AuditUnavailable,
            4 => Failure::Overloaded,
            5 => Failure::Atlas(AtlasError::BadResponse { status: n, what: a, atlas_request_id: Some(b) }),
            6 => Failure::Atlas(AtlasError::Unreachable { detail: a, sent }),
            7 => Failure::Atlas(AtlasError::Timeout),
            8 => Failure::Atlas(AtlasError::CredentialsRejected { status: n, detail: a }),
            9 => Failure::Atlas(AtlasError::TokenEndpointUnavailable { detail: a }),
            10 => Failure::Atlas(AtlasError::TokenLimitReached { retry_after: ra.unwrap_or_default() }),
            _ => Failure::Atlas(AtlasError::TokenEndpointRateLimited { retry_after: ra }),
        };
        let op = [Operation::CreateLinkToken, Operation::DeleteLinkToken, Operation::CreateApiKey][pick % 3];
        let c = ErrorContext { operation: op, ..ctx() };
        let s = failure.into_status(&c);
        prop_assert_ne!(s.code(), Code::Ok);
        prop_assert!(s.add_header(&mut http::HeaderMap::new()).is_ok());
        prop_assert!(s.check_error_details().is_ok());
    }
}

#[test]
fn retry_after_extreme_dates() {
    let far = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    assert_eq!(
        parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", far),
        Some(Duration::ZERO)
    );
    assert_eq!(
        parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", UNIX_EPOCH),
        Some(Duration::from_secs(3600))
    );
    assert!(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", SystemTime::now()).is_some());
}

// ---------------------------------------------------------------- Digest challenges

use atlas_grpc_gateway::{atlas::auth::digest::DigestSession, secret::Secret};

/// Found by `cargo fuzz run digest_challenge`: `digest_auth::parse` 0.3.1 slices the
/// header by char index as if it were a byte index, so a non-ASCII character before a
/// `name=` panics ("byte index is not a char boundary").
#[test]
fn non_ascii_digest_challenge_does_not_panic() {
    let s = DigestSession::new("pub", Secret::new("private"));
    let mut s = s.lease();
    let challenge = "Digest realm=\"r\", nonce=\"n\", algorithM=5s-Dmess,\u{5ce}o qop=\"auth,auth-int\", charseTF-7, userhash=true";
    assert!(!s.accept_challenge(challenge));
    assert!(!s.accept_challenge("Digest réalm=\"x\", nonce=\"n\""));
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn digest_challenges_never_panic(
        prefix in prop_oneof![Just("Digest ".to_string()), any::<String>()],
        params in prop::collection::vec((any_string(), any_string(), any::<bool>()), 0..6),
        uri in any::<String>(),
    ) {
        let challenge = prefix + &params
            .iter()
            .map(|(k, v, q)| if *q { format!("{k}=\"{v}\"") } else { format!("{k}={v}") })
            .collect::<Vec<_>>()
            .join(", ");
        let session = DigestSession::new("pub", Secret::new("private-key-value"));
        let mut s = session.lease();
        if s.accept_challenge(&challenge) {
            if let Some(h) = s.authorization("POST", &uri) {
                prop_assert!(!h.contains("private-key-value"));
            }
        }
    }
}
