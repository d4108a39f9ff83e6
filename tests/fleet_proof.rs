//! Proof at fleet size: 24 real gateway processes on one service account, in front of
//! an emulator that enforces Atlas's limits (10 token requests a minute, 100 active
//! tokens), roll out and are then all replaced one by one; the first replaced sidecar
//! is killed with SIGKILL after answering, and every replacement retries its
//! predecessor's `request_id`. With a shared store (a real redis-server): 0 failed
//! calls, at most 2 token requests, no duplicate create. The same scenario without a
//! store is run for comparison; both rows are printed (RELIABILITY.md records them).
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
