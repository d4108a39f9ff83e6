//! "Never twice" at the gRPC boundary: a real tonic client, a real gateway, the emulated
//! Atlas (its create slowed by a latency fault) and, for fleet mode, a real
//! `redis-server`. Each test pins one rule: one owner per `request_id` from first
//! arrival to answer; a create whose caller left runs to completion and is replayed; a
//! twin waits only its own deadline; a `request_id` call that cannot use its store
//! record fails closed, and the replica that answered still replays.
mod common;

use std::time::Duration;

use atlas_grpc_gateway::pb::{atlas_gateway_client::AtlasGatewayClient, CreateApiKeyResponse};
use common::{redis_server::RedisServer, *};
use tonic::{transport::Channel, Code, Status};

fn keyed(request_id: &str) -> atlas_grpc_gateway::pb::CreateApiKeyRequest {
    let mut r = key_req(DEMO_ORG_ID);
    r.request_id = request_id.into();
    r
}

/// CreateApiKey with `request_id` and an optional deadline.
async fn create(
    mut client: AtlasGatewayClient<Channel>,
    request_id: &str,
    deadline: Option<Duration>,
) -> Result<CreateApiKeyResponse, Status> {
    let req = with_meta(keyed(request_id), &[], deadline);
    client.create_api_key(req).await.map(|r| r.into_inner())
}

fn posts(gw: &Gateway) -> u64 {
    gw.emulator
        .counters()
        .requests
        .get(API_KEYS)
        .copied()
        .unwrap_or(0)
}

fn slow_create(gw: &Gateway, millis: u64) {
    gw.emulator.inject(Fault::once(
        Route::CreateApiKey,
        FaultAction::Latency { millis },
    ));
}

const LONG: Option<Duration> = Some(Duration::from_secs(30));

