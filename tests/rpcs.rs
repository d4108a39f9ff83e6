//! The three RPCs end to end: tonic client → gateway → emulated Atlas on loopback.
//! Success paths, validation, profiles, policy and idempotency (AIP-155).
mod common;

use atlas_grpc_gateway::{
    callers::Caller,
    emulator::{Fault, FaultAction, Route},
    pb::OrgRole,
    secret::Secret,
};
use common::*;
use tonic::Code;

const OTHER_ORG: &str = "0123456789abcdef01234567";

#[tokio::test]
async fn create_and_delete_link_token() {
    let gw = Gateway::start().await;
    let resp = gw
        .client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap();
    assert!(
        resp.metadata().get("x-request-id").is_some(),
        "request id returned"
    );
    assert!(resp.get_ref().link_token.len() > 20);
    gw.client()
        .delete_link_token(delete_req(DEMO_ORG_ID))
        .await
        .unwrap();
    let c = gw.emulator.counters();
    assert_eq!(
        c.requests_for(
            "POST",
            "/api/atlas/v2/orgs/{orgId}/liveMigrations/linkTokens"
        ),
        1
    );
    assert_eq!(
        c.requests_for(
            "DELETE",
            "/api/atlas/v2/orgs/{orgId}/liveMigrations/linkTokens"
        ),
        1
    );
    assert_eq!((c.link_tokens_created, c.link_tokens_deleted), (1, 1));
    assert_eq!(c.tokens_issued, 1, "one token serves both calls");

    // Atlas answers a delete without a link with 404 UNEXPECTED_ERROR: the status decides.
    let err = gw
        .client()
        .delete_link_token(delete_req(DEMO_ORG_ID))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        err.message(),
        "Could not find the requested external organization link."
    );
    assert_eq!(reason(&err), "UNEXPECTED_ERROR");
    assert_eq!(meta(&err, "http_status").as_deref(), Some("404"));
    assert_eq!(meta(&err, "atlas_reason").as_deref(), Some("Not Found"));
    assert_eq!(
        details(&err).error_info().unwrap().domain,
        "127.0.0.1",
        "the configured Atlas host"
    );
    assert!(details(&err).help().is_some());
    assert_eq!(details(&err).localized_message().unwrap().locale, "en-US");
    gw.stop().await;
}

#[tokio::test]
async fn create_api_key_returns_the_whole_key() {
    let gw = Gateway::start().await;
    let key = create_key(&gw, DEMO_ORG_ID).await;
    assert!(
        key.id.len() == 24 && key.id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{}",
        key.id
    );
    assert_eq!(key.desc, "ci key");
    assert_eq!(key.public_key.len(), 8);
    assert!(!key.private_key.is_empty());
    assert_eq!(key.roles[0].role_name, "ORG_MEMBER");
    assert_eq!(key.roles[0].org_id, DEMO_ORG_ID);
    assert_eq!(key.links[0].rel, "self");
    assert!(key.links[0].href.ends_with(&key.id));
    assert!(
        !format!("{key:?}").contains(&key.private_key),
        "Debug redacts the private key"
    );
    assert_eq!(gw.emulator.counters().api_keys_created, 1);
    let sent = &gw.emulator.recorded()[0];
    assert_eq!(
        sent.path_and_query,
        format!("/api/atlas/v2/orgs/{DEMO_ORG_ID}/apiKeys")
    );
    let body: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"desc": "ci key", "roles": ["ORG_MEMBER"]})
    );
    gw.stop().await;
}

#[tokio::test]
async fn api_version_flag_sets_the_media_type() {
    let gw = Gateway::start_with(Default::default(), |c| c.api_version = "2024-05-30".into()).await;
    let err = gw
        .client()
        .create_api_key(key_req(DEMO_ORG_ID))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "the emulator knows only 2023-01-01: 406"
    );
    assert_eq!(reason(&err), "INVALID_VERSION_DATE");
    assert_eq!(
        gw.emulator.recorded()[0].accept.as_deref(),
        Some("application/vnd.atlas.2024-05-30+json")
    );
    gw.stop().await;
}

