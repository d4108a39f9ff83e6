//! The binary as an operator runs it: signals and graceful drain, `healthcheck`, bad
//! configuration, `--check-config`, and a trace-level run whose logs must not contain
//! any secret.
mod common;
#[path = "process/readiness.rs"]
mod readiness;

use std::{
    path::PathBuf,
    process::{Child, Command},
    time::{Duration, Instant},
};

use atlas_grpc_gateway::{
    emulator::{Emulator, DEMO_CLIENT_SECRET, DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY},
    pb::atlas_gateway_client::AtlasGatewayClient,
};
use common::{process::*, *};
use tonic::Code;
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

/// An emulator where link-token creations hang for ten minutes, and a serving gateway
/// process (with one extra variable) in front of it.
async fn slow_creations(
    env: (&str, &str),
) -> (
    Emulator,
    tempfile::TempDir,
    PathBuf,
    Child,
    std::net::SocketAddr,
) {
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    emulator.inject(Fault::new(
        Route::CreateLinkToken,
        FaultAction::Latency { millis: 600_000 },
    ));
    let (dir, log) = log_file();
    let mut child = gateway_cmd(&emulator, &log)
        .env(env.0, env.1)
        .spawn()
        .unwrap();
    let addr = wait_serving(&mut child, &log).await;
    (emulator, dir, log, child, addr)
}

/// Waits until Atlas (the emulator) has received `n` link-token creations.
async fn creations_reach_atlas(emulator: &Emulator, n: u64) {
    eventually("the creations reach Atlas", || {
        let seen = emulator.counters().requests.get(LINK_TOKENS_POST).copied();
        let seen = seen.unwrap_or(0);
        std::future::ready(seen == n)
    })
    .await;
}

#[tokio::test]
async fn sigterm_drains_in_flight_calls_reports_not_serving_and_exits_0() {
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    let (_dir, log) = log_file();
    let mut child = gateway_cmd(&emulator, &log).spawn().unwrap();
    let addr = wait_serving(&mut child, &log).await;
    emulator.inject(Fault::new(
        Route::CreateLinkToken,
        FaultAction::Latency { millis: 800 },
    ));
    let ch = channel(addr).await;
    let mut watch = HealthClient::new(ch.clone())
        .watch(HealthCheckRequest {
            service: "atlas.gateway.v1.AtlasGateway".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // Readiness: NOT_SERVING until Atlas accepted the credentials, then SERVING.
    while watch.message().await.unwrap().unwrap().status != 1 {}
    let mut client = AtlasGatewayClient::new(ch);
    let in_flight =
        tokio::spawn(async move { client.create_link_token(link_req(DEMO_ORG_ID)).await });
    creations_reach_atlas(&emulator, 1).await;
    signal(&child, "-TERM");
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        2,
        "NOT_SERVING while draining"
    );
    let resp = in_flight.await.unwrap();
    assert!(resp.is_ok(), "the in-flight call finished: {resp:?}");
    let (status, _) = wait_exit(child, &log).await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let (emulator, _dir, log, child, addr) =
        slow_creations(("ATLAS_GATEWAY_SHUTDOWN_GRACE", "30s")).await;
    let ch = channel(addr).await;
    let mut watch = HealthClient::new(ch.clone())
        .watch(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    // Readiness: NOT_SERVING until Atlas accepted the credentials, then SERVING.
    while watch.message().await.unwrap().unwrap().status != 1 {}
    let mut client = AtlasGatewayClient::new(ch);
    let _stuck = tokio::spawn(async move { client.create_link_token(link_req(DEMO_ORG_ID)).await });
    creations_reach_atlas(&emulator, 1).await;
    signal(&child, "-TERM");
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        2,
        "draining"
    );
    let started = Instant::now();
    signal(&child, "-INT");
    let (status, stderr) = wait_exit(child, &log).await;
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn healthcheck_subcommand_exit_codes() {
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    let (_dir, log) = log_file();
    let mut child = gateway_cmd(&emulator, &log).spawn().unwrap();
    let addr = wait_serving(&mut child, &log).await;
    // Something that listens but is no gateway: it closes every connection at once.
    let closer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let not_a_gateway = closer.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in closer.incoming() {
            drop(conn);
        }
    });
    let unspecified = format!("0.0.0.0:{}", addr.port());
    let run = |a: String| {
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args(["healthcheck", "--addr", &a])
                .env_clear()
                .output()
                .unwrap()
        })
    };
    assert_eq!(run(addr.to_string()).await.unwrap().status.code(), Some(0));
    assert_eq!(
        run(unspecified).await.unwrap().status.code(),
        Some(0),
        "0.0.0.0 means loopback"
    );
    assert_eq!(
        run(not_a_gateway.to_string()).await.unwrap().status.code(),
        Some(1)
    );
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn bad_configuration_stops_at_start_with_one_line() {
    let out = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("MONGODB_ATLAS_CLIENT_SECRET", "top-secret-value")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("no client id") && stderr.contains("MONGODB_ATLAS_CLIENT_ID"),
        "{stderr}"
    );
    assert!(!stderr.contains("top-secret-value"));
}

