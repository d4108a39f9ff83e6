//! Service accounts: the emulator's Atlas rules over real HTTP on 127.0.0.1 (`emulator_*`),
//! and the four RPCs at the gRPC boundary (tonic client → gateway → emulator).
mod common;

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

// ---- The RPCs at the gRPC boundary ----

use atlas_grpc_gateway::pb::{
    CreateServiceAccountRequest, DeleteServiceAccountRequest, ListServiceAccountsRequest, OrgRole,
    RotateServiceAccountSecretRequest, ServiceAccount,
};
use common::{
    details, meta, reason, violated_fields, with_meta, Fault, FaultAction, Gateway, Route,
};
use tonic::Code;

fn sa_req() -> CreateServiceAccountRequest {
    CreateServiceAccountRequest {
        org_id: DEMO_ORG_ID.into(),
        name: "ci bot".into(),
        description: "mints tokens".into(),
        roles: vec![OrgRole::OrgMember as i32],
        secret_expires_after_hours: 24,
        ..Default::default()
    }
}

fn rotate_req(client_id: &str) -> RotateServiceAccountSecretRequest {
    RotateServiceAccountSecretRequest {
        org_id: DEMO_ORG_ID.into(),
        client_id: client_id.into(),
        secret_expires_after_hours: 24,
        request_id: String::new(),
    }
}

async fn create_sa(gw: &Gateway) -> ServiceAccount {
    let resp = gw.client().create_service_account(sa_req()).await.unwrap();
    resp.into_inner().service_account.unwrap()
}

async fn rotate(gw: &Gateway, client_id: &str) -> String {
    let resp = gw
        .client()
        .rotate_service_account_secret(rotate_req(client_id))
        .await
        .unwrap();
    resp.into_inner().secret.unwrap().id
}

fn error(status: u16, code: &str) -> FaultAction {
    FaultAction::Error {
        status,
        error_code: code.into(),
        detail: None,
        retry_after: None,
        parameters: None,
        bad_request_fields: Vec::new(),
    }
}

