//! The emulator's model of Atlas's service-account limits over real HTTP: token
//! requests per minute (429 `RATE_LIMITED`), active tokens (403 `access_denied`), the
//! RFC 7009 revoke endpoint, and their control API and counters.
use atlas_grpc_gateway::emulator::{
    Emulator, EmulatorConfig, Limits, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn emulator(limits: Limits) -> Emulator {
    let config = EmulatorConfig {
        limits,
        ..EmulatorConfig::default()
    };
    Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn post_form(emu: &Emulator, path: &str, secret: &str, body: &str) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", emu.base_url()))
        .basic_auth(DEMO_CLIENT_ID, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, json_of(resp).await)
}

async fn json_of(resp: reqwest::Response) -> Value {
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or(Value::Null)
}

async fn grant(emu: &Emulator) -> (StatusCode, Value) {
    let body = "grant_type=client_credentials";
    post_form(emu, "/api/oauth/token", DEMO_CLIENT_SECRET, body).await
}

#[tokio::test]
async fn token_requests_per_minute_are_limited_with_atlas_body() {
    let emu = emulator(Limits {
        token_requests_per_minute: Some(2),
        max_active_tokens: None,
    })
    .await;
    assert_eq!(grant(&emu).await.0, StatusCode::OK);
    assert_eq!(grant(&emu).await.0, StatusCode::OK);
    let (status, body) = grant(&emu).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["errorCode"], "RATE_LIMITED");
    assert_eq!(body["parameters"], json!(["/api/oauth/token", 2, 1]));
    let c = emu.counters();
    assert_eq!(
        (c.token_requests, c.tokens_issued, c.token_rate_limited),
        (3, 2, 1)
    );
}

#[tokio::test]
async fn active_token_cap_answers_403_until_a_token_is_revoked() {
    let emu = emulator(Limits {
        token_requests_per_minute: None,
        max_active_tokens: Some(1),
    })
    .await;
    let (_, first) = grant(&emu).await;
    let (status, body) = grant(&emu).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "access_denied");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("Access Token limit reached."));
    let token = first["access_token"].as_str().unwrap();
    let revoke = format!("token={token}&token_type_hint=access_token");
    let (status, _) = post_form(&emu, "/api/oauth/revoke", "wrong", &revoke).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(emu.active_tokens(), 1);
    let (status, _) = post_form(&emu, "/api/oauth/revoke", DEMO_CLIENT_SECRET, &revoke).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(emu.active_tokens(), 0);
    assert_eq!(grant(&emu).await.0, StatusCode::OK);
    let c = emu.counters();
    assert_eq!(
        (c.token_limit_reached, c.revoke_requests, c.tokens_revoked),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn limits_are_set_and_read_through_the_control_api() {
    let emu = emulator(Limits::default()).await;
    let url = format!("{}/__emulator/limits", emu.base_url());
    let http = reqwest::Client::new();
    let set = json!({"token_requests_per_minute": 10, "max_active_tokens": 100});
    let resp = http.post(&url).body(set.to_string()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let now = json_of(http.get(&url).send().await.unwrap()).await;
    assert_eq!(now, set);
    let bad = http
        .post(&url)
        .body("{\"max_active_tokens\": -1}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