#[test]
fn check_config_prints_the_effective_config_redacted() {
    let out = Command::new(BIN)
        .args(["serve", "--check-config", "--api-version", "2023-01-01"])
        .env_clear()
        .env("MONGODB_ATLAS_CLIENT_ID", "mdb_sa_id_x")
        .env("MONGODB_ATLAS_CLIENT_SECRET", "top-secret-value")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["profiles"]["default"]["credentials"]["client_secret"],
        "[REDACTED]"
    );
    assert_eq!(
        v["profiles"]["default"]["credentials"]["client_id"],
        "mdb_sa_id_x"
    );
    assert!(!stdout.contains("top-secret-value"));
}

/// Which Atlas credentials a gateway process gets.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    ServiceAccount,
    ApiKey,
}

/// Drives every path (success, Atlas errors, odd bodies, resets, credential refusals)
/// through a trace-level gateway holding only `kind`'s credentials; returns its logs and
/// what it minted.
async fn trace_logs_through_every_path(kind: Kind) -> (String, Vec<String>) {
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    let (_dir, log) = log_file();
    let mut cmd = match kind {
        Kind::ServiceAccount => gateway_cmd(&emulator, &log),
        Kind::ApiKey => {
            let mut cmd = bare_gateway_cmd(&emulator, &log);
            cmd.env("MONGODB_ATLAS_PUBLIC_API_KEY", DEMO_PUBLIC_KEY)
                .env("MONGODB_ATLAS_PRIVATE_API_KEY", DEMO_PRIVATE_KEY);
            cmd
        }
    };
    let mut child = cmd.env("RUST_LOG", "trace").spawn().unwrap();
    let addr = wait_serving(&mut child, &log).await;
    let mut c = AtlasGatewayClient::new(channel(addr).await);
    let mut minted = Vec::new();
    let link = c.create_link_token(link_req(DEMO_ORG_ID)).await.unwrap();
    minted.push(link.into_inner().link_token);
    let key = c.create_api_key(key_req(DEMO_ORG_ID)).await.unwrap();
    minted.push(key.into_inner().api_key.unwrap().private_key);
    c.delete_link_token(delete_req(DEMO_ORG_ID)).await.unwrap();
    let gone = c.delete_link_token(delete_req(DEMO_ORG_ID)).await;
    assert_eq!(gone.unwrap_err().code(), Code::NotFound);
    let bad = c.create_api_key(key_req("bad")).await;
    assert_eq!(bad.unwrap_err().code(), Code::InvalidArgument);
    emulator.revoke_tokens();
    c.create_link_token(link_req(DEMO_ORG_ID)).await.unwrap();
    for action in [
        FaultAction::error(429, "RATE_LIMITED"),
        FaultAction::Html { status: 502 },
        FaultAction::Truncated { status: 200 },
        FaultAction::Reset,
        FaultAction::error(401, "UNAUTHORIZED"),
    ] {
        emulator.clear_faults();
        emulator.inject(Fault::new(Route::CreateApiKey, action));
        assert!(c.create_api_key(key_req(DEMO_ORG_ID)).await.is_err());
    }
    emulator.clear_faults();
    emulator.inject(Fault::once(
        Route::Token,
        FaultAction::error(401, "invalid_client"),
    ));
    emulator.revoke_tokens();
    let _ = c.create_api_key(key_req(DEMO_ORG_ID)).await;
    signal(&child, "-TERM");
    let (status, logs) = wait_exit(child, &log).await;
    assert_eq!(status.code(), Some(0));
    // The credential kind under test is the one that ran.
    let counters = emulator.counters();
    match kind {
        Kind::ServiceAccount => {
            assert!(counters.tokens_issued >= 2 && counters.digest_challenges == 0)
        }
        Kind::ApiKey => assert!(counters.digest_challenges >= 1 && counters.token_requests == 0),
    }
    assert!(
        logs.len() > 10_000,
        "trace logs were captured ({} bytes)",
        logs.len()
    );
    (logs, minted)
}

