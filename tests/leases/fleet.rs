//! Leases across gateways: a fleet on one Redis deletes each expired key once, a
//! gateway started after another was SIGKILLed deletes the key that one leased, and an
//! orphan one replica left is deleted by another through the store.
use std::time::{Duration, SystemTime};

use atlas_grpc_gateway::emulator::{Emulator, EmulatorConfig, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};

use super::{
    common::{
        channel, key_req, loopback, meta,
        process::{signal, wait_exit, wait_serving},
        reason,
        redis_server::RedisServer,
        Fault, FaultAction, Replica, Route,
    },
    gone, leased, move_lease, sweeping, sweeps, ONE_KEY, ORG,
};

#[tokio::test]
async fn two_replicas_on_one_redis_delete_each_expired_key_once() {
    let emu = Emulator::start(EmulatorConfig::default(), loopback())
        .await
        .unwrap();
    let redis = RedisServer::start().await;
    let store = Replica::store_config(&redis.url());
    let start = || {
        let store = store.clone();
        Replica::start(&emu, move |c| {
            sweeping(c);
            c.shared_store = store;
        })
    };
    let (a, b) = (start().await, start().await);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let key = a.client().create_api_key(leased(ORG, 60)).await.unwrap();
        ids.push(key.into_inner().api_key.unwrap().id);
    }
    let list_b = b.client().create_api_key(leased(ORG, 60)).await.unwrap();
    ids.push(list_b.into_inner().api_key.unwrap().id);
    for id in &ids {
        move_lease(&emu, id, SystemTime::now() - Duration::from_secs(1)).await;
    }
    for id in &ids {
        gone(&emu, id).await;
    }
    sweeps(&emu, 4).await;
    assert_eq!(
        emu.counters().requests_for("DELETE", ONE_KEY),
        ids.len() as u64
    );
    b.stop().await;
    a.stop().await;
}

/// The real binary, sweeping every 200 ms with `ORG` in `allowed_org_ids` and no store.
async fn process(
    emu: &Emulator,
    dir: &std::path::Path,
    log: &str,
) -> (
    std::process::Child,
    std::path::PathBuf,
    std::net::SocketAddr,
) {
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!("[profiles.default]\nallowed_org_ids = [\"{ORG}\"]\n"),
    )
    .unwrap();
    let log = dir.join(log);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_atlas-grpc-gateway"))
        .arg("serve")
        .env_clear()
        .env("MONGODB_ATLAS_BASE_URL", emu.base_url())
        .env("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID)
        .env("MONGODB_ATLAS_CLIENT_SECRET", DEMO_CLIENT_SECRET)
        .env("ATLAS_GATEWAY_LISTEN", "127.0.0.1:0")
        .env("ATLAS_GATEWAY_METRICS_LISTEN", "off")
        .env("ATLAS_GATEWAY_CONFIG", &config)
        .env("ATLAS_GATEWAY_LEASE_SWEEP_INTERVAL", "200ms")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr = wait_serving(&mut child, &log).await;
    (child, log, addr)
}

#[tokio::test]
async fn a_new_gateway_sweeps_what_a_killed_one_leased() {
    let emu = Emulator::start(EmulatorConfig::default(), loopback())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (first, log, addr) = process(&emu, dir.path(), "first.log").await;
    let mut client =
        atlas_grpc_gateway::pb::atlas_gateway_client::AtlasGatewayClient::new(channel(addr).await);
    let key = client
        .create_api_key(leased(ORG, 60))
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    signal(&first, "-KILL");
    let (status, _) = wait_exit(first, &log).await;
    assert!(!status.success());
    move_lease(&emu, &key.id, SystemTime::now() - Duration::from_secs(1)).await;
    let (second, log, _) = process(&emu, dir.path(), "second.log").await;
    gone(&emu, &key.id).await;
    signal(&second, "-TERM");
    let (status, logs) = wait_exit(second, &log).await;
    assert!(status.success(), "{logs}");
    assert!(logs.contains("lease-sweeper"), "{logs}");
}

#[tokio::test]
async fn an_orphan_left_by_a_stopped_replica_is_deleted_by_another() {
    let emu = Emulator::start(EmulatorConfig::default(), loopback())
        .await
        .unwrap();
    let redis = RedisServer::start().await;
    let store = Replica::store_config(&redis.url());
    let start = || {
        let store = store.clone();
        Replica::start(&emu, move |c| {
            sweeping(c);
            c.shared_store = store;
        })
    };
    let (a, b) = (start().await, start().await);
    for route in [Route::CreateApiKeyAccessList, Route::DeleteApiKey] {
        emu.inject(Fault::new(
            route,
            FaultAction::error(500, "UNEXPECTED_ERROR"),
        ));
    }
    let mut req = key_req(ORG);
    req.access_list_ips = vec!["203.0.113.7".into()];
    let status = a.client().create_api_key(req).await.unwrap_err();
    assert_eq!(reason(&status), "ORPHANED_API_KEY");
    let id = meta(&status, "api_key_id").unwrap();
    a.stop().await;
    emu.clear_faults();
    gone(&emu, &id).await;
    b.stop().await;
}
