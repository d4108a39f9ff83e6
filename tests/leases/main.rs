//! Leases at the gRPC boundary: keys created with a `ttl` carry the marker in Atlas and
//! `expire_time` in answers; the sweeper deletes them once the marker has passed, and
//! never a key without a marker or with one in the future; a lease beyond the
//! profile's `max_key_ttl` is refused before Atlas; a failing Atlas is retried next
//! sweep and counted; a fleet on one Redis deletes each expired key once.
//!
//! Time does not pass in these tests: a marker is moved into the past the way an
//! operator could in Atlas, with `updateApiKey` on the key's `desc` (the emulator
//! implements it as Atlas does). The gateway is not told.
#[path = "../common/mod.rs"]
mod common;
mod fleet;

use std::time::{Duration, SystemTime};

use atlas_grpc_gateway::{
    config::Config,
    emulator::{Emulator, EmulatorConfig, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET},
    lease,
    pb::{ApiKey, CreateApiKeyRequest, ListApiKeysRequest},
};
use common::*;
use tonic::Code;

const ORG: &str = DEMO_ORG_ID;
const LIST: &str = "/api/atlas/v2/orgs/{orgId}/apiKeys";
const ONE_KEY: &str = "/api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}";
const VERSIONED: &str = "application/vnd.atlas.2023-01-01+json";

/// A short sweep interval, so a test sees several sweeps.
fn sweeping(config: &mut Config) {
    config.lease_sweep_interval = Duration::from_millis(200);
}

fn leased(org: &str, ttl_secs: i64) -> CreateApiKeyRequest {
    CreateApiKeyRequest {
        ttl: Some(prost_types::Duration {
            seconds: ttl_secs,
            nanos: 0,
        }),
        ..key_req(org)
    }
}

async fn create(gw: &Gateway, req: CreateApiKeyRequest) -> ApiKey {
    gw.client()
        .create_api_key(req)
        .await
        .expect("CreateApiKey")
        .into_inner()
        .api_key
        .expect("an api_key")
}

/// The key's `desc` as the emulator keeps it; `None` once the key is gone.
fn stored_desc(emu: &Emulator, id: &str) -> Option<String> {
    emu.state()["api_keys"]
        .as_array()?
        .iter()
        .find(|k| k["id"] == id)
        .map(|k| k["desc"].as_str().unwrap_or_default().to_string())
}