fn assert_no_leak(logs: &str, secrets: impl IntoIterator<Item = String>) {
    for secret in secrets {
        assert!(
            !logs.contains(&secret),
            "secret {secret:.6}... leaked into logs"
        );
    }
    for header in ["Bearer ", "Basic ", "Digest username", "response=\""] {
        assert!(
            !logs.contains(header),
            "an Authorization value ({header}) leaked into logs"
        );
    }
}

#[tokio::test]
async fn no_secret_in_trace_level_logs_with_a_service_account() {
    let (logs, minted) = trace_logs_through_every_path(Kind::ServiceAccount).await;
    assert_no_leak(
        &logs,
        minted.into_iter().chain([DEMO_CLIENT_SECRET.to_string()]),
    );
}

#[tokio::test]
async fn no_secret_in_trace_level_logs_with_an_api_key_digest() {
    let (logs, minted) = trace_logs_through_every_path(Kind::ApiKey).await;
    assert_no_leak(
        &logs,
        minted.into_iter().chain([DEMO_PRIVATE_KEY.to_string()]),
    );
}

#[tokio::test]
async fn cancelled_calls_are_counted_logged_and_leave_the_in_flight_gauge() {
    let (emulator, _dir, log, child, addr) =
        slow_creations(("ATLAS_GATEWAY_METRICS_LISTEN", "127.0.0.1:0")).await;
    let metrics = logged_addr(&log, "metrics_listen").expect("metrics address logged");
    let client = AtlasGatewayClient::new(channel(addr).await);
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let mut c = client.clone();
            tokio::spawn(async move { c.create_link_token(link_req(DEMO_ORG_ID)).await })
        })
        .collect();
    creations_reach_atlas(&emulator, 5).await;
    for call in &calls {
        call.abort(); // RST_STREAM: the gateway's handler futures are dropped
    }
    let url = format!("http://{metrics}/metrics");
    let wanted = [
        r#"atlas_gateway_calls_total{method="CreateLinkToken",code="Cancelled",profile="default",reason=""} 5"#,
        r#"atlas_gateway_in_flight_calls{method="CreateLinkToken"} 0"#,
    ];
    eventually("5 cancelled calls counted, none left in flight", || {
        let url = url.clone();
        async move {
            let text = reqwest::get(url).await.unwrap().text().await.unwrap();
            wanted.iter().all(|w| text.contains(w))
        }
    })
    .await;
    // SIGTERM, not SIGKILL: the gateway flushes its (batched) log writer at exit.
    signal(&child, "-TERM");
    let (status, logs) = wait_exit(child, &log).await;
    assert_eq!(status.code(), Some(0), "{logs}");
    let lines = logs
        .lines()
        .filter(|l| l.contains("call cancelled by the caller"))
        .count();
    assert_eq!(lines, 5, "one log line per cancelled call");
}