#[tokio::test]
async fn digest_profile_handshakes_once_then_reuses_the_nonce() {
    let gw = Gateway::start().await;
    for _ in 0..5 {
        let req = with_meta(key_req(DEMO_ORG_ID), &[("x-atlas-profile", "apikey")], None);
        gw.client().create_api_key(req).await.unwrap();
    }
    let c = gw.emulator.counters();
    assert_eq!(c.digest_challenges, 1, "one challenge, then nonce reuse");
    assert_eq!(
        c.requests_for("POST", "/api/atlas/v2/orgs/{orgId}/apiKeys"),
        6,
        "1 handshake + 5 calls"
    );
    assert_eq!(c.api_keys_created, 5);
    assert_eq!(c.token_requests, 0, "no OAuth for the API-key profile");
    let auth: Vec<_> = gw
        .emulator
        .recorded()
        .iter()
        .map(|r| r.authorization.clone())
        .collect();
    assert_eq!(auth[0], None, "first request meets the challenge");
    assert!(auth[1..].iter().all(|a| a.as_deref() == Some("Digest")));
    gw.stop().await;
}

#[tokio::test]
async fn every_validation_rule_is_reported_at_once_without_upstream_calls() {
    let gw = Gateway::start().await;
    let mut req = link_req("ABC");
    req.access_list_ips = vec!["10.0.0.1".into(), "nope".into(), "::1/129".into()];
    let err = gw.client().create_link_token(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "INVALID_REQUEST");
    let fields: Vec<_> = details(&err)
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(
        fields,
        ["org_id", "access_list_ips[1]", "access_list_ips[2]"]
    );

    let mut req = key_req("");
    req.desc = "x".repeat(251);
    req.roles = vec![OrgRole::Unspecified as i32];
    req.request_id = "r".repeat(40);
    let err = gw.client().create_api_key(req).await.unwrap_err();
    let fields: Vec<_> = details(&err)
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(fields, ["org_id", "desc", "roles[0]", "request_id"]);

    let mut req = key_req(DEMO_ORG_ID);
    req.roles.clear();
    req.desc.clear();
    let err = gw.client().create_api_key(req).await.unwrap_err();
    let fields: Vec<_> = details(&err)
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(fields, ["desc", "roles"]);

    let err = gw
        .client()
        .delete_link_token(delete_req("5f1a0c2b3d4e5f6a7b8c9d0"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        gw.emulator.counters().total_requests(),
        0,
        "nothing reached Atlas"
    );
    gw.stop().await;
}

#[tokio::test]
async fn profiles_are_chosen_per_call_and_unknown_ones_refused() {
    let gw = Gateway::start().await;
    let req = with_meta(
        delete_req(DEMO_ORG_ID),
        &[("x-atlas-profile", "nope")],
        None,
    );
    let err = gw.client().delete_link_token(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "UNKNOWN_PROFILE");
    assert_eq!(
        details(&err).bad_request().unwrap().field_violations[0].field,
        "x-atlas-profile"
    );
    assert_eq!(gw.emulator.counters().total_requests(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn policy_denies_roles_and_orgs_before_atlas() {
    let gw = Gateway::start_with(Default::default(), |c| {
        let p = c.profiles.get_mut("default").unwrap();
        p.allowed_org_ids = Some([DEMO_ORG_ID.to_string()].into());
    })
    .await;
    let mut req = key_req(DEMO_ORG_ID);
    req.roles = vec![OrgRole::OrgMember as i32, OrgRole::OrgOwner as i32];
    let err = gw
        .client()
        .create_api_key(with_meta(req, &[("x-atlas-profile", "restricted")], None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "POLICY_DENIED");
    assert_eq!(meta(&err, "field").as_deref(), Some("roles"));
    assert!(err.message().contains("ORG_OWNER"), "{}", err.message());

    let err = gw
        .client()
        .create_link_token(link_req(OTHER_ORG))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "POLICY_DENIED");
    assert_eq!(meta(&err, "field").as_deref(), Some("org_id"));
    assert_eq!(gw.emulator.counters().total_requests(), 0);

    let ok = key_req(DEMO_ORG_ID);
    gw.client()
        .create_api_key(with_meta(ok, &[("x-atlas-profile", "restricted")], None))
        .await
        .unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn request_id_metadata_is_echoed_everywhere() {
    let gw = Gateway::start().await;
    let req = with_meta(
        link_req(DEMO_ORG_ID),
        &[("x-request-id", "caller-req-42")],
        None,
    );
    let resp = gw.client().create_link_token(req).await.unwrap();
    assert_eq!(
        resp.metadata().get("x-request-id").unwrap(),
        "caller-req-42"
    );
    let req = with_meta(
        link_req(OTHER_ORG),
        &[("x-request-id", "caller-req-43")],
        None,
    );
    let err = gw.client().create_link_token(req).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "unknown org in Atlas");
    assert_eq!(err.metadata().get("x-request-id").unwrap(), "caller-req-43");
    let info = details(&err).request_info().cloned().unwrap();
    assert_eq!(info.request_id, "caller-req-43");
    assert!(!info.serving_data.is_empty(), "Atlas's own request id");
    gw.stop().await;
}

#[tokio::test]
async fn request_id_makes_creates_idempotent() {
    let gw = Gateway::start().await;
    let mut req = key_req(DEMO_ORG_ID);
    req.request_id = "7c9e6679-7425-40de-944b-e07fc1f90ae7".into();
    let first = gw
        .client()
        .create_api_key(req.clone())
        .await
        .unwrap()
        .into_inner();
    let again = gw
        .client()
        .create_api_key(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first.api_key.as_ref().unwrap().private_key,
        again.api_key.as_ref().unwrap().private_key
    );
    assert_eq!(gw.emulator.counters().api_keys_created, 1);

    req.desc = "another description".into();
    let err = gw.client().create_api_key(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "REQUEST_ID_REUSED");

    // Another profile is another key space.
    let mut other = key_req(DEMO_ORG_ID);
    other.request_id = "7c9e6679-7425-40de-944b-e07fc1f90ae7".into();
    gw.client()
        .create_api_key(with_meta(other, &[("x-atlas-profile", "apikey")], None))
        .await
        .unwrap();
    assert_eq!(gw.emulator.counters().api_keys_created, 2);
    gw.stop().await;
}

#[tokio::test]
async fn a_failed_create_does_not_pin_its_request_id() {
    let gw = Gateway::start().await;
    gw.emulator.inject(Fault::once(
        Route::CreateApiKey,
        FaultAction::error(400, "INVALID_ATTRIBUTE"),
    ));
    let mut req = key_req(DEMO_ORG_ID);
    req.request_id = "0b4f6c1e-failed-then-fixed".into();
    req.desc = "first try".into();
    let err = gw.client().create_api_key(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // The corrected retry (same id, another request) runs: failures are not remembered.
    req.desc = "fixed".into();
    let key = gw.client().create_api_key(req.clone()).await.unwrap();
    assert_eq!(key.into_inner().api_key.unwrap().desc, "fixed");
    assert_eq!(gw.emulator.counters().api_keys_created, 1);
    gw.stop().await;
}

#[tokio::test]
async fn idempotent_replay_never_crosses_callers() {
    let gw = Gateway::start_with(Default::default(), |c| {
        c.callers = ["CALLER_A", "CALLER_B"]
            .map(|name| Caller::flat(name, Secret::new(format!("token-of-{name}"))))
            .to_vec();
    })
    .await;
    let mut req = key_req(DEMO_ORG_ID);
    req.request_id = "5f0c3ad2-shared-id".into();
    let as_caller = |name: &str| {
        let bearer = format!("Bearer token-of-{name}");
        with_meta(req.clone(), &[("authorization", &bearer)], None)
    };
    let a = gw
        .client()
        .create_api_key(as_caller("CALLER_A"))
        .await
        .unwrap();
    let a_again = gw
        .client()
        .create_api_key(as_caller("CALLER_A"))
        .await
        .unwrap();
    let b = gw
        .client()
        .create_api_key(as_caller("CALLER_B"))
        .await
        .unwrap();
    let private = |r: tonic::Response<atlas_grpc_gateway::pb::CreateApiKeyResponse>| {
        r.into_inner().api_key.unwrap().private_key
    };
    let (a, a_again, b) = (private(a), private(a_again), private(b));
    assert_eq!(a, a_again, "the same caller gets its replay");
    assert_ne!(a, b, "another caller never gets A's private key");
    assert_eq!(gw.emulator.counters().api_keys_created, 2);
    gw.stop().await;
}

#[tokio::test]
async fn over_long_caller_values_get_small_invalid_argument_answers() {
    let gw = Gateway::start().await;
    // A 200 kB org id once went whole into the span, the log and ErrorInfo.metadata: the
    // trailers outgrew the client's limit and it saw its own RESOURCE_EXHAUSTED.
    let err = gw
        .client()
        .create_link_token(link_req(&"a".repeat(200_000)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{:.200}", err.message());
    assert_eq!(reason(&err), "INVALID_REQUEST");
    assert!(meta(&err, "org_id").unwrap().len() < 100);

    let profile = "p".repeat(8_000);
    let req = with_meta(
        link_req(DEMO_ORG_ID),
        &[("x-atlas-profile", &profile)],
        None,
    );
    let err = gw.client().create_link_token(req).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::InvalidArgument, "UNKNOWN_PROFILE")
    );
    assert!(err.message().len() < 200, "{}", err.message());

    // Thousands of bad entries: the first violations, then how many more.
    let mut req = link_req(DEMO_ORG_ID);
    req.access_list_ips = vec!["x".repeat(40); 1000];
    let err = gw.client().create_link_token(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let violations = details(&err)
        .bad_request()
        .unwrap()
        .field_violations
        .clone();
    assert_eq!(violations.len(), 20);
    assert!(
        violations[19].description.contains("981 more"),
        "{violations:?}"
    );
    let mut req = key_req(DEMO_ORG_ID);
    req.roles = vec![999; 100_000];
    let err = gw.client().create_api_key(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().len() < 4_000, "{}", err.message().len());
    assert_eq!(gw.emulator.counters().total_requests(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn concurrent_duplicates_wait_for_the_first_call() {
    let gw = Gateway::start().await;
    gw.emulator.inject(Fault::new(
        Route::CreateLinkToken,
        FaultAction::Latency { millis: 300 },
    ));
    let mut req = link_req(DEMO_ORG_ID);
    req.request_id = "dup-1".into();
    let calls = (0..10).map(|_| {
        let mut c = gw.client();
        let r = req.clone();
        tokio::spawn(async move {
            c.create_link_token(r)
                .await
                .map(|r| r.into_inner().link_token)
        })
    });
    let tokens: Vec<String> = futures_join(calls).await;
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "all duplicates see the first result"
    );
    assert_eq!(gw.emulator.counters().link_tokens_created, 1);
    gw.stop().await;
}

async fn futures_join<I>(handles: I) -> Vec<String>
where
    I: Iterator<Item = tokio::task::JoinHandle<Result<String, tonic::Status>>>,
{
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap().expect("call succeeds"));
    }
    out
}

#[tokio::test]
async fn overload_is_shed_with_resource_exhausted() {
    let gw = Gateway::start_with(Default::default(), |c| c.max_concurrency = 2).await;
    gw.emulator.inject(Fault::new(
        Route::CreateApiKey,
        FaultAction::Latency { millis: 600_000 },
    ));
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let mut c = gw.client();
            tokio::spawn(async move { c.create_api_key(key_req(DEMO_ORG_ID)).await })
        })
        .collect();
    // Both permits are held once both calls are at Atlas (which holds them for 10 min).
    let emulator = &gw.emulator;
    eventually("both slow calls reach Atlas", || {
        let seen = emulator.counters().requests.get(API_KEYS).copied();
        std::future::ready(seen == Some(2))
    })
    .await;
    let err = gw
        .client()
        .delete_link_token(delete_req(DEMO_ORG_ID))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(reason(&err), "GATEWAY_OVERLOADED");
    assert!(details(&err).retry_info().is_some());
    for s in slow {
        s.abort(); // cancelling frees the permits
    }
    gw.emulator.clear_faults();
    eventually("the permits come back", || async {
        gw.client()
            .delete_link_token(delete_req(DEMO_ORG_ID))
            .await
            .is_err_and(|e| e.code() == Code::NotFound)
    })
    .await;
    gw.stop().await;
}