/// Rewrites a key's `desc` in Atlas with `updateApiKey`, as an operator could.
async fn edit_desc(emu: &Emulator, id: &str, desc: &str) {
    let http = reqwest::Client::new();
    let token = http
        .post(emu.token_url())
        .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let token: serde_json::Value = serde_json::from_slice(&token).unwrap();
    let url = format!("{}/api/atlas/v2/orgs/{ORG}/apiKeys/{id}", emu.base_url());
    let resp = http
        .patch(url)
        .bearer_auth(token["access_token"].as_str().unwrap())
        .header("accept", VERSIONED)
        .header("content-type", VERSIONED)
        .body(serde_json::json!({ "desc": desc }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "updateApiKey");
}

/// Moves a leased key's marker to `end`, keeping the caller's part of its `desc`.
async fn move_lease(emu: &Emulator, id: &str, end: SystemTime) {
    let stored = stored_desc(emu, id).expect("the key exists");
    let (desc, _) = lease::read(&stored);
    edit_desc(emu, id, &lease::mark(desc, end)).await;
}

fn lists(emu: &Emulator) -> u64 {
    emu.counters().requests_for("GET", LIST)
}

/// Waits until the sweeper has listed the org `n` more times: the sweeps before the
/// last one are over, deletions included.
async fn sweeps(emu: &Emulator, n: u64) {
    let seen = lists(emu);
    eventually("the sweeper lists the org again", || {
        std::future::ready(lists(emu) >= seen + n)
    })
    .await;
}

async fn gone(emu: &Emulator, id: &str) {
    eventually("the sweeper deletes the expired key", || {
        std::future::ready(stored_desc(emu, id).is_none())
    })
    .await;
}

#[tokio::test]
async fn a_leased_key_is_swept_once_its_lease_ends_and_a_plain_key_stays() {
    let gw = Gateway::start_with(EmulatorConfig::default(), sweeping).await;
    let before = SystemTime::now();
    let key = create(&gw, leased(ORG, 60)).await;
    let plain = create(&gw, key_req(ORG)).await;

    let end = SystemTime::try_from(key.expire_time.expect("expire_time")).unwrap();
    assert!(end >= before + Duration::from_secs(60), "{end:?}");
    assert_eq!(key.desc, "ci key");
    assert_eq!(plain.expire_time, None);
    assert_eq!(
        stored_desc(&gw.emulator, &key.id),
        Some(lease::mark("ci key", end))
    );
    let listed = gw
        .client()
        .list_api_keys(ListApiKeysRequest {
            org_id: ORG.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .api_keys;
    let shown = listed.iter().find(|k| k.id == key.id).unwrap();
    assert_eq!(
        (shown.desc.as_str(), shown.expire_time),
        ("ci key", key.expire_time)
    );

    sweeps(&gw.emulator, 2).await;
    assert!(stored_desc(&gw.emulator, &key.id).is_some(), "swept early");
    move_lease(
        &gw.emulator,
        &key.id,
        SystemTime::now() - Duration::from_secs(1),
    )
    .await;
    gone(&gw.emulator, &key.id).await;
    sweeps(&gw.emulator, 2).await;
    assert_eq!(
        stored_desc(&gw.emulator, &plain.id).as_deref(),
        Some("ci key")
    );
    assert_eq!(gw.emulator.counters().requests_for("DELETE", ONE_KEY), 1);
}

#[tokio::test]
async fn a_marker_edited_into_the_future_or_out_of_shape_is_never_swept() {
    let gw = Gateway::start_with(EmulatorConfig::default(), sweeping).await;
    let later = create(&gw, leased(ORG, 60)).await;
    let mangled = create(&gw, leased(ORG, 60)).await;
    let year = Duration::from_secs(365 * 24 * 3600);
    move_lease(&gw.emulator, &later.id, SystemTime::now() + year).await;
    edit_desc(
        &gw.emulator,
        &mangled.id,
        "ci key [atlas-gw expires 2000-01-01T00:00:00Z] kept by hand",
    )
    .await;
    sweeps(&gw.emulator, 3).await;
    for id in [&later.id, &mangled.id] {
        assert!(stored_desc(&gw.emulator, id).is_some(), "{id} was deleted");
    }
    assert_eq!(gw.emulator.counters().requests_for("DELETE", ONE_KEY), 0);
}

#[tokio::test]
async fn a_lease_beyond_the_profile_bounds_is_refused_before_atlas() {
    let gw = Gateway::start_with(EmulatorConfig::default(), |c| {
        let p = c.profiles.get_mut("default").unwrap();
        p.lease.max_key_ttl = Some(Duration::from_secs(3600));
    })
    .await;
    let mut long_desc = leased(ORG, 120);
    long_desc.desc = "d".repeat(validate_max() + 1);
    let mut fenced = leased(ORG, 120);
    fenced.desc = "d".repeat(validate_max() + 1);
    fenced.access_list_ips = vec!["203.0.113.7".into()];
    for (req, field) in [
        (leased(ORG, 3601), "ttl"),
        (leased(ORG, 59), "ttl"),
        (long_desc, "desc"),
        (fenced, "desc"),
    ] {
        let status = gw.client().create_api_key(req).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(violated_fields(&status), [field]);
    }
    assert_eq!(gw.emulator.counters().total_requests(), 0);
}

fn validate_max() -> usize {
    atlas_grpc_gateway::validate::MAX_LEASED_DESC_CHARS
}

#[tokio::test]
async fn the_profile_default_lease_applies_when_the_call_sets_none() {
    let gw = Gateway::start_with(EmulatorConfig::default(), |c| {
        let p = c.profiles.get_mut("default").unwrap();
        p.lease.default_key_ttl = Some(Duration::from_secs(600));
    })
    .await;
    let key = create(&gw, key_req(ORG)).await;
    let end = SystemTime::try_from(key.expire_time.expect("a default lease")).unwrap();
    assert_eq!(
        stored_desc(&gw.emulator, &key.id),
        Some(lease::mark("ci key", end))
    );
}

/// The Atlas API requests the emulator received (not the token endpoint's), by
/// `"METHOD /template"`.
fn atlas_requests(emu: &Emulator) -> Vec<(String, u64)> {
    let counters = emu.counters();
    (counters.requests.into_iter())
        .filter(|(route, _)| route.contains("/api/atlas/"))
        .collect()
}

#[tokio::test]
async fn a_fenced_create_makes_only_the_create_and_access_list_calls() {
    let gw = Gateway::start().await;
    let mut plain = key_req(ORG);
    plain.access_list_ips = vec!["203.0.113.7".into()];
    let key = create(&gw, plain).await;
    assert_eq!(key.expire_time, None);
    assert_eq!(key.access_list_ips, ["203.0.113.7"]);
    assert_eq!(
        stored_desc(&gw.emulator, &key.id).as_deref(),
        Some("ci key"),
        "no marker on a key without a lease"
    );
    assert_eq!(
        atlas_requests(&gw.emulator),
        [
            (format!("POST {LIST}"), 1),
            (format!("POST {ONE_KEY}/accessList"), 1)
        ]
    );

    let mut req = leased(ORG, 3600);
    req.access_list_ips = vec!["203.0.113.7".into()];
    req.desc = "d".repeat(validate_max());
    let key = create(&gw, req).await;
    let end = SystemTime::try_from(key.expire_time.unwrap()).unwrap();
    assert_eq!(
        stored_desc(&gw.emulator, &key.id),
        Some(lease::mark(&"d".repeat(validate_max()), end)),
        "its own lease only"
    );
    let requests: u64 = atlas_requests(&gw.emulator).iter().map(|r| r.1).sum();
    assert_eq!(requests, 4, "{:?}", atlas_requests(&gw.emulator));
}

#[tokio::test]
async fn a_fenced_key_without_a_lease_takes_any_desc_atlas_takes() {
    let gw = Gateway::start().await;
    let mut req = key_req(ORG);
    req.access_list_ips = vec!["203.0.113.7".into()];
    req.desc = "d".repeat(250);
    let key = create(&gw, req).await;
    assert_eq!(stored_desc(&gw.emulator, &key.id), Some("d".repeat(250)));
}

#[tokio::test]
async fn the_sweeper_deletes_an_orphaned_key_once_atlas_lets_it() {
    let gw = Gateway::start_with(EmulatorConfig::default(), sweeping).await;
    gw.emulator.inject(Fault::new(
        Route::CreateApiKeyAccessList,
        FaultAction::error(500, "UNEXPECTED_ERROR"),
    ));
    gw.emulator.inject(Fault::new(
        Route::DeleteApiKey,
        FaultAction::error(500, "UNEXPECTED_ERROR"),
    ));
    let mut req = key_req(ORG);
    req.access_list_ips = vec!["203.0.113.7".into()];
    let status = gw.client().create_api_key(req).await.unwrap_err();
    assert_eq!(reason(&status), "ORPHANED_API_KEY");
    assert_eq!(meta(&status, "rolled_back").as_deref(), Some("false"));
    assert_eq!(
        meta(&status, "sweeper_retries_delete").as_deref(),
        Some("true")
    );
    assert!(status.message().contains("retry the delete"), "{status:?}");
    let id = meta(&status, "api_key_id").unwrap();
    assert_eq!(
        stored_desc(&gw.emulator, &id).as_deref(),
        Some("ci key"),
        "created without a marker"
    );

    let deletes = || gw.emulator.counters().requests_for("DELETE", ONE_KEY);
    eventually("the sweeper retries the delete twice", || {
        std::future::ready(deletes() >= 3)
    })
    .await;
    assert!(stored_desc(&gw.emulator, &id).is_some());
    gw.emulator.clear_faults();
    eventually("the sweeper deletes the orphan", || {
        std::future::ready(stored_desc(&gw.emulator, &id).is_none())
    })
    .await;

    // Forgotten once gone: a leased key makes the sweeper list the org each sweep.
    let done = deletes();
    create(&gw, leased(ORG, 3600)).await;
    sweeps(&gw.emulator, 2).await;
    assert_eq!(deletes(), done, "the orphan's delete is not repeated");
}

/// `atlas_gateway_lease_sweep_errors_total` for `operation`, from /metrics.
async fn sweep_errors(metrics: std::net::SocketAddr, operation: &str) -> u64 {
    let text = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("atlas_gateway_lease_sweep_errors_total{{operation=\"{operation}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn a_failing_atlas_is_counted_and_retried_next_sweep() {
    let metrics = atlas_grpc_gateway::telemetry::init_metrics(loopback())
        .await
        .unwrap();
    let gw = Gateway::start_with(EmulatorConfig::default(), sweeping).await;
    let key = create(&gw, leased(ORG, 60)).await;
    move_lease(
        &gw.emulator,
        &key.id,
        SystemTime::now() - Duration::from_secs(1),
    )
    .await;
    let fail = |route, status: u16, code: &str| {
        Fault::new(
            route,
            FaultAction::Error {
                status,
                error_code: code.into(),
                detail: None,
                retry_after: Some("1".into()),
                parameters: None,
                bad_request_fields: Vec::new(),
            },
        )
    };
    gw.emulator
        .inject(fail(Route::ListApiKeys, 503, "SERVICE_UNAVAILABLE"));
    for (route, operation) in [
        (Route::ListApiKeys, "listOrgApiKeys"),
        (Route::DeleteApiKey, "deleteOrgApiKey"),
    ] {
        if route == Route::DeleteApiKey {
            gw.emulator.clear_faults();
            gw.emulator.inject(fail(route, 429, "RATE_LIMITED"));
        }
        let seen = sweep_errors(metrics, operation).await;
        eventually("two sweeps fail and count it", || async move {
            sweep_errors(metrics, operation).await >= seen + 2
        })
        .await;
        assert!(stored_desc(&gw.emulator, &key.id).is_some());
    }
    gw.emulator.clear_faults();
    gone(&gw.emulator, &key.id).await;
}

#[tokio::test]
async fn a_sweeper_deletion_is_audited_as_the_lease_sweeper() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let target = atlas_grpc_gateway::audit::AuditTarget::File(path.clone());
    let gw = Gateway::start_with(EmulatorConfig::default(), |c| {
        sweeping(c);
        c.audit_log = Some(target);
    })
    .await;
    let key = create(&gw, leased(ORG, 60)).await;
    move_lease(
        &gw.emulator,
        &key.id,
        SystemTime::now() - Duration::from_secs(1),
    )
    .await;
    gone(&gw.emulator, &key.id).await;

    let text = std::fs::read_to_string(&path).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let swept: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["caller"] == lease::sweeper::CALLER)
        .collect();
    let events: Vec<(&str, &str)> = swept
        .iter()
        .map(|r| (r["event"].as_str().unwrap(), r["rpc"].as_str().unwrap()))
        .collect();
    assert_eq!(events, [("begin", "DeleteApiKey"), ("end", "DeleteApiKey")]);
    let end = swept[1];
    assert_eq!(
        (
            end["code"].as_str(),
            end["api_key_id"].as_str(),
            end["org_id"].as_str()
        ),
        (Some("OK"), Some(key.id.as_str()), Some(ORG))
    );
}
