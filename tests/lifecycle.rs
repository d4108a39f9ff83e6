//! API key lifecycle end to end (tonic client → gateway → emulated Atlas): CreateApiKey
//! with an access list (and its rollback and orphan paths), DeleteApiKey, ListApiKeys
//! paging, and the per-profile `allowed_rpcs` policy.
mod common;

use std::collections::BTreeSet;

use atlas_grpc_gateway::pb::{DeleteApiKeyRequest, ListApiKeysRequest};
use common::*;
use tonic::Code;

const ACCESS_LIST: &str = "POST /api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}/accessList";
const KEY_DELETE: &str = "DELETE /api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}";
const KEYS_GET: &str = "GET /api/atlas/v2/orgs/{orgId}/apiKeys";
const OTHER_ORG: &str = "0123456789abcdef01234567";

fn fenced_key_req() -> atlas_grpc_gateway::pb::CreateApiKeyRequest {
    let mut req = key_req(DEMO_ORG_ID);
    req.access_list_ips = vec!["203.0.113.7".into(), "10.0.0.0/8".into()];
    req
}

fn requests(gw: &Gateway, key: &str) -> u64 {
    gw.emulator
        .counters()
        .requests
        .get(key)
        .copied()
        .unwrap_or(0)
}

/// The emulator's API keys: `(id, access list)`.
fn stored_keys(gw: &Gateway) -> Vec<(String, Vec<String>)> {
    let state = gw.emulator.state();
    state["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let list = k["access_list"].as_array().unwrap();
            let list = list.iter().map(|e| e.as_str().unwrap().to_string());
            (k["id"].as_str().unwrap().to_string(), list.collect())
        })
        .collect()
}

fn delete_key_req(id: &str) -> DeleteApiKeyRequest {
    DeleteApiKeyRequest {
        org_id: DEMO_ORG_ID.into(),
        api_key_id: id.into(),
    }
}

