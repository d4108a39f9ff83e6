//! Authentication to Atlas through the real gateway: OAuth token caching (single
//! flight, refresh, 401 → refresh → retry, token-endpoint failures) and HTTP Digest.
mod common;

use std::time::Duration;

use atlas_grpc_gateway::{
    config::Credentials,
    emulator::{Counters, DigestAlgorithm, EmulatorConfig},
    secret::Secret,
};
use common::*;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_calls_on_a_cold_cache_make_one_token_request() {
    let gw = Gateway::start_with(Default::default(), |c| c.max_concurrency = 1000).await;
    gw.emulator.inject(Fault::new(
        Route::Token,
        FaultAction::Latency { millis: 200 },
    ));
    let calls: Vec<_> = (0..500)
        .map(|_| {
            let mut c = gw.client();
            tokio::spawn(async move { c.delete_link_token(delete_req(DEMO_ORG_ID)).await })
        })
        .collect();
    for call in calls {
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "reached Atlas: {err:?}");
    }
    let c = gw.emulator.counters();
    assert_eq!(c.token_requests, 1, "single flight");
    assert_eq!(
        c.requests_for(
            "DELETE",
            "/api/atlas/v2/orgs/{orgId}/liveMigrations/linkTokens"
        ),
        500
    );
    gw.stop().await;
}