#[tokio::test]
async fn create_list_rotate_delete_and_the_workload_gets_a_token() {
    let gw = Gateway::start().await;
    let mut req = sa_req();
    req.access_list_ips = vec!["10.0.0.0/8".into(), "203.0.113.7".into()];
    let sa = gw
        .client()
        .create_service_account(req)
        .await
        .unwrap()
        .into_inner();
    let sa = sa.service_account.unwrap();
    assert!(
        atlas_grpc_gateway::validate::is_client_id(&sa.client_id),
        "{}",
        sa.client_id
    );
    assert_eq!(
        (sa.roles.as_slice(), sa.name.as_str()),
        (&["ORG_MEMBER".to_string()][..], "ci bot")
    );
    assert_eq!(sa.access_list_ips, ["10.0.0.0/8", "203.0.113.7"]);
    let secret = &sa.secrets[0];
    assert!(secret.secret.starts_with("mdb_sa_sk_") && secret.expire_time.is_some());
    assert!(
        !format!("{sa:?}").contains(&secret.secret),
        "Debug redacts the secret"
    );
    let http = Client::builder().no_proxy().build().unwrap();
    assert!(token(&http, &gw.emulator, &sa.client_id, &secret.secret)
        .await
        .is_some());

    let listed = gw
        .client()
        .list_service_accounts(ListServiceAccountsRequest {
            org_id: DEMO_ORG_ID.into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (listed.total_size, listed.next_page_token.as_str()),
        (1, "")
    );
    let shown = &listed.service_accounts[0].secrets[0];
    assert_eq!(
        (shown.id.as_str(), shown.secret.as_str()),
        (secret.id.as_str(), "")
    );
    assert!(shown
        .masked_secret_value
        .ends_with(&secret.secret[secret.secret.len() - 4..]));

    let delete = DeleteServiceAccountRequest {
        org_id: DEMO_ORG_ID.into(),
        client_id: sa.client_id.clone(),
    };
    gw.client()
        .delete_service_account(delete.clone())
        .await
        .unwrap();
    let err = gw
        .client()
        .delete_service_account(delete)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let c = gw.emulator.counters();
    assert_eq!(
        (c.service_accounts_created, c.service_accounts_deleted),
        (1, 1)
    );
    gw.stop().await;
}

#[tokio::test]
async fn rotation_at_one_and_two_secrets_deletes_the_older() {
    let gw = Gateway::start().await;
    let sa = create_sa(&gw).await;
    let first = sa.secrets[0].id.clone();
    let second = rotate(&gw, &sa.client_id).await;
    assert_eq!(
        gw.emulator.service_account_secret_ids(&sa.client_id),
        [first.clone(), second.clone()]
    );
    assert_eq!(
        gw.emulator.counters().service_account_secrets_deleted,
        0,
        "one secret: nothing to delete"
    );
    let third = rotate(&gw, &sa.client_id).await;
    assert_eq!(
        gw.emulator.service_account_secret_ids(&sa.client_id),
        [second, third]
    );
    assert_eq!(gw.emulator.counters().service_account_secrets_deleted, 1);
    gw.stop().await;
}

#[tokio::test]
async fn rotation_deletes_expired_secrets_first() {
    let gw = Gateway::start().await;
    let sa = create_sa(&gw).await;
    // One secret, expired: it goes, the new one is alone.
    assert!(gw
        .emulator
        .expire_service_account_secret(&sa.client_id, &sa.secrets[0].id));
    let second = rotate(&gw, &sa.client_id).await;
    assert_eq!(
        gw.emulator.service_account_secret_ids(&sa.client_id),
        std::slice::from_ref(&second)
    );
    // Two secrets, the newer expired: the expired one goes, the older live one stays.
    let third = rotate(&gw, &sa.client_id).await;
    assert!(gw
        .emulator
        .expire_service_account_secret(&sa.client_id, &third));
    let fourth = rotate(&gw, &sa.client_id).await;
    assert_eq!(
        gw.emulator.service_account_secret_ids(&sa.client_id),
        [second, fourth]
    );
    assert_eq!(gw.emulator.counters().service_account_secrets_deleted, 2);
    gw.stop().await;
}

#[tokio::test]
async fn concurrent_rotations_of_one_account_take_turns() {
    let gw = Gateway::start().await;
    let sa = create_sa(&gw).await;
    let rotations = (0..4).map(|_| {
        let (mut client, req) = (gw.client(), rotate_req(&sa.client_id));
        async move { client.rotate_service_account_secret(req).await }
    });
    for answer in common::join_all(rotations).await {
        answer.expect("each rotation finds room and no other one under way");
    }
    let c = gw.emulator.counters();
    assert_eq!(
        c.service_account_secret_conflicts, 0,
        "never two secrets created at once"
    );
    assert_eq!(c.service_account_secrets_created, 5);
    assert_eq!(
        gw.emulator.service_account_secret_ids(&sa.client_id).len(),
        2
    );
    gw.stop().await;
}

#[tokio::test]
async fn data_concurrency_error_is_aborted_with_retry_info() {
    let gw = Gateway::start().await;
    let sa = create_sa(&gw).await;
    gw.emulator.inject(Fault::once(
        Route::CreateServiceAccountSecret,
        error(409, "DATA_CONCURRENCY_ERROR"),
    ));
    let err = gw
        .client()
        .rotate_service_account_secret(rotate_req(&sa.client_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err), "DATA_CONCURRENCY_ERROR");
    let retry = details(&err).retry_info().cloned().unwrap();
    assert_eq!(retry.retry_delay, Some(std::time::Duration::from_secs(1)));
    gw.stop().await;
}

#[tokio::test]
async fn a_failed_access_list_rolls_the_account_back_or_reports_the_orphan() {
    let gw = Gateway::start().await;
    let mut req = sa_req();
    req.access_list_ips = vec!["10.0.0.0/8".into()];
    gw.emulator.inject(Fault::once(
        Route::CreateServiceAccountAccessList,
        error(500, "UNEXPECTED_ERROR"),
    ));
    let err = gw
        .client()
        .create_service_account(req.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert_eq!(meta(&err, "rolled_back").as_deref(), Some("true"));
    let client_id = meta(&err, "client_id").unwrap();
    assert_eq!(gw.emulator.counters().service_accounts_deleted, 1);
    assert!(
        gw.emulator
            .service_account_secret_ids(&client_id)
            .is_empty(),
        "gone"
    );

    gw.emulator.inject(Fault::once(
        Route::CreateServiceAccountAccessList,
        error(400, "INVALID_ATTRIBUTE"),
    ));
    gw.emulator.inject(Fault::new(
        Route::DeleteServiceAccount,
        error(500, "UNEXPECTED_ERROR"),
    ));
    let err = gw.client().create_service_account(req).await.unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert_eq!(reason(&err), "ORPHANED_SERVICE_ACCOUNT");
    assert_eq!(meta(&err, "rolled_back").as_deref(), Some("false"));
    let orphan = meta(&err, "client_id").unwrap();
    assert_eq!(
        gw.emulator.service_account_secret_ids(&orphan).len(),
        1,
        "still in Atlas"
    );
    gw.stop().await;
}

#[tokio::test]
async fn validation_and_policy_answer_before_any_atlas_call() {
    let gw = Gateway::start_with(Default::default(), |c| {
        let p = c.profiles.get_mut("default").unwrap();
        p.allowed_roles = Some(["ORG_MEMBER".to_string()].into());
        p.allowed_rpcs = Some(
            [
                "CreateServiceAccount".to_string(),
                "ListServiceAccounts".to_string(),
            ]
            .into(),
        );
    })
    .await;
    let mut req = sa_req();
    req.roles = vec![OrgRole::OrgOwner as i32];
    let err = gw.client().create_service_account(req).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err)),
        (Code::PermissionDenied, "POLICY_DENIED".into())
    );
    assert_eq!(meta(&err, "field").as_deref(), Some("roles"));
    let err = gw
        .client()
        .rotate_service_account_secret(rotate_req("mdb_sa_id_0123456789abcdef01234567"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), meta(&err, "field")),
        (Code::PermissionDenied, Some("rpc".into()))
    );
    let mut req = sa_req();
    req.name = "<script>".into();
    req.ttl = Some(prost_types::Duration {
        seconds: 3600,
        nanos: 0,
    });
    let err = gw.client().create_service_account(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["name", "ttl"]);
    assert_eq!(gw.emulator.counters().total_requests(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn service_account_calls_use_2024_08_05_whatever_api_version_says() {
    let gw = Gateway::start_with(Default::default(), |c| c.api_version = "2023-01-01".into()).await;
    let sa = create_sa(&gw).await;
    rotate(&gw, &sa.client_id).await;
    gw.client()
        .create_api_key(common::key_req(DEMO_ORG_ID))
        .await
        .unwrap();
    for sent in gw.emulator.recorded() {
        let want = if sent.path_and_query.contains("/serviceAccounts") {
            SA
        } else {
            "application/vnd.atlas.2023-01-01+json"
        };
        assert_eq!(
            sent.accept.as_deref(),
            Some(want),
            "{}",
            sent.path_and_query
        );
        if sent.method == "POST" {
            assert_eq!(
                sent.content_type.as_deref(),
                Some(want),
                "{}",
                sent.path_and_query
            );
        }
    }
    gw.stop().await;
}

#[tokio::test]
async fn list_never_returns_a_secret_value_even_when_atlas_sends_one() {
    let gw = Gateway::start().await;
    let body = json!({"results": [{"clientId": "mdb_sa_id_0123456789abcdef01234567", "secrets": [
        {"id": "0123456789abcdef01234567", "secret": "mdb_sa_sk_leaked", "maskedSecretValue": "mdb_sa_sk_****aked",
         "createdAt": "2026-12-01T00:00:00Z", "expiresAt": "2026-12-31T00:00:00Z"}]}], "totalCount": 1});
    let raw = FaultAction::Raw {
        status: 200,
        content_type: SA.into(),
        body: body.to_string(),
    };
    gw.emulator
        .inject(Fault::once(Route::ListServiceAccounts, raw));
    let req = ListServiceAccountsRequest {
        org_id: DEMO_ORG_ID.into(),
        ..Default::default()
    };
    let listed = gw
        .client()
        .list_service_accounts(req)
        .await
        .unwrap()
        .into_inner();
    let shown = &listed.service_accounts[0].secrets[0];
    assert_eq!(shown.secret, "");
    assert_eq!(shown.masked_secret_value, "mdb_sa_sk_****aked");
    assert_eq!(
        shown.expire_time.unwrap().seconds,
        "2026-12-31T00:00:00Z"
            .parse::<prost_types::Timestamp>()
            .unwrap()
            .seconds
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_create_with_request_id_happens_once() {
    let gw = Gateway::start().await;
    let mut req = sa_req();
    req.request_id = "6f1c2d3e-0000-4000-8000-000000000001".into();
    let first = gw
        .client()
        .create_service_account(req.clone())
        .await
        .unwrap()
        .into_inner();
    let again = gw
        .client()
        .create_service_account(with_meta(req, &[], None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first.service_account, again.service_account,
        "the same account and secret"
    );
    assert_eq!(gw.emulator.counters().service_accounts_created, 1);
    gw.stop().await;
}
