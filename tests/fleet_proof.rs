//! Proof at fleet size: 24 real gateway processes on one service account, in front of
//! an emulator that enforces Atlas's limits (10 token requests a minute, 100 active
//! tokens), roll out and are then all replaced one by one; the first replaced sidecar
//! is killed with SIGKILL after answering, and every replacement retries its
//! predecessor's `request_id`. With a shared store (a real redis-server): 0 failed
//! calls, at most 2 token requests, no duplicate create. The same scenario without a
//! store is run for comparison; both rows are printed (RELIABILITY.md records them).
//!
//! And "never twice" through store chaos: 2 replicas, 200 CreateApiKey calls over 50
//! `request_id`s, callers hanging up, Redis paused, killed and restarted: 50 creates,
//! one key per `request_id`, and no answer but that key or a retryable UNAVAILABLE.
mod common;

use std::{net::SocketAddr, time::Duration};

use atlas_grpc_gateway::{
    emulator::{Emulator, EmulatorConfig, Limits},
    pb::atlas_gateway_client::AtlasGatewayClient,
};
use common::{redis_server::RedisServer, sidecar::Sidecar, *};

const SIDECARS: usize = 24;

/// A pod's first calls: an idempotent CreateApiKey for `pod` and a link token; how
/// many failed.
async fn first_calls(addr: SocketAddr, pod: usize) -> u64 {
    let mut c = AtlasGatewayClient::new(channel(addr).await);
    let mut key = key_req(DEMO_ORG_ID);
    key.request_id = format!("pod-{pod}");
    let ten_s = Some(Duration::from_secs(10));
    let key = c.create_api_key(with_meta(key, &[], ten_s)).await;
    let link = c
        .create_link_token(with_meta(link_req(DEMO_ORG_ID), &[], ten_s))
        .await;
    u64::from(key.is_err()) + u64::from(link.is_err())
}

/// What one scenario came to.
#[derive(Debug)]
struct Outcome {
    token_requests: u64,
    failed_calls: u64,
    active_tokens: usize,
    keys_created: u64,
    duplicate_creates: u64,
}

