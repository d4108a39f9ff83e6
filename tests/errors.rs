//! The error table (errors.md) at the gRPC boundary: each upstream answer or failure,
//! injected into the emulator, must come back with the documented code and details.
mod common;

use std::time::Duration;

use common::*;
use tonic::Code;

/// One row: inject `action` on CreateApiKey (a POST: never retried unless Atlas said it
/// was not processed), expect `code` and ErrorInfo `reason`.
async fn row(action: FaultAction, code: Code, reason_: &str) -> tonic::Status {
    row_n(action, code, reason_, 1).await
}

/// Like `row`, expecting `posts` upstream attempts (401 refreshes the token and retries once).
async fn row_n(action: FaultAction, code: Code, reason_: &str, posts: u64) -> tonic::Status {
    let gw = Gateway::start().await;
    gw.emulator.inject(Fault::new(Route::CreateApiKey, action));
    let err = gw
        .client()
        .create_api_key(key_req(DEMO_ORG_ID))
        .await
        .unwrap_err();
    assert_eq!(err.code(), code, "{err:?}");
    assert_eq!(reason(&err), reason_, "{err:?}");
    let d = details(&err);
    assert!(
        d.request_info().is_some_and(|r| !r.request_id.is_empty()),
        "RequestInfo on every error"
    );
    assert!(!err.message().is_empty());
    assert_eq!(
        gw.emulator
            .counters()
            .requests_for("POST", "/api/atlas/v2/orgs/{orgId}/apiKeys"),
        posts,
        "POST not retried"
    );
    gw.stop().await;
    err
}

#[tokio::test]
async fn status_codes_map_per_table() {
    let cases: &[(u16, &str, Code)] = &[
        (400, "INVALID_ATTRIBUTE", Code::InvalidArgument),
        (401, "NOT_ORG_GROUP_CREATOR", Code::PermissionDenied),
        (403, "CANNOT_CHANGE_GROUP_NAME", Code::PermissionDenied),
        (404, "ORG_NOT_FOUND", Code::NotFound),
        (409, "DUPLICATE_API_KEY", Code::AlreadyExists),
        (409, "API_KEY_ALREADY_EXISTS", Code::AlreadyExists),
        (
            409,
            "CANNOT_DELETE_ORG_ACTIVE_LIVE_MIGRATION_ATLAS_ORG_LINK",
            Code::FailedPrecondition,
        ),
        (409, "CONFLICTING_UPDATE", Code::Aborted),
        (
            402,
            "NO_PAYMENT_INFORMATION_FOUND",
            Code::FailedPrecondition,
        ),
        (412, "PRECONDITION_FAILED", Code::FailedPrecondition),
        (418, "TEAPOT", Code::FailedPrecondition),
        (429, "RATE_LIMITED", Code::ResourceExhausted),
        (400, "RATE_LIMITED_TOKEN_BUCKET", Code::ResourceExhausted),
        (500, "UNEXPECTED_ERROR", Code::Internal),
        (501, "NOT_IMPLEMENTED", Code::Unimplemented),
        (502, "BAD_GATEWAY", Code::Unavailable),
        (503, "SERVICE_UNAVAILABLE", Code::Unavailable),
        (504, "GATEWAY_TIMEOUT", Code::DeadlineExceeded),
        (507, "INSUFFICIENT_STORAGE", Code::Internal),
    ];
    for (status, code_name, code) in cases {
        let posts = if *status == 401 { 2 } else { 1 };
        let err = row_n(
            FaultAction::error(*status, code_name),
            *code,
            code_name,
            posts,
        )
        .await;
        assert_eq!(meta(&err, "http_status"), Some(status.to_string()));
        assert_eq!(meta(&err, "org_id").as_deref(), Some(DEMO_ORG_ID));
        assert_eq!(details(&err).error_info().unwrap().domain, "127.0.0.1");
        assert!(details(&err).help().is_some(), "Help link");
    }
}

#[tokio::test]
async fn version_gone_names_the_flag() {
    let err = row(
        FaultAction::error(410, "VERSION_GONE"),
        Code::FailedPrecondition,
        "VERSION_GONE",
    )
    .await;
    assert!(err.message().contains("--api-version"), "{}", err.message());
}

