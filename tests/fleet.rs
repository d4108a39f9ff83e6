//! Fleet mode against a real `redis-server` on loopback: replicas of one service account
//! share one token, the token endpoint's back-off, `request_id` records and Atlas 429
//! cool-downs and rotation turns; nothing readable lands in Redis; and a store outage
//! fails no call but those carrying a `request_id` and secret rotations, which fail
//! closed.
mod common;
#[path = "fleet/store_guards.rs"]
mod store_guards;

use std::time::Duration;

use atlas_grpc_gateway::emulator::{Emulator, EmulatorConfig, DEMO_CLIENT_SECRET};
use common::{
    redis_server::{free_port, RedisServer},
    sidecar::Sidecar,
    *,
};
use tonic::Code;

async fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig::default(), loopback())
        .await
        .unwrap()
}

async fn replicas(emu: &Emulator, redis: &RedisServer, n: usize) -> Vec<Replica> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(Replica::with_store(emu, &redis.url()).await);
    }
    out
}

fn keyed(org: &str, request_id: &str) -> atlas_grpc_gateway::pb::CreateApiKeyRequest {
    let mut r = key_req(org);
    r.request_id = request_id.into();
    r
}

/// The harness itself: a port taken between picking it and `redis-server` binding it
/// (another process on a busy machine) costs one attempt, not the test.
#[tokio::test]
async fn the_redis_harness_moves_to_a_fresh_port_when_its_port_is_taken() {
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap().port();
    let redis = RedisServer::start_on([taken, free_port()]).await;
    assert_ne!(redis.port, taken);
    assert!(redis.commands_processed().await > 0, "the server answers");
}

#[tokio::test]
async fn a_cold_fleet_makes_one_token_request_and_a_401_storm_one_more() {
    let (emu, redis) = (emulator().await, RedisServer::start().await);
    let fleet = replicas(&emu, &redis, 4).await;
    let calls = fleet.iter().map(|r| {
        let mut c = r.client();
        async move { c.create_link_token(link_req(DEMO_ORG_ID)).await }
    });
    for r in join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(emu.counters().token_requests, 1, "one token for the fleet");
    emu.revoke_tokens(); // every replica's next call meets a 401
    let calls = fleet.iter().map(|r| {
        let mut c = r.client();
        async move { c.create_link_token(link_req(DEMO_ORG_ID)).await }
    });
    for r in join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(
        emu.counters().token_requests,
        2,
        "one refetch for the storm"
    );
    for r in fleet {
        r.stop().await;
    }
    assert_eq!(
        emu.counters().tokens_revoked,
        0,
        "the fleet's token is never revoked"
    );
}

#[tokio::test]
async fn a_call_with_a_locally_held_token_makes_no_redis_round_trip() {
    let (emu, redis) = (emulator().await, RedisServer::start().await);
    let fleet = replicas(&emu, &redis, 2).await;
    for r in &fleet {
        r.client()
            .create_link_token(link_req(DEMO_ORG_ID))
            .await
            .unwrap();
    }
    // Two INFO reads with nothing between them, then with 100 calls between them.
    let idle = redis.commands_processed().await;
    let idle = redis.commands_processed().await - idle;
    let before = redis.commands_processed().await;
    for i in 0..100 {
        let mut c = fleet[i % 2].client();
        c.create_link_token(link_req(DEMO_ORG_ID)).await.unwrap();
        c.delete_link_token(delete_req(DEMO_ORG_ID)).await.unwrap();
    }
    let busy = redis.commands_processed().await - before;
    assert_eq!(busy, idle, "the hot path stays local");
}

#[tokio::test]
async fn a_token_endpoint_429_pauses_every_replica() {
    let (emu, redis) = (emulator().await, RedisServer::start().await);
    let fleet = replicas(&emu, &redis, 2).await;
    emu.inject(Fault::once(
        Route::Token,
        FaultAction::error_with_retry_after(429, "RATE_LIMITED", "30"),
    ));
    for r in &fleet {
        let err = r
            .client()
            .create_link_token(link_req(DEMO_ORG_ID))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(reason(&err), "TOKEN_ENDPOINT_RATE_LIMITED");
        let wait = details(&err).retry_info().unwrap().retry_delay.unwrap();
        assert!(wait > Duration::from_secs(20), "{wait:?}");
    }
    assert_eq!(
        emu.counters().token_requests,
        1,
        "the second replica did not ask"
    );
}

