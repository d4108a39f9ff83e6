//! Service accounts: the emulator's Atlas rules over real HTTP on 127.0.0.1 (`emulator_*`),
//! and the four RPCs at the gRPC boundary.

use atlas_grpc_gateway::emulator::{
    Emulator, EmulatorConfig, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_ORG_ID,
};
use base64::Engine as _;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const SA: &str = "application/vnd.atlas.2024-08-05+json";

/// A client of the emulator's Atlas surface with a Bearer token.
struct Atlas {
    emu: Emulator,
    http: Client,
    token: String,
}

impl Atlas {
    async fn start() -> Atlas {
        let emu = Emulator::start(EmulatorConfig::default(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let http = Client::builder().no_proxy().build().unwrap();
        let token = token(&http, &emu, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
            .await
            .expect("demo credentials");
        Atlas { emu, http, token }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!(
            "{}/api/atlas/v2/orgs/{DEMO_ORG_ID}/serviceAccounts{path}",
            self.emu.base_url()
        );
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(&self.token)
            .header("accept", SA);
        if let Some(body) = body {
            req = req.header("content-type", SA).body(body.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn create(&self) -> Value {
        let body = json!({"name": "ci bot", "description": "mints tokens", "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 24});
        let (status, sa) = self.send(reqwest::Method::POST, "", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{sa}");
        sa
    }

    async fn new_secret(&self, client_id: &str) -> (StatusCode, Value) {
        let body = json!({"secretExpiresAfterHours": 24});
        self.send(
            reqwest::Method::POST,
            &format!("/{client_id}/secrets"),
            Some(body),
        )
        .await
    }
}

/// An access token for `id`/`secret` from the emulator's token endpoint.
async fn token(http: &Client, emu: &Emulator, id: &str, secret: &str) -> Option<String> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let resp = http
        .post(emu.token_url())
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&resp.bytes().await.ok()?).ok()?;
    body["access_token"].as_str().map(str::to_string)
}

#[tokio::test]
async fn emulator_mints_accounts_whose_secret_gets_a_token_and_shows_once() {
    let atlas = Atlas::start().await;
    let sa = atlas.create().await;
    let client_id = sa["clientId"].as_str().unwrap();
    assert!(
        client_id.starts_with("mdb_sa_id_") && client_id.len() == 34,
        "{client_id}"
    );
    let secret = sa["secrets"][0]["secret"].as_str().unwrap();
    assert!(token(&atlas.http, &atlas.emu, client_id, secret)
        .await
        .is_some());
    assert!(token(&atlas.http, &atlas.emu, client_id, "mdb_sa_sk_wrong")
        .await
        .is_none());
    let (status, listed) = atlas.send(reqwest::Method::GET, "", None).await;
    assert_eq!(status, StatusCode::OK);
    let shown = &listed["results"][0]["secrets"][0];
    assert!(shown.get("secret").is_none(), "{shown}");
    assert!(shown["maskedSecretValue"]
        .as_str()
        .unwrap()
        .ends_with(&secret[secret.len() - 4..]));
    let id = shown["id"].as_str().unwrap();
    assert!(atlas.emu.expire_service_account_secret(client_id, id));
    assert!(
        token(&atlas.http, &atlas.emu, client_id, secret)
            .await
            .is_none(),
        "expired"
    );
}

#[tokio::test]
async fn emulator_holds_two_secrets_shortens_the_older_and_refuses_a_concurrent_one() {
    let atlas = Atlas::start().await;
    let sa = atlas.create().await;
    let client_id = sa["clientId"].as_str().unwrap();
    let first_expiry = sa["secrets"][0]["expiresAt"].clone();
    let (a, b) = tokio::join!(atlas.new_secret(client_id), atlas.new_secret(client_id));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);
    let conflict = if a.0 == StatusCode::CONFLICT {
        a.1
    } else {
        b.1
    };
    assert_eq!(conflict["errorCode"], "DATA_CONCURRENCY_ERROR");
    assert_eq!(atlas.emu.counters().service_account_secret_conflicts, 1);
    let (_, got) = atlas
        .send(reqwest::Method::GET, &format!("/{client_id}"), None)
        .await;
    assert_eq!(got["secrets"].as_array().unwrap().len(), 2);
    // 24 h is under 7 days: shortening leaves it alone.
    assert_eq!(got["secrets"][0]["expiresAt"], first_expiry);
    let (status, third) = atlas.new_secret(client_id).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{third}");
    let older = got["secrets"][0]["id"].as_str().unwrap();
    let (status, _) = atlas
        .send(
            reqwest::Method::DELETE,
            &format!("/{client_id}/secrets/{older}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(atlas.new_secret(client_id).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn emulator_requires_the_2024_08_05_media_type() {
    let atlas = Atlas::start().await;
    let url = format!(
        "{}/api/atlas/v2/orgs/{DEMO_ORG_ID}/serviceAccounts",
        atlas.emu.base_url()
    );
    let resp = atlas
        .http
        .get(url)
        .bearer_auth(&atlas.token)
        .header("accept", "application/vnd.atlas.2023-01-01+json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
    let (status, body) = atlas
        .send(
            reqwest::Method::POST,
            "",
            Some(json!({"name": "x", "roles": []})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errorCode"], "INVALID_ATTRIBUTE");
    let (status, _) = atlas
        .send(
            reqwest::Method::DELETE,
            "/mdb_sa_id_000000000000000000000000",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