async fn scenario(store: Option<&RedisServer>) -> Outcome {
    let limits = Limits {
        token_requests_per_minute: Some(10),
        max_active_tokens: Some(100),
    };
    let emu = Emulator::start(
        EmulatorConfig {
            limits,
            ..EmulatorConfig::default()
        },
        loopback(),
    )
    .await
    .unwrap();
    let url = store.map(RedisServer::url);
    let logs = tempfile::tempdir().unwrap();
    let spawn = |i: usize, gen: &str| {
        let name = format!("{gen}-{i}.log");
        Sidecar::spawn(&emu, url.as_deref(), logs.path(), &name, &[])
    };
    let mut failed = 0;
    // Roll out: every sidecar starts, then all make their first calls together.
    let mut old: Vec<Sidecar> = (0..SIDECARS).map(|i| spawn(i, "old")).collect();
    let mut addrs = Vec::new();
    for s in &mut old {
        addrs.push(s.serving().await);
    }
    let calls = addrs.iter().enumerate().map(|(i, a)| first_calls(*a, i));
    failed += join_all(calls).await.into_iter().sum::<u64>();
    // Replace all, one by one: the first old sidecar is killed (after answering), the
    // replacement starts and retries its predecessor's request_id, then the old one
    // drains (SIGTERM).
    let mut new = Vec::new();
    for (i, s) in old.into_iter().enumerate() {
        let draining = if i == 0 {
            s.kill();
            None
        } else {
            Some(s)
        };
        let mut replacement = spawn(i, "new");
        let addr = replacement.serving().await;
        failed += first_calls(addr, i).await;
        if let Some(s) = draining {
            s.drain().await;
        }
        new.push(replacement);
    }
    let c = emu.counters();
    let outcome = Outcome {
        token_requests: c.token_requests,
        failed_calls: failed,
        active_tokens: emu.active_tokens(),
        keys_created: c.api_keys_created,
        duplicate_creates: c.api_keys_created.saturating_sub(SIDECARS as u64),
    };
    for s in new {
        s.drain().await;
    }
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_four_sidecars_roll_out_and_are_replaced_within_atlas_limits() {
    let redis = RedisServer::start().await;
    let shared = scenario(Some(&redis)).await;
    let alone = scenario(None).await;
    println!(
        "| store | sidecars | token requests | failed calls | active tokens | keys created | duplicate creates |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, o) in [("shared store", &shared), ("none", &alone)] {
        println!(
            "| {name} | {} ({} replaced) | {} | {} | {} | {} | {} |",
            SIDECARS,
            SIDECARS,
            o.token_requests,
            o.failed_calls,
            o.active_tokens,
            o.keys_created,
            o.duplicate_creates
        );
    }
    assert_eq!(shared.failed_calls, 0, "{shared:?}");
    assert!(shared.token_requests <= 2, "{shared:?}");
    assert_eq!(shared.duplicate_creates, 0, "{shared:?}");
    assert!(
        alone.failed_calls > 0 && alone.token_requests > 10,
        "without a store the limits bite: {alone:?}"
    );
}

/// Calls per `request_id` in the chaos proof, and how many ids.
const CALLS_PER_ID: usize = 4;
const IDS: usize = 50;

/// What the chaos proof saw.
#[derive(Debug, Default)]
struct Chaos {
    creates: u64,
    ids_with_two_keys: usize,
    unanswered: usize,
    unavailable: usize,
    other_errors: Vec<String>,
    hung_up: usize,
}

/// One caller: CreateApiKey for `id` on `replica`; hangs up after `hang_up` when set.
async fn chaos_call(
    client: AtlasGatewayClient<tonic::transport::Channel>,
    id: usize,
    start: Duration,
    hang_up: Option<Duration>,
) -> Option<Result<String, tonic::Status>> {
    tokio::time::sleep(start).await;
    let mut client = client;
    let mut req = key_req(DEMO_ORG_ID);
    req.request_id = format!("chaos-{id}");
    let call = client.create_api_key(with_meta(req, &[], Some(Duration::from_secs(20))));
    let answer = match hang_up {
        Some(after) => tokio::time::timeout(after, call).await.ok()?,
        None => call.await,
    };
    Some(answer.map(|r| r.into_inner().api_key.unwrap().id))
}

/// 2 replicas, 200 CreateApiKey calls over 50 request_ids (random replica, a third of
/// the callers hanging up), Redis paused (CLIENT PAUSE) in round 1 and killed and
/// restarted (its append-only file kept) in round 2; then each id is asked until it
/// answers. Every create is slowed (400 ms) so that hang-ups land mid-create.
async fn chaos() -> Chaos {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start_persistent(dir.path()).await;
    let emu = Emulator::start(EmulatorConfig::default(), loopback())
        .await
        .unwrap();
    emu.inject(Fault::new(
        Route::CreateApiKey,
        FaultAction::Latency { millis: 400 },
    ));
    let fleet = [
        Replica::with_store(&emu, &redis.url()).await,
        Replica::with_store(&emu, &redis.url()).await,
    ];
    let mut rng = fastrand::Rng::with_seed(20);
    let mut seen = Chaos::default();
    let mut keys: Vec<Vec<String>> = vec![Vec::new(); IDS];
    let mut admin = redis.connection().await.unwrap();
    for round in 0..CALLS_PER_ID {
        let calls: Vec<_> = (0..IDS)
            .map(|id| {
                let client = fleet[rng.usize(0..2)].client();
                let start = Duration::from_millis(rng.u64(0..1500));
                let hang_up = (rng.u8(0..3) == 0).then(|| Duration::from_millis(rng.u64(0..600)));
                tokio::spawn(chaos_call(client, id, start, hang_up))
            })
            .collect();
        match round {
            0 => {
                let pause = redis::cmd("CLIENT").arg(&["PAUSE", "1000"]).to_owned();
                let () = pause.query_async(&mut admin).await.unwrap();
            }
            1 => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                redis.kill();
                tokio::time::sleep(Duration::from_millis(500)).await;
                redis.restart().await;
            }
            _ => {}
        }
        for (id, call) in calls.into_iter().enumerate() {
            match call.await.unwrap() {
                None => seen.hung_up += 1,
                Some(Ok(key)) => keys[id].push(key),
                Some(Err(e)) if reason(&e) == "SHARED_STORE_UNAVAILABLE" => seen.unavailable += 1,
                Some(Err(e)) => seen
                    .other_errors
                    .push(format!("{:?} {}", e.code(), reason(&e))),
            }
        }
    }
    for (id, keys) in keys.iter_mut().enumerate() {
        // Retried (as UNAVAILABLE asks) until it answers; the bound only turns a hang
        // into a failure.
        for turn in 0..600 {
            let call = chaos_call(fleet[turn % 2].client(), id, Duration::ZERO, None);
            match call.await.expect("the final callers wait") {
                Ok(key) => {
                    keys.push(key);
                    break;
                }
                Err(e) if reason(&e) == "SHARED_STORE_UNAVAILABLE" => {}
                Err(e) => {
                    seen.other_errors
                        .push(format!("{:?} {}", e.code(), reason(&e)));
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        keys.sort();
        keys.dedup();
    }
    seen.ids_with_two_keys = keys.iter().filter(|k| k.len() > 1).count();
    seen.unanswered = keys.iter().filter(|k| k.is_empty()).count();
    seen.creates = emu.counters().api_keys_created;
    for r in fleet {
        r.stop().await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_creates_over_fifty_request_ids_through_store_chaos_make_fifty_keys() {
    let seen = chaos().await;
    println!("| Atlas creates | request_ids with two keys | request_ids never answered | SHARED_STORE_UNAVAILABLE answers | other errors | hung up |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {} | {} | {} |",
        seen.creates,
        seen.ids_with_two_keys,
        seen.unanswered,
        seen.unavailable,
        seen.other_errors.len(),
        seen.hung_up
    );
    assert_eq!(seen.creates, IDS as u64, "{seen:?}");
    assert_eq!(
        (seen.ids_with_two_keys, seen.unanswered),
        (0, 0),
        "{seen:?}"
    );
    assert!(seen.other_errors.is_empty(), "{seen:?}");
}
