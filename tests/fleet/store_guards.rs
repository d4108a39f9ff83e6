//! What another Redis client can do to a fleet, and how the gateway reports its store:
//! forged cool-downs and a forged token-endpoint pause change no call and are counted;
//! a store that does not answer `PING` at start is one WARN line naming the cause and
//! `atlas_gateway_shared_store_up 0`. The gateway runs as a process (its `/metrics`).
use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
};

use atlas_grpc_gateway::{
    config::Credentials,
    dev::dev_config,
    emulator::{Emulator, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET},
    pb::atlas_gateway_client::AtlasGatewayClient,
    store::{cooldown::Cooldowns, unix_ms, SharedStore},
};

use super::{
    common::{process::*, redis_server::free_port, *},
    emulator, RedisServer,
};

/// The gateway binary with the demo service account, `store` as its shared store,
/// metrics on, JSON logs to `log`.
fn gateway(emu: &Emulator, store: &str, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_atlas-grpc-gateway"))
        .arg("serve")
        .env_clear()
        .env("MONGODB_ATLAS_BASE_URL", emu.base_url())
        .env("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID)
        .env("MONGODB_ATLAS_CLIENT_SECRET", DEMO_CLIENT_SECRET)
        .env("ATLAS_GATEWAY_LISTEN", "127.0.0.1:0")
        .env("ATLAS_GATEWAY_METRICS_LISTEN", "127.0.0.1:0")
        .env("ATLAS_GATEWAY_LOG_FORMAT", "json")
        .env("ATLAS_GATEWAY_SHARED_STORE", store)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Serving gateway: its gRPC and metrics addresses.
async fn serving(child: &mut Child, log: &Path) -> (SocketAddr, SocketAddr) {
    let addr = wait_serving(child, log).await;
    (
        addr,
        logged_addr(log, "metrics_listen").expect("metrics address"),
    )
}

/// The value of the series `series` (name and labels as printed) on `/metrics`.
async fn sample(metrics: SocketAddr, series: &str) -> Option<u64> {
    let text = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

async fn stop(child: Child, log: &Path) -> String {
    signal(&child, "-TERM");
    wait_exit(child, log).await.1
}

#[tokio::test]
async fn forged_cooldowns_and_a_forged_token_pause_change_no_call_and_are_counted() {
    let (emu, redis) = (emulator().await, RedisServer::start().await);
    // The names a Redis reader can learn (every replica's messages show them).
    let config = dev_config(&emu.base_url(), loopback(), "off");
    let profile = config
        .profiles
        .values()
        .find(|p| matches!(p.credentials, Credentials::ServiceAccount { .. }))
        .unwrap();
    let store = SharedStore::new(&Replica::store_config(&redis.url()).unwrap()).unwrap();
    let names = store.for_profile(profile);
    let cooldown = Cooldowns::key(
        Some(&names),
        &profile.name,
        DEMO_ORG_ID,
        "createOrgLiveMigrationLinkToken",
    );
    let pause_key = names.sealer.key("token-pause");
    let tag = pause_key.trim_end_matches(":token-pause");
    let an_hour = unix_ms() + 3_600_000;
    let mut c = redis.connection().await.unwrap();
    redis::cmd("SET")
        .arg(&pause_key)
        .arg(an_hour.to_string())
        .query_async::<()>(&mut c)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gateway.log");
    let mut child = gateway(&emu, &redis.url(), &log);
    let (addr, metrics) = serving(&mut child, &log).await;
    eventually("the gateway subscribes to cool-downs", || async {
        redis.subscribers("atlas-gw:cooldowns").await >= 1
    })
    .await;
    let mut forged = redis::pipe();
    forged
        .cmd("PUBLISH")
        .arg("atlas-gw:cooldowns")
        .arg(format!("{cooldown} {an_hour}"));
    forged
        .cmd("PUBLISH")
        .arg("atlas-gw:cooldowns")
        .arg(format!("{cooldown} {an_hour} bm90LWEtbWFj"));
    for n in 0..2_000 {
        let key = format!("{tag}:cooldown:{n:032x}");
        forged
            .cmd("PUBLISH")
            .arg("atlas-gw:cooldowns")
            .arg(format!("{key} {an_hour} {n}"));
    }
    forged.query_async::<()>(&mut c).await.unwrap();
    let unverified =
        "atlas_gateway_shared_store_rejected_total{kind=\"cooldown\",reason=\"unverified\"}";
    eventually("every forged cool-down is counted", || async {
        sample(metrics, unverified).await == Some(2_002)
    })
    .await;

    let mut client = AtlasGatewayClient::new(channel(addr).await);
    for _ in 0..3 {
        client
            .create_link_token(link_req(DEMO_ORG_ID))
            .await
            .unwrap();
    }
    assert_eq!(emu.counters().token_requests, 1, "the pause did not hold");
    let pause =
        "atlas_gateway_shared_store_rejected_total{kind=\"token_pause\",reason=\"unverified\"}";
    assert!(sample(metrics, pause).await >= Some(1));
    let logs = stop(child, &log).await;
    assert!(!logs.contains(&cooldown), "no key in logs");
}

#[tokio::test]
async fn a_store_that_does_not_answer_ping_at_start_is_one_warning_naming_the_cause() {
    let redis = RedisServer::start().await;
    let emu = emulator().await;
    let port = redis.port;
    let cases = [
        (format!("redis://127.0.0.1:{}/0", free_port()), "refused"),
        (
            format!("redis://gw:wrong-password@127.0.0.1:{port}/0"),
            "auth",
        ),
        (format!("rediss://127.0.0.1:{port}/0"), "tls"),
    ];
    for (url, cause) in cases {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("gateway.log");
        let mut child = gateway(&emu, &url, &log);
        let (_, metrics) = serving(&mut child, &log).await;
        assert_eq!(
            sample(metrics, "atlas_gateway_shared_store_up").await,
            Some(0)
        );
        let logs = stop(child, &log).await;
        let warnings: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("\"level\":\"WARN\"") && l.contains("shared store"))
            .collect();
        assert_eq!(warnings.len(), 1, "{url}: {warnings:#?}");
        assert!(
            warnings[0].contains(&format!("\"cause\":\"{cause}\"")),
            "{url}: {}",
            warnings[0]
        );
        assert!(!logs.contains("wrong-password"), "no password in logs");
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gateway.log");
    let mut child = gateway(&emu, &redis.url(), &log);
    let (_, metrics) = serving(&mut child, &log).await;
    eventually("the store is up", || async {
        sample(metrics, "atlas_gateway_shared_store_up").await == Some(1)
    })
    .await;
    let logs = stop(child, &log).await;
    assert!(!logs.contains("\"level\":\"WARN\""), "{logs}");
}
