//! Integration tests of the Atlas emulator over real HTTP on 127.0.0.1: every endpoint's happy
//! path, OAuth and Digest authentication, validation, every fault kind, counters and the
//! control API. No timing upper bounds: latency is only checked as a lower bound.

use std::time::{Duration, Instant};

use atlas_grpc_gateway::emulator::{
    Counters, DigestAlgorithm, Emulator, EmulatorConfig, Fault, FaultAction, Route, DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET, DEMO_ORG_ID, DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY,
};
use base64::Engine as _;
use digest_auth::{AuthContext, HttpMethod};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};

const V: &str = "application/vnd.atlas.2023-01-01+json";
const V_UTF8: &str = "application/vnd.atlas.2023-01-01+json;charset=utf-8";
const LINK_TEMPLATE: &str = "/api/atlas/v2/orgs/{orgId}/liveMigrations/linkTokens";
const KEYS_TEMPLATE: &str = "/api/atlas/v2/orgs/{orgId}/apiKeys";
const READ_ONLY_ORG: &str = "0123456789abcdef01234567";

async fn start_with(config: EmulatorConfig) -> Emulator {
    Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator starts")
}

async fn start() -> Emulator {
    start_with(EmulatorConfig {
        read_only_org_ids: vec![READ_ONLY_ORG.to_string()],
        ..EmulatorConfig::default()
    })
    .await
}

fn client() -> Client {
    Client::builder().no_proxy().build().unwrap()
}

fn link_path(org: &str) -> String {
    format!("/api/atlas/v2/orgs/{org}/liveMigrations/linkTokens")
}

fn keys_path(org: &str) -> String {
    format!("/api/atlas/v2/orgs/{org}/apiKeys")
}