#[tokio::test]
async fn a_request_id_replays_on_another_replica_and_waits_for_one_in_flight() {
    let (emu, redis) = (emulator().await, RedisServer::start().await);
    let fleet = replicas(&emu, &redis, 2).await;
    let first = fleet[0]
        .client()
        .create_api_key(keyed(DEMO_ORG_ID, "rid-1"))
        .await
        .unwrap()
        .into_inner();
    let again = fleet[1]
        .client()
        .create_api_key(keyed(DEMO_ORG_ID, "rid-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.api_key, again.api_key);
    let reused = fleet[1]
        .client()
        .create_api_key(keyed(DEMO_ORG_ID, "rid-1").tap_desc("other"))
        .await
        .unwrap_err();
    assert_eq!(reason(&reused), "REQUEST_ID_REUSED");
    // In flight on replica 0 while the duplicate reaches replica 1.
    emu.inject(Fault::once(
        Route::CreateApiKey,
        FaultAction::Latency { millis: 2000 },
    ));
    let creates = || emu.counters().requests.get(API_KEYS).copied().unwrap_or(0);
    let before = creates();
    let (mut a, mut b) = (fleet[0].client(), fleet[1].client());
    let (x, y) = tokio::join!(a.create_api_key(keyed(DEMO_ORG_ID, "rid-2")), async {
        eventually("replica 0's create reaches Atlas", || {
            std::future::ready(creates() > before)
        })
        .await;
        b.create_api_key(keyed(DEMO_ORG_ID, "rid-2")).await
    });
    assert_eq!(
        x.unwrap().into_inner().api_key,
        y.unwrap().into_inner().api_key
    );
    assert_eq!(emu.counters().api_keys_created, 2);
}

#[tokio::test]
async fn a_claim_left_by_a_replica_that_died_mid_call_is_never_run_again() {
    let (emu, redis) = (emulator().await, RedisServer::start().await);
    // The replica is a process, killed mid-call: a create whose caller merely left
    // would run on to its end (10 s here) and leave its answer.
    let logs = tempfile::tempdir().unwrap();
    let budget = [("ATLAS_GATEWAY_MAX_CALL_DURATION", "10s")];
    let url = redis.url();
    let mut dying = Sidecar::spawn(&emu, Some(&url), logs.path(), "dying.log", &budget);
    let addr = dying.serving().await;
    let other = Replica::with_store(&emu, &redis.url()).await;
    emu.inject(Fault::once(
        Route::CreateApiKey,
        FaultAction::Latency { millis: 30_000 },
    ));
    let mut c =
        atlas_grpc_gateway::pb::atlas_gateway_client::AtlasGatewayClient::new(channel(addr).await);
    let call = tokio::spawn(async move { c.create_api_key(keyed(DEMO_ORG_ID, "rid-dead")).await });
    eventually("the create reaches Atlas", || {
        std::future::ready(emu.counters().requests.contains_key(API_KEYS))
    })
    .await;
    dying.kill();
    call.abort();
    // While the claim may still be running, a duplicate waits (here: past its deadline).
    let short = with_meta(
        keyed(DEMO_ORG_ID, "rid-dead"),
        &[],
        Some(Duration::from_millis(500)),
    );
    let waited = other.client().create_api_key(short).await.unwrap_err();
    // Our DEADLINE_EXCEEDED, or the client's own timer when it fires first.
    assert!(
        matches!(waited.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{waited:?}"
    );
    // Once the claim's deadline and grace are over, the outcome is unknown: no rerun.
    // Until then every duplicate waits for the claim (and runs out of time).
    eventually("the dead replica's claim is over", || async {
        let short = with_meta(
            keyed(DEMO_ORG_ID, "rid-dead"),
            &[],
            Some(Duration::from_millis(500)),
        );
        let err = other.client().create_api_key(short).await.unwrap_err();
        if err.code() == Code::Aborted {
            assert_eq!(reason(&err), "REQUEST_OUTCOME_UNKNOWN");
            return true;
        }
        assert!(
            matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
            "{err:?}"
        );
        false
    })
    .await;
    assert_eq!(emu.counters().api_keys_created, 0);
}

#[tokio::test]
async fn an_atlas_429_cools_the_operation_down_on_every_replica() {
    let (emu, redis) = (emulator().await, RedisServer::start().await);
    let fleet = replicas(&emu, &redis, 2).await;
    eventually("both replicas subscribe to cool-downs", || async {
        redis.subscribers("atlas-gw:cooldowns").await >= 2
    })
    .await;
    emu.inject(Fault::once(
        Route::CreateLinkToken,
        FaultAction::error_with_retry_after(429, "RATE_LIMITED_TOKEN_BUCKET", "30"),
    ));
    let err = fleet[0]
        .client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    eventually("replica 1 learns the cool-down", || {
        let mut client = fleet[1].client();
        async move {
            client
                .create_link_token(link_req(DEMO_ORG_ID))
                .await
                .is_err()
        }
    })
    .await;
    // Still cooling down (30 s): the answer, with what it says.
    let err = fleet[1]
        .client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(meta(&err, "cooldown").as_deref(), Some("true"));
    assert!(details(&err).retry_info().unwrap().retry_delay.unwrap() > Duration::from_secs(20));
}

#[tokio::test]
async fn redis_holds_no_secret_token_key_org_or_request_id_in_clear() {
    let (emu, redis) = (emulator().await, RedisServer::start().await);
    let fleet = replicas(&emu, &redis, 2).await;
    let request_id = "rid-visible-nowhere-42";
    let key = fleet[0]
        .client()
        .create_api_key(keyed(DEMO_ORG_ID, request_id))
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    let mut link = link_req(DEMO_ORG_ID);
    link.request_id = "rid-link-7".into();
    let link = fleet[1]
        .client()
        .create_link_token(link)
        .await
        .unwrap()
        .into_inner();
    let dump = redis.dump().await;
    assert!(
        dump.len() >= 3,
        "token and two records are stored: {}",
        dump.len()
    );
    let mut forbidden = vec![
        DEMO_CLIENT_SECRET.to_string(),
        DEMO_ORG_ID.to_string(),
        request_id.to_string(),
        "rid-link-7".to_string(),
        key.private_key.clone(),
        key.id.clone(),
        link.link_token.clone(),
    ];
    forbidden.extend(emu.issued_tokens());
    for (k, v) in &dump {
        assert!(k.starts_with("{atlas-gw:"), "{k}");
        for f in &forbidden {
            let needle = f.as_bytes();
            assert!(!k.contains(f.as_str()), "key {k} shows a secret");
            assert!(
                !v.windows(needle.len()).any(|w| w == needle),
                "value of {k} shows a secret"
            );
        }
    }
}

#[tokio::test]
async fn killing_and_restarting_redis_mid_load_fails_only_request_ids_and_closed() {
    let (emu, mut redis) = (emulator().await, RedisServer::start().await);
    let fleet = replicas(&emu, &redis, 2).await;
    let load = |round: usize| {
        let clients: Vec<_> = fleet.iter().map(Replica::client).collect();
        async move {
            let mut failed = 0;
            for i in 0..20 {
                let mut c = clients[i % clients.len()].clone();
                let req = keyed(DEMO_ORG_ID, &format!("r{round}-{i}"));
                // A request_id call fails closed while the store is away; nothing else fails.
                failed += usize::from(c.create_api_key(req).await.is_err_and(|e| {
                    (e.code(), reason(&e).as_str())
                        != (Code::Unavailable, "SHARED_STORE_UNAVAILABLE")
                }));
                failed += usize::from(c.create_link_token(link_req(DEMO_ORG_ID)).await.is_err());
            }
            failed
        }
    };
    assert_eq!(load(0).await, 0);
    let during = tokio::spawn(load(1));
    redis.kill();
    let down = load(2).await;
    redis.restart().await;
    let after = load(3).await;
    assert_eq!((during.await.unwrap(), down, after), (0, 0, 0));
    let health = tonic_health::pb::health_client::HealthClient::new(channel(fleet[0].addr).await)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(health.into_inner().status, 1, "SERVING through the outage");
    // Back in use once each replica's next probe (every 500 ms while down) answers: a
    // record written after that replays on the other replica.
    let mut attempt = 0;
    eventually("the fleet shares records again after the restart", || {
        attempt += 1;
        let id = format!("after-{attempt}");
        let (mut a, mut b) = (fleet[0].client(), fleet[1].client());
        async move {
            let first = a.create_api_key(keyed(DEMO_ORG_ID, &id)).await;
            let again = b.create_api_key(keyed(DEMO_ORG_ID, &id)).await;
            match (first, again) {
                (Ok(x), Ok(y)) => x.into_inner().api_key == y.into_inner().api_key,
                // Until a replica's probe finds the store back, its request_id calls
                // fail closed.
                (Err(e), _) | (_, Err(e)) => {
                    assert_eq!(reason(&e), "SHARED_STORE_UNAVAILABLE", "{e:?}");
                    false
                }
            }
        }
    })
    .await;
    assert!(!redis.dump().await.is_empty());
}

trait TapDesc {
    fn tap_desc(self, desc: &str) -> Self;
}

impl TapDesc for atlas_grpc_gateway::pb::CreateApiKeyRequest {
    fn tap_desc(mut self, desc: &str) -> Self {
        self.desc = desc.into();
        self
    }
}

fn rotate_req(client_id: &str) -> atlas_grpc_gateway::pb::RotateServiceAccountSecretRequest {
    atlas_grpc_gateway::pb::RotateServiceAccountSecretRequest {
        org_id: DEMO_ORG_ID.into(),
        client_id: client_id.into(),
        secret_expires_after_hours: 24,
        request_id: String::new(),
    }
}

async fn service_account(replica: &Replica) -> String {
    let req = atlas_grpc_gateway::pb::CreateServiceAccountRequest {
        org_id: DEMO_ORG_ID.into(),
        name: "ci bot".into(),
        description: "mints tokens".into(),
        roles: vec![atlas_grpc_gateway::pb::OrgRole::OrgMember as i32],
        secret_expires_after_hours: 24,
        ..Default::default()
    };
    let resp = replica.client().create_service_account(req).await.unwrap();
    resp.into_inner().service_account.unwrap().client_id
}

/// Rotations of one account split across two replicas take turns through the store's
/// lock: Atlas (whose `createOrgSecret` takes a while and refuses a second one under
/// way) never sees two at once, and ends with two secrets.
#[tokio::test]
async fn rotations_of_one_account_on_two_replicas_take_turns() {
    let (emu, redis) = (emulator().await, RedisServer::start().await);
    let fleet = replicas(&emu, &redis, 2).await;
    let client_id = service_account(&fleet[0]).await;
    let rotations = (0..6).map(|i| {
        let (mut c, req) = (fleet[i % 2].client(), rotate_req(&client_id));
        async move { c.rotate_service_account_secret(req).await }
    });
    for answer in join_all(rotations).await {
        answer.expect("each rotation finds room and no other one under way");
    }
    let c = emu.counters();
    assert_eq!(
        c.service_account_secret_conflicts, 0,
        "never two secrets created at once"
    );
    assert_eq!(c.service_account_secrets_created, 7);
    assert_eq!(emu.service_account_secret_ids(&client_id).len(), 2);
    for r in fleet {
        r.stop().await;
    }
}

/// A rotation whose fleet lock cannot be taken fails closed: never a fall back to the
/// in-process lock alone.
#[tokio::test]
async fn a_rotation_while_the_store_is_down_is_unavailable_and_not_sent() {
    let (emu, mut redis) = (emulator().await, RedisServer::start().await);
    let fleet = replicas(&emu, &redis, 1).await;
    let client_id = service_account(&fleet[0]).await;
    let created = emu.counters().service_account_secrets_created;
    redis.kill();
    let err = fleet[0]
        .client()
        .rotate_service_account_secret(rotate_req(&client_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(reason(&err), "SHARED_STORE_UNAVAILABLE");
    assert_eq!(
        details(&err).retry_info().and_then(|r| r.retry_delay),
        Some(Duration::from_secs(1))
    );
    assert_eq!(emu.counters().service_account_secrets_created, created);
    for r in fleet {
        r.stop().await;
    }
}