/// Issue 20 item 1: A (2 s deadline) owns the create, which takes 5 s; B arrives while
/// it runs, C after A gave up. One POST; B and C get the same key.
#[tokio::test]
async fn one_create_serves_twins_and_late_arrivals_after_the_first_caller_gave_up() {
    let gw = Gateway::start().await;
    slow_create(&gw, 5000);
    let a = tokio::spawn(create(
        gw.client(),
        "rid-race",
        Some(Duration::from_secs(2)),
    ));
    eventually("A's create reaches Atlas", || {
        std::future::ready(posts(&gw) == 1)
    })
    .await;
    let b = tokio::spawn(create(gw.client(), "rid-race", LONG));
    let a = a.await.unwrap().unwrap_err();
    assert!(
        matches!(a.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{a:?}"
    );
    let c = create(gw.client(), "rid-race", LONG).await.unwrap();
    let b = b.await.unwrap().unwrap();
    assert_eq!(b.api_key, c.api_key, "B and C get the one key");
    assert_eq!(posts(&gw), 1, "one POST for one request_id");
    assert_eq!(gw.emulator.counters().api_keys_created, 1);
    gw.stop().await;
}

/// Issue 20 item 2: the caller hangs up after the POST was sent; the create finishes
/// anyway and the retry gets its answer without a second POST.
#[tokio::test]
async fn a_create_whose_caller_hung_up_finishes_and_its_retry_gets_the_replay() {
    let gw = Gateway::start().await;
    slow_create(&gw, 2000);
    let a = tokio::spawn(create(gw.client(), "rid-hangup", LONG));
    eventually("the create reaches Atlas", || {
        std::future::ready(posts(&gw) == 1)
    })
    .await;
    a.abort();
    assert!(a.await.unwrap_err().is_cancelled(), "the caller hung up");
    let retry = create(gw.client(), "rid-hangup", LONG).await.unwrap();
    assert!(retry.api_key.is_some_and(|k| !k.private_key.is_empty()));
    let c = gw.emulator.counters();
    assert_eq!((posts(&gw), c.api_keys_created, c.abandoned), (1, 1, 0));
    gw.stop().await;
}

/// Issue 20 item 4: a twin that sent no deadline waits `request_timeout`, not the
/// first caller's 30 s.
#[tokio::test]
async fn a_twin_without_a_deadline_waits_request_timeout_not_the_first_callers() {
    let gw = Gateway::start_with(Default::default(), |c| {
        c.request_timeout = Duration::from_secs(1);
    })
    .await;
    slow_create(&gw, 8000);
    let a = tokio::spawn(create(gw.client(), "rid-twin", LONG));
    eventually("A's create reaches Atlas", || {
        std::future::ready(posts(&gw) == 1)
    })
    .await;
    let twin = create(gw.client(), "rid-twin", None).await.unwrap_err();
    assert_eq!(twin.code(), Code::DeadlineExceeded, "{twin:?}");
    a.await.unwrap().unwrap();
    assert_eq!(posts(&gw), 1);
    gw.stop().await;
}

/// Issue 20 item 3: with its store down, a `request_id` call answers UNAVAILABLE
/// (`SHARED_STORE_UNAVAILABLE`, retry in 1 s) and sends nothing to Atlas; a call
/// without one goes on.
#[tokio::test]
async fn without_its_store_a_request_id_call_fails_closed() {
    let mut redis = RedisServer::start().await;
    let gw = Gateway::start_with(Default::default(), |c| {
        c.shared_store = Replica::store_config(&redis.url());
    })
    .await;
    gw.client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap();
    redis.kill();
    let err = create(gw.client(), "rid-closed", LONG).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(reason(&err), "SHARED_STORE_UNAVAILABLE");
    let retry = details(&err).retry_info().unwrap().retry_delay;
    assert_eq!(retry, Some(Duration::from_secs(1)));
    assert_eq!(posts(&gw), 0, "Atlas is not called");
    gw.client()
        .create_api_key(key_req(DEMO_ORG_ID))
        .await
        .expect("a call without request_id goes on");
    gw.stop().await;
}

/// Issue 20 item 3: the replica that answered replays while the store is away.
#[tokio::test]
async fn the_replica_that_answered_replays_while_the_store_is_away() {
    let mut redis = RedisServer::start().await;
    let gw = Gateway::start_with(Default::default(), |c| {
        c.shared_store = Replica::store_config(&redis.url());
    })
    .await;
    let first = create(gw.client(), "rid-kept", LONG).await.unwrap();
    redis.kill();
    let again = create(gw.client(), "rid-kept", LONG).await.unwrap();
    assert_eq!(first.api_key, again.api_key);
    assert_eq!(gw.emulator.counters().api_keys_created, 1);
    gw.stop().await;
}

/// Issue 20 item 3: a claim whose `SET NX` reply never came (the store paused) is
/// answered UNAVAILABLE, and once the store is back the retry, on this replica or
/// another, runs the create (the claim is released, not left to read "unknown").
#[tokio::test]
async fn a_claim_whose_reply_was_lost_does_not_pin_its_request_id() {
    let redis = RedisServer::start().await;
    let gw = Gateway::start_with(Default::default(), |c| {
        c.shared_store = Replica::store_config(&redis.url());
    })
    .await;
    let other = Replica::with_store(&gw.emulator, &redis.url()).await;
    gw.client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap();
    let mut admin = redis.connection().await.unwrap();
    let pause = redis::cmd("CLIENT")
        .arg(&["PAUSE", "60000", "WRITE"])
        .to_owned();
    let () = pause.query_async(&mut admin).await.unwrap();
    let err = create(gw.client(), "rid-lost", LONG).await.unwrap_err();
    let unpause = redis::cmd("CLIENT").arg("UNPAUSE").to_owned();
    let () = unpause.query_async(&mut admin).await.unwrap();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(reason(&err), "SHARED_STORE_UNAVAILABLE");
    let there = create(other.client(), "rid-lost", LONG).await.unwrap();
    let here = create(gw.client(), "rid-lost", LONG).await.unwrap();
    assert_eq!(there.api_key, here.api_key);
    assert_eq!(posts(&gw), 1);
    other.stop().await;
    gw.stop().await;
}