#[tokio::test]
async fn create_with_access_list_applies_it_in_one_unit() {
    let gw = Gateway::start().await;
    let key = gw
        .client()
        .create_api_key(fenced_key_req())
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    assert_eq!(key.access_list_ips, ["203.0.113.7", "10.0.0.0/8"]);
    let sent = &gw.emulator.recorded()[1];
    assert_eq!(
        sent.path_and_query,
        format!(
            "/api/atlas/v2/orgs/{DEMO_ORG_ID}/apiKeys/{}/accessList",
            key.id
        )
    );
    let body: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!([{"ipAddress": "203.0.113.7"}, {"cidrBlock": "10.0.0.0/8"}])
    );
    assert_eq!(
        stored_keys(&gw),
        [(
            key.id.clone(),
            vec!["203.0.113.7/32".into(), "10.0.0.0/8".into()]
        )]
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_failed_access_list_rolls_the_key_back() {
    let gw = Gateway::start().await;
    gw.emulator.inject(Fault::once(
        Route::CreateApiKeyAccessList,
        FaultAction::Error {
            status: 400,
            error_code: "INVALID_ATTRIBUTE".into(),
            detail: Some("Invalid attribute cidrBlock specified.".into()),
            retry_after: None,
            parameters: None,
            bad_request_fields: vec![("accessListIps".into(), "not allowed here".into())],
        },
    ));
    let err = gw
        .client()
        .create_api_key(fenced_key_req())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    assert_eq!(reason(&err), "INVALID_ATTRIBUTE", "Atlas's errorCode");
    assert_eq!(meta(&err, "rolled_back").as_deref(), Some("true"));
    let id = meta(&err, "api_key_id").unwrap();
    assert_eq!(id.len(), 24);
    assert_eq!(
        meta(&err, "operation").as_deref(),
        Some("createOrgApiKeyAccessListEntry")
    );
    let bad = details(&err).bad_request().unwrap().clone();
    assert_eq!(bad.field_violations[0].field, "access_list_ips");
    assert!(err
        .message()
        .contains("Invalid attribute cidrBlock specified."));
    assert!(stored_keys(&gw).is_empty(), "the key was deleted again");
    assert_eq!(requests(&gw, KEY_DELETE), 1);
    assert_eq!(gw.emulator.counters().api_keys_deleted, 1);
    gw.stop().await;
}

#[tokio::test]
async fn a_key_that_cannot_be_rolled_back_is_an_orphan() {
    let gw = Gateway::start().await;
    gw.emulator.inject(Fault::once(
        Route::CreateApiKeyAccessList,
        FaultAction::error(403, "ACCESS_LIST_FORBIDDEN"),
    ));
    gw.emulator.inject(Fault::new(
        Route::DeleteApiKey,
        FaultAction::error(500, "UNEXPECTED_ERROR"),
    ));
    let err = gw
        .client()
        .create_api_key(fenced_key_req())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{}", err.message());
    assert_eq!(reason(&err), "ORPHANED_API_KEY");
    assert_eq!(meta(&err, "rolled_back").as_deref(), Some("false"));
    assert_eq!(
        meta(&err, "access_list_error").as_deref(),
        Some("ACCESS_LIST_FORBIDDEN")
    );
    let id = meta(&err, "api_key_id").unwrap();
    assert!(err.message().contains(&id), "{}", err.message());
    assert!(err.message().contains("DeleteApiKey"));
    assert_eq!(stored_keys(&gw), [(id.clone(), vec![])], "still in Atlas");
    assert_eq!(requests(&gw, KEY_DELETE), 1, "a DELETE 500 is not retried");

    // The caller can clean up with the id it was given.
    gw.emulator.clear_faults();
    gw.client()
        .delete_api_key(delete_key_req(&id))
        .await
        .unwrap();
    assert!(stored_keys(&gw).is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn the_unit_is_idempotent_under_request_id() {
    let gw = Gateway::start().await;
    let mut req = fenced_key_req();
    req.request_id = "0f8fad5b-d9cb-469f-a165-70867728950e".into();
    let first = gw.client().create_api_key(req.clone()).await.unwrap();
    let again = gw.client().create_api_key(req.clone()).await.unwrap();
    assert_eq!(
        first.get_ref(),
        again.get_ref(),
        "same key, same private key"
    );
    assert_eq!(requests(&gw, API_KEYS), 1);
    assert_eq!(requests(&gw, ACCESS_LIST), 1);
    req.access_list_ips.pop();
    let err = gw.client().create_api_key(req).await.unwrap_err();
    assert_eq!(reason(&err), "REQUEST_ID_REUSED");
    gw.stop().await;
}

#[tokio::test]
async fn access_list_entries_are_validated_with_the_rest() {
    let gw = Gateway::start().await;
    let mut req = fenced_key_req();
    req.desc.clear();
    req.access_list_ips.push("10.0.0.0/33".into());
    let err = gw.client().create_api_key(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["desc", "access_list_ips[2]"]);
    assert_eq!(gw.emulator.counters().total_requests(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn delete_api_key_then_not_found() {
    let gw = Gateway::start().await;
    let key = create_key(&gw, DEMO_ORG_ID).await;
    let resp = gw
        .client()
        .delete_api_key(delete_key_req(&key.id))
        .await
        .unwrap();
    assert!(resp.metadata().get("x-request-id").is_some());
    assert!(stored_keys(&gw).is_empty());
    let err = gw
        .client()
        .delete_api_key(delete_key_req(&key.id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(meta(&err, "http_status").as_deref(), Some("404"));
    assert_eq!(meta(&err, "operation").as_deref(), Some("deleteOrgApiKey"));
    assert!(details(&err).help().unwrap().links[0]
        .url
        .ends_with("deleteOrgApiKey"));

    let bad = DeleteApiKeyRequest {
        org_id: "nope".into(),
        api_key_id: key.id.to_uppercase(),
    };
    let err = gw.client().delete_api_key(bad).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["org_id", "api_key_id"]);
    assert_eq!(
        requests(&gw, KEY_DELETE),
        2,
        "the invalid request sent nothing"
    );
    gw.stop().await;
}

#[tokio::test]
async fn delete_api_key_is_retried_like_other_deletes() {
    let gw = Gateway::start().await;
    let key = create_key(&gw, DEMO_ORG_ID).await;
    gw.emulator.inject(
        Fault::new(
            Route::DeleteApiKey,
            FaultAction::error(503, "SERVICE_UNAVAILABLE"),
        )
        .limit(2),
    );
    gw.client()
        .delete_api_key(delete_key_req(&key.id))
        .await
        .unwrap();
    assert_eq!(requests(&gw, KEY_DELETE), 3, "two 503s, then 204");
    gw.stop().await;
}

#[tokio::test]
async fn list_api_keys_in_three_pages() {
    let gw = Gateway::start().await;
    let mut created = BTreeSet::new();
    for _ in 0..5 {
        created.insert(create_key(&gw, DEMO_ORG_ID).await.id);
    }
    let mut req = ListApiKeysRequest {
        org_id: DEMO_ORG_ID.into(),
        page_size: 2,
        page_token: String::new(),
    };
    let mut pages = Vec::new();
    let mut seen = BTreeSet::new();
    loop {
        let page = gw
            .client()
            .list_api_keys(req.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total_size, 5);
        pages.push(page.api_keys.len());
        for k in &page.api_keys {
            assert!(
                k.private_key.starts_with("********-****-****-"),
                "{}",
                k.private_key
            );
            assert_eq!(k.roles[0].role_name, "ORG_MEMBER");
            seen.insert(k.id.clone());
        }
        if page.next_page_token.is_empty() {
            break;
        }
        req.page_token = page.next_page_token;
    }
    assert_eq!(pages, [2, 2, 1]);
    assert_eq!(seen, created);
    let queries: Vec<String> = gw
        .emulator
        .recorded()
        .into_iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path_and_query)
        .collect();
    assert_eq!(
        queries[2],
        format!(
            "/api/atlas/v2/orgs/{DEMO_ORG_ID}/apiKeys?itemsPerPage=2&pageNum=3&includeCount=true"
        )
    );
    gw.stop().await;
}

#[tokio::test]
async fn page_tokens_are_bound_to_org_and_size() {
    let gw = Gateway::start().await;
    for _ in 0..2 {
        gw.client()
            .create_api_key(key_req(DEMO_ORG_ID))
            .await
            .unwrap();
    }
    let first = ListApiKeysRequest {
        org_id: DEMO_ORG_ID.into(),
        page_size: 1,
        page_token: String::new(),
    };
    let token = gw
        .client()
        .list_api_keys(first.clone())
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    assert!(!token.is_empty());
    let misuse = [
        ListApiKeysRequest {
            page_size: 2,
            page_token: token.clone(),
            ..first.clone()
        },
        ListApiKeysRequest {
            org_id: OTHER_ORG.into(),
            page_token: token.clone(),
            ..first.clone()
        },
        ListApiKeysRequest {
            page_token: "not-a-token".into(),
            ..first.clone()
        },
    ];
    let before = requests(&gw, KEYS_GET);
    for req in misuse {
        let err = gw.client().list_api_keys(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let bad = details(&err).bad_request().unwrap().clone();
        assert_eq!(
            bad.field_violations[0].field,
            "page_token",
            "{}",
            err.message()
        );
    }
    let negative = ListApiKeysRequest {
        page_size: -1,
        ..first.clone()
    };
    let err = gw.client().list_api_keys(negative).await.unwrap_err();
    assert_eq!(
        details(&err).bad_request().unwrap().field_violations[0].field,
        "page_size"
    );
    assert_eq!(
        requests(&gw, KEYS_GET),
        before,
        "nothing sent for a bad request"
    );

    // 0 means 100 items per page; more than 500 is served 500.
    for (asked, sent) in [(0, 100), (9_999, 500)] {
        let req = ListApiKeysRequest {
            page_size: asked,
            ..first.clone()
        };
        let page = gw.client().list_api_keys(req).await.unwrap().into_inner();
        assert_eq!(
            (page.api_keys.len(), page.next_page_token.as_str()),
            (2, "")
        );
        let last = gw.emulator.recorded().pop().unwrap();
        assert!(
            last.path_and_query
                .contains(&format!("itemsPerPage={sent}&")),
            "{}",
            last.path_and_query
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn list_retries_a_bad_gateway_and_maps_errors() {
    let gw = Gateway::start().await;
    gw.emulator.inject(Fault::once(
        Route::ListApiKeys,
        FaultAction::Html { status: 502 },
    ));
    let req = ListApiKeysRequest {
        org_id: DEMO_ORG_ID.into(),
        ..Default::default()
    };
    let page = gw
        .client()
        .list_api_keys(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!((page.total_size, page.api_keys.len()), (0, 0));
    assert_eq!(requests(&gw, KEYS_GET), 2, "a GET is retried");
    let err = gw
        .client()
        .list_api_keys(ListApiKeysRequest {
            org_id: OTHER_ORG.into(),
            ..req
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "ORG_NOT_FOUND");
    assert_eq!(meta(&err, "operation").as_deref(), Some("listOrgApiKeys"));
    gw.stop().await;
}

#[tokio::test]
async fn allowed_rpcs_denies_before_any_atlas_call() {
    let gw = Gateway::start_with(Default::default(), |c| {
        let p = c.profiles.get_mut("restricted").unwrap();
        p.allowed_rpcs = Some(["ListApiKeys".to_string()].into());
    })
    .await;
    let restricted = [("x-atlas-profile", "restricted")];
    let err = gw
        .client()
        .create_api_key(with_meta(key_req(DEMO_ORG_ID), &restricted, None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "POLICY_DENIED");
    assert_eq!(meta(&err, "field").as_deref(), Some("rpc"));
    assert_eq!(meta(&err, "profile").as_deref(), Some("restricted"));
    let err = gw
        .client()
        .delete_api_key(with_meta(
            delete_key_req(&"a".repeat(24)),
            &restricted,
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(meta(&err, "field").as_deref(), Some("rpc"));
    assert_eq!(gw.emulator.counters().total_requests(), 0);
    let list = ListApiKeysRequest {
        org_id: DEMO_ORG_ID.into(),
        ..Default::default()
    };
    gw.client()
        .list_api_keys(with_meta(list, &restricted, None))
        .await
        .unwrap();
    gw.stop().await;
}

/// Polls the emulator until `done` holds (bounded, so a broken gateway fails the test).
#[tokio::test]
async fn a_caller_that_hangs_up_after_the_create_still_gets_a_whole_unit() {
    let gw = Gateway::start().await;
    gw.emulator.inject(Fault::once(
        Route::CreateApiKeyAccessList,
        // Long enough that the hang-up below lands while Atlas is still answering.
        FaultAction::Latency { millis: 2000 },
    ));
    let mut client = gw.client();
    let call = tokio::spawn(async move { client.create_api_key(fenced_key_req()).await });
    // The access-list request has reached Atlas (it waits there): now hang up.
    eventually("the access-list request reaches Atlas", || {
        std::future::ready(gw.emulator.counters().requests.contains_key(ACCESS_LIST))
    })
    .await;
    call.abort();
    assert!(
        call.await.unwrap_err().is_cancelled(),
        "the caller hung up before the answer"
    );
    eventually("the access list is created anyway", || {
        std::future::ready(gw.emulator.counters().access_list_entries_created == 2)
    })
    .await;
    let keys = stored_keys(&gw);
    assert_eq!(keys.len(), 1);
    assert_eq!(
        keys[0].1,
        ["203.0.113.7/32", "10.0.0.0/8"],
        "fenced, not half-made"
    );
    gw.stop().await;
}