#[tokio::test]
async fn prometheus_metrics_on_their_own_port() {
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    let (_dir, log) = log_file();
    let mut child = gateway_cmd(&emulator, &log)
        .env("ATLAS_GATEWAY_METRICS_LISTEN", "127.0.0.1:0")
        .spawn()
        .unwrap();
    let addr = wait_serving(&mut child, &log).await;
    let metrics = logged_addr(&log, "metrics_listen").expect("metrics address logged");
    let mut c = AtlasGatewayClient::new(channel(addr).await);
    c.create_link_token(link_req(DEMO_ORG_ID)).await.unwrap();
    c.create_link_token(link_req(DEMO_ORG_ID)).await.unwrap();
    assert!(c.delete_link_token(delete_req("bad")).await.is_err());
    emulator.inject(Fault::once(
        Route::DeleteLinkToken,
        FaultAction::error(503, "SERVICE_UNAVAILABLE"),
    ));
    c.delete_link_token(delete_req(DEMO_ORG_ID)).await.unwrap();
    let list = atlas_grpc_gateway::pb::ListApiKeysRequest {
        org_id: DEMO_ORG_ID.into(),
        ..Default::default()
    };
    c.list_api_keys(list).await.unwrap();
    let text = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    for expected in [
        r#"atlas_gateway_calls_total{method="CreateLinkToken",code="Ok",profile="default",reason=""} 2"#,
        r#"atlas_gateway_calls_total{method="DeleteLinkToken",code="InvalidArgument",profile="default",reason="INVALID_REQUEST"} 1"#,
        // Duration series by method, profile and reason.
        r#"atlas_gateway_call_duration_seconds_count{method="DeleteLinkToken",profile="default",reason=""} 1"#,
        r#"atlas_gateway_call_duration_seconds_count{method="DeleteLinkToken",profile="default",reason="INVALID_REQUEST"} 1"#,
        r#"atlas_gateway_call_duration_seconds_count{method="CreateLinkToken",profile="default",reason=""} 2"#,
        r#"atlas_gateway_token_fetches_total{profile="default",outcome="ok"} 1"#,
        // Cache hits per upstream attempt: the readiness check fetched the token; then
        // both creates, delete, its retry, list.
        r#"atlas_gateway_token_cache_hits_total{profile="default"} 5"#,
        r#"atlas_gateway_calls_total{method="ListApiKeys",code="Ok",profile="default",reason=""} 1"#,
        "atlas_gateway_upstream_duration_seconds_bucket{operation=\"listOrgApiKeys\",status=\"200\",le=",
        r#"atlas_gateway_upstream_retries_total{operation="deleteOrgLiveMigrationLinkTokens",reason="503"} 1"#,
        "atlas_gateway_upstream_duration_seconds_bucket{operation=\"createOrgLiveMigrationLinkToken\",status=\"201\",le=",
        "atlas_gateway_in_flight_calls",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    assert!(!text.contains(DEMO_ORG_ID), "no org ids in labels");
    assert!(!text.contains(DEMO_CLIENT_SECRET));
}

#[test]
fn help_and_errors_never_show_credential_values() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["dev", "--help"],
        &["serve", "--listen", "nope"],
        &["healthcheck", "--addr", "x"],
    ] {
        let out = Command::new(BIN)
            .args(args)
            .env_clear()
            .env("MONGODB_ATLAS_CLIENT_ID", "client-id-value-123")
            .env("MONGODB_ATLAS_CLIENT_SECRET", "client-secret-value-456")
            .env("MONGODB_ATLAS_PRIVATE_API_KEY", "private-key-value-789")
            .env(
                "MONGODB_ATLAS_BASE_URL",
                "https://user:pw-in-url@cloud.example",
            )
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.is_empty());
        for secret in [
            "client-id-value-123",
            "client-secret-value-456",
            "private-key-value-789",
            "pw-in-url",
        ] {
            assert!(!all.contains(secret), "{args:?} printed {secret}: {all}");
        }
    }
}

#[tokio::test]
async fn an_orphaned_api_key_is_logged_at_error_level_with_its_id_not_its_secret() {
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    let (id, private_key) = ("0a1b2c3d4e5f60718293a4b5", "orphan-private-key-7f3e9c");
    let created = serde_json::json!({"id": id, "desc": "ci key", "publicKey": "abcdefgh",
        "privateKey": private_key, "roles": [{"orgId": DEMO_ORG_ID, "roleName": "ORG_MEMBER"}]});
    // Atlas "creates" a key it then does not know: the access list POST is a 404, and
    // the rollback DELETE fails.
    emulator.inject(Fault::once(
        Route::CreateApiKey,
        FaultAction::Raw {
            status: 200,
            content_type: "application/vnd.atlas.2023-01-01+json".into(),
            body: created.to_string(),
        },
    ));
    emulator.inject(Fault::new(
        Route::DeleteApiKey,
        FaultAction::error(500, "UNEXPECTED_ERROR"),
    ));
    let (_dir, log) = log_file();
    let mut child = gateway_cmd(&emulator, &log)
        .env("RUST_LOG", "trace")
        .spawn()
        .unwrap();
    let addr = wait_serving(&mut child, &log).await;
    let mut c = AtlasGatewayClient::new(channel(addr).await);
    let mut req = key_req(DEMO_ORG_ID);
    req.access_list_ips = vec!["10.0.0.0/8".into()];
    let err = c.create_api_key(req).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::Internal, "ORPHANED_API_KEY")
    );
    assert_eq!(meta(&err, "api_key_id").as_deref(), Some(id));
    assert_eq!(
        meta(&err, "access_list_error").as_deref(),
        Some("RESOURCE_NOT_FOUND")
    );
    signal(&child, "-TERM");
    let (status, logs) = wait_exit(child, &log).await;
    assert_eq!(status.code(), Some(0));
    let orphan = logs
        .lines()
        .find(|l| l.contains("ORPHANED API KEY"))
        .unwrap_or_else(|| panic!("no orphan line in:\n{logs}"));
    assert!(orphan.contains("ERROR") && orphan.contains(id), "{orphan}");
    assert!(
        !logs.contains(private_key),
        "the private key leaked into logs"
    );
}
