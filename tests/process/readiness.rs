//! Readiness as a probe sees it: `healthcheck --service atlas.gateway.v1.AtlasGateway`
//! fails until Atlas accepted every profile's credentials (a wrong secret keeps it
//! failing, with one ERROR line naming the profile) while `healthcheck` (liveness) passes;
//! `--check-config --check-credentials` makes the same check once and exits 1 naming the
//! profile.
use std::process::Command;

use atlas_grpc_gateway::emulator::{Emulator, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};

use super::{bare_gateway_cmd, common::process::*, common::*, log_file, BIN};

const SERVICE: &str = "atlas.gateway.v1.AtlasGateway";

/// `healthcheck` against `addr` for `service`: true on exit 0.
fn healthy(addr: std::net::SocketAddr, service: &str) -> bool {
    Command::new(BIN)
        .args([
            "healthcheck",
            "--addr",
            &addr.to_string(),
            "--service",
            service,
        ])
        .output()
        .unwrap()
        .status
        .success()
}

/// `serve --check-config --check-credentials` with `secret`: (exit code, stderr). Run
/// off the test's runtime thread, which serves the in-process emulator.
async fn check_credentials(emulator: &Emulator, secret: &'static str) -> (Option<i32>, String) {
    let base = emulator.base_url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["serve", "--check-config", "--check-credentials"])
            .env_clear()
            .env("MONGODB_ATLAS_BASE_URL", base)
            .env("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID)
            .env("MONGODB_ATLAS_CLIENT_SECRET", secret)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_keeps_readiness_not_serving_and_check_credentials_names_the_profile() {
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    let (_dir, log) = log_file();
    let mut child = bare_gateway_cmd(&emulator, &log)
        .env("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID)
        .env("MONGODB_ATLAS_CLIENT_SECRET", "mdb_sa_sk_wrong")
        .spawn()
        .unwrap();
    let addr = wait_serving(&mut child, &log).await;
    eventually("the refusal is logged", || {
        let logs = std::fs::read_to_string(&log).unwrap_or_default();
        std::future::ready(
            logs.lines().any(|l| {
                l.contains("\"level\":\"ERROR\"") && l.contains("\"profile\":\"default\"")
            }),
        )
    })
    .await;
    assert!(healthy(addr, ""), "liveness stays SERVING");
    assert!(!healthy(addr, SERVICE), "readiness is NOT_SERVING");
    signal(&child, "-TERM");
    let (_, logs) = wait_exit(child, &log).await;
    assert!(
        !logs.contains("mdb_sa_sk_wrong"),
        "the secret is never logged: {logs}"
    );

    let (code, stderr) = check_credentials(&emulator, "mdb_sa_sk_wrong").await;
    assert_eq!(code, Some(1), "{stderr}");
    let named = "profile default: Atlas did not accept the credentials: Atlas refused";
    assert!(stderr.contains(named), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_credentials_make_the_gateway_ready() {
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    let (_dir, log) = log_file();
    let mut child = bare_gateway_cmd(&emulator, &log)
        .env("MONGODB_ATLAS_CLIENT_ID", DEMO_CLIENT_ID)
        .env("MONGODB_ATLAS_CLIENT_SECRET", DEMO_CLIENT_SECRET)
        .spawn()
        .unwrap();
    let addr = wait_serving(&mut child, &log).await;
    eventually("readiness SERVING", || {
        std::future::ready(healthy(addr, SERVICE))
    })
    .await;
    let status = emulator
        .counters()
        .requests
        .get("GET /api/atlas/v2")
        .copied();
    assert_eq!(status, Some(1), "one getSystemStatus");
    signal(&child, "-TERM");
    wait_exit(child, &log).await;

    let (code, stderr) = check_credentials(&emulator, DEMO_CLIENT_SECRET).await;
    assert_eq!(code, Some(0), "{stderr}");
}
