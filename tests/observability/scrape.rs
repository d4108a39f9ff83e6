//! What a Prometheus scrape of the real binary shows: every family from the first scrape
//! (zero-valued series, `build_info`, `profile_ready`), and a Digest challenge counted as
//! a challenge, not as an upstream 401.
use atlas_grpc_gateway::emulator::{Emulator, DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY};
use atlas_grpc_gateway::pb::atlas_gateway_client::AtlasGatewayClient;

use super::common::{process::logged_addr, *};
use super::Process;

/// A service-account profile (the default) and a Digest one.
const PROFILES: &str =
    "[profiles.default]\n[profiles.apikey]\npublic_key_env = \"PUB\"\nprivate_key_env = \"PRIV\"\n";

/// Every family docs/operations.md lists.
const FAMILIES: [&str; 15] = [
    "atlas_gateway_connections_refused_total",
    "atlas_gateway_calls_total",
    "atlas_gateway_call_duration_seconds",
    "atlas_gateway_in_flight_calls",
    "atlas_gateway_upstream_duration_seconds",
    "atlas_gateway_upstream_retries_total",
    "atlas_gateway_token_fetches_total",
    "atlas_gateway_token_fetch_duration_seconds",
    "atlas_gateway_token_cache_hits_total",
    "atlas_gateway_digest_challenges_total",
    "atlas_gateway_shared_store_errors_total",
    "atlas_gateway_tls_handshake_failures_total",
    "atlas_gateway_build_info",
    "atlas_gateway_profile_ready",
    "atlas_gateway_token_fetch_duration_seconds",
];

async fn start(emulator: &Emulator, dir: &tempfile::TempDir) -> Process {
    let config = dir.path().join("profiles.toml");
    std::fs::write(&config, PROFILES).unwrap();
    let args = [
        "--metrics-listen",
        "127.0.0.1:0",
        "--config",
        config.to_str().unwrap(),
    ];
    let env = [("PUB", DEMO_PUBLIC_KEY), ("PRIV", DEMO_PRIVATE_KEY)];
    Process::start(emulator, &args, &env).await
}

async fn scrape(gw: &Process) -> String {
    let addr = logged_addr(&gw.log, "metrics_listen").expect("the metrics address is logged");
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample whose line starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(series))?;
    line.rsplit(' ').next()?.parse().ok()
}

#[tokio::test]
async fn every_family_is_in_the_first_scrape() {
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&emulator, &dir).await;
    let text = scrape(&gw).await;
    for family in FAMILIES {
        assert!(
            text.contains(&format!("\n{family}")),
            "{family} missing from\n{text}"
        );
    }
    let version = env!("CARGO_PKG_VERSION");
    let build = format!("atlas_gateway_build_info{{version=\"{version}\",features=\"emulator\"}}");
    assert_eq!(sample(&text, &build), Some(1.0), "{text}");
    let calls = "atlas_gateway_calls_total{method=\"CreateApiKey\",code=\"Ok\",profile=\"apikey\",reason=\"\"}";
    assert_eq!(sample(&text, calls), Some(0.0), "{text}");
    gw.stop().await;
}

#[tokio::test]
async fn a_digest_challenge_is_not_an_upstream_401() {
    let emulator = Emulator::start(Default::default(), loopback())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&emulator, &dir).await;
    let mut client = AtlasGatewayClient::new(channel(gw.addr).await);
    let req = with_meta(key_req(DEMO_ORG_ID), &[("x-atlas-profile", "apikey")], None);
    client.create_api_key(req).await.unwrap();
    let text = scrape(&gw).await;
    let challenges = "atlas_gateway_digest_challenges_total{profile=\"apikey\"}";
    assert!(
        sample(&text, challenges).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        !text.contains("status=\"401\""),
        "an upstream 401 sample:\n{text}"
    );
    let ok = "atlas_gateway_calls_total{method=\"CreateApiKey\",code=\"Ok\",profile=\"apikey\",reason=\"\"}";
    assert_eq!(sample(&text, ok), Some(1.0), "{text}");
    gw.stop().await;
}