/// Calls (each must succeed) until the emulator's counters satisfy `done`: an event,
/// not a sleep of a guessed length.
async fn call_until(gw: &Gateway, done: impl Fn(&Counters) -> bool) -> u32 {
    let mut calls = 0;
    while !done(&gw.emulator.counters()) {
        let result = gw.client().create_link_token(link_req(DEMO_ORG_ID)).await;
        assert!(result.is_ok(), "call {calls} failed: {result:?}");
        calls += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    calls
}

#[tokio::test]
async fn tokens_are_refreshed_before_they_expire() {
    // 2 s tokens: refresh from ~0.95 s, eviction at 1.9 s.
    let emu = EmulatorConfig {
        token_lifetime: Duration::from_secs(2),
        ..Default::default()
    };
    let gw = Gateway::start_with(emu, |_| {}).await;
    gw.client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap();
    // From now on the token endpoint is down. A call that fetched a token on its own
    // path would fail; calls keep succeeding until the emulator sees the refresh, so it
    // was made off the call path, before the token expired.
    gw.emulator.inject(Fault::new(
        Route::Token,
        FaultAction::error(503, "SERVICE_UNAVAILABLE"),
    ));
    let calls = call_until(&gw, |c| c.token_requests == 2).await;
    assert!(calls >= 1);
    gw.emulator.clear_faults();
    assert_eq!(
        gw.emulator.counters().unauthorized,
        0,
        "never used an expired token"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_successful_refresh_replaces_the_token_without_a_401() {
    let emu = EmulatorConfig {
        token_lifetime: Duration::from_secs(2),
        ..Default::default()
    };
    let gw = Gateway::start_with(emu, |_| {}).await;
    call_until(&gw, |c| c.tokens_issued == 2).await;
    let c = gw.emulator.counters();
    assert_eq!((c.token_requests, c.unauthorized), (2, 0));
    gw.stop().await;
}

#[tokio::test]
async fn a_401_on_a_cached_token_refreshes_once_and_retries() {
    let gw = Gateway::start().await;
    gw.client()
        .create_api_key(key_req(DEMO_ORG_ID))
        .await
        .unwrap();
    gw.emulator.revoke_tokens();
    gw.client()
        .create_api_key(key_req(DEMO_ORG_ID))
        .await
        .unwrap();
    let c = gw.emulator.counters();
    assert_eq!(
        (c.tokens_issued, c.unauthorized, c.api_keys_created),
        (2, 1, 2)
    );
    // Revoked again seconds later: a token Atlas had accepted is always replaced.
    gw.emulator.revoke_tokens();
    gw.client()
        .create_api_key(key_req(DEMO_ORG_ID))
        .await
        .unwrap();
    assert_eq!(gw.emulator.counters().tokens_issued, 3);
    gw.stop().await;
}

#[tokio::test]
async fn tokens_that_die_early_clock_skew_are_recovered_by_the_401_path() {
    let gw = Gateway::start().await;
    gw.emulator.inject(Fault::once(
        Route::Token,
        FaultAction::ShortTokens { actual_secs: 1 },
    ));
    gw.client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    gw.client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap();
    let c = gw.emulator.counters();
    assert_eq!(
        (c.tokens_issued, c.unauthorized, c.link_tokens_created),
        (2, 1, 2)
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_persistent_401_is_unauthenticated_after_one_refresh() {
    let gw = Gateway::start().await;
    gw.emulator.inject(Fault::new(
        Route::CreateApiKey,
        FaultAction::error(401, "UNAUTHORIZED"),
    ));
    let err = gw
        .client()
        .create_api_key(key_req(DEMO_ORG_ID))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(reason(&err), "UNAUTHORIZED");
    assert!(
        err.message().contains("refused the gateway's credentials"),
        "{}",
        err.message()
    );
    let c = gw.emulator.counters();
    assert_eq!(
        (
            c.tokens_issued,
            c.requests_for("POST", "/api/atlas/v2/orgs/{orgId}/apiKeys")
        ),
        (2, 2)
    );
    gw.stop().await;
}

fn wrong_secret(c: &mut atlas_grpc_gateway::config::Config) {
    let p = c.profiles.get_mut("default").unwrap();
    p.credentials = Credentials::ServiceAccount {
        client_id: atlas_grpc_gateway::emulator::DEMO_CLIENT_ID.into(),
        client_secret: Secret::new("wrong-secret-value"),
    };
}

#[tokio::test]
async fn refused_credentials_are_unauthenticated_without_the_secret() {
    let gw = Gateway::start_with(Default::default(), wrong_secret).await;
    let err = gw
        .client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(reason(&err), "ATLAS_CREDENTIALS_REJECTED");
    assert!(err.message().contains("MONGODB_ATLAS_CLIENT_SECRET"));
    assert!(!format!("{err:?}").contains("wrong-secret-value"));
    assert_eq!(
        gw.emulator.counters().total_requests(),
        1,
        "only the token request"
    );
    gw.stop().await;
}

/// A fresh gateway whose token endpoint answers `action` `times` times; the first call's error.
async fn token_failure(action: FaultAction, times: u32) -> (Gateway, tonic::Status) {
    let gw = Gateway::start().await;
    gw.emulator
        .inject(Fault::new(Route::Token, action).limit(times));
    let err = gw
        .client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap_err();
    (gw, err)
}

async fn link_error(gw: &Gateway) -> tonic::Status {
    gw.client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn token_endpoint_down_is_unavailable_and_spaced() {
    for action in [
        FaultAction::error(503, "SERVICE_UNAVAILABLE"),
        FaultAction::Reset,
    ] {
        let (gw, err) = token_failure(action, 1).await;
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(reason(&err), "TOKEN_ENDPOINT_UNAVAILABLE");
        // The next call, right after, is answered from memory (a short jittered pause).
        assert_eq!(reason(&link_error(&gw).await), "TOKEN_ENDPOINT_UNAVAILABLE");
        assert_eq!(gw.emulator.counters().token_requests, 1);
        gw.stop().await;
    }
}

#[tokio::test]
async fn a_rate_limited_token_endpoint_is_not_asked_again_for_a_minute() {
    // No Retry-After (Atlas may send none): 60 s; 20 calls, one token request.
    let (gw, first) = token_failure(FaultAction::error(429, "RATE_LIMITED"), 100).await;
    for err in [first, link_error(&gw).await] {
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(reason(&err), "TOKEN_ENDPOINT_RATE_LIMITED");
        let delay = details(&err).retry_info().unwrap().retry_delay.unwrap();
        assert!(
            delay > Duration::from_secs(50) && delay <= Duration::from_secs(60),
            "{delay:?}"
        );
    }
    for _ in 0..18 {
        assert_eq!(
            reason(&link_error(&gw).await),
            "TOKEN_ENDPOINT_RATE_LIMITED"
        );
    }
    let c = gw.emulator.counters();
    assert_eq!((c.token_requests, c.total_requests()), (1, 1));
    gw.stop().await;
}

#[tokio::test]
async fn retry_after_of_a_token_endpoint_429_is_honored_then_tokens_flow_again() {
    let limited = FaultAction::error_with_retry_after(429, "RATE_LIMITED", "2");
    let (gw, err) = token_failure(limited, 1).await;
    assert_eq!(
        details(&err).retry_info().unwrap().retry_delay,
        Some(Duration::from_secs(2))
    );
    assert_eq!(
        reason(&link_error(&gw).await),
        "TOKEN_ENDPOINT_RATE_LIMITED"
    );
    assert_eq!(gw.emulator.counters().token_requests, 1);
    tokio::time::sleep(Duration::from_millis(2100)).await; // at least Retry-After
    gw.client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap();
    assert_eq!(gw.emulator.counters().token_requests, 2);
    gw.stop().await;
}

#[tokio::test]
async fn a_slow_token_endpoint_is_deadline_exceeded_and_not_remembered() {
    let (gw, err) = {
        let gw = Gateway::start().await;
        gw.emulator.inject(Fault::once(
            Route::Token,
            FaultAction::Latency { millis: 2000 },
        ));
        // The deadline travels as `grpc-timeout` only: no client-side timer, so on a loaded
        // machine the answer is the gateway's own DEADLINE_EXCEEDED, never the client's.
        let mut req = with_meta(link_req(DEMO_ORG_ID), &[], None);
        req.metadata_mut()
            .insert("grpc-timeout", "300m".parse().unwrap());
        let err = gw.client().create_link_token(req).await.unwrap_err();
        (gw, err)
    };
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    gw.client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn the_token_cap_is_resource_exhausted_not_bad_credentials() {
    let cap = FaultAction::Raw {
        status: 403,
        content_type: "application/json".into(),
        body: r#"{"error":"access_denied","error_description":"Access Token limit reached. Please use the existing Access Tokens or create a new Service Account."}"#.into(),
    };
    let (gw, err) = token_failure(cap, 100).await;
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(reason(&err), "ATLAS_TOKEN_LIMIT_REACHED");
    let d = details(&err);
    assert!(d.retry_info().unwrap().retry_delay.is_some());
    assert_eq!(d.quota_failure().unwrap().violations.len(), 1);
    let msg = err.message();
    for words in [
        "100 active tokens",
        "credentials are fine",
        "shared token store",
        "fewer gateways",
    ] {
        assert!(msg.contains(words), "{words:?} not in {msg}");
    }
    assert!(!msg.contains("MONGODB_ATLAS_CLIENT_SECRET"), "{msg}");
    assert_eq!(reason(&link_error(&gw).await), "ATLAS_TOKEN_LIMIT_REACHED");
    assert_eq!(
        gw.emulator.counters().token_requests,
        1,
        "not asked again at once"
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_absurd_expires_in_cannot_kill_calls() {
    // u64::MAX seconds once overflowed `Instant + Duration`: a panic, every call CANCELLED.
    for expires_in in ["18446744073709551615", "1e308", "-1", "\"x\""] {
        let body = format!(r#"{{"access_token":"t0k","expires_in":{expires_in}}}"#);
        let raw = FaultAction::Raw {
            status: 200,
            content_type: "application/json".into(),
            body,
        };
        let gw = Gateway::start().await;
        gw.emulator.inject(Fault::once(Route::Token, raw));
        // The odd token is refused by Atlas (401): one forced refresh gets a real one.
        gw.client()
            .create_link_token(link_req(DEMO_ORG_ID))
            .await
            .unwrap_or_else(|e| panic!("expires_in {expires_in}: {e:?}"));
        let c = gw.emulator.counters();
        assert_eq!((c.token_requests, c.unauthorized), (2, 1), "{expires_in}");
        gw.stop().await;
    }
}

#[tokio::test]
async fn a_failed_background_refresh_keeps_serving_the_valid_token() {
    let emu = EmulatorConfig {
        token_lifetime: Duration::from_secs(2),
        ..Default::default()
    };
    let gw = Gateway::start_with(emu, |_| {}).await;
    gw.client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap();
    gw.emulator.inject(Fault::new(
        Route::Token,
        FaultAction::error_with_retry_after(429, "RATE_LIMITED", "60"),
    ));
    // Every call succeeds with the cached token until the refresh has been refused.
    call_until(&gw, |c| c.token_requests == 2).await;
    // Afterwards: the cached token while it lasts, then the remembered 429; never a
    // token request per call.
    for _ in 0..3 {
        if let Err(e) = gw.client().create_link_token(link_req(DEMO_ORG_ID)).await {
            assert_eq!(reason(&e), "TOKEN_ENDPOINT_RATE_LIMITED");
        }
    }
    assert_eq!(gw.emulator.counters().token_requests, 2, "backoff");
    gw.stop().await;
}

#[tokio::test]
async fn digest_sha256_and_stale_nonces() {
    let emu = EmulatorConfig {
        digest_algorithm: DigestAlgorithm::Sha256,
        nonce_lifetime: Duration::from_millis(500),
        ..Default::default()
    };
    let gw = Gateway::start_with(emu, |_| {}).await;
    let call = || {
        with_meta(
            delete_req(DEMO_ORG_ID),
            &[("x-atlas-profile", "apikey")],
            None,
        )
    };
    assert_eq!(
        gw.client()
            .delete_link_token(call())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        gw.client()
            .delete_link_token(call())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(gw.emulator.counters().digest_challenges, 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        gw.client()
            .delete_link_token(call())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound,
        "stale nonce renewed"
    );
    let c = gw.emulator.counters();
    assert_eq!(c.digest_challenges, 2);
    assert_eq!(c.unauthorized, 0);
    gw.stop().await;
}

#[tokio::test]
async fn a_wrong_api_key_is_unauthenticated() {
    let gw = Gateway::start_with(Default::default(), |c| {
        let p = c.profiles.get_mut("apikey").unwrap();
        p.credentials = Credentials::ApiKey {
            public_key: "demopubk".into(),
            private_key: Secret::new("not-the-key"),
        };
    })
    .await;
    let req = with_meta(key_req(DEMO_ORG_ID), &[("x-atlas-profile", "apikey")], None);
    let err = gw.client().create_api_key(req).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message().contains("refused the gateway's credentials"),
        "{}",
        err.message()
    );
    assert_eq!(gw.emulator.counters().api_keys_created, 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_digest_calls_keep_one_round_trip_each_after_warm_up() {
    let gw = Gateway::start().await;
    gw.emulator.inject(Fault::new(
        Route::DeleteLinkToken,
        FaultAction::Latency { millis: 50 },
    ));
    let wave = || {
        let calls: Vec<_> = (0..100)
            .map(|_| {
                let mut c = gw.client();
                let req = with_meta(
                    delete_req(DEMO_ORG_ID),
                    &[("x-atlas-profile", "apikey")],
                    None,
                );
                tokio::spawn(async move { c.delete_link_token(req).await })
            })
            .collect();
        async move {
            for call in calls {
                assert_eq!(call.await.unwrap().unwrap_err().code(), Code::NotFound);
            }
        }
    };
    wave().await;
    let warm = gw.emulator.counters();
    assert!(
        warm.digest_challenges >= 1 && warm.digest_challenges <= 100,
        "{warm:?}"
    );
    wave().await;
    let c = gw.emulator.counters();
    let deletes = "/api/atlas/v2/orgs/{orgId}/liveMigrations/linkTokens";
    assert_eq!(c.unauthorized, 0, "no nonce count ever refused");
    assert!(
        c.digest_challenges - warm.digest_challenges <= 5,
        "pooled nonces are reused: {c:?}"
    );
    assert!(c.requests_for("DELETE", deletes) - warm.requests_for("DELETE", deletes) <= 105);
    gw.stop().await;
}

#[tokio::test]
async fn a_401_storm_cannot_turn_into_a_token_request_per_call() {
    let gw = Gateway::start().await;
    gw.emulator.inject(Fault::new(
        Route::CreateApiKey,
        FaultAction::error(401, "NOT_ORG_GROUP_CREATOR"),
    ));
    for _ in 0..20 {
        let err = gw
            .client()
            .create_api_key(key_req(DEMO_ORG_ID))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
    }
    let c = gw.emulator.counters();
    assert_eq!(
        c.token_requests, 2,
        "one forced refresh per interval, not one per call"
    );
    assert_eq!(
        c.requests_for("POST", "/api/atlas/v2/orgs/{orgId}/apiKeys"),
        21
    );
    gw.stop().await;
}

#[tokio::test]
async fn two_profiles_on_one_service_account_make_one_token_request() {
    let gw = Gateway::start_with(Default::default(), |c| {
        c.check_credentials_at_start = true; // each profile's readiness check too
        let mut second = c.profiles["default"].clone();
        second.name = "second".into();
        c.profiles.insert("second".into(), second);
    })
    .await;
    for profile in ["default", "second", "default", "second"] {
        let req = with_meta(
            delete_req(DEMO_ORG_ID),
            &[("x-atlas-profile", profile)],
            None,
        );
        let err = gw.client().delete_link_token(req).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "reached Atlas: {err:?}");
    }
    assert_eq!(
        gw.emulator.counters().token_requests,
        1,
        "one token for the account"
    );
    assert_eq!(gw.emulator.active_tokens(), 1);
    gw.stop().await;
}