fn basic(id: &str, secret: &str) -> String {
    let raw = format!("{id}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

async fn token_request(emu: &Emulator, authorization: &str, body: &str) -> Response {
    client()
        .post(emu.token_url())
        .header("authorization", authorization)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn token(emu: &Emulator) -> String {
    let resp = token_request(
        emu,
        &basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    body_json(resp).await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// An Atlas call with the versioned media types and an optional Authorization.
async fn atlas(
    emu: &Emulator,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<&str>,
) -> Response {
    let mut req = client()
        .request(method, format!("{}{path}", emu.base_url()))
        .header("accept", V);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    if let Some(b) = body {
        req = req.header("content-type", V).body(b.to_string());
    }
    req.send().await.unwrap()
}

async fn bearer(emu: &Emulator, method: Method, path: &str, body: Option<&str>) -> Response {
    let t = token(emu).await;
    atlas(emu, method, path, Some(&format!("Bearer {t}")), body).await
}

async fn body_json(resp: Response) -> Value {
    let bytes = resp.bytes().await.unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

fn header<'a>(resp: &'a Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn assert_api_error(body: &Value, status: u16, code: &str) {
    assert_eq!(body["error"], status, "{body}");
    assert_eq!(body["errorCode"], code, "{body}");
    assert!(body["reason"].is_string(), "{body}");
    assert!(body.get("detail").is_some(), "{body}");
    assert!(body.get("parameters").is_some(), "{body}");
}

/// Digest `Authorization` for `challenge` (a WWW-Authenticate value), with this key pair.
fn digest_answer(
    prompt: &mut digest_auth::WwwAuthenticateHeader,
    user: &str,
    pass: &str,
    method: HttpMethod<'static>,
    uri: &str,
    body: &str,
) -> String {
    let ctx = AuthContext::new_with_method(user, pass, uri, Some(body.as_bytes()), method);
    prompt.respond(&ctx).unwrap().to_header_string()
}

async fn challenge(
    emu: &Emulator,
    method: Method,
    path: &str,
) -> digest_auth::WwwAuthenticateHeader {
    let resp = atlas(emu, method, path, None, Some("{}")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let www = header(&resp, "www-authenticate").to_string();
    assert!(www.starts_with("Digest "), "{www}");
    digest_auth::parse(&www).unwrap()
}

// ---------- token endpoint ----------

#[tokio::test]
async fn token_grant_returns_a_bearer_token() {
    let emu = start().await;
    let resp = token_request(
        &emu,
        &basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), "application/json");
    assert_eq!(header(&resp, "x-atlas-emulator"), "true");
    let body = body_json(resp).await;
    assert!(body["access_token"].as_str().unwrap().len() >= 32);
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["token_type"], "Bearer");
    let c = emu.counters();
    assert_eq!((c.token_requests, c.tokens_issued), (1, 1));
    assert_eq!(c.requests_for("POST", "/api/oauth/token"), 1);
}

#[tokio::test]
async fn token_endpoint_rejects_bad_client_and_grant() {
    let emu = start().await;
    let wrong = token_request(
        &emu,
        &basic(DEMO_CLIENT_ID, "nope"),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body = body_json(wrong).await;
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_description"], "Invalid client credentials");

    let missing = token_request(&emu, "", "grant_type=client_credentials").await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);

    let grant = token_request(
        &emu,
        &basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        "grant_type=password",
    )
    .await;
    assert_eq!(grant.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(grant).await["error"], "unsupported_grant_type");

    let c = emu.counters();
    assert_eq!((c.token_requests, c.tokens_issued), (3, 0));
}

#[tokio::test]
async fn token_lifetime_is_configurable() {
    let emu = start_with(EmulatorConfig {
        token_lifetime: Duration::from_secs(42),
        ..EmulatorConfig::default()
    })
    .await;
    let resp = token_request(
        &emu,
        &basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(body_json(resp).await["expires_in"], 42);
}

// ---------- the three operations ----------

#[tokio::test]
async fn create_link_token_returns_201_with_a_link_token() {
    let emu = start().await;
    let resp = bearer(
        &emu,
        Method::POST,
        &link_path(DEMO_ORG_ID),
        Some(r#"{"accessListIps":["10.0.0.1","192.168.0.0/16","2001:db8::/32"]}"#),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(header(&resp, "content-type"), V_UTF8);
    assert_eq!(header(&resp, "ratelimit-limit"), "500");
    assert!(header(&resp, "ratelimit-remaining").parse::<u32>().unwrap() < 500);
    let request_id = header(&resp, "x-request-id").to_string();
    assert!(!request_id.is_empty() && request_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(header(&resp, "x-atlas-emulator"), "true");
    let body = body_json(resp).await;
    let link = body["linkToken"].as_str().unwrap();
    assert!(link.len() > 100, "{link}");
    assert!(base64::engine::general_purpose::STANDARD
        .decode(link)
        .is_ok());
    assert_eq!(emu.counters().link_tokens_created, 1);
}

#[tokio::test]
async fn delete_link_token_is_204_then_404_like_atlas() {
    let emu = start().await;
    let path = link_path(DEMO_ORG_ID);
    let created = bearer(&emu, Method::POST, &path, Some("{}")).await;
    assert_eq!(created.status(), StatusCode::CREATED);

    let deleted = bearer(&emu, Method::DELETE, &path, None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&deleted, "content-type"), V_UTF8);
    assert!(deleted.bytes().await.unwrap().is_empty());

    let missing = bearer(&emu, Method::DELETE, &path, None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&missing, "content-type"), "application/json");
    assert_eq!(header(&missing, "x-error-code"), "UNEXPECTED_ERROR");
    let text = missing.text().await.unwrap();
    assert_eq!(
        text,
        r#"{"detail":"Could not find the requested external organization link.","error":404,"errorCode":"UNEXPECTED_ERROR","parameters":null,"reason":"Not Found"}"#
    );
    assert_eq!(emu.counters().link_tokens_deleted, 1);
}

#[tokio::test]
async fn create_api_key_returns_api_key_user_details() {
    let emu = start().await;
    let resp = bearer(
        &emu,
        Method::POST,
        &keys_path(DEMO_ORG_ID),
        Some(r#"{"desc":"ci key","roles":["ORG_MEMBER","ORG_READ_ONLY"]}"#),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), V_UTF8);
    let body = body_json(resp).await;
    let id = body["id"].as_str().unwrap();
    assert!(id.len() == 24 && id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    assert_eq!(body["desc"], "ci key");
    let public = body["publicKey"].as_str().unwrap();
    assert!(public.len() == 8 && public.chars().all(|c| c.is_ascii_lowercase()));
    assert_eq!(body["privateKey"].as_str().unwrap().len(), 36);
    assert_eq!(
        body["roles"],
        json!([{"orgId": DEMO_ORG_ID, "roleName": "ORG_MEMBER"}, {"orgId": DEMO_ORG_ID, "roleName": "ORG_READ_ONLY"}])
    );
    assert_eq!(
        body["links"],
        json!([{"href": format!("{}{}/{id}", emu.base_url(), keys_path(DEMO_ORG_ID)), "rel": "self"}])
    );
    assert_eq!(emu.counters().api_keys_created, 1);
}

// ---------- validation ----------

#[tokio::test]
async fn api_key_body_violations_are_all_reported() {
    let emu = start().await;
    let long = "x".repeat(251);
    let resp = bearer(
        &emu,
        Method::POST,
        &keys_path(DEMO_ORG_ID),
        Some(&format!(r#"{{"desc":"{long}","roles":["ORG_GOD"]}}"#)),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = body_json(resp).await;
    assert_api_error(&body, 400, "INVALID_ATTRIBUTE");
    let fields: Vec<&str> = body["badRequestDetail"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["desc", "roles"]);

    let enum_only = bearer(
        &emu,
        Method::POST,
        &keys_path(DEMO_ORG_ID),
        Some(r#"{"desc":"d","roles":["ORG_GOD"]}"#),
    )
    .await;
    assert_api_error(&body_json(enum_only).await, 400, "INVALID_ENUM_VALUE");
    assert_eq!(emu.counters().api_keys_created, 0);
}

#[tokio::test]
async fn link_token_body_violations_and_malformed_json() {
    let emu = start().await;
    let path = link_path(DEMO_ORG_ID);
    let bad_ip = bearer(
        &emu,
        Method::POST,
        &path,
        Some(r#"{"accessListIps":["10.0.0.1","10.0.0.0/33"]}"#),
    )
    .await;
    assert_eq!(bad_ip.status(), StatusCode::BAD_REQUEST);
    let body = body_json(bad_ip).await;
    assert_api_error(&body, 400, "INVALID_ATTRIBUTE");
    assert_eq!(
        body["badRequestDetail"]["fields"][0]["field"],
        "accessListIps"
    );
    assert_eq!(
        body["badRequestDetail"]["fields"].as_array().unwrap().len(),
        1
    );

    let malformed = bearer(&emu, Method::POST, &path, Some("{\"accessListIps\": [")).await;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_api_error(&body_json(malformed).await, 400, "MALFORMED_REQUEST");
    assert_eq!(emu.counters().link_tokens_created, 0);
}

#[tokio::test]
async fn org_id_syntax_existence_and_permission() {
    let emu = start().await;
    let bad = bearer(&emu, Method::DELETE, &link_path("NOT-AN-ORG"), None).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_api_error(&body_json(bad).await, 400, "INVALID_ATTRIBUTE");

    let unknown = bearer(
        &emu,
        Method::DELETE,
        &link_path("aaaaaaaaaaaaaaaaaaaaaaaa"),
        None,
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_api_error(&body_json(unknown).await, 404, "ORG_NOT_FOUND");

    let ro = bearer(
        &emu,
        Method::POST,
        &keys_path(READ_ONLY_ORG),
        Some(r#"{"desc":"d","roles":["ORG_MEMBER"]}"#),
    )
    .await;
    assert_eq!(ro.status(), StatusCode::FORBIDDEN);
    let body = body_json(ro).await;
    assert_api_error(&body, 403, "USER_UNAUTHORIZED");
    assert_eq!(
        body["detail"],
        "Current user is not authorized to perform this action."
    );
}

#[tokio::test]
async fn versioned_media_type_is_required() {
    let emu = start().await;
    let t = token(&emu).await;
    let url = format!("{}{}", emu.base_url(), keys_path(DEMO_ORG_ID));
    let body = r#"{"desc":"d","roles":["ORG_MEMBER"]}"#;
    let no_accept = client()
        .post(&url)
        .bearer_auth(&t)
        .header("content-type", V)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_accept.status(), StatusCode::NOT_ACCEPTABLE);
    assert_eq!(header(&no_accept, "content-type"), "application/json");
    assert_api_error(&body_json(no_accept).await, 406, "INVALID_VERSION_DATE");

    let wrong_type = client()
        .post(&url)
        .bearer_auth(&t)
        .header("accept", V)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let charset = client()
        .post(&url)
        .bearer_auth(&t)
        .header("accept", V_UTF8)
        .header(
            "content-type",
            "application/vnd.atlas.2023-01-01+json; charset=utf-8",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(charset.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_methods_and_huge_bodies_do_not_break_it() {
    let emu = start().await;
    let unknown = bearer(&emu, Method::GET, "/api/atlas/v2/orgs", None).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_api_error(&body_json(unknown).await, 404, "RESOURCE_NOT_FOUND");

    let wrong = bearer(&emu, Method::PUT, &keys_path(DEMO_ORG_ID), Some("{}")).await;
    assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);

    let huge = "x".repeat(2 * 1024 * 1024);
    let too_big = bearer(&emu, Method::POST, &keys_path(DEMO_ORG_ID), Some(&huge)).await;
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let junk_auth = atlas(
        &emu,
        Method::POST,
        &keys_path(DEMO_ORG_ID),
        Some("Digest ,,=\"\\"),
        Some("{}"),
    )
    .await;
    assert_eq!(junk_auth.status(), StatusCode::UNAUTHORIZED);

    let c = emu.counters();
    assert_eq!(c.requests_for("GET", "*"), 1);
    assert_eq!(c.requests_for("PUT", KEYS_TEMPLATE), 1);
    // Still serving.
    let ok = bearer(&emu, Method::POST, &link_path(DEMO_ORG_ID), Some("{}")).await;
    assert_eq!(ok.status(), StatusCode::CREATED);
}

// ---------- bearer tokens ----------

#[tokio::test]
async fn unknown_and_revoked_bearer_tokens_get_401() {
    let emu = start().await;
    let path = link_path(DEMO_ORG_ID);
    let fake = atlas(
        &emu,
        Method::POST,
        &path,
        Some("Bearer not-issued"),
        Some("{}"),
    )
    .await;
    assert_eq!(fake.status(), StatusCode::UNAUTHORIZED);
    assert_api_error(&body_json(fake).await, 401, "UNAUTHORIZED");

    let t = token(&emu).await;
    let auth = format!("Bearer {t}");
    assert_eq!(
        atlas(&emu, Method::POST, &path, Some(&auth), Some("{}"))
            .await
            .status(),
        StatusCode::CREATED
    );
    emu.revoke_tokens();
    assert_eq!(
        atlas(&emu, Method::POST, &path, Some(&auth), Some("{}"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let c = emu.counters();
    assert_eq!(c.unauthorized, 2);
    assert_eq!(c.digest_challenges, 0);
}

// ---------- Digest ----------

#[tokio::test]
async fn digest_handshake_succeeds_with_one_challenge() {
    let emu = start().await;
    let path = keys_path(DEMO_ORG_ID);
    let resp = atlas(&emu, Method::POST, &path, None, Some("{}")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let www = header(&resp, "www-authenticate").to_string();
    assert!(www.contains(r#"realm="MMS Public API""#), "{www}");
    assert!(
        www.contains("algorithm=MD5")
            && www.contains(r#"qop="auth""#)
            && www.contains("stale=false"),
        "{www}"
    );
    assert_api_error(&body_json(resp).await, 401, "UNAUTHORIZED");

    let mut prompt = digest_auth::parse(&www).unwrap();
    let body = r#"{"desc":"digest","roles":["ORG_OWNER"]}"#;
    let auth = digest_answer(
        &mut prompt,
        DEMO_PUBLIC_KEY,
        DEMO_PRIVATE_KEY,
        HttpMethod::POST,
        &path,
        body,
    );
    let ok = atlas(&emu, Method::POST, &path, Some(&auth), Some(body)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let c = emu.counters();
    assert_eq!(
        (c.digest_challenges, c.unauthorized, c.api_keys_created),
        (1, 0, 1)
    );
}

#[tokio::test]
async fn digest_nonce_reuse_with_next_nc_is_accepted_and_replay_refused() {
    let emu = start().await;
    let path = link_path(DEMO_ORG_ID);
    let mut prompt = challenge(&emu, Method::POST, &path).await;
    let first = digest_answer(
        &mut prompt,
        DEMO_PUBLIC_KEY,
        DEMO_PRIVATE_KEY,
        HttpMethod::POST,
        &path,
        "{}",
    );
    assert!(first.contains("nc=00000001"), "{first}");
    assert_eq!(
        atlas(&emu, Method::POST, &path, Some(&first), Some("{}"))
            .await
            .status(),
        StatusCode::CREATED
    );

    let second = digest_answer(
        &mut prompt,
        DEMO_PUBLIC_KEY,
        DEMO_PRIVATE_KEY,
        HttpMethod::DELETE,
        &path,
        "",
    );
    assert!(second.contains("nc=00000002"), "{second}");
    assert_eq!(
        atlas(&emu, Method::DELETE, &path, Some(&second), None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );

    let replay = atlas(&emu, Method::POST, &path, Some(&first), Some("{}")).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&replay, "www-authenticate").contains("stale=false"));
    let c = emu.counters();
    assert_eq!((c.digest_challenges, c.unauthorized), (2, 1));
    assert_eq!((c.link_tokens_created, c.link_tokens_deleted), (1, 1));
}

#[tokio::test]
async fn digest_with_wrong_key_is_refused() {
    let emu = start().await;
    let path = link_path(DEMO_ORG_ID);
    let mut prompt = challenge(&emu, Method::POST, &path).await;
    let auth = digest_answer(
        &mut prompt,
        DEMO_PUBLIC_KEY,
        "wrong-private-key",
        HttpMethod::POST,
        &path,
        "{}",
    );
    let resp = atlas(&emu, Method::POST, &path, Some(&auth), Some("{}")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&resp, "www-authenticate").contains("stale=false"));
    assert_eq!(emu.counters().unauthorized, 1);
}

#[tokio::test]
async fn expired_nonce_gets_a_stale_challenge() {
    let emu = start_with(EmulatorConfig {
        nonce_lifetime: Duration::ZERO,
        ..EmulatorConfig::default()
    })
    .await;
    let path = link_path(DEMO_ORG_ID);
    let mut prompt = challenge(&emu, Method::POST, &path).await;
    let auth = digest_answer(
        &mut prompt,
        DEMO_PUBLIC_KEY,
        DEMO_PRIVATE_KEY,
        HttpMethod::POST,
        &path,
        "{}",
    );
    let resp = atlas(&emu, Method::POST, &path, Some(&auth), Some("{}")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let www = header(&resp, "www-authenticate").to_string();
    assert!(www.contains("stale=true"), "{www}");
    assert_ne!(digest_auth::parse(&www).unwrap().nonce, prompt.nonce);
    let c = emu.counters();
    assert_eq!((c.digest_challenges, c.unauthorized), (2, 0));
}

#[tokio::test]
async fn digest_sha256_when_configured() {
    let emu = start_with(EmulatorConfig {
        digest_algorithm: DigestAlgorithm::Sha256,
        ..EmulatorConfig::default()
    })
    .await;
    let path = link_path(DEMO_ORG_ID);
    let mut prompt = challenge(&emu, Method::POST, &path).await;
    let auth = digest_answer(
        &mut prompt,
        DEMO_PUBLIC_KEY,
        DEMO_PRIVATE_KEY,
        HttpMethod::POST,
        &path,
        "{}",
    );
    assert!(auth.contains("SHA-256"), "{auth}");
    assert_eq!(
        atlas(&emu, Method::POST, &path, Some(&auth), Some("{}"))
            .await
            .status(),
        StatusCode::CREATED
    );
}

// ---------- faults ----------

async fn create_key(emu: &Emulator) -> Response {
    bearer(
        emu,
        Method::POST,
        &keys_path(DEMO_ORG_ID),
        Some(r#"{"desc":"d","roles":["ORG_MEMBER"]}"#),
    )
    .await
}

#[tokio::test]
async fn error_fault_sends_api_error_with_retry_after_then_stops() {
    let emu = start().await;
    emu.inject(Fault::once(
        Route::CreateApiKey,
        FaultAction::error_with_retry_after(429, "RATE_LIMITED", "7"),
    ));
    let limited = create_key(&emu).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&limited, "retry-after"), "7");
    assert_eq!(header(&limited, "content-type"), "application/json");
    assert_eq!(header(&limited, "ratelimit-limit"), "500");
    let body = body_json(limited).await;
    assert_api_error(&body, 429, "RATE_LIMITED");
    assert_eq!(body["reason"], "Too Many Requests");
    assert_eq!(create_key(&emu).await.status(), StatusCode::OK);
    let c = emu.counters();
    assert_eq!(c.requests_for("POST", KEYS_TEMPLATE), 2);
    assert_eq!(c.api_keys_created, 1);
}

#[tokio::test]
async fn error_fault_carries_parameters_and_bad_request_fields() {
    let emu = start().await;
    emu.inject(Fault::new(
        Route::CreateLinkToken,
        FaultAction::Error {
            status: 400,
            error_code: "VALIDATION_ERROR".into(),
            detail: Some("No provider AWS exists.".into()),
            retry_after: None,
            parameters: Some(json!(["AWS"])),
            bad_request_fields: vec![("accessListIps".into(), "bad".into())],
        },
    ));
    let resp = bearer(&emu, Method::POST, &link_path(DEMO_ORG_ID), Some("{}")).await;
    let body = body_json(resp).await;
    assert_api_error(&body, 400, "VALIDATION_ERROR");
    assert_eq!(body["detail"], "No provider AWS exists.");
    assert_eq!(body["parameters"], json!(["AWS"]));
    assert_eq!(
        body["badRequestDetail"]["fields"],
        json!([{"field": "accessListIps", "description": "bad"}])
    );
}

#[tokio::test]
async fn latency_fault_delays_then_handles_normally() {
    let emu = start().await;
    let t = token(&emu).await;
    emu.inject(Fault::once(
        Route::Any,
        FaultAction::Latency { millis: 300 },
    ));
    let started = Instant::now();
    let resp = atlas(
        &emu,
        Method::POST,
        &link_path(DEMO_ORG_ID),
        Some(&format!("Bearer {t}")),
        Some("{}"),
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(emu.counters().link_tokens_created, 1);
}

#[tokio::test]
async fn html_fault_looks_like_a_load_balancer_page() {
    let emu = start().await;
    emu.inject(Fault::new(Route::Token, FaultAction::Html { status: 502 }));
    let resp = token_request(
        &emu,
        &basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert!(header(&resp, "content-type").starts_with("text/html"));
    assert!(resp.text().await.unwrap().contains("<html>"));
    let c = emu.counters();
    assert_eq!((c.token_requests, c.tokens_issued), (1, 0));
}

#[tokio::test]
async fn truncated_fault_sends_a_success_status_with_broken_json() {
    let emu = start().await;
    let t = token(&emu).await;
    emu.inject(Fault::once(
        Route::CreateApiKey,
        FaultAction::Truncated { status: 200 },
    ));
    let resp = atlas(
        &emu,
        Method::POST,
        &keys_path(DEMO_ORG_ID),
        Some(&format!("Bearer {t}")),
        Some("{}"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), V_UTF8);
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.starts_with(b"{"));
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());
}

#[tokio::test]
async fn raw_fault_sends_what_it_is_given() {
    let emu = start().await;
    emu.inject(Fault::new(
        Route::DeleteLinkToken,
        FaultAction::Raw {
            status: 503,
            content_type: "text/plain".into(),
            body: "upstream connect error".into(),
        },
    ));
    let resp = atlas(&emu, Method::DELETE, &link_path(DEMO_ORG_ID), None, None).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&resp, "content-type"), "text/plain");
    assert_eq!(resp.text().await.unwrap(), "upstream connect error");
}

#[tokio::test]
async fn oversized_fault_sends_exactly_that_many_bytes() {
    let emu = start().await;
    let size = 2 * 1024 * 1024 + 3;
    emu.inject(Fault::new(
        Route::CreateLinkToken,
        FaultAction::Oversized {
            status: 500,
            bytes: size,
        },
    ));
    let resp = atlas(
        &emu,
        Method::POST,
        &link_path(DEMO_ORG_ID),
        None,
        Some("{}"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(bytes.len(), size);
    assert!(bytes.starts_with(br#"{"detail":""#));
}

#[tokio::test]
async fn reset_fault_drops_the_connection() {
    let emu = start().await;
    emu.inject(Fault::once(Route::CreateLinkToken, FaultAction::Reset));
    let url = format!("{}{}", emu.base_url(), link_path(DEMO_ORG_ID));
    let sent = client()
        .post(&url)
        .header("accept", V)
        .header("content-type", V)
        .body("{}")
        .send()
        .await;
    let failed = match sent {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(failed, "the client must not see a complete response");
    assert_eq!(emu.counters().requests_for("POST", LINK_TEMPLATE), 1);
    // The next request is served normally.
    let next = atlas(
        &emu,
        Method::POST,
        &link_path(DEMO_ORG_ID),
        None,
        Some("{}"),
    )
    .await;
    assert_eq!(next.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn short_tokens_fault_issues_tokens_that_expire_early() {
    let emu = start().await;
    emu.inject(Fault::once(
        Route::Token,
        FaultAction::ShortTokens { actual_secs: 0 },
    ));
    let resp = token_request(
        &emu,
        &basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        "grant_type=client_credentials",
    )
    .await;
    let body = body_json(resp).await;
    assert_eq!(
        body["expires_in"], 3600,
        "still advertises the configured lifetime"
    );
    let short = format!("Bearer {}", body["access_token"].as_str().unwrap());
    let refused = atlas(
        &emu,
        Method::POST,
        &link_path(DEMO_ORG_ID),
        Some(&short),
        Some("{}"),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    // The rule was used up: the next token works.
    let ok = bearer(&emu, Method::POST, &link_path(DEMO_ORG_ID), Some("{}")).await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let c = emu.counters();
    assert_eq!((c.tokens_issued, c.unauthorized), (2, 1));
}

#[tokio::test]
async fn faults_apply_in_order_to_their_route_only() {
    let emu = start().await;
    emu.inject(
        Fault::new(
            Route::DeleteLinkToken,
            FaultAction::error(503, "SERVICE_UNAVAILABLE"),
        )
        .limit(2),
    );
    emu.inject(Fault::new(Route::Any, FaultAction::error(500, "UNEXPECTED_ERROR")).limit(1));
    // Token route: only the Any rule matches.
    let t1 = token_request(
        &emu,
        &basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(t1.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let path = link_path(DEMO_ORG_ID);
    for _ in 0..2 {
        let r = atlas(&emu, Method::DELETE, &path, None, None).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let t = token(&emu).await;
    let r = atlas(
        &emu,
        Method::DELETE,
        &path,
        Some(&format!("Bearer {t}")),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "both rules used up");
    emu.inject(Fault::new(Route::Any, FaultAction::Html { status: 502 }));
    emu.clear_faults();
    assert_eq!(
        token_request(
            &emu,
            &basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
            "grant_type=client_credentials"
        )
        .await
        .status(),
        StatusCode::OK
    );
}

// ---------- counters and control API ----------

#[tokio::test]
async fn counters_count_requests_by_template() {
    let emu = start().await;
    create_key(&emu).await;
    bearer(&emu, Method::POST, &link_path(DEMO_ORG_ID), Some("{}")).await;
    bearer(&emu, Method::DELETE, &link_path(DEMO_ORG_ID), None).await;
    let c = emu.counters();
    assert_eq!(c.requests_for("POST", "/api/oauth/token"), 3);
    assert_eq!(c.requests_for("POST", KEYS_TEMPLATE), 1);
    assert_eq!(c.requests_for("POST", LINK_TEMPLATE), 1);
    assert_eq!(c.requests_for("DELETE", LINK_TEMPLATE), 1);
    assert_eq!(c.requests.len(), 4);
    assert_eq!(
        (
            c.token_requests,
            c.tokens_issued,
            c.api_keys_created,
            c.link_tokens_created,
            c.link_tokens_deleted
        ),
        (3, 3, 1, 1, 1)
    );
}

async fn control(
    emu: &Emulator,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = client().request(method, format!("{}/__emulator/{path}", emu.base_url()));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, body_json(resp).await)
}

#[tokio::test]
async fn control_api_reads_counters_and_manages_faults() {
    let emu = start().await;
    create_key(&emu).await;
    let (status, json_counters) = control(&emu, Method::GET, "counters", None).await;
    assert_eq!(status, StatusCode::OK);
    let parsed: Counters = serde_json::from_value(json_counters.clone()).unwrap();
    assert_eq!(parsed, emu.counters());
    assert_eq!(
        json_counters["requests"][format!("POST {KEYS_TEMPLATE}")],
        1
    );
    assert_eq!(json_counters["api_keys_created"], 1);

    let fault = r#"{"route":"create_api_key","times":1,"action":{"kind":"error","status":503,"error_code":"SERVICE_UNAVAILABLE","retry_after":"2"}}"#;
    assert_eq!(
        control(&emu, Method::POST, "faults", Some(fault)).await,
        (StatusCode::OK, json!({"active_faults": 1}))
    );
    let (_, listed) = control(&emu, Method::GET, "faults", None).await;
    assert_eq!(listed["faults"][0]["action"]["kind"], "error");
    let resp = create_key(&emu).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&resp, "retry-after"), "2");

    let many = r#"[{"route":"any","action":{"kind":"html","status":502}},{"route":"token","action":{"kind":"reset"}}]"#;
    assert_eq!(
        control(&emu, Method::POST, "faults", Some(many)).await.1,
        json!({"active_faults": 2})
    );
    let (bad_status, bad) =
        control(&emu, Method::POST, "faults", Some(r#"{"route":"nowhere"}"#)).await;
    assert_eq!(bad_status, StatusCode::BAD_REQUEST);
    assert!(bad["error"].as_str().unwrap().starts_with("invalid fault"));
    assert_eq!(
        control(&emu, Method::DELETE, "faults", None).await.1,
        json!({"active_faults": 0})
    );
    assert_eq!(create_key(&emu).await.status(), StatusCode::OK);
    // Control requests are not counted.
    assert_eq!(
        emu.counters()
            .requests
            .keys()
            .filter(|k| k.contains("__emulator"))
            .count(),
        0
    );
}

#[tokio::test]
async fn control_api_revokes_tokens_and_resets_state() {
    let emu = start().await;
    let t = token(&emu).await;
    let path = link_path(DEMO_ORG_ID);
    let auth = format!("Bearer {t}");
    assert_eq!(
        atlas(&emu, Method::POST, &path, Some(&auth), Some("{}"))
            .await
            .status(),
        StatusCode::CREATED
    );
    let (_, state) = control(&emu, Method::GET, "state", None).await;
    assert_eq!(state["links"], json!([DEMO_ORG_ID]));
    assert_eq!(state["active_tokens"], 1);

    assert_eq!(
        control(&emu, Method::POST, "tokens/revoke", None).await.1,
        json!({"revoked": 1})
    );
    assert_eq!(
        atlas(&emu, Method::DELETE, &path, Some(&auth), None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        control(&emu, Method::POST, "reset", None).await.1,
        json!({"reset": true})
    );
    assert_eq!(emu.counters(), Counters::default());
    let after = bearer(&emu, Method::DELETE, &path, None).await;
    assert_eq!(
        after.status(),
        StatusCode::NOT_FOUND,
        "the link was dropped by reset"
    );
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let emu = start().await;
    let url = emu.token_url();
    emu.shutdown().await;
    let fresh = Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert!(fresh.post(url).send().await.is_err());
}

// ---------------------------------------------------------------- API key lifecycle

async fn new_key(emu: &Emulator) -> Value {
    let body = r#"{"desc":"lifecycle","roles":["ORG_MEMBER"]}"#;
    let resp = bearer(emu, Method::POST, &keys_path(DEMO_ORG_ID), Some(body)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    body_json(resp).await
}

#[tokio::test]
async fn list_api_keys_pages_like_the_spec() {
    let emu = start().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(new_key(&emu).await["id"].as_str().unwrap().to_string());
    }
    let page = |q: &str| format!("{}?{q}", keys_path(DEMO_ORG_ID));
    let resp = bearer(
        &emu,
        Method::GET,
        &page("itemsPerPage=2&pageNum=2&includeCount=true"),
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), V_UTF8);
    let body = body_json(resp).await;
    assert_eq!(body["totalCount"], 3);
    assert_eq!(body["results"].as_array().unwrap().len(), 1);
    assert_eq!(body["results"][0]["id"], ids[2].as_str(), "creation order");
    let private = body["results"][0]["privateKey"].as_str().unwrap();
    assert!(
        private.starts_with("********-****-****-") && private.len() == 31,
        "{private}"
    );
    assert_eq!(body["links"][0]["rel"], "self");
    let first = body_json(bearer(&emu, Method::GET, &page("itemsPerPage=2"), None).await).await;
    assert_eq!(first["links"][1]["rel"], "next");
    let uncounted =
        body_json(bearer(&emu, Method::GET, &page("includeCount=false"), None).await).await;
    assert!(uncounted.get("totalCount").is_none(), "{uncounted}");
    for bad in [
        "itemsPerPage=501",
        "itemsPerPage=0",
        "pageNum=0",
        "pageNum=x",
    ] {
        let resp = bearer(&emu, Method::GET, &page(bad), None).await;
        assert_api_error(&body_json(resp).await, 400, "INVALID_ATTRIBUTE");
    }
}

#[tokio::test]
async fn access_list_entries_are_added_and_listed() {
    let emu = start().await;
    let id = new_key(&emu).await["id"].as_str().unwrap().to_string();
    let path = format!("{}/{id}/accessList", keys_path(DEMO_ORG_ID));
    let entries = r#"[{"ipAddress":"203.0.113.7"},{"cidrBlock":"10.0.0.0/8"}]"#;
    let resp = bearer(&emu, Method::POST, &path, Some(entries)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = body_json(resp).await;
    assert_eq!(body["totalCount"], 2);
    assert_eq!(body["results"][0]["ipAddress"], "203.0.113.7");
    assert_eq!(body["results"][0]["cidrBlock"], "203.0.113.7/32");
    assert_eq!(body["results"][1]["cidrBlock"], "10.0.0.0/8");
    assert!(body["results"][1].get("ipAddress").is_none());
    let listed = body_json(bearer(&emu, Method::GET, &path, None).await).await;
    assert_eq!(listed["results"], body["results"]);
    assert_eq!(emu.counters().access_list_entries_created, 2);

    let bad = bearer(
        &emu,
        Method::POST,
        &path,
        Some(r#"[{"ipAddress":"10.0.0.0/8"}]"#),
    )
    .await;
    assert_api_error(&body_json(bad).await, 400, "INVALID_ATTRIBUTE");
    let unknown = format!("{}/{}/accessList", keys_path(DEMO_ORG_ID), "f".repeat(24));
    let resp = bearer(&emu, Method::POST, &unknown, Some(entries)).await;
    assert_api_error(&body_json(resp).await, 404, "RESOURCE_NOT_FOUND");
}

#[tokio::test]
async fn update_api_key_changes_its_desc_as_listed() {
    let emu = start().await;
    let id = new_key(&emu).await["id"].as_str().unwrap().to_string();
    let path = format!("{}/{id}", keys_path(DEMO_ORG_ID));
    let desc = "ci key [atlas-gw expires 2026-12-08T10:00:00Z]";
    let body = serde_json::json!({ "desc": desc }).to_string();
    let got = body_json(bearer(&emu, Method::PATCH, &path, Some(&body)).await).await;
    assert_eq!(
        (got["id"].as_str(), got["desc"].as_str()),
        (Some(id.as_str()), Some(desc))
    );
    assert!(got["privateKey"].as_str().unwrap().starts_with("********"));
    let listed = body_json(bearer(&emu, Method::GET, &keys_path(DEMO_ORG_ID), None).await).await;
    assert_eq!(listed["results"][0]["desc"], desc);
    let long = serde_json::json!({ "desc": "d".repeat(251) }).to_string();
    let resp = bearer(&emu, Method::PATCH, &path, Some(&long)).await;
    assert_api_error(&body_json(resp).await, 400, "INVALID_ATTRIBUTE");
    let gone = format!("{}/{}", keys_path(DEMO_ORG_ID), "0".repeat(24));
    let resp = bearer(&emu, Method::PATCH, &gone, Some(&body)).await;
    assert_api_error(&body_json(resp).await, 404, "RESOURCE_NOT_FOUND");
}

#[tokio::test]
async fn delete_api_key_is_204_then_404() {
    let emu = start().await;
    let id = new_key(&emu).await["id"].as_str().unwrap().to_string();
    let path = format!("{}/{id}", keys_path(DEMO_ORG_ID));
    let got = body_json(bearer(&emu, Method::GET, &path, None).await).await;
    assert_eq!(got["id"], id.as_str());
    let resp = bearer(&emu, Method::DELETE, &path, None).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&resp, "content-type"), V_UTF8);
    for method in [Method::DELETE, Method::GET] {
        let resp = bearer(&emu, method, &path, None).await;
        assert_api_error(&body_json(resp).await, 404, "RESOURCE_NOT_FOUND");
    }
    let resp = bearer(&emu, Method::PUT, &path, None).await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&resp, "allow"), "GET, PATCH, DELETE");
    let c = emu.counters();
    assert_eq!((c.api_keys_created, c.api_keys_deleted), (1, 1));
    assert_eq!(
        c.requests_for("DELETE", "/api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}"),
        2
    );
}