#[tokio::test]
async fn atlas_detail_parameters_and_bad_request_fields_survive() {
    let action = FaultAction::Error {
        status: 400,
        error_code: "INVALID_ATTRIBUTE".into(),
        detail: Some("Invalid attribute accessListIps specified.".into()),
        retry_after: None,
        parameters: Some(serde_json::json!(["accessListIps"])),
        bad_request_fields: vec![
            ("accessListIps[0]".into(), "bad entry".into()),
            ("desc".into(), "too long".into()),
        ],
    };
    let err = row(action, Code::InvalidArgument, "INVALID_ATTRIBUTE").await;
    assert_eq!(err.message(), "Invalid attribute accessListIps specified.");
    assert_eq!(
        meta(&err, "parameters").as_deref(),
        Some(r#"["accessListIps"]"#)
    );
    let d = details(&err);
    let v = &d.bad_request().unwrap().field_violations;
    assert_eq!(
        (v[0].field.as_str(), v[0].description.as_str()),
        ("access_list_ips[0]", "bad entry")
    );
    assert_eq!(v[1].field, "desc");
    assert_eq!(
        d.localized_message().unwrap().message,
        "Invalid attribute accessListIps specified."
    );
}

#[tokio::test]
async fn rate_limits_carry_retry_info_and_quota_failure() {
    // Retry-After longer than the deadline: the gateway stops and tells the caller when.
    let gw = Gateway::start().await;
    gw.emulator.inject(Fault::new(
        Route::CreateApiKey,
        FaultAction::error_with_retry_after(429, "RATE_LIMITED", "7"),
    ));
    let req = with_meta(key_req(DEMO_ORG_ID), &[], Some(Duration::from_secs(2)));
    let err = gw.client().create_api_key(req).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(reason(&err), "RATE_LIMITED");
    let d = details(&err);
    assert_eq!(
        d.retry_info().unwrap().retry_delay,
        Some(Duration::from_secs(7))
    );
    assert!(d.quota_failure().is_some());
    assert_eq!(
        gw.emulator
            .counters()
            .requests_for("POST", "/api/atlas/v2/orgs/{orgId}/apiKeys"),
        1
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_429_storm_is_retried_within_the_deadline_then_reported() {
    let gw = Gateway::start().await;
    // Retry-After 0: Atlas said "not processed, retry": the POST is retried with backoff.
    gw.emulator.inject(Fault::new(
        Route::CreateApiKey,
        FaultAction::error_with_retry_after(429, "RATE_LIMITED", "0"),
    ));
    let err = gw
        .client()
        .create_api_key(key_req(DEMO_ORG_ID))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(
        details(&err).retry_info().unwrap().retry_delay,
        Some(Duration::ZERO)
    );
    let c = gw.emulator.counters();
    assert_eq!(
        c.requests_for("POST", "/api/atlas/v2/orgs/{orgId}/apiKeys"),
        4,
        "max attempts"
    );
    assert_eq!(c.api_keys_created, 0);

    // A transient 429 then success: the caller never sees it.
    gw.emulator.clear_faults();
    gw.emulator.inject(Fault::once(
        Route::CreateApiKey,
        FaultAction::error_with_retry_after(429, "RATE_LIMITED", "1"),
    ));
    gw.client()
        .create_api_key(key_req(DEMO_ORG_ID))
        .await
        .unwrap();
    assert_eq!(
        gw.emulator.counters().api_keys_created,
        1,
        "exactly one key"
    );
    gw.stop().await;
}

#[tokio::test]
async fn idempotent_delete_retries_5xx_bursts() {
    let gw = Gateway::start().await;
    gw.client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap();
    gw.emulator.inject(
        Fault::once(
            Route::DeleteLinkToken,
            FaultAction::error(503, "SERVICE_UNAVAILABLE"),
        )
        .limit(2),
    );
    gw.client()
        .delete_link_token(delete_req(DEMO_ORG_ID))
        .await
        .unwrap();
    assert_eq!(
        gw.emulator.counters().requests_for(
            "DELETE",
            "/api/atlas/v2/orgs/{orgId}/liveMigrations/linkTokens"
        ),
        3
    );

    gw.emulator.inject(Fault::new(
        Route::DeleteLinkToken,
        FaultAction::error_with_retry_after(502, "BAD_GATEWAY", "0"),
    ));
    let err = gw
        .client()
        .delete_link_token(delete_req(DEMO_ORG_ID))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        details(&err).retry_info().is_some(),
        "Retry-After becomes RetryInfo"
    );
    gw.stop().await;
}

#[tokio::test]
async fn post_500_is_never_retried() {
    row(
        FaultAction::error(500, "UNEXPECTED_ERROR"),
        Code::Internal,
        "UNEXPECTED_ERROR",
    )
    .await;
}

#[tokio::test]
async fn odd_upstream_bodies() {
    let err = row(
        FaultAction::Html { status: 502 },
        Code::Unavailable,
        "UPSTREAM_BAD_RESPONSE",
    )
    .await;
    assert!(
        !err.message().contains("<html"),
        "no raw body in the message: {}",
        err.message()
    );
    assert!(meta(&err, "upstream_body").unwrap().contains("not JSON"));
    row(
        FaultAction::Raw {
            status: 404,
            content_type: "application/json".into(),
            body: "{\"x\":1}".into(),
        },
        Code::NotFound,
        "UPSTREAM_BAD_RESPONSE",
    )
    .await;
    row(
        FaultAction::Raw {
            status: 500,
            content_type: "text/plain".into(),
            body: String::new(),
        },
        Code::Internal,
        "UPSTREAM_BAD_RESPONSE",
    )
    .await;
    let err = row(
        FaultAction::Oversized {
            status: 500,
            bytes: 5 << 20,
        },
        Code::Internal,
        "UPSTREAM_BAD_RESPONSE",
    )
    .await;
    assert!(meta(&err, "upstream_body").unwrap().contains("limit"));
    // 2xx that does not parse: INTERNAL, and the caller is told the key may exist.
    let err = row(
        FaultAction::Truncated { status: 200 },
        Code::Internal,
        "UPSTREAM_BAD_RESPONSE",
    )
    .await;
    assert!(
        err.message().contains("may have taken effect"),
        "{}",
        err.message()
    );
    row(
        FaultAction::Oversized {
            status: 200,
            bytes: 2 << 20,
        },
        Code::Internal,
        "UPSTREAM_BAD_RESPONSE",
    )
    .await;
    row(
        FaultAction::Raw {
            status: 200,
            content_type: "application/json".into(),
            body: "[]".into(),
        },
        Code::Internal,
        "UPSTREAM_BAD_RESPONSE",
    )
    .await;
}

#[tokio::test]
async fn connection_reset_is_unavailable() {
    let err = row(
        FaultAction::Reset,
        Code::Unavailable,
        "UPSTREAM_UNREACHABLE",
    )
    .await;
    assert!(
        err.message().contains("may have reached Atlas"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn unreachable_atlas_is_unavailable_after_retries() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = Gateway::start_with(Default::default(), |c| {
        for p in c.profiles.values_mut() {
            p.base_url = format!("http://{dead}");
        }
    })
    .await;
    let req = with_meta(key_req(DEMO_ORG_ID), &[("x-atlas-profile", "apikey")], None);
    let err = gw.client().create_api_key(req).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(reason(&err), "UPSTREAM_UNREACHABLE");
    assert!(
        err.message().contains("could not connect"),
        "{}",
        err.message()
    );
    gw.stop().await;
}

#[tokio::test]
async fn slow_upstream_past_the_deadline_is_deadline_exceeded() {
    let gw = Gateway::start().await;
    gw.client()
        .delete_link_token(delete_req(DEMO_ORG_ID))
        .await
        .unwrap_err(); // warm the token
                       // Atlas would answer in ten minutes: any answer at all is the deadline's doing.
    create_past_a_3s_deadline(&gw, FaultAction::Latency { millis: 600_000 }).await;
    gw.stop().await;
}

/// CreateLinkToken with a 3 s deadline while Atlas does `action`: the gateway's own
/// DEADLINE_EXCEEDED with details, not a transport timeout.
async fn create_past_a_3s_deadline(gw: &Gateway, action: FaultAction) {
    gw.emulator
        .inject(Fault::new(Route::CreateLinkToken, action));
    let req = with_meta(link_req(DEMO_ORG_ID), &[], Some(Duration::from_secs(3)));
    let err = gw.client().create_link_token(req).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert_eq!(
        reason(&err),
        "DEADLINE_EXCEEDED",
        "our answer with details, not a transport timeout"
    );
}

#[tokio::test]
async fn a_body_that_stalls_past_the_deadline_is_deadline_exceeded() {
    let gw = Gateway::start().await;
    // Headers and half the body arrive at once; the rest never does. The call's one
    // deadline covers the body as well as the send.
    create_past_a_3s_deadline(&gw, FaultAction::StalledBody { status: 200 }).await;
    assert_eq!(
        gw.emulator
            .counters()
            .requests
            .get(LINK_TOKENS_POST)
            .copied(),
        Some(1),
        "a POST whose answer was cut is not sent again"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_cancelled_call_drops_its_upstream_request() {
    let gw = Gateway::start().await;
    gw.emulator.inject(Fault::once(
        Route::CreateLinkToken,
        FaultAction::Latency { millis: 600_000 },
    ));
    let mut c = gw.client();
    let call = tokio::spawn(async move { c.create_link_token(link_req(DEMO_ORG_ID)).await });
    let emulator = &gw.emulator;
    eventually("the creation reaches Atlas", || {
        let seen = emulator.counters().requests.get(LINK_TOKENS_POST).copied();
        std::future::ready(seen == Some(1))
    })
    .await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    // The gateway dropped its Atlas request: the emulator saw the client hang up (it
    // would otherwise answer only after ten minutes), and nothing was created.
    eventually("Atlas sees the request abandoned", || {
        std::future::ready(emulator.counters().abandoned == 1)
    })
    .await;
    assert_eq!(gw.emulator.counters().link_tokens_created, 0);
    gw.client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn a_long_caller_deadline_is_capped_by_max_call_duration() {
    let gw = Gateway::start_with(Default::default(), |c| {
        c.max_call_duration = Duration::from_secs(1)
    })
    .await;
    gw.emulator.inject(Fault::new(
        Route::CreateLinkToken,
        FaultAction::Latency { millis: 60_000 },
    ));
    // An hour-long deadline: without the ceiling the call would wait for Atlas's minute.
    let req = with_meta(link_req(DEMO_ORG_ID), &[], Some(Duration::from_secs(3600)));
    let err = gw.client().create_link_token(req).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert_eq!(
        reason(&err),
        "DEADLINE_EXCEEDED",
        "the gateway's own answer"
    );
    gw.stop().await;
}
